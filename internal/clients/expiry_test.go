package clients_test

import (
	"database/sql"
	"slices"
	"strconv"
	"testing"
	"time"

	"portal/internal/auth"
	"portal/internal/clients"
	"portal/internal/maskinporten"
	"portal/internal/problem"
	"portal/internal/store"
)

func TestKeyExpiries(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	now := time.Now().Truncate(time.Second)
	days := func(n int) time.Time { return now.Add(time.Duration(n) * 24 * time.Hour) }

	alpha := w.create(t, w.ownerA, "tt02", draft("Alpha", w.teamA, readScope))
	beta := w.create(t, w.memberB, "tt02", draft("Beta", w.teamB, readScope))
	gamma := w.create(t, w.ownerA, "tt02", draft("Gamma", w.teamA, readScope))
	delta := w.create(t, w.ownerA, "prod", draft("Delta", w.teamA, readScope))
	for _, set := range []struct {
		env, id string
		keys    []maskinporten.JWK
	}{
		{"tt02", alpha, []maskinporten.JWK{rsaJWK(t, "a-later", days(20)), rsaJWK(t, "a-soon", days(3))}},
		{"tt02", beta, []maskinporten.JWK{rsaJWK(t, "b-far", days(200))}},
		{"tt02", gamma, []maskinporten.JWK{rsaJWK(t, "g-soon", days(5))}},
		{"prod", delta, []maskinporten.JWK{rsaJWK(t, "d-expired", days(-2))}},
	} {
		if _, err := w.mp[set.env].ReplaceJWKS(ctx, set.id, set.keys); err != nil {
			t.Fatalf("keys of %s: %v", set.id, err)
		}
	}
	// An inactive integration's keys are no one's concern.
	if err := w.svc.Deactivate(ctx, w.ownerA, meta(w.ownerA), "tt02", gamma, "Gamma", clients.NewKey()); err != nil {
		t.Fatal(err)
	}
	w.syncOK(t, "tt02")
	w.syncOK(t, "prod")
	// The portal keeps a-soon's private half; the other keys were posted outside it. An unowned
	// integration (only admins see it) has a key too.
	err := w.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := store.PutKeyRecord(ctx, tx, store.KeyRecord{Env: "tt02", ClientID: alpha, KID: "a-soon",
			Custody: store.CustodyKept, Sealed: []byte("sealed"), KEKID: "kek-1", CreatedAt: now}); err != nil {
			return err
		}
		return store.PutIntegration(ctx, tx, store.Integration{Env: "tt02", ClientID: "unowned-1", Name: "Nobody's",
			Active: true, Raw: "{}", KeyCount: 1, NextKeyExpiry: days(10),
			JWKS:      `{"keys":[{"kty":"RSA","kid":"u-1","alg":"RS256","use":"sig","n":"AQAB","e":"AQAB","exp":` + strconv.FormatInt(days(10).Unix(), 10) + `}]}`,
			FirstSeen: now, LastChange: now, SyncedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		p    *auth.Principal
		f    clients.ExpiryFilter
		want []string // kids, in order
	}{
		{"admin: everything, soonest first", w.admin, clients.ExpiryFilter{}, []string{"d-expired", "a-soon", "u-1", "a-later", "b-far"}},
		{"environment tt02", w.admin, clients.ExpiryFilter{Env: "tt02"}, []string{"a-soon", "u-1", "a-later", "b-far"}},
		{"environment prod", w.admin, clients.ExpiryFilter{Env: "prod"}, []string{"d-expired"}},
		{"team", w.admin, clients.ExpiryFilter{TeamID: w.teamB}, []string{"b-far"}},
		{"within 30 days includes expired keys", w.admin, clients.ExpiryFilter{Within: 30}, []string{"d-expired", "a-soon", "u-1", "a-later"}},
		{"within 4 days", w.admin, clients.ExpiryFilter{Within: 4}, []string{"d-expired", "a-soon"}},
		{"within 1 day in tt02", w.admin, clients.ExpiryFilter{Env: "tt02", Within: 1}, nil},
		{"all filters", w.admin, clients.ExpiryFilter{Env: "tt02", TeamID: w.teamA, Within: 30}, []string{"a-soon", "a-later"}},
		{"owner sees own team in both environments", w.ownerA, clients.ExpiryFilter{}, []string{"d-expired", "a-soon", "a-later"}},
		{"member", w.memberA, clients.ExpiryFilter{Within: 30}, []string{"d-expired", "a-soon", "a-later"}},
		{"viewer sees own team too", w.viewerA, clients.ExpiryFilter{}, []string{"d-expired", "a-soon", "a-later"}},
		{"other team", w.memberB, clients.ExpiryFilter{}, []string{"b-far"}},
		{"other team, nothing soon", w.memberB, clients.ExpiryFilter{Within: 30}, nil},
		{"cannot filter to a team one is not on", w.memberB, clients.ExpiryFilter{TeamID: w.teamA}, nil},
		{"no teams, nothing", &auth.Principal{UserID: 9, Email: "lonely@example.no", Role: auth.RoleMember}, clients.ExpiryFilter{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := w.svc.KeyExpiries(ctx, tt.p, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var kids []string
			for _, k := range got {
				kids = append(kids, k.Kid)
			}
			if !slices.Equal(kids, tt.want) {
				t.Errorf("got %v, want %v", kids, tt.want)
			}
		})
	}

	t.Run("rows", func(t *testing.T) {
		got, err := w.svc.KeyExpiries(ctx, w.ownerA, clients.ExpiryFilter{Env: "tt02"})
		if err != nil || len(got) != 2 {
			t.Fatalf("%v %+v", err, got)
		}
		want := clients.KeyExpiry{Env: "tt02", ClientID: alpha, Name: "Alpha", TeamID: w.teamA, Team: "Team A", Kid: "a-soon",
			Alg: "RS256", Expires: days(3).UTC(), Custody: clients.CustodyKept}
		if got[0] != want {
			t.Errorf("first row\n got %+v\nwant %+v", got[0], want)
		}
		if got[1].Kid != "a-later" || got[1].Custody != "" || !got[1].Expires.Equal(days(20)) {
			t.Errorf("second row %+v", got[1])
		}
	})

	t.Run("monitoring sees every active integration", func(t *testing.T) {
		got, err := w.svc.AllKeyExpiries(ctx, clients.ExpiryFilter{Within: 30})
		if err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range got {
			kids = append(kids, k.Kid)
		}
		if want := []string{"d-expired", "a-soon", "u-1", "a-later"}; !slices.Equal(kids, want) {
			t.Errorf("got %v, want %v", kids, want)
		}
	})

	t.Run("refused filters", func(t *testing.T) {
		_, err := w.svc.KeyExpiries(ctx, w.admin, clients.ExpiryFilter{Env: "nowhere"})
		wantKind(t, err, problem.KindNotFound)
		_, err = w.svc.KeyExpiries(ctx, w.admin, clients.ExpiryFilter{Within: -1})
		wantField(t, err, "within")
	})
}
