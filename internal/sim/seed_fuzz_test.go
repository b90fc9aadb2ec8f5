package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzSeedFile feeds arbitrary seed files to the reader and, for what it accepts, the key-set
// check that applying them runs: neither may panic, and a refusal names the file.
func FuzzSeedFile(f *testing.F) {
	f.Add(`{"envs":["tt02"],"orgs":[{"orgno":"313554430","code":"ttd","name":"Testdepartementet","service_owner":true}]}`)
	f.Add(`{"scopes":[{"name":"altinn:serviceowner/instances.read","owner_orgno":"991825827","accessible_for_all":false}],` +
		`"grants":[{"scope":"altinn:serviceowner/instances.read","consumer_orgno":"313554430","state":"APPROVED"}]}`)
	f.Add(`{"clients":[{"client_orgno":"313554430","client_name":"x","scopes":["a:b"],"keys":[{"kty":"RSA","kid":"k","n":"AQAB","e":"AQAB"}]}]}`)
	f.Add(`{"clients":[{"client_orgno":"313554430","client_name":"x","keys":[{"kty":"RSA","d":"x"},1,"s",null]}]}`)
	f.Add(`{"clients":[{"client_orgno":"313554430","client_name":"login","integration_type":"idporten"},` +
		`{"client_orgno":"313554430","client_name":"k","integration_type":"krr","keys":[{"kty":"RSA"}]},` +
		`{"client_orgno":"313554430","client_name":"z","integration_type":"saml"}]}`)
	f.Add(`{"apps":[{"org":"ttd","app":"a","instances":-1}],"delegations":[{"consumer_orgno":"1","supplier_orgno":"2"}]}`)
	f.Add(`{"envs":["prod","staging"],"unknown":true}`)
	f.Add(`[]`)
	f.Add(strings.Repeat(`{"envs":`, 200))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data string) {
		path := filepath.Join(dir, "seed.json")
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		sf, err := ReadSeedFile(path)
		if err != nil {
			if !strings.Contains(err.Error(), "seed file") {
				t.Fatalf("refusal does not name the seed file: %v", err)
			}
			return
		}
		for _, c := range sf.Clients {
			if len(c.Keys) > 0 {
				_, _ = checkKeySet(c.Keys, time.Unix(1_800_000_000, 0))
			}
		}
	})
}
