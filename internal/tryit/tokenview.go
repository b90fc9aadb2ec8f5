package tryit

import (
	"bytes"
	"encoding/json"

	"portal/internal/maskinporten"
)

// Token kinds.
const (
	KindGrant        = "grant"
	KindMaskinporten = "maskinporten"
	KindAltinn       = "altinn"
)

// claimMeanings says what each claim means, per kind of token.
var claimMeanings = map[string]map[string]string{
	KindGrant: {
		"aud":          "Who the grant is for: the Maskinporten issuer of this environment, exactly.",
		"iss":          "The client (integration) asking, by its client id.",
		"scope":        "The scopes asked for, separated by spaces; each must be registered on the client.",
		"iat":          "When the grant was signed; must be within 10 seconds of Maskinporten's clock.",
		"exp":          "When the grant expires; at most 120 seconds after iat.",
		"jti":          "A unique id for this grant, so it cannot be used twice.",
		"resource":     "Optional audience restriction: the API the token is for; becomes aud in the token.",
		"consumer_org": "Optional: the organisation a supplier acts for through Altinn delegation.",
		"pid":          "Optional: the person an end-user-restricted token is for.",
	},
	KindMaskinporten: {
		"iss":               "Who issued the token: this environment's Maskinporten.",
		"client_id":         "The client the token was issued to.",
		"client_amr":        "How the client authenticated: private_key_jwt (a registered key) or virksomhetssertifikat (a business certificate).",
		"consumer":          "The legal consumer: the organisation the token acts for (ISO 6523, 0192:<orgno>).",
		"supplier":          "With delegation: the organisation acting for the consumer.",
		"scope":             "The scopes issued; may be fewer than asked for.",
		"token_type":        "Always Bearer.",
		"iat":               "When the token was issued.",
		"exp":               "When the token expires; the lowest at_max_age of its scopes and the client's lifetime decide.",
		"jti":               "The token's unique id.",
		"aud":               "Present only when the grant asked for a resource: the API the token is restricted to.",
		"delegation_source": "With delegation: who recorded it (Altinn).",
	},
	KindAltinn: {
		"iss":                           "Altinn's authentication service in this environment.",
		"urn:altinn:org":                "The service-owner code (e.g. ttd); present only with an altinn:serviceowner scope and a registered service owner. Storage needs it.",
		"urn:altinn:orgNumber":          "The consumer's organisation number, from the Maskinporten token.",
		"urn:altinn:authenticatemethod": "How the caller authenticated: maskinporten.",
		"urn:altinn:authlevel":          "Authentication level: 3 for Maskinporten.",
		"scope":                         "The scopes, copied from the Maskinporten token.",
		"client_id":                     "The Maskinporten client, copied.",
		"consumer":                      "The legal consumer, copied.",
		"iat":                           "When the token was issued.",
		"nbf":                           "Not valid before.",
		"exp":                           "When the token expires: 30 minutes after issue.",
		"jti":                           "The token's unique id.",
		"sid":                           "A session id.",
		"token_type":                    "Always Bearer.",
	},
}

// viewToken decodes a grant or token for display; nil when it is not a JWS.
func viewToken(kind, tok string) *TokenView {
	d, err := maskinporten.Decode(tok)
	if err != nil {
		return nil
	}
	v := &TokenView{Kind: kind, Masked: mask(tok)}
	var pretty bytes.Buffer
	if json.Indent(&pretty, d.RawHeader, "", "  ") == nil {
		v.Header = pretty.Bytes()
	}
	meanings := claimMeanings[kind]
	for _, kv := range orderedMembers(d.RawClaims) {
		v.Claims = append(v.Claims, Claim{Name: kv.name, Value: kv.value, Meaning: meanings[kv.name]})
	}
	v.Issued, _ = d.ClaimTime("iat")
	v.Expires, _ = d.ClaimTime("exp")
	return v
}

type member struct {
	name  string
	value json.RawMessage
}

// orderedMembers lists a JSON object's members in the order they were written.
func orderedMembers(obj []byte) []member {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var out []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return out
		}
		name, ok := t.(string)
		if !ok {
			return out
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out
		}
		out = append(out, member{name: name, value: v})
	}
	return out
}

// jsonString reads a JSON string value.
func jsonString(raw json.RawMessage, out *string) bool {
	return json.Unmarshal(raw, out) == nil
}
