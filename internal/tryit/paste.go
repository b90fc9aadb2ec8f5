package tryit

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"portal/internal/altinn"
	"portal/internal/maskinporten"
)

// MaxExplainInput bounds what Explain reads.
const MaxExplainInput = 128 << 10

// Errors of Explain. Their messages are fixed and never quote the input.
var (
	ErrPrivateKey   = errors.New(privateKeyMessage)
	ErrUnrecognised = errors.New("this is neither an error answer from Maskinporten or Altinn nor a grant or token: " +
		"paste the whole JSON body of the error, or the grant (three base64url parts joined by dots)")
	ErrTooLarge = fmt.Errorf("the text is longer than %d KiB: paste only the error body or the grant", MaxExplainInput>>10)
)

// privateKeyMessage is fixed: it must never carry anything from the input.
const privateKeyMessage = "This looks like a private key, so the portal did not read it and kept nothing of it. " +
	"A private key must never be pasted anywhere: if it left the machine it belongs on, treat it as exposed, " +
	"add a new key to the integration and delete this one. Paste the grant (the signed JWT) or the error body instead."

// What Explain recognised.
const (
	ExplainedMaskinportenError = "maskinporten_error"
	ExplainedAltinnError       = "altinn_error"
	ExplainedGrant             = "grant"
	ExplainedMaskinportenToken = "maskinporten_token"
	ExplainedAltinnToken       = "altinn_token"
)

// Explanation is what Explain found in pasted text.
type Explanation struct {
	Kind     string
	Summary  string
	Status   int // the HTTP status, when the text said it
	Findings []Finding
	Token    *TokenView // the grant or token, decoded (masked)
	// ClientID is the client the grant or token names, for a caller that can look it up.
	ClientID string
}

// Explain analyses text a person pasted: an error body from Maskinporten's token endpoint,
// Altinn's exchange or Storage (JSON, optionally after its HTTP status line), or a grant or
// token (compact JWS), and returns the same findings a live try would. It refuses anything
// that looks like a private key with ErrPrivateKey, without reading further.
func Explain(text string, c Context) (Explanation, error) {
	if len(text) > MaxExplainInput {
		return Explanation{}, ErrTooLarge
	}
	if LooksPrivate(text) {
		return Explanation{}, ErrPrivateKey
	}
	status, body := splitHTTP(strings.TrimSpace(strings.TrimPrefix(text, "\ufeff")))
	if body == "" {
		return explainStatus(status, c)
	}
	if body[0] == '{' {
		return explainJSON(status, []byte(body), c)
	}
	if d, err := maskinporten.Decode(body); err == nil {
		return explainJWS(body, d, c), nil
	}
	// Storage and the exchange answer some refusals in plain text.
	for _, known := range []string{"Org or AppId must be defined", "AppId must be defined", "Invalid date expression",
		"The A3 reference", "InstanceOwnerIdentifier", "Person number", "Organization number", "Invalid token provider"} {
		if strings.Contains(body, known) {
			if status == 0 {
				status = http.StatusBadRequest
			}
			e := altinn.ParseError("request", status, []byte(body))
			if strings.Contains(body, "token provider") {
				return Explanation{Kind: ExplainedAltinnError, Status: status, Summary: "A refusal from Altinn's token exchange.",
					Findings: ExplainExchange(e, "", c)}, nil
			}
			return Explanation{Kind: ExplainedAltinnError, Status: status, Summary: "A refusal from Altinn Storage.",
				Findings: ExplainStorage(e, "", nil)}, nil
		}
	}
	return Explanation{}, ErrUnrecognised
}

// explainStatus explains an answer with no body, as Storage gives with 401 and 403.
func explainStatus(status int, c Context) (Explanation, error) {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return explainJSON(status, []byte(`{"status":`+strconv.Itoa(status)+`}`), c)
	}
	return Explanation{}, ErrUnrecognised
}

// splitHTTP takes "HTTP/1.1 400 Bad Request\r\nheaders...\r\n\r\nbody" apart; text without a
// status line is all body.
func splitHTTP(text string) (int, string) {
	if !strings.HasPrefix(text, "HTTP/") {
		return 0, text
	}
	line, rest, _ := strings.Cut(text, "\n")
	status := 0
	if f := strings.Fields(line); len(f) >= 2 {
		if n, err := strconv.Atoi(f[1]); err == nil && n >= 100 && n < 600 {
			status = n
		}
	}
	rest = strings.ReplaceAll(rest, "\r\n", "\n")
	if _, body, ok := strings.Cut(rest, "\n\n"); ok {
		return status, strings.TrimSpace(body)
	}
	// No blank line (trimmed away): header lines, then perhaps a body.
	lines := strings.Split(rest, "\n")
	for i, l := range lines {
		name, _, ok := strings.Cut(l, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t{\"") {
			return status, strings.TrimSpace(strings.Join(lines[i:], "\n"))
		}
	}
	return status, ""
}

func explainJSON(status int, body []byte, c Context) (Explanation, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return Explanation{}, ErrUnrecognised
	}
	if _, ok := m["error"].(string); ok {
		e := maskinporten.ParseError(status, body)
		return Explanation{Kind: ExplainedMaskinportenError, Status: status,
			Summary:  "A refusal from Maskinporten's token endpoint.",
			Findings: ExplainMaskinporten(e, "", c)}, nil
	}
	if tok, ok := m["access_token"].(string); ok {
		if d, err := maskinporten.Decode(tok); err == nil {
			return explainJWS(tok, d, c), nil
		}
		return Explanation{}, ErrUnrecognised
	}
	_, hasTitle := m["title"]
	_, hasStatus := m["status"]
	_, hasType := m["type"]
	if !hasTitle && !hasStatus && !hasType {
		return Explanation{}, ErrUnrecognised
	}
	if s, ok := m["status"].(float64); ok && s >= 100 && s < 600 && status == 0 {
		status = int(s)
	}
	if status == 0 {
		return Explanation{}, ErrUnrecognised
	}
	e := altinn.ParseError("request", status, body)
	x := Explanation{Kind: ExplainedAltinnError, Status: status}
	switch status {
	case http.StatusUnauthorized:
		x.Summary = "A 401 from Altinn: from the exchange, the Maskinporten token was not accepted; from Storage, the Altinn token was not."
		x.Findings = append(ExplainExchange(e, "", c), ExplainStorage(e, "", nil)...)
	case http.StatusGone:
		x.Summary = "A refusal from Altinn's token exchange."
		x.Findings = ExplainExchange(e, "", c)
	default:
		x.Summary = "A refusal from Altinn Storage."
		x.Findings = ExplainStorage(e, "", nil)
		if status == http.StatusForbidden {
			x.Findings = []Finding{{Code: StorageForbidden, Severity: SeverityError, Title: "Storage did not permit the read",
				Cause: "Storage answers 403 when the Altinn token lacks altinn:serviceowner/instances.read, or when the app is another organisation's and its policy does not let you read it.",
				Fix:   "Check the token's scope (paste the Altinn token here to see it) and that the app is your organisation's."}}
		}
	}
	return x, nil
}

func explainJWS(tok string, d *maskinporten.Decoded, c Context) Explanation {
	iss, _ := d.ClaimString("iss")
	_, altinnOrgNo := d.Claims["urn:altinn:orgNumber"]
	_, clientID := d.Claims["client_id"]
	_, consumer := d.Claims["consumer"]
	switch {
	case altinnOrgNo || strings.Contains(iss, "/authentication/api/v1/openid"):
		x := Explanation{Kind: ExplainedAltinnToken, Summary: "An Altinn token, from the exchange.", Token: viewToken(KindAltinn, tok)}
		x.ClientID, _ = d.ClaimString("client_id")
		x.Findings = append(x.Findings, CheckAltinnToken(tok)...)
		x.Findings = append(x.Findings, expiryFinding(d, c, "Altinn token")...)
		return x
	case clientID || consumer:
		x := Explanation{Kind: ExplainedMaskinportenToken, Summary: "A Maskinporten access token.", Token: viewToken(KindMaskinporten, tok)}
		x.ClientID, _ = d.ClaimString("client_id")
		x.Findings = append(x.Findings, explainMPToken(tok, c)...)
		if scope, _ := d.ClaimString("scope"); !strings.Contains(scope, "altinn:serviceowner") {
			x.Findings = append(x.Findings, Finding{Code: TokenNoServiceOwn, Severity: SeverityInfo, Title: "The token has no altinn:serviceowner scope",
				Cause: "Altinn will exchange it, but without urn:altinn:org: Storage will not see a service owner.",
				Fix:   "To read instances as a service owner, ask for altinn:serviceowner/instances.read."})
		}
		return x
	}
	x := Explanation{Kind: ExplainedGrant, Summary: "A JWT grant for Maskinporten's token endpoint.", Token: viewToken(KindGrant, tok), ClientID: iss}
	c.Sent = false
	x.Findings = CheckGrant(tok, c)
	return x
}

func expiryFinding(d *maskinporten.Decoded, c Context, what string) []Finding {
	exp, ok := d.ClaimTime("exp")
	if !ok || c.Now.IsZero() || exp.After(c.Now) {
		return nil
	}
	return []Finding{{Code: StorageUnauthorized, Severity: SeverityInfo, Title: "This " + what + " has expired",
		Cause: "It expired " + exp.Format("2006-01-02 15:04:05 MST") + "; Altinn refuses it from then on.",
		Fix:   "Exchange a new Maskinporten token."}}
}

// LooksPrivate reports whether text holds private key material in a form people paste: a PEM
// private key block (any kind), a PuTTY key, a JWK with private members, a credentials JSON
// with a private key, or base64 DER of a PKCS#8, PKCS#1 or PKCS#12 key.
func LooksPrivate(text string) bool {
	if strings.Contains(text, "PRIVATE KEY") || strings.Contains(text, "PuTTY-User-Key-File") {
		return true
	}
	t := strings.TrimSpace(text)
	if t == "" {
		return false
	}
	if t[0] == '{' || t[0] == '[' {
		var v any
		dec := json.NewDecoder(strings.NewReader(t))
		if dec.Decode(&v) == nil && hasPrivateJSON(v, 0) {
			return true
		}
	}
	if der, ok := base64DER(t); ok {
		if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
			return true
		}
		if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
			return true
		}
		if _, err := x509.ParseECPrivateKey(der); err == nil {
			return true
		}
		if looksPFX(der) {
			return true
		}
	}
	// A JWS whose parts decode to a private JWK (someone signed or wrapped a key).
	if strings.Count(t, ".") == 2 {
		for _, part := range strings.Split(t, ".")[:2] {
			if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(part, "=")); err == nil && len(b) > 0 && b[0] == '{' {
				var v any
				if json.Unmarshal(b, &v) == nil && hasPrivateJSON(v, 0) {
					return true
				}
			}
		}
	}
	return false
}

var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

func hasPrivateJSON(v any, depth int) bool {
	if depth > 16 {
		return false
	}
	switch v := v.(type) {
	case map[string]any:
		if _, isJWK := v["kty"]; isJWK {
			for _, m := range privateJWKMembers {
				if _, ok := v[m]; ok {
					return true
				}
			}
		}
		for k, e := range v {
			lk := strings.ToLower(k)
			if s, ok := e.(string); ok && s != "" && (strings.Contains(lk, "private_key") || strings.Contains(lk, "privatekey")) {
				return true
			}
			if hasPrivateJSON(e, depth+1) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasPrivateJSON(e, depth+1) {
				return true
			}
		}
	}
	return false
}

// base64DER decodes text that is only standard base64 (line breaks allowed) and starts like
// DER.
func base64DER(t string) ([]byte, bool) {
	if len(t) < 64 || strings.ContainsAny(t, ".{}\"") {
		return nil, false
	}
	clean := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, t)
	der, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		if der, err = base64.RawStdEncoding.DecodeString(clean); err != nil {
			return nil, false
		}
	}
	return der, len(der) > 2 && der[0] == 0x30
}

// looksPFX recognises the start of a PKCS#12 file: SEQUENCE { INTEGER 3, SEQUENCE ... }.
func looksPFX(der []byte) bool {
	if len(der) < 8 || der[0] != 0x30 {
		return false
	}
	i := 1
	switch l := der[i]; {
	case l < 0x80, l == 0x80:
		i++
	case l <= 0x84:
		i += 1 + int(l&0x7f)
	default:
		return false
	}
	return len(der) >= i+3 && bytes.Equal(der[i:i+3], []byte{0x02, 0x01, 0x03})
}
