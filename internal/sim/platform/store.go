package platform

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// instanceSQL is the WHERE clause of an instance query under construction.
type instanceSQL struct {
	where []string
	args  []any
	asc   bool
}

func (s *instanceSQL) add(cond string, args ...any) {
	s.where = append(s.where, cond)
	s.args = append(s.args, args...)
}

var sqlOps = map[string]string{"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "="}

// buildInstanceSQL turns bound, defaulted query parameters into indexed SQL, mirroring
// storage.readinstancefromquery. Errors are date-expression errors, Storage's 400s.
func buildInstanceSQL(env string, iq instanceQuery) (*instanceSQL, error) {
	s := &instanceSQL{asc: !strings.HasPrefix(strings.ToLower(iq.sortBy), "desc:")}
	s.add("env = ?", env)
	if iq.org != "" {
		s.add("org = ?", iq.org)
	}
	if iq.appID != "" {
		s.add("app_id = ?", iq.appID)
	}
	if iq.currentTask != "" {
		s.add("current_task = ?", iq.currentTask)
	}
	if iq.isComplete != nil {
		if *iq.isComplete {
			s.add("process_ended IS NOT NULL")
		} else {
			s.add("current_task IS NOT NULL")
		}
	}
	if iq.partyID != nil {
		s.add("party_id = ?", *iq.partyID)
	}
	for _, d := range []struct {
		name, column string
		values       []string
		asString     bool
	}{
		{"created", "created_ticks", iq.createdRaw, false},
		{"lastChanged", "last_changed_ticks", iq.changedRaw, false},
		{"dueBefore", "due_before", iq.dueBeforeRaw, true},
		{"visibleAfter", "visible_after", iq.visibleRaw, true},
		{"process.ended", "process_ended", iq.endedRaw, true},
	} {
		conds, err := parseDateExprs(d.name, d.values, d.asString)
		if err != nil {
			return nil, err
		}
		for _, c := range conds {
			if d.asString {
				s.add(d.column+" "+sqlOps[c.op]+" ?", c.str)
			} else {
				s.add(d.column+" "+sqlOps[c.op]+" ?", c.ticks)
			}
		}
	}
	// excludeConfirmedBy hides instances a listed stakeholder has confirmed; naming the
	// queried org itself means "not yet confirmed by the app owner".
	confirmed := iq.confirmed
	for _, st := range iq.excludeConfBy {
		if st == iq.org {
			if confirmed == nil {
				f := false
				confirmed = &f
			}
			continue
		}
		s.add("instr(confirmed_by, ?) = 0", ","+st+",")
	}
	if confirmed != nil {
		if *confirmed {
			s.add("instr(confirmed_by, ',' || org || ',') > 0")
		} else {
			s.add("instr(confirmed_by, ',' || org || ',') = 0")
		}
	}
	for _, b := range []struct {
		column string
		v      *bool
	}{
		{"is_archived", iq.isArchived},
		{"is_soft_deleted", iq.isSoftDeleted},
		{"is_hard_deleted", iq.isHardDeleted},
	} {
		if b.v != nil {
			s.add(b.column+" = ?", *b.v)
		}
	}
	if iq.mainInclude != nil {
		s.add("main_version = ?", *iq.mainInclude)
	}
	if iq.mainExclude != nil {
		s.add("main_version <> ?", *iq.mainExclude)
	}
	if iq.a3Ref != "" {
		s.add("guid LIKE ?", "%"+strings.ToLower(iq.a3Ref))
	}
	if iq.searchString != "" {
		s.add("search_text LIKE ?", "%"+iq.searchString+"%")
	}
	return s, nil
}

// withKeyset continues after the row a continuation token names. Like Storage, a token whose
// id is not positive restarts from the beginning.
func (s *instanceSQL) withKeyset(k *keyset) {
	if k == nil || k.id <= 0 {
		return
	}
	if s.asc {
		s.add("(last_changed_ticks > ? OR (last_changed_ticks = ? AND id > ?))", k.ticks, k.ticks, k.id)
		return
	}
	s.add("(last_changed_ticks < ? OR (last_changed_ticks = ? AND id < ?))", k.ticks, k.ticks, k.id)
}

type instancePage struct {
	instances []instance
	last      keyset
}

// queryInstances runs one page of an instance query: the instances by (lastChanged, id) from
// the index, then their data elements in one more query.
func (p *Platform) queryInstances(ctx context.Context, s *instanceSQL, size int64, withData bool) (instancePage, error) {
	order := "last_changed_ticks DESC, id DESC"
	if s.asc {
		order = "last_changed_ticks ASC, id ASC"
	}
	query := "SELECT id, last_changed_ticks, body FROM platform_instances WHERE " +
		strings.Join(s.where, " AND ") + " ORDER BY " + order + " LIMIT ?"
	rows, err := p.cfg.DB.QueryContext(ctx, query, append(s.args, size)...)
	if err != nil {
		return instancePage{}, fmt.Errorf("query instances: %w", err)
	}
	defer rows.Close()
	var page instancePage
	var ids []any
	for rows.Next() {
		var id, ticks int64
		var body string
		if err := rows.Scan(&id, &ticks, &body); err != nil {
			return instancePage{}, fmt.Errorf("scan instance: %w", err)
		}
		var inst instance
		if err := json.Unmarshal([]byte(body), &inst); err != nil {
			return instancePage{}, fmt.Errorf("decode instance %d: %w", id, err)
		}
		page.instances = append(page.instances, inst)
		page.last = keyset{ticks: ticks, id: id}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return instancePage{}, fmt.Errorf("read instances: %w", err)
	}
	var data map[int64][]dataElement
	if withData && len(ids) > 0 {
		if data, err = p.dataElements(ctx, ids); err != nil {
			return instancePage{}, err
		}
	}
	for i := range page.instances {
		id := ids[i].(int64)
		page.instances[i].Data = data[id]
		p.setSelfLinks(&page.instances[i])
	}
	return page, nil
}

// dataElements loads the data elements of the given instances, in creation order.
func (p *Platform) dataElements(ctx context.Context, ids []any) (map[int64][]dataElement, error) {
	query := "SELECT instance_id, body FROM platform_data_elements WHERE instance_id IN (?" +
		strings.Repeat(",?", len(ids)-1) + ") ORDER BY instance_id, id"
	rows, err := p.cfg.DB.QueryContext(ctx, query, ids...)
	if err != nil {
		return nil, fmt.Errorf("query data elements: %w", err)
	}
	defer rows.Close()
	out := map[int64][]dataElement{}
	for rows.Next() {
		var id int64
		var body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, fmt.Errorf("scan data element: %w", err)
		}
		var el dataElement
		if err := json.Unmarshal([]byte(body), &el); err != nil {
			return nil, fmt.Errorf("decode data element of instance %d: %w", id, err)
		}
		out[id] = append(out[id], el)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read data elements: %w", err)
	}
	return out, nil
}

// instanceByGUID reads one instance of this environment, with its data elements.
func (p *Platform) instanceByGUID(ctx context.Context, guid string, withData bool) (instance, bool, error) {
	var id int64
	var body string
	err := p.cfg.DB.QueryRowContext(ctx,
		"SELECT id, body FROM platform_instances WHERE env = ? AND guid = ?", p.cfg.Env, guid).Scan(&id, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return instance{}, false, nil
	}
	if err != nil {
		return instance{}, false, fmt.Errorf("read instance %s: %w", guid, err)
	}
	var inst instance
	if err := json.Unmarshal([]byte(body), &inst); err != nil {
		return instance{}, false, fmt.Errorf("decode instance %s: %w", guid, err)
	}
	if withData {
		data, err := p.dataElements(ctx, []any{id})
		if err != nil {
			return instance{}, false, err
		}
		inst.Data = data[id]
	}
	p.setSelfLinks(&inst)
	return inst, true, nil
}

// partyByIdentifier finds the party id of an instance owner ("Person:…" or "Organisation:…").
func (p *Platform) partyByIdentifier(ctx context.Context, ident string) (int64, bool, error) {
	var party int64
	err := p.cfg.DB.QueryRowContext(ctx,
		"SELECT party_id FROM platform_instances WHERE env = ? AND owner_ident = ? LIMIT 1", p.cfg.Env, ident).Scan(&party)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("party of %s: %w", ident, err)
	}
	return party, true, nil
}

// setSelfLinks fills the platform links from this platform's public URL, which is why they
// are not stored.
func (p *Platform) setSelfLinks(inst *instance) {
	base := p.cfg.BaseURL + "/storage/api/v1/instances/"
	inst.SelfLinks = &resourceLinks{Platform: base + inst.ID}
	if inst.Data == nil {
		inst.Data = []dataElement{}
	}
	for i := range inst.Data {
		el := &inst.Data[i]
		el.SelfLinks = &resourceLinks{Platform: base + inst.InstanceOwner.PartyID + "/" + el.InstanceGUID + "/data/" + el.ID}
	}
}
