package platform

import (
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// seedWindow is how far back seeded instances reach from the app's seeding time.
const seedWindow = 180 * 24 * time.Hour

// ownerPool is how many instance owners (parties) each environment's seeded data draws from,
// so that the same party shows up in several instances.
const ownerPool = 60

var appNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// SeedApp makes sure app {org}/{app} exists with at least n believable instances. Idempotent.
//
// Instance i of an app is always generated from the same random sequence, so topping up later
// continues where the last call stopped. Times are spread over the 180 days before the app was
// first seeded: about a fifth still in Task_1 (data), a tenth in Task_2 (confirmation), the rest
// ended and archived with a PDF receipt; many ended ones are confirmed by the org, a few are soft
// or hard deleted. Every instance has its XML form data; some have PDF attachments.
func (p *Platform) SeedApp(ctx context.Context, org, app string, n int) error {
	if !appNameRE.MatchString(org) || !appNameRE.MatchString(app) {
		return fmt.Errorf("seed %s/%s: org and app must be lower-case letters, digits and '-'", org, app)
	}
	p.seedMu.Lock()
	defer p.seedMu.Unlock()
	ownerOrgNo := ""
	if owners, err := p.cfg.ServiceOwners(ctx); err == nil {
		for _, o := range owners {
			if o.Code == org {
				ownerOrgNo = o.OrgNo
			}
		}
	}
	return withImmediateTx(ctx, p.cfg.DB, func(conn *sql.Conn) error {
		var anchor int64
		err := conn.QueryRowContext(ctx, `SELECT anchor_ticks FROM platform_apps WHERE env = ? AND org = ? AND app = ?`,
			p.cfg.Env, org, app).Scan(&anchor)
		if errors.Is(err, sql.ErrNoRows) {
			anchor = toTicks(p.now().Truncate(time.Microsecond))
			if _, err := conn.ExecContext(ctx, `INSERT INTO platform_apps (env, org, app, title, anchor_ticks) VALUES (?, ?, ?, ?, ?)`,
				p.cfg.Env, org, app, appTitle(app), anchor); err != nil {
				return fmt.Errorf("insert app: %w", err)
			}
		} else if err != nil {
			return fmt.Errorf("read app: %w", err)
		}
		appID := org + "/" + app
		var have int
		if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq) + 1, 0) FROM platform_instances WHERE env = ? AND app_id = ?`,
			p.cfg.Env, appID).Scan(&have); err != nil {
			return fmt.Errorf("count instances: %w", err)
		}
		insInst, err := conn.PrepareContext(ctx, `INSERT INTO platform_instances
			(env, guid, seq, party_id, owner_ident, org, app_id, created_ticks, last_changed_ticks, current_task,
			 process_ended, due_before, visible_after, is_archived, is_soft_deleted, is_hard_deleted, confirmed_by,
			 main_version, search_text, body)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 3, ?, ?)`)
		if err != nil {
			return fmt.Errorf("prepare instance insert: %w", err)
		}
		defer insInst.Close()
		insData, err := conn.PrepareContext(ctx, `INSERT INTO platform_data_elements (env, instance_id, guid, body) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("prepare data insert: %w", err)
		}
		defer insData.Close()
		g := seedGen{env: p.cfg.Env, org: org, app: app, title: appTitle(app), ownerOrgNo: ownerOrgNo, anchor: fromTicks(anchor)}
		for i := have; i < n; i++ {
			inst, data, row := g.instance(i)
			body, err := json.Marshal(inst)
			if err != nil {
				return fmt.Errorf("encode instance %d: %w", i, err)
			}
			res, err := insInst.ExecContext(ctx, p.cfg.Env, row.guid, i, row.party, row.ownerIdent, org, appID,
				row.created, row.lastChanged, nullString(row.currentTask), nullString(inst.processEnded()),
				nullString(inst.DueBefore), nullString(inst.VisibleAfter), inst.Status.IsArchived,
				inst.Status.IsSoftDeleted, inst.Status.IsHardDeleted, row.confirmedBy,
				appID+" "+g.title, string(body))
			if err != nil {
				return fmt.Errorf("insert instance %d: %w", i, err)
			}
			id, err := res.LastInsertId()
			if err != nil {
				return fmt.Errorf("instance %d id: %w", i, err)
			}
			for _, el := range data {
				b, err := json.Marshal(el)
				if err != nil {
					return fmt.Errorf("encode data element: %w", err)
				}
				if _, err := insData.ExecContext(ctx, p.cfg.Env, id, el.ID, string(b)); err != nil {
					return fmt.Errorf("insert data element of instance %d: %w", i, err)
				}
			}
		}
		return nil
	})
}

func (inst *instance) processEnded() string {
	if inst.Process == nil {
		return ""
	}
	return inst.Process.Ended
}

func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

// withImmediateTx runs fn in a write transaction taken up front, so concurrent seeding by the
// two environments waits on the busy timeout instead of failing on a lock upgrade.
func withImmediateTx(ctx context.Context, db *sql.DB, fn func(*sql.Conn) error) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connection: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(conn); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// appTitle makes a display title from an app name: "soknad-om-tilskudd" -> "Soknad om tilskudd".
func appTitle(app string) string {
	t := strings.ReplaceAll(app, "-", " ")
	if t == "" {
		return t
	}
	return strings.ToUpper(t[:1]) + t[1:]
}

// seedGen generates the instances of one app.
type seedGen struct {
	env, org, app, title string
	ownerOrgNo           string
	anchor               time.Time
}

// instanceRow holds the indexed columns that are not plain copies of the instance JSON.
type instanceRow struct {
	guid, ownerIdent, currentTask, confirmedBy string
	party, created, lastChanged                int64
}

func newRand(parts ...string) *rand.Rand {
	h := fnv.New64a()
	for _, s := range parts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	a := h.Sum64()
	h.Write([]byte("second"))
	return rand.New(rand.NewPCG(a, h.Sum64()))
}

// randomGUID draws a version 4 GUID from r.
func randomGUID(r *rand.Rand) string {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(r.Uint32())
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u.String()
}

func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

var attachmentNames = []string{"Årsregnskap 2024.pdf", "Bekreftelse fra bank.pdf", "kontrakt_signert.pdf", "Budsjett (revidert).pdf", "Tegninger.pdf", "Fullmakt.pdf"}

var substatuses = []substatus{
	{Label: "Mottatt", Description: "Innsendingen er mottatt og blir behandlet."},
	{Label: "Under behandling"},
	{Label: "Godkjent", Description: "Søknaden er godkjent."},
}

// owner returns party k of the environment's pool: 70 % organisations, the rest people, with
// synthetic but well-formed numbers.
func (g seedGen) owner(k int) (instanceOwner, string) {
	r := newRand(g.env, "owner", strconv.Itoa(k))
	party := strconv.Itoa(50001000 + k)
	if r.Float64() < 0.7 {
		no := orgNumber(r)
		return instanceOwner{PartyID: party, OrganisationNumber: no}, "Organisation:" + no
	}
	no := personNumber(r)
	return instanceOwner{PartyID: party, PersonNumber: no}, "Person:" + no
}

// instance generates instance i of the app with its data elements.
func (g seedGen) instance(i int) (instance, []dataElement, instanceRow) {
	r := newRand(g.env, g.org, g.app, strconv.Itoa(i))
	guid := randomGUID(r)
	owner, ident := g.owner(r.IntN(ownerPool))
	user := strconv.Itoa(20000000 + int(hashNum(owner.PartyID, 9000)) + 1000)
	appID := g.org + "/" + g.app

	// Skewed towards recent: most instances are from the last weeks.
	u := r.Float64()
	created := g.anchor.Add(-time.Duration(u*u*float64(seedWindow)) - between(r, 30*time.Minute, 3*time.Hour)).Truncate(time.Microsecond)
	// after moves forward from t by lo..hi, shrunk to fit before the anchor so that recent
	// instances do not pile up at the seeding time.
	after := func(t time.Time, lo, hi time.Duration) time.Time {
		room := g.anchor.Sub(t) - time.Second
		if room <= 0 {
			return t
		}
		if hi > room {
			hi = room
		}
		if lo > hi/2 {
			lo = hi / 2
		}
		return t.Add(between(r, lo, hi)).Truncate(time.Microsecond)
	}
	ts := formatTime

	inst := instance{
		ID:            owner.PartyID + "/" + guid,
		InstanceOwner: owner,
		AppID:         appID,
		Org:           g.org,
		VisibleAfter:  ts(created),
		Process:       &processState{Started: ts(created), StartEvent: "StartEvent_1"},
		Status:        &instanceStatus{ReadStatus: "Read"},
		Created:       ts(created),
		CreatedBy:     user,
		LastChangedBy: user,
	}
	if r.Float64() < 0.4 {
		inst.DueBefore = ts(time.Date(created.Year(), created.Month(), created.Day(), 23, 59, 59, 0, time.UTC).AddDate(0, 0, 30))
	}
	row := instanceRow{guid: guid, ownerIdent: ident, party: int64(mustAtoi(owner.PartyID)), confirmedBy: ","}

	dataGUID := func() string { return randomGUID(r) }
	blobPath := func(id string) string { return appID + "/" + guid + "/data/" + id }
	model := dataElement{
		ID: dataGUID(), InstanceGUID: guid, DataType: "model", Filename: "model.xml",
		ContentType: "application/xml", IsRead: true, Tags: []string{}, FileScanResult: "NotApplicable",
		Created: ts(created.Add(time.Second)), CreatedBy: user,
	}
	model.BlobStoragePath = blobPath(model.ID)
	data := []dataElement{model}

	state := r.Float64()
	task1End := after(created, 3*time.Minute, 72*time.Hour)
	lastChanged := task1End
	switch {
	case state < 0.2:
		lastChanged = after(created, time.Minute, 48*time.Hour)
		inst.Process.CurrentTask = &processElementInfo{Flow: 2, Started: ts(created), ElementID: "Task_1", Name: "Utfylling", AltinnTaskType: "data", FlowType: "CompleteCurrentMoveToNext"}
		row.currentTask = "Task_1"
		data[0].LastChanged, data[0].LastChangedBy = ts(lastChanged), user
	case state < 0.3:
		inst.Process.CurrentTask = &processElementInfo{Flow: 3, Started: ts(task1End), ElementID: "Task_2", Name: "Bekreftelse", AltinnTaskType: "confirmation", FlowType: "CompleteCurrentMoveToNext"}
		row.currentTask = "Task_2"
		data[0].Locked = true
		data[0].LastChanged, data[0].LastChangedBy = ts(task1End), user
	default:
		ended := after(task1End, time.Minute, 48*time.Hour)
		lastChanged = ended
		inst.Process.Ended, inst.Process.EndEvent = ts(ended), "EndEvent_1"
		inst.Status.IsArchived, inst.Status.Archived = true, ts(ended)
		data[0].Locked = true
		data[0].LastChanged, data[0].LastChangedBy = ts(task1End), user
		receipt := dataElement{
			ID: dataGUID(), InstanceGUID: guid, DataType: "ref-data-as-pdf", Filename: g.title + ".pdf",
			ContentType: "application/pdf", IsRead: false, Tags: []string{}, FileScanResult: "NotApplicable",
			Created: ts(ended.Add(-2 * time.Second)), CreatedBy: user,
		}
		receipt.BlobStoragePath = blobPath(receipt.ID)
		data = append(data, receipt)
		if r.Float64() < 0.3 {
			s := substatuses[r.IntN(len(substatuses))]
			inst.Status.Substatus = &s
		}
		if r.Float64() < 0.15 {
			inst.Status.ReadStatus = "Unread"
		}
		// The owner org confirms most older instances once it has downloaded them.
		if ended.Before(g.anchor.Add(-48*time.Hour)) && r.Float64() < 0.6 {
			confirmed := after(ended, time.Hour, 36*time.Hour)
			inst.CompleteConfirmations = []completeConfirmation{{StakeholderID: g.org, ConfirmedOn: ts(confirmed)}}
			row.confirmedBy = "," + g.org + ","
			lastChanged = confirmed
			if g.ownerOrgNo != "" {
				inst.LastChangedBy = g.ownerOrgNo
			}
		}
	}
	if state >= 0.2 && r.Float64() < 0.25 {
		for k := range 1 + r.IntN(2) {
			at := created.Add(between(r, 0, task1End.Sub(created))).Truncate(time.Microsecond)
			a := dataElement{
				ID: dataGUID(), InstanceGUID: guid, DataType: "vedlegg", Filename: attachmentNames[(r.IntN(len(attachmentNames))+k)%len(attachmentNames)],
				ContentType: "application/pdf", IsRead: true, Tags: []string{}, FileScanResult: "Clean",
				Created: ts(at), CreatedBy: user, LastChanged: ts(at), LastChangedBy: user,
			}
			a.BlobStoragePath = blobPath(a.ID)
			data = append(data, a)
		}
	}
	switch d := r.Float64(); {
	case d < 0.01:
		del := after(lastChanged, time.Hour, 24*time.Hour)
		inst.Status.IsSoftDeleted, inst.Status.SoftDeleted = true, ts(del)
		inst.Status.IsHardDeleted, inst.Status.HardDeleted = true, ts(del)
		lastChanged = del
	case d < 0.04:
		del := after(lastChanged, time.Hour, 24*time.Hour)
		inst.Status.IsSoftDeleted, inst.Status.SoftDeleted = true, ts(del)
		lastChanged = del
	}
	inst.LastChanged = ts(lastChanged)
	row.created, row.lastChanged = toTicks(created), toTicks(lastChanged)

	for k := range data {
		if data[k].LastChanged == "" {
			data[k].LastChanged, data[k].LastChangedBy = data[k].Created, data[k].CreatedBy
		}
		content, _ := renderContent(&inst, &data[k])
		sum := md5.Sum(content)
		data[k].Size = int64(len(content))
		data[k].ContentHash = base64.StdEncoding.EncodeToString(sum[:])
	}
	return inst, data, row
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// orgNumber draws a 9-digit organisation number with a valid MOD11 check digit.
func orgNumber(r *rand.Rand) string {
	weights := []int{3, 2, 7, 6, 5, 4, 3, 2}
	for {
		d := make([]int, 8)
		d[0] = 3 + r.IntN(6) // 3..9; real numbers start with 8 or 9, test numbers often with 3
		for i := 1; i < 8; i++ {
			d[i] = r.IntN(10)
		}
		sum := 0
		for i, w := range weights {
			sum += d[i] * w
		}
		c := 11 - sum%11
		if c == 10 {
			continue
		}
		if c == 11 {
			c = 0
		}
		var b strings.Builder
		for _, x := range d {
			b.WriteByte(byte('0' + x))
		}
		b.WriteByte(byte('0' + c))
		return b.String()
	}
}

// personNumber draws a synthetic national identity number in the Tenor test form (month + 80)
// with valid control digits, so it can never be a real person's.
func personNumber(r *rand.Rand) string {
	w1 := []int{3, 7, 6, 1, 8, 9, 4, 5, 2}
	w2 := []int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}
	for {
		day, month, year := 1+r.IntN(28), 1+r.IntN(12), r.IntN(100)
		ind := r.IntN(500)
		s := fmt.Sprintf("%02d%02d%02d%03d", day, month+80, year, ind)
		d := make([]int, 11)
		for i := range 9 {
			d[i] = int(s[i] - '0')
		}
		ctrl := func(w []int, n int) int {
			sum := 0
			for i := range n {
				sum += d[i] * w[i]
			}
			c := 11 - sum%11
			if c == 11 {
				return 0
			}
			return c
		}
		if d[9] = ctrl(w1, 9); d[9] == 10 {
			continue
		}
		if d[10] = ctrl(w2, 10); d[10] == 10 {
			continue
		}
		return fmt.Sprintf("%s%d%d", s, d[9], d[10])
	}
}
