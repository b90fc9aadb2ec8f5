package maskinporten

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// realToken is the shape of a real TEST access token (signature invented).
var realToken = seg(`{"kid":"mp-key","alg":"RS256"}`) + "." +
	seg(`{"scope":"altinn:broker.read","iss":"https://test.maskinporten.no/","client_amr":"private_key_jwt","token_type":"Bearer","exp":1757498492,"iat":1757498372,"client_id":"826acbbc-ee17-4946-af92-cf4885ebe951","jti":"ii1YvnPPCUHYlZw9_hVwr1UhLVQUdiNV_QKNru4JJGk","consumer":{"authority":"iso6523-actorid-upis","ID":"0192:314240979"}}`) +
	"." + seg("sig")

func TestDecodeRealToken(t *testing.T) {
	for _, in := range []string{realToken, "  Bearer " + realToken + "\n", "bearer " + realToken} {
		d, err := Decode(in)
		if err != nil {
			t.Fatal(err)
		}
		if d.Alg() != "RS256" || d.Kid() != "mp-key" {
			t.Errorf("header %v", d.Header)
		}
		if org, ok := d.ConsumerOrg(); !ok || org != "314240979" {
			t.Errorf("consumer org = %q, %v", org, ok)
		}
		if life, _ := d.Lifetime(); life != 120*time.Second {
			t.Errorf("lifetime %v", life)
		}
		if got := d.Scopes(); len(got) != 1 || got[0] != "altinn:broker.read" {
			t.Errorf("scopes %v", got)
		}
		if exp, _ := d.ClaimTime("exp"); !exp.Equal(time.Unix(1757498492, 0)) {
			t.Errorf("exp %v", exp)
		}
	}
}

func TestDecodeAccessors(t *testing.T) {
	tests := []struct {
		name     string
		header   string
		claims   string
		aud      []string
		x5cOK    bool
		x5cThere bool
	}{
		{"aud string", `{"alg":"RS256","kid":"k"}`, `{"aud":"https://test.maskinporten.no/"}`, []string{"https://test.maskinporten.no/"}, false, false},
		{"aud array, x5c array", `{"alg":"RS256","x5c":["MIIB"]}`, `{"aud":["a","b"]}`, []string{"a", "b"}, true, true},
		{"x5c as string (MP-123)", `{"alg":"RS256","x5c":"MIIB"}`, `{}`, nil, false, true},
		{"x5c with a number", `{"alg":"RS256","x5c":[1]}`, `{"aud":5}`, nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decode(seg(tt.header) + "." + seg(tt.claims) + ".")
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Audience(); strings.Join(got, ",") != strings.Join(tt.aud, ",") {
				t.Errorf("aud %v, want %v", got, tt.aud)
			}
			_, there, ok := d.X5C()
			if there != tt.x5cThere || ok != tt.x5cOK {
				t.Errorf("x5c present=%v array=%v", there, ok)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	h, c := seg(`{"alg":"RS256"}`), seg(`{"iss":"x"}`)
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"bearer only", "Bearer "},
		{"one part", h},
		{"two parts", h + "." + c},
		{"four parts", h + "." + c + ".a.b"},
		{"JWE", "a.b.c.d.e"},
		{"header not base64", "!!!." + c + ".x"},
		{"header std alphabet", strings.ReplaceAll(seg(`{"a":"??>"}`), "_", "/") + "." + c + ".x"},
		{"header not JSON", seg("nope") + "." + c + ".x"},
		{"header array", seg(`[1]`) + "." + c + ".x"},
		{"header null", seg(`null`) + "." + c + ".x"},
		{"claims trailing data", h + "." + seg(`{"a":1} {"b":2}`) + ".x"},
		{"claims string", h + "." + seg(`"x"`) + ".x"},
		{"signature not base64", h + "." + c + ".***"},
		{"too long", h + "." + seg(`{"x":"`+strings.Repeat("a", MaxTokenBytes)+`"}`) + ".x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.in); !errors.Is(err, ErrMalformedJWT) {
				t.Fatalf("err = %v, want ErrMalformedJWT", err)
			}
		})
	}
}

func TestClaimTimeBounds(t *testing.T) {
	d, err := Decode(seg(`{}`) + "." + seg(`{"iat":1e300,"exp":-1e300,"nbf":"soon","x":1.5}`) + ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"iat", "exp", "nbf", "missing"} {
		if _, ok := d.ClaimTime(name); ok {
			t.Errorf("%s accepted", name)
		}
	}
	if got, ok := d.ClaimTime("x"); !ok || got.UnixMilli() != 1500 {
		t.Errorf("fractional time %v %v", got, ok)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(realToken)
	f.Add(seg(`{"alg":"RS256","x5c":["MIIB"]}`) + "." + seg(`{"aud":["a"],"consumer":{"authority":"iso6523-actorid-upis","ID":"0192:1"}}`) + ".")
	f.Add("Bearer a.b.c")
	f.Add("a.b.c.d.e")
	f.Add(seg(`{"iat":1e400}`) + "." + seg(`{"exp":-0}`) + ".==")
	f.Fuzz(func(t *testing.T, in string) {
		d, err := Decode(in)
		if err != nil {
			if !errors.Is(err, ErrMalformedJWT) {
				t.Fatalf("error not ErrMalformedJWT: %v", err)
			}
			return
		}
		// Accessors must not panic on whatever shapes got through.
		d.Alg()
		d.Kid()
		d.X5C()
		d.Audience()
		d.Resource()
		d.Scopes()
		d.ConsumerOrg()
		d.Lifetime()
		for _, n := range []string{"iat", "exp", "nbf"} {
			d.ClaimTime(n)
		}
	})
}
