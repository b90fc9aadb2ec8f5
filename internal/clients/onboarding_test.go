package clients_test

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/clients"
	"portal/internal/problem"
	"portal/internal/store"
)

func TestOnboardingChecklistFollowsRealState(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	ctx := t.Context()
	state := func() (map[string]bool, string) {
		t.Helper()
		cl, err := w.svc.Onboarding(ctx, w.memberA, w.teamA, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := map[string]bool{}
		for _, it := range cl.Items {
			done[it.Key] = it.Done
			// Each undone step links to where it is done, or says who may do it.
			if !it.Done && it.URL == "" && it.WhoCan == "" && it.Key != "production" {
				t.Errorf("%s is not done and links nowhere", it.Key)
			}
			if it.Key == "members" && !it.Done && (it.URL != "" || !strings.Contains(it.WhoCan, "owner")) {
				t.Errorf("a member is offered invitations, or not told who invites: %q %q", it.URL, it.WhoCan)
			}
		}
		return done, cl.Next
	}
	if done, next := state(); next != "members" || done["integration"] {
		t.Fatalf("a new team: next %q, done %v", next, done)
	}

	err := w.db.Tx(ctx, func(tx *sql.Tx) error {
		id, err := store.InsertUser(ctx, tx, store.User{Email: "new@example.no", Name: "New", Role: "member", PasswordHash: "x"}, time.Now())
		if err != nil {
			return err
		}
		return store.PutMember(ctx, tx, w.teamA, id, "member", time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	if done, next := state(); !done["members"] || next != "integration" {
		t.Fatalf("with a member: next %q", next)
	}

	// An integration without both service-owner scopes does not count.
	w.create(t, w.ownerA, "tt02", draft("Broker only", w.teamA, brokerRead))
	if _, next := state(); next != "integration" {
		t.Fatalf("an integration without the scopes counted: next %q", next)
	}
	id := w.create(t, w.ownerA, "tt02", draft("Reader", w.teamA, preset...))
	if done, next := state(); !done["integration"] || next != "key" {
		t.Fatalf("with the integration: next %q", next)
	}
	if _, err := w.svc.UploadKey(ctx, w.memberA, meta(w.memberA), "tt02", id, clients.UploadRequest{Data: clientJWK(t, 0, "first")}, w.change(t, "tt02", id)); err != nil {
		t.Fatal(err)
	}
	if done, next := state(); !done["key"] || next != "token" {
		t.Fatalf("with a key: next %q", next)
	}

	// A try whose token and exchange worked but whose Storage read failed (the step list is
	// the shape internal/tryit records).
	ev := audit.New(meta(w.memberA), "integration.try", audit.Failure, map[string]any{"steps": []map[string]any{
		{"step": "grant", "ok": true}, {"step": "token", "ok": true}, {"step": "exchange", "ok": true}, {"step": "instances", "ok": false}}})
	ev.Env, ev.TeamID, ev.TargetType, ev.Target = "tt02", w.teamA, "integration", id
	if err := audit.NewLog(w.db, nil).Append(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if done, next := state(); !done["token"] || !done["exchange"] || done["instances"] || next != "instances" {
		t.Fatalf("after a partial try: next %q, done %v", next, done)
	}

	// Production: copied, then still without a key.
	if _, err := w.svc.Copy(ctx, w.ownerA, meta(w.ownerA), "tt02", id, clients.NewKey()); err != nil {
		t.Fatal(err)
	}
	cl, err := w.svc.Onboarding(ctx, w.memberA, w.teamA, nil)
	if err != nil {
		t.Fatal(err)
	}
	last := cl.Items[len(cl.Items)-1]
	if last.Key != "production" || last.Done || last.Action != "Add a key" {
		t.Fatalf("production item %+v", last)
	}

	// Someone outside the team learns nothing.
	_, err = w.svc.Onboarding(ctx, w.memberB, w.teamA, nil)
	wantKind(t, err, problem.KindNotFound)
}
