package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/clients"
	"portal/internal/keys"
	"portal/internal/problem"
	"portal/templates"
)

func keysURL(env, clientID string) string { return integrationURL(env, clientID) + "/keys" }

var custodyLabels = map[string]string{
	clients.CustodyKept:      "kept by the portal (encrypted)",
	clients.CustodyHandedOut: "handed out once",
	clients.CustodyUploaded:  "public key uploaded",
	"":                       "added outside the portal",
}

// keysForm is what the key forms post.
type keysForm struct {
	Version     string
	Key         string
	KID         string
	Bits        int
	Alg         string
	Custody     string
	Expires     string
	Upload      string
	UploadKID   string
	UploadAlg   string
	X5C         bool
	ConfirmName string
}

func parseKeysForm(v url.Values) (keysForm, error) {
	if err := checkForm(v); err != nil {
		return keysForm{}, err
	}
	f := keysForm{Version: field(v, "version", 64), Key: field(v, "key", 128), KID: field(v, "kid", 512), Alg: field(v, "alg", 16),
		Custody: field(v, "custody", 32), Expires: field(v, "expires", 32), UploadKID: field(v, "upload_kid", 512),
		UploadAlg: field(v, "upload_alg", 16), X5C: v.Get("x5c") == "1", ConfirmName: field(v, "confirm_name", maxFieldBytes)}
	// The key text is not trimmed or cut: the parser judges it whole (checkForm bounds it).
	f.Upload = v.Get("key_text")
	f.Bits, _ = strconv.Atoi(field(v, "bits", 8))
	return f, nil
}

func (s *Server) keysPageProps(c echo.Context, e Env, ks clients.KeySet) templates.KeysProps {
	base := keysURL(e.Name, ks.Summary.ClientID)
	formKey := clients.NewKey()
	props := templates.KeysProps{Layout: s.layout(c, "Keys of "+ks.Summary.Name, "Integrations"), Env: envHeading(e),
		Name: ks.Summary.Name, BackURL: integrationURL(e.Name, ks.Summary.ClientID), Stale: ks.Stale, CanChange: ks.CanChange,
		Full: len(ks.Keys) >= clients.MaxKeys, Version: ks.Version, FormKey: formKey,
		Hidden:         []templates.Hidden{{Name: "version", Value: ks.Version}, {Name: "key", Value: formKey}},
		GenerateAction: base + "/generate", UploadAction: base + "/upload", KID: templates.Field{Value: ks.SuggestedKID}}
	now := s.cfg.Now()
	for _, k := range ks.Keys {
		left, color := expiry(k.Expires, now)
		exp := "never"
		if !k.Expires.IsZero() {
			exp = k.Expires.UTC().Format(dateFormat)
		}
		typ := k.Kty
		if k.Bits > 0 {
			typ += "-" + strconv.Itoa(k.Bits)
		}
		item := templates.KeyItem{KID: k.KID, Type: typ, Alg: k.Alg, Use: k.Use, FirstSeen: showTime(k.FirstSeen), Expires: exp,
			DaysLeft: left, Color: color, Thumbprint: k.Thumbprint, Custody: custodyLabels[k.Custody], X5C: k.X5C,
			RenewAction: base + "/renew", DeleteURL: base + "/delete?" + url.Values{"kid": {k.KID}}.Encode(),
			RotateURL: base + "/rotate?" + url.Values{"old": {k.KID}}.Encode()}
		if k.CertSubject != "" {
			item.Certificate = k.CertSubject + ", valid until " + k.CertNotAfter.UTC().Format(dateFormat)
		}
		props.Keys = append(props.Keys, item)
	}
	props.Bits = []templates.Option{{Value: "2048", Label: "RSA 2048 (recommended)", Selected: true}, {Value: "4096", Label: "RSA 4096 (slower to make and use)"}}
	for i, a := range ks.Algs {
		props.Algs = append(props.Algs, templates.Option{Value: a, Label: a, Selected: i == 0})
	}
	props.UploadAlg = props.Algs
	props.AlgCaveat = ks.AlgCaveat
	if ks.Policy.Kept {
		props.Custodies = append(props.Custodies, templates.Option{Value: clients.CustodyKept,
			Label: "The portal keeps it, encrypted, to sign test grants; it is never shown", Selected: true})
	}
	if ks.Policy.HandOut {
		props.Custodies = append(props.Custodies, templates.Option{Value: clients.CustodyHandedOut,
			Label: "Download it once, then the portal forgets it", Selected: !ks.Policy.Kept})
	}
	return props
}

func (s *Server) showKeys(c echo.Context) error {
	e, err := s.integrationEnv(c)
	if err != nil {
		return err
	}
	ks, err := s.deps.Clients.Keys(c.Request().Context(), principal(c), e.Name, c.Param("id"))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.KeysPage(s.keysPageProps(c, e, ks)))
}

// keysAction reads a key form and the environment.
func (s *Server) keysAction(c echo.Context) (Env, keysForm, error) {
	e, err := s.integrationEnv(c)
	if err != nil {
		return e, keysForm{}, err
	}
	f, err := decodeForm(c, parseKeysForm)
	return e, f, err
}

// keysProblem shows the keys page again with the problem beside the form that caused it,
// keeping what was typed (never a private key: an upload refused as private is not echoed).
func (s *Server) keysProblem(c echo.Context, e Env, f keysForm, err error, upload bool) error {
	if !formProblem(err) && problem.KindOf(err) != problem.KindThrottled && problem.KindOf(err) != problem.KindNotFound {
		return err
	}
	ks, kerr := s.deps.Clients.Keys(c.Request().Context(), principal(c), e.Name, c.Param("id"))
	if kerr != nil {
		return err
	}
	props := s.keysPageProps(c, e, ks)
	pe, _ := problem.As(err)
	msg := messageOf(err, statusOf(err))
	fields := map[string]string{}
	if pe != nil {
		fields = pe.Fields
	}
	if upload {
		props.UploadError = msg
		props.UploadKID = templates.Field{Value: f.UploadKID, Error: fields["kid"]}
		props.X5C = f.X5C
		props.UploadKey = templates.Field{Value: f.Upload, Error: fields["key"] + fields["x5c"]}
		if errors.Is(err, keys.ErrPrivateKey) {
			props.UploadKey.Value = "" // a private key is never sent back
		}
	} else {
		props.GenError = msg
		props.KID = templates.Field{Value: f.KID, Error: fields["kid"]}
		props.Expires = templates.Field{Value: f.Expires, Error: fields["expires"]}
	}
	return render(c, statusOf(err), templates.KeysPage(props))
}

func (s *Server) startKeyGeneration(c echo.Context) error {
	e, f, err := s.keysAction(c)
	if err != nil {
		return err
	}
	req := clients.NewKeyRequest{KID: f.KID, Bits: f.Bits, Alg: f.Alg, Custody: f.Custody}
	if f.Expires != "" {
		t, perr := time.Parse(dateFormat, f.Expires)
		if perr != nil {
			return s.keysProblem(c, e, f, problem.Invalid("Some fields need attention.", map[string]string{"expires": "Give the date as YYYY-MM-DD."}), false)
		}
		req.Expires = t.Add(23*time.Hour + 59*time.Minute)
	}
	id := c.Param("id")
	job, err := s.deps.Clients.StartKeyGeneration(c.Request().Context(), principal(c), e.Name, id, req)
	if err != nil {
		return s.keysProblem(c, e, f, err, false)
	}
	q := url.Values{"version": {f.Version}, "key": {f.Key}}
	return redirect(c, keysURL(e.Name, id)+"/generated/"+url.PathEscape(job)+"?"+q.Encode())
}

func (s *Server) showKeyGeneration(c echo.Context) error {
	return s.generationPage(c, keysURL)
}

// generationPage shows a key generation's progress under base (the keys page or a rotation):
// it reloads itself until the key is ready, then offers to add it with the form's version and
// idempotency key carried along.
func (s *Server) generationPage(c echo.Context, base func(env, id string) string) error {
	e, err := s.integrationEnv(c)
	if err != nil {
		return err
	}
	id, job := c.Param("id"), c.Param("job")
	g, err := s.deps.Clients.KeyGeneration(c.Request().Context(), principal(c), e.Name, id, job)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	self := base(e.Name, id) + "/generated/" + url.PathEscape(job)
	carry := url.Values{"version": {field(q, "version", 64)}, "key": {field(q, "key", 128)}}
	props := templates.GeneratingProps{Layout: s.layout(c, "New key", "Integrations"), Env: envHeading(e), Name: id, KID: g.Request.KID,
		Bits: g.Request.Bits, State: g.State, Took: g.Took.Round(time.Millisecond).String(), Problem: g.Problem,
		Action: self, BackURL: base(e.Name, id), Custody: g.Request.Custody,
		Hidden: []templates.Hidden{{Name: "version", Value: carry.Get("version")}, {Name: "key", Value: carry.Get("key")}}}
	if g.State == "queued" || g.State == "running" {
		props.Refresh = self + "?" + carry.Encode()
	}
	return render(c, http.StatusOK, templates.GeneratingPage(props))
}

func (s *Server) addGeneratedKey(c echo.Context) error {
	e, f, err := s.keysAction(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	added, err := s.deps.Clients.AddGeneratedKey(c.Request().Context(), principal(c), s.meta(c), e.Name, id, c.Param("job"),
		clients.KeyChange{Version: f.Version, Key: f.Key})
	if err != nil {
		return s.keysProblem(c, e, f, err, false)
	}
	if added.Private == nil {
		s.setFlash(c, "success", "The key "+added.KID+" is on the integration; the portal keeps its private key, encrypted.")
		return redirect(c, keysURL(e.Name, id))
	}
	pemBytes, err := added.Private.PKCS8PEM()
	if err != nil {
		return err
	}
	jwk, err := added.Private.PrivateJWK()
	if err != nil {
		return err
	}
	props := templates.HandoutProps{Layout: s.layout(c, "Private key", "Integrations"), Env: envHeading(e), Name: id, KID: added.KID,
		PEM: string(pemBytes), JWK: string(jwk), BackURL: keysURL(e.Name, id)}
	clear(pemBytes)
	clear(jwk)
	// render sets Cache-Control: no-store, so the key stays out of every cache.
	return render(c, http.StatusOK, templates.HandoutPage(props))
}

func (s *Server) uploadKey(c echo.Context) error {
	e, f, err := s.keysAction(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	kid, err := s.deps.Clients.UploadKey(c.Request().Context(), principal(c), s.meta(c), e.Name, id,
		clients.UploadRequest{Data: []byte(f.Upload), KID: f.UploadKID, Alg: f.UploadAlg, WithX5C: f.X5C},
		clients.KeyChange{Version: f.Version, Key: f.Key})
	if err != nil {
		return s.keysProblem(c, e, f, err, true)
	}
	s.setFlash(c, "success", "The key "+kid+" is on the integration.")
	return redirect(c, keysURL(e.Name, id))
}

func (s *Server) renewKey(c echo.Context) error {
	e, f, err := s.keysAction(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	err = s.deps.Clients.RenewKey(c.Request().Context(), principal(c), s.meta(c), e.Name, id, f.KID,
		clients.KeyChange{Version: f.Version, Key: f.Key})
	if err != nil {
		return s.keysProblem(c, e, f, err, false)
	}
	s.setFlash(c, "success", "The key "+f.KID+" is renewed: it now expires a year from today.")
	return redirect(c, keysURL(e.Name, id))
}

func (s *Server) deleteKeyProps(c echo.Context, e Env, id string, d clients.KeyDeletion, version, key string) templates.ConfirmProps {
	base := keysURL(e.Name, id)
	props := templates.ConfirmProps{Layout: s.layout(c, "Delete key", "Integrations"), Env: envHeading(e),
		Heading: "Delete the key " + d.KID, Text: "Systems that sign with this key get no more tokens once Digdir has removed it (within about two minutes).",
		Action: base + "/delete", Cancel: base, Submit: "Delete the key", Danger: true,
		Hidden: []templates.Hidden{{Name: "kid", Value: d.KID}, {Name: "version", Value: version}, {Name: "key", Value: key}}}
	switch {
	case d.Last:
		props.Warning = "This is the integration's last key: afterwards it cannot get tokens at all until a new key is added."
	case d.LastLiving:
		props.Warning = "Every other key of this integration is expired or expires within a week: make sure a working key remains."
	}
	if d.NeedsName {
		props.AskName = d.Name
	}
	return props
}

func (s *Server) confirmDeleteKey(c echo.Context) error {
	e, err := s.integrationEnv(c)
	if err != nil {
		return err
	}
	id, kid := c.Param("id"), field(c.QueryParams(), "kid", 512)
	ctx, p := c.Request().Context(), principal(c)
	d, err := s.deps.Clients.PlanKeyDeletion(ctx, p, e.Name, id, kid)
	if err != nil {
		return err
	}
	ks, err := s.deps.Clients.Keys(ctx, p, e.Name, id)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.ConfirmPage(s.deleteKeyProps(c, e, id, d, ks.Version, clients.NewKey())))
}

func (s *Server) deleteKey(c echo.Context) error {
	e, f, err := s.keysAction(c)
	if err != nil {
		return err
	}
	ctx, p, id := c.Request().Context(), principal(c), c.Param("id")
	err = s.deps.Clients.DeleteKey(ctx, p, s.meta(c), e.Name, id, f.KID, f.ConfirmName, clients.KeyChange{Version: f.Version, Key: f.Key})
	if pe, ok := problem.As(err); ok && pe.Fields["confirm_name"] != "" {
		d, derr := s.deps.Clients.PlanKeyDeletion(ctx, p, e.Name, id, f.KID)
		if derr != nil {
			return err
		}
		props := s.deleteKeyProps(c, e, id, d, f.Version, f.Key)
		props.Error, props.ConfirmName = pe.Message, templates.Field{Value: f.ConfirmName, Error: pe.Fields["confirm_name"]}
		return render(c, http.StatusUnprocessableEntity, templates.ConfirmPage(props))
	}
	if err != nil {
		return s.keysProblem(c, e, f, err, false)
	}
	s.setFlash(c, "success", "The key "+f.KID+" is deleted.")
	return redirect(c, keysURL(e.Name, id))
}
