package tryit_test

import (
	"net/http"
	"testing"

	"portal/internal/tryit"
)

// A refused platform GET is explained by its status, the API the path belongs to and what the
// Altinn token carries.
func TestExplainPlatform(t *testing.T) {
	t.Parallel()
	key := clientKey(t, 0)
	token := func(claims map[string]any) string {
		return signRaw(t, key, map[string]any{"alg": "RS256", "typ": "JWT"}, claims)
	}
	owner := token(map[string]any{"urn:altinn:org": "ttd", "scope": "altinn:serviceowner/instances.read"})
	ownerEvents := token(map[string]any{"urn:altinn:org": "ttd", "scope": "altinn:serviceowner/instances.read altinn:events.subscribe"})
	noOrg := token(map[string]any{"scope": "altinn:events.subscribe"})
	cases := []struct {
		name   string
		status int
		path   string
		body   string
		token  string
		want   string
	}{
		{"events without their scope", http.StatusForbidden, "/events/api/v1/app/ttd/a", "", owner, tryit.PlatformScopeMissing},
		{"storage without its scope", http.StatusForbidden, "/storage/api/v1/instances", "", noOrg, tryit.PlatformScopeMissing},
		{"forbidden with the scope", http.StatusForbidden, "/events/api/v1/app/ttd/a", "", ownerEvents, tryit.PlatformForbidden},
		{"an API the portal does not know", http.StatusForbidden, "/other/api", "", ownerEvents, tryit.PlatformForbidden},
		{"not a service owner", http.StatusUnauthorized, "/events/api/v1/app/ttd/a", `"Only orgs can call this api"`, noOrg, tryit.PlatformNoOrg},
		{"token not accepted", http.StatusUnauthorized, "/events/api/v1/app/ttd/a", "", ownerEvents, tryit.PlatformUnauthorized},
		{"bad request", http.StatusBadRequest, "/events/api/v1/app/ttd/a", `{"title":"Bad Request","status":400,"detail":"The 'From' or 'After' parameter must be defined."}`, ownerEvents, tryit.PlatformBadRequest},
		{"not found", http.StatusNotFound, "/nothing", "", ownerEvents, tryit.PlatformNotFound},
		{"server error", http.StatusBadGateway, "/events/api/v1/app/ttd/a", "", ownerEvents, tryit.UpstreamServerError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := tryit.ExplainPlatform(tc.status, tc.path, []byte(tc.body), tc.token)
			if len(fs) != 1 || fs[0].Code != tc.want || fs[0].Fix == "" || fs[0].Cause == "" {
				t.Fatalf("findings %s, want %s", describe(fs), tc.want)
			}
		})
	}
}
