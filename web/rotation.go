package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/clients"
	"portal/internal/keys"
	"portal/internal/problem"
	"portal/templates"
)

func rotationURL(env, clientID string) string { return keysURL(env, clientID) + "/rotate" }

// switchInstructions tell the person, per custody of the new key, what switching means for
// their systems: a kept key never leaves the portal, so there is nothing to hand out.
var switchInstructions = map[string]string{
	clients.CustodyKept: "The portal keeps this key's private key and signs with it for you: there is no private key to hand out. " +
		"Systems that get their tokens through the portal need nothing new; a system that signs its own grants needs a key of its own.",
	clients.CustodyHandedOut: "Give every system that gets tokens for this integration the new private key you downloaded when the key was made, and these settings. " +
		"Grants must name the new kid; everything else stays as it was.",
	clients.CustodyUploaded: "Configure every system that gets tokens for this integration with the private key that matches the certificate or JWK you uploaded, and these settings. " +
		"Grants must name the new kid; everything else stays as it was.",
	"": "Configure every system that gets tokens for this integration with the new key's private key (it was added outside the portal), and these settings. " +
		"Grants must name the new kid; everything else stays as it was.",
}

// rotationForm is what the rotation's forms post: the key forms' fields plus the key to
// replace, the key chosen as the new one, and a signed grant (never a private key: the
// in-browser signer posts only the grant).
type rotationForm struct {
	keysForm
	OldKID string
	NewKID string
	Grant  string
}

func parseRotationForm(v url.Values) (rotationForm, error) {
	kf, err := parseKeysForm(v)
	if err != nil {
		return rotationForm{}, err
	}
	f := rotationForm{keysForm: kf, OldKID: field(v, "old_kid", 512), NewKID: field(v, "new_kid", 512),
		Grant: field(v, "grant", maxFieldBytes)}
	if f.Grant == "" {
		f.Grant = field(v, "grant_pasted", maxFieldBytes)
	}
	return f, nil
}

func (s *Server) rotationAction(c echo.Context) (Env, rotationForm, error) {
	e, err := s.integrationEnv(c)
	if err != nil {
		return e, rotationForm{}, err
	}
	f, err := decodeForm(c, parseRotationForm)
	return e, f, err
}

var rotationSteps = []struct{ name, title, state string }{
	{"start", "Choose the key to replace", ""},
	{"add", "Add the new key beside it", clients.RotationStarted},
	{"prove", "Prove the new key with a token request", clients.RotationAdded},
	{"switch", "Switch your systems to the new key", clients.RotationProved},
	{"retire", "Delete the old key", clients.RotationSwitched},
}

func stepsOf(r *clients.Rotation) []templates.RotationStep {
	state := ""
	if r != nil {
		state = r.State
	}
	current := 0
	for i, st := range rotationSteps {
		if st.state == state {
			current = i
		}
	}
	out := make([]templates.RotationStep, 0, len(rotationSteps))
	for i, st := range rotationSteps {
		step := templates.RotationStep{Name: st.name, Title: st.title, Status: "todo"}
		switch {
		case i < current:
			step.Status = "done"
		case i == current:
			step.Status = "current"
		}
		if r != nil {
			switch st.name {
			case "start":
				step.Detail = "replacing " + r.OldKID
			case "add":
				if r.NewKID != "" {
					step.Detail = r.NewKID
				}
			case "prove":
				if !r.ProvedAt.IsZero() {
					step.Detail = "proved " + showTime(r.ProvedAt)
				}
			case "switch":
				if !r.SwitchedAt.IsZero() {
					step.Detail = "confirmed " + showTime(r.SwitchedAt)
				}
			}
		}
		out = append(out, step)
	}
	return out
}

func prettyJSON(s string) string {
	var b bytes.Buffer
	if json.Indent(&b, []byte(s), "", "  ") != nil {
		return s
	}
	return b.String()
}

func proofProps(base string, r clients.Rotation) templates.ProofProps {
	p := templates.ProofProps{URL: base + "/proof", PageURL: base, State: r.Proof.State, KID: r.NewKID, Attempts: r.Proof.Attempts,
		Result: r.Proof.Result}
	if !r.Proof.LastAt.IsZero() {
		p.LastAt = r.Proof.LastAt.UTC().Format("15:04:05 UTC")
	}
	if !r.Proof.Until.IsZero() {
		p.Until = r.Proof.Until.UTC().Format("15:04:05 UTC")
	}
	return p
}

func (s *Server) rotationProps(c echo.Context, e Env, v clients.RotationView) templates.RotationProps {
	id := v.Keys.Summary.ClientID
	base := rotationURL(e.Name, id)
	// The key forms of the rotation are the keys page's own, with its choices and suggestions.
	kp := s.keysPageProps(c, e, v.Keys)
	layout := kp.Layout
	layout.Title = "Rotate a key of " + v.Keys.Summary.Name
	props := templates.RotationProps{Layout: layout, Env: envHeading(e), Name: v.Keys.Summary.Name, KeysURL: keysURL(e.Name, id),
		Stale: v.Keys.Stale, Action: base, Full: v.Full, Steps: stepsOf(v.Rotation), Hidden: kp.Hidden,
		KID: kp.KID, Bits: kp.Bits, Algs: kp.Algs, Custodies: kp.Custodies, UploadAlg: kp.UploadAlg}
	r := v.Rotation
	if r == nil {
		// Offer every key, the one asked for (from the keys page) or the soonest to expire first.
		want := field(c.QueryParams(), "old", 512)
		var soonest *clients.KeyView
		for i, k := range v.Keys.Keys {
			if k.KID == want {
				soonest = &v.Keys.Keys[i]
				break
			}
			if !k.Expires.IsZero() && (soonest == nil || soonest.Expires.IsZero() || k.Expires.Before(soonest.Expires)) {
				soonest = &v.Keys.Keys[i]
			}
		}
		for i, k := range v.Keys.Keys {
			exp := "never expires"
			if !k.Expires.IsZero() {
				exp = "expires " + k.Expires.UTC().Format(dateFormat)
			}
			label := k.KID + " (" + exp + ", private key " + custodyLabels[k.Custody] + ")"
			sel := soonest != nil && soonest.KID == k.KID || soonest == nil && i == 0
			props.OldChoices = append(props.OldChoices, templates.Option{Value: k.KID, Label: label, Selected: sel})
		}
		return props
	}
	props.State, props.OldKID, props.NewKID, props.OldGone = r.State, r.OldKID, r.NewKID, v.OldGone
	props.NewMissing = r.NewKID != "" && v.NewKey == nil
	for _, k := range v.Candidates {
		props.UseChoices = append(props.UseChoices, templates.Option{Value: k.KID, Label: k.KID + " (private key " + custodyLabels[k.Custody] + ")"})
	}
	switch r.State {
	case clients.RotationAdded:
		props.ProofBy, props.ProofProblem, props.Proof = v.ProofBy, v.ProofProblem, proofProps(base, *r)
		if v.Grant != nil {
			props.Signer = &templates.SignerProps{KID: r.NewKID, Header: v.Grant.Header, Claims: v.Grant.Claims,
				HeaderPretty: prettyJSON(v.Grant.Header), ClaimsPretty: prettyJSON(v.Grant.Claims), N: v.Grant.N, FormID: "grant-form"}
		}
	case clients.RotationProved:
		st := v.Settings
		custody := ""
		if v.NewKey != nil {
			custody = v.NewKey.Custody
		}
		props.SwitchHow = switchInstructions[custody]
		props.Settings = []templates.Setting{
			{ID: "setting-client-id", Label: "Client id (the grant's iss)", Value: st.ClientID},
			{ID: "setting-kid", Label: "kid (in the grant's header)", Value: st.KID},
			{ID: "setting-alg", Label: "Algorithm (alg in the grant's header)", Value: st.Alg},
			{ID: "setting-audience", Label: "Audience (the grant's aud: Maskinporten's issuer)", Value: st.Issuer},
			{ID: "setting-token-endpoint", Label: "Token endpoint", Value: st.TokenEndpoint},
			{ID: "setting-scopes", Label: "Scopes (the grant's scope)", Value: strings.Join(st.Scopes, " ")},
		}
	case clients.RotationSwitched:
		if v.NeedsName {
			props.AskName = v.Keys.Summary.Name
		}
	}
	return props
}

func (s *Server) showRotation(c echo.Context) error {
	e, err := s.integrationEnv(c)
	if err != nil {
		return err
	}
	v, err := s.deps.Clients.Rotation(c.Request().Context(), principal(c), e.Name, c.Param("id"))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, templates.RotationPage(s.rotationProps(c, e, v)))
}

// rotationProblem shows the rotation page again with the problem beside the form that caused
// it (or at the top when the page has moved on to another step), keeping what was typed: never
// a key upload refused as private, never a grant.
func (s *Server) rotationProblem(c echo.Context, e Env, f rotationForm, err error, where string) error {
	if !formProblem(err) && problem.KindOf(err) != problem.KindThrottled && problem.KindOf(err) != problem.KindNotFound {
		return err
	}
	v, verr := s.deps.Clients.Rotation(c.Request().Context(), principal(c), e.Name, c.Param("id"))
	if verr != nil {
		return err
	}
	props := s.rotationProps(c, e, v)
	msg := messageOf(err, statusOf(err))
	fields := map[string]string{}
	if pe, ok := problem.As(err); ok && pe.Fields != nil {
		fields = pe.Fields
	}
	shown := false
	adding := (props.State == clients.RotationStarted || props.NewMissing) && !props.Full
	switch {
	case where == "start" && props.State == "":
		props.Error, props.OldKIDError, shown = msg, fields["old_kid"], true
	case where == "generate" && adding:
		props.GenError, shown = msg, true
		props.KID = templates.Field{Value: f.KID, Error: fields["kid"]}
		props.Expires = templates.Field{Value: f.Expires, Error: fields["expires"]}
	case where == "upload" && adding:
		props.UploadError, shown = msg, true
		props.UploadKID = templates.Field{Value: f.UploadKID, Error: fields["kid"]}
		props.X5C = f.X5C
		props.UploadKey = templates.Field{Value: f.Upload, Error: fields["key"] + fields["x5c"]}
		if errors.Is(err, keys.ErrPrivateKey) {
			props.UploadKey.Value = "" // a private key is never sent back
		}
	case where == "use" && len(props.UseChoices) > 0:
		props.UseError, shown = msg, true
	case where == "grant" && props.Signer != nil:
		props.GrantError, shown = msg, true
	case where == "retire" && props.State == clients.RotationSwitched:
		props.Error, shown = msg, true
		props.ConfirmName = templates.Field{Value: f.ConfirmName, Error: fields["confirm_name"]}
	}
	if !shown {
		props.Error = msg
	}
	return render(c, statusOf(err), templates.RotationPage(props))
}

func (s *Server) startRotation(c echo.Context) error {
	e, f, err := s.rotationAction(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if _, err := s.deps.Clients.StartRotation(c.Request().Context(), principal(c), s.meta(c), e.Name, id, f.OldKID); err != nil {
		return s.rotationProblem(c, e, f, err, "start")
	}
	return redirect(c, rotationURL(e.Name, id))
}

func (s *Server) startRotationKeyGeneration(c echo.Context) error {
	e, f, err := s.rotationAction(c)
	if err != nil {
		return err
	}
	req := clients.NewKeyRequest{KID: f.KID, Bits: f.Bits, Alg: f.Alg, Custody: f.Custody}
	if f.Expires != "" {
		t, perr := time.Parse(dateFormat, f.Expires)
		if perr != nil {
			return s.rotationProblem(c, e, f, problem.Invalid("Some fields need attention.", map[string]string{"expires": "Give the date as YYYY-MM-DD."}), "generate")
		}
		req.Expires = t.Add(23*time.Hour + 59*time.Minute)
	}
	id := c.Param("id")
	job, err := s.deps.Clients.StartKeyGeneration(c.Request().Context(), principal(c), e.Name, id, req)
	if err != nil {
		return s.rotationProblem(c, e, f, err, "generate")
	}
	q := url.Values{"version": {f.Version}, "key": {f.Key}}
	return redirect(c, rotationURL(e.Name, id)+"/generated/"+url.PathEscape(job)+"?"+q.Encode())
}

func (s *Server) showRotationKeyGeneration(c echo.Context) error {
	return s.generationPage(c, rotationURL)
}

func (s *Server) addRotationKey(c echo.Context) error {
	e, f, err := s.rotationAction(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	added, err := s.deps.Clients.RotationGenerated(c.Request().Context(), principal(c), s.meta(c), e.Name, id, c.Param("job"),
		clients.KeyChange{Version: f.Version, Key: f.Key})
	if added.Private != nil {
		// The key is on the client: its private half is shown now or never, whatever else failed.
		if err != nil {
			s.log.Warn("generated key added but not recorded in the rotation", "request_id", requestID(c), "kid", added.KID, "err", err)
		}
		pemBytes, perr := added.Private.PKCS8PEM()
		if perr != nil {
			return perr
		}
		jwk, jerr := added.Private.PrivateJWK()
		if jerr != nil {
			return jerr
		}
		props := templates.HandoutProps{Layout: s.layout(c, "Private key", "Integrations"), Env: envHeading(e), Name: id, KID: added.KID,
			PEM: string(pemBytes), JWK: string(jwk), BackURL: rotationURL(e.Name, id)}
		clear(pemBytes)
		clear(jwk)
		return render(c, http.StatusOK, templates.HandoutPage(props))
	}
	if err != nil {
		return s.rotationProblem(c, e, f, err, "generate")
	}
	s.setFlash(c, "success", "The key "+added.KID+" is on the integration beside the old one; the portal keeps its private key, encrypted.")
	return redirect(c, rotationURL(e.Name, id))
}

func (s *Server) uploadRotationKey(c echo.Context) error {
	e, f, err := s.rotationAction(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	kid, err := s.deps.Clients.RotationUpload(c.Request().Context(), principal(c), s.meta(c), e.Name, id,
		clients.UploadRequest{Data: []byte(f.Upload), KID: f.UploadKID, Alg: f.UploadAlg, WithX5C: f.X5C},
		clients.KeyChange{Version: f.Version, Key: f.Key})
	if err != nil {
		return s.rotationProblem(c, e, f, err, "upload")
	}
	s.setFlash(c, "success", "The key "+kid+" is on the integration beside the old one.")
	return redirect(c, rotationURL(e.Name, id))
}

func (s *Server) useRotationKey(c echo.Context) error {
	e, f, err := s.rotationAction(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if err := s.deps.Clients.ChooseRotationKey(c.Request().Context(), principal(c), s.meta(c), e.Name, id, f.NewKID); err != nil {
		return s.rotationProblem(c, e, f, err, "use")
	}
	return redirect(c, rotationURL(e.Name, id))
}

// proveRotation proves the new key: with the signed grant the form carries (from the
// in-browser signer or pasted), or, without one, by the portal signing with its kept key in
// the background.
func (s *Server) proveRotation(c echo.Context) error {
	e, f, err := s.rotationAction(c)
	if err != nil {
		return err
	}
	ctx, p, id := c.Request().Context(), principal(c), c.Param("id")
	if f.Grant != "" {
		r, err := s.deps.Clients.SubmitRotationGrant(ctx, p, s.meta(c), e.Name, id, f.Grant)
		if err != nil {
			return s.rotationProblem(c, e, f, err, "grant")
		}
		s.setFlash(c, "success", "The key "+r.NewKID+" works: Maskinporten issued a token for your grant.")
		return redirect(c, rotationURL(e.Name, id))
	}
	if _, err := s.deps.Clients.ProveRotation(ctx, p, s.meta(c), e.Name, id); err != nil {
		return s.rotationProblem(c, e, f, err, "prove")
	}
	return redirect(c, rotationURL(e.Name, id))
}

// showProofStatus answers the page's polling while a proof runs; when it has ended, htmx is
// told to reload the page, which then shows the next step.
func (s *Server) showProofStatus(c echo.Context) error {
	e, err := s.integrationEnv(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	r, err := s.deps.Clients.RotationProof(c.Request().Context(), principal(c), e.Name, id)
	htmx := c.Request().Header.Get("HX-Request") == "true"
	if htmx && problem.KindOf(err) == problem.KindNotFound {
		// The rotation ended meanwhile (finished or cancelled elsewhere): stop polling.
		c.Response().Header().Set("HX-Refresh", "true")
		return c.NoContent(http.StatusNoContent)
	}
	if err != nil {
		return err
	}
	c.Response().Header().Add("Vary", "HX-Request")
	if r.Proof.State != clients.ProofRunning && htmx {
		c.Response().Header().Set("HX-Refresh", "true")
	}
	return render(c, http.StatusOK, templates.ProofStatus(proofProps(rotationURL(e.Name, id), r)))
}

func (s *Server) switchRotation(c echo.Context) error {
	e, f, err := s.rotationAction(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if err := s.deps.Clients.ConfirmRotationSwitch(c.Request().Context(), principal(c), s.meta(c), e.Name, id); err != nil {
		return s.rotationProblem(c, e, f, err, "switch")
	}
	return redirect(c, rotationURL(e.Name, id))
}

func (s *Server) retireRotation(c echo.Context) error {
	e, f, err := s.rotationAction(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	r, err := s.deps.Clients.RetireRotation(c.Request().Context(), principal(c), s.meta(c), e.Name, id, f.ConfirmName,
		clients.KeyChange{Version: f.Version, Key: f.Key})
	if err != nil {
		return s.rotationProblem(c, e, f, err, "retire")
	}
	s.setFlash(c, "success", "The rotation is done: "+r.NewKID+" replaced "+r.OldKID+", which is deleted.")
	return redirect(c, keysURL(e.Name, id))
}

func (s *Server) cancelRotation(c echo.Context) error {
	e, f, err := s.rotationAction(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if err := s.deps.Clients.CancelRotation(c.Request().Context(), principal(c), s.meta(c), e.Name, id); err != nil {
		return s.rotationProblem(c, e, f, err, "cancel")
	}
	s.setFlash(c, "info", "The rotation is cancelled. Nothing was removed: every key on the integration stays.")
	return redirect(c, keysURL(e.Name, id))
}
