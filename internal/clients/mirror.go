package clients

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"portal/internal/maskinporten"
	"portal/internal/store"
)

// FieldChange is one field that differs between two versions of a client.
type FieldChange struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// drift is what the mirror keeps about changes made outside the portal: the version the portal
// last knew (its base) and how the current one differs from it.
type drift struct {
	DetectedAt time.Time        `json:"detected_at"`
	Base       json.RawMessage  `json:"base"`
	BaseKeys   map[string]int64 `json:"base_keys"`
	Changes    []FieldChange    `json:"changes"`
}

// ignoredFields change on every write and are not drift.
var ignoredFields = map[string]bool{"last_updated": true}

// diffClients compares two client JSON documents and two key sets (kid -> exp) field by field.
func diffClients(before, after json.RawMessage, keysBefore, keysAfter map[string]int64) []FieldChange {
	var a, b map[string]json.RawMessage
	_ = json.Unmarshal(before, &a)
	_ = json.Unmarshal(after, &b)
	names := map[string]bool{}
	for k := range a {
		names[k] = true
	}
	for k := range b {
		names[k] = true
	}
	var out []FieldChange
	for _, k := range slices.Sorted(maps.Keys(names)) {
		if ignoredFields[k] {
			continue
		}
		x, y := canonicalJSON(a[k]), canonicalJSON(b[k])
		if x != y {
			out = append(out, FieldChange{Field: k, Before: x, After: y})
		}
	}
	if !maps.Equal(keysBefore, keysAfter) {
		out = append(out, FieldChange{Field: "keys", Before: describeKeys(keysBefore), After: describeKeys(keysAfter)})
	}
	return out
}

func canonicalJSON(r json.RawMessage) string {
	if len(r) == 0 {
		return ""
	}
	var v any
	if json.Unmarshal(r, &v) != nil {
		return string(r)
	}
	if l, ok := v.([]any); ok {
		// Scope and grant lists are sets: order is not a change.
		sort.Slice(l, func(i, j int) bool { return fmt.Sprint(l[i]) < fmt.Sprint(l[j]) })
		v = l
	}
	b, _ := json.Marshal(v)
	if s, ok := v.(string); ok {
		return s
	}
	return string(b)
}

func describeKeys(k map[string]int64) string {
	if len(k) == 0 {
		return "(none)"
	}
	var parts []string
	for _, kid := range slices.Sorted(maps.Keys(k)) {
		if k[kid] > 0 {
			parts = append(parts, fmt.Sprintf("%s (expires %s)", kid, time.Unix(k[kid], 0).UTC().Format("2006-01-02")))
		} else {
			parts = append(parts, kid)
		}
	}
	return fmt.Sprint(parts)
}

func keyMap(jwks string) map[string]int64 {
	var set maskinporten.JWKS
	_ = json.Unmarshal([]byte(jwks), &set)
	out := map[string]int64{}
	for _, k := range set.Keys {
		out[k.Kid] = k.Exp
	}
	return out
}

// mirrorRow builds the mirror row for an upstream client and key set, keeping what only the
// portal knows (team, creator, first sighting) from old when there is one.
func mirrorRow(env string, r *maskinporten.Registration, set *maskinporten.JWKS, old *store.Integration, now time.Time) store.Integration {
	raw := r.Raw
	if len(raw) == 0 {
		raw, _ = json.Marshal(r)
	}
	it := store.Integration{Env: env, ClientID: r.ClientID, Name: r.ClientName, Description: r.Description,
		Scopes: slices.Sorted(slices.Values(r.Scopes)), Active: r.Active, Raw: string(compact(raw)),
		FirstSeen: now, LastChange: r.LastUpdated.Time, SyncedAt: now}
	if it.LastChange.IsZero() {
		it.LastChange = now
	}
	if set == nil && old != nil {
		it.JWKS, it.KeyCount, it.NextKeyExpiry = old.JWKS, old.KeyCount, old.NextKeyExpiry
	} else {
		if set == nil {
			set = &maskinporten.JWKS{}
		}
		it.JWKS = jwksJSON(set)
		it.KeyCount = len(set.Keys)
		for _, k := range set.Keys {
			if e := k.Expires(); !e.IsZero() && (it.NextKeyExpiry.IsZero() || e.Before(it.NextKeyExpiry)) {
				it.NextKeyExpiry = e
			}
		}
	}
	if old != nil {
		it.TeamID, it.TeamName, it.CreatedBy, it.FirstSeen, it.Drift = old.TeamID, old.TeamName, old.CreatedBy, old.FirstSeen, old.Drift
	}
	return it
}

func jwksJSON(set *maskinporten.JWKS) string {
	keys := set.Keys
	if keys == nil {
		keys = []maskinporten.JWK{}
	}
	b, _ := json.Marshal(struct {
		Keys []maskinporten.JWK `json:"keys"`
	}{keys})
	return string(b)
}

func compact(b []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

// sameMirror reports whether writing next over old would change nothing that matters.
func sameMirror(old, next store.Integration) bool {
	return old.Raw == next.Raw && old.JWKS == next.JWKS && old.TeamID == next.TeamID && old.Drift == next.Drift &&
		old.Active == next.Active
}

// noteDrift compares the upstream version with what the mirror last knew and updates next's
// drift finding; it returns the changes found now (nil when none).
func noteDrift(old store.Integration, next *store.Integration, now time.Time) []FieldChange {
	var d drift
	if old.Drift != "" && json.Unmarshal([]byte(old.Drift), &d) == nil && len(d.Base) > 0 {
		// Already drifted: keep comparing against the version the portal knew.
	} else {
		d = drift{DetectedAt: now, Base: json.RawMessage(old.Raw), BaseKeys: keyMap(old.JWKS)}
	}
	changes := diffClients(d.Base, json.RawMessage(next.Raw), d.BaseKeys, keyMap(next.JWKS))
	if len(changes) == 0 {
		next.Drift = ""
		return nil
	}
	d.Changes = changes
	b, _ := json.Marshal(d)
	next.Drift = string(b)
	if old.Raw == next.Raw && old.JWKS == next.JWKS {
		return nil // nothing new since the last finding
	}
	return changes
}

// Drift reads an integration's drift finding; ok is false when there is none.
func parseDrift(s string) (d drift, ok bool) {
	if s == "" || json.Unmarshal([]byte(s), &d) != nil {
		return drift{}, false
	}
	return d, len(d.Changes) > 0
}
