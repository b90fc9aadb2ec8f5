package clients_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"portal/internal/clients"
	"portal/internal/maskinporten"
)

// TestAdminTokenRefusalsSayWhatToFix: when Maskinporten refuses the portal's own admin token
// for good (an unknown admin client, a token endpoint that is not one), the message says what is
// wrong and does not send the person to try again.
func TestAdminTokenRefusalsSayWhatToFix(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	a, err := w.sim.AdminCredentials("tt02")
	if err != nil {
		t.Fatal(err)
	}
	unknownClient := adminCredentials(t, a)
	unknownClient.ClientID = "5b4a1f0e-0000-4000-8000-000000000000"
	tests := []struct {
		name   string
		issuer string
		creds  *maskinporten.Credentials
		want   []string
	}{
		{"unknown admin client", a.Issuer, unknownClient, []string{"refused the portal's admin client (400 invalid_grant, MP-100", "will not pass by itself"}},
		{"issuer with a wrong path", a.Issuer + "oauth/", adminCredentials(t, a),
			[]string{"answered 404 without an OAuth error at " + a.Issuer + "oauth/token", "token endpoint URL is probably wrong", "maskinporten_issuer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp, err := maskinporten.New(maskinporten.Config{Issuer: tt.issuer, SelfServiceURL: a.SelfServiceURL,
				HTTPClient: &http.Client{Transport: w.sent}, Timeout: 5 * time.Second, Backoff: 10 * time.Millisecond, Admin: tt.creds})
			if err != nil {
				t.Fatal(err)
			}
			svc, err := clients.New(w.db, []clients.Env{{Name: "tt02", Label: "TT02", Issuer: tt.issuer, Upstream: mp}}, clients.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			_, err = svc.Create(t.Context(), w.ownerA, meta(w.ownerA), "tt02", draft("refused", w.teamA, "altinn:serviceowner/instances.read"))
			if err == nil {
				t.Fatal("created with a refused admin token")
			}
			msg := err.Error()
			for _, s := range tt.want {
				if !strings.Contains(msg, s) {
					t.Errorf("message lacks %q:\n%s", s, msg)
				}
			}
			if strings.Contains(strings.ToLower(msg), "try again") {
				t.Errorf("a refusal that will not pass sends the person to try again:\n%s", msg)
			}
		})
	}
}
