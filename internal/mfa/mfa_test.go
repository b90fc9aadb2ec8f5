package mfa

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"portal/internal/auth"
	"portal/internal/keys"
	"portal/internal/store"
)

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Policy{"": PolicyAdmins, "admins": PolicyAdmins, " Everyone ": PolicyEveryone, "none": PolicyNone, "all": ""} {
		got, err := ParsePolicy(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("ParsePolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestMatchStep: a code is accepted for the step before, the current one and the one after,
// never further off, and the step it matched is returned (for the replay check).
func TestMatchStep(t *testing.T) {
	t.Parallel()
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	now := time.Unix(1_800_000_015, 0)
	step := now.Unix() / totpPeriod
	for _, tc := range []struct {
		offset time.Duration
		ok     bool
	}{{-60 * time.Second, false}, {-30 * time.Second, true}, {0, true}, {30 * time.Second, true}, {60 * time.Second, false}} {
		code, err := totp.GenerateCode(secret, now.Add(tc.offset))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := matchStep(secret, code, now)
		if ok != tc.ok || ok && got != step+int64(tc.offset/(30*time.Second)) {
			t.Errorf("code of %v: step %d ok %v, want ok %v", tc.offset, got, ok, tc.ok)
		}
	}
	if _, ok := matchStep(secret, "", now); ok {
		t.Error("an empty code matched")
	}
}

func TestRecoveryCodes(t *testing.T) {
	t.Parallel()
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, c := range codes {
		if len(c) != 11 || c[5] != '-' || seen[c] {
			t.Errorf("code %q", c)
		}
		seen[c] = true
		if hashRecovery(c) != hashes[i] || hashRecovery(" "+c[:5]+c[6:]+" ") != hashes[i] {
			t.Errorf("code %q does not hash the same typed another way", c)
		}
	}
}

// TestIPAddressPublicURL: WebAuthn has no relying party for an IP address, so the portal
// still starts (TOTP works) and passkeys say why they are off.
func TestIPAddressPublicURL(t *testing.T) {
	t.Parallel()
	kek, err := keys.NewKEK([]byte("0123456789abcdef0123456789ABCDEF"))
	if err != nil {
		t.Fatal(err)
	}
	for url, want := range map[string]bool{"http://127.0.0.1:8080": false, "http://[::1]:8080": false, "http://localhost:8080": true, "https://portal.example.no": true} {
		s, err := New(nil, Options{KEK: kek, PublicURL: url})
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if s.PasskeysAvailable() != want {
			t.Errorf("%s: passkeys available %v, want %v", url, !want, want)
		}
		if !want {
			if _, _, err := s.BeginPasskeySignIn(t.Context()); err == nil || !strings.Contains(err.Error(), "IP address") {
				t.Errorf("%s: passkey sign-in: %v", url, err)
			}
		}
	}
}

// TestPolicyCoversLocalAccounts: an administrator with a password and no factor must enrol;
// one who signs in only through an OpenID Provider (no password) is left to the provider's own
// multi-factor sign-in, and is not sent to enrolment on every page.
func TestPolicyCoversLocalAccounts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "portal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kek, err := keys.NewKEK([]byte("0123456789abcdef0123456789ABCDEF"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(db, Options{Policy: PolicyAdmins, KEK: kek, PublicURL: "https://portal.example.no"})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for email, hash := range map[string]string{"local@example.no": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", "idp@example.no": ""} {
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			id, err := store.InsertUser(ctx, tx, store.User{Email: email, Name: email, Role: auth.RoleAdmin, PasswordHash: hash}, time.Now())
			ids[email] = id
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for email, want := range map[string]bool{"local@example.no": true, "idp@example.no": false} {
		got, err := s.MustEnrol(ctx, &auth.Principal{UserID: ids[email], Email: email, Role: auth.RoleAdmin})
		if err != nil || got != want {
			t.Errorf("%s: must enrol %v (%v), want %v", email, got, err, want)
		}
	}
}
