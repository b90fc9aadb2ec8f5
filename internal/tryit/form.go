package tryit

import (
	"slices"
	"time"

	"portal/internal/clients"
	"portal/internal/maskinporten"
)

// Form is what the try page shows before the first step.
type Form struct {
	Env          string
	Label        string
	ClientID     string
	Name         string
	Scopes       []string // the client's; a grant asks for a subset
	Preselected  []string // Altinn service-owner scopes the client has
	Keys         []FormKey
	MaxLifetime  time.Duration
	TestToggle   bool
	Issuer       string // the aud of every grant
	TokenURL     string
	ExchangeURL  string // "" without an Altinn platform
	InstancesURL string
	PlatformURL  string // the host a platform GET goes to; "" without an Altinn platform
	Stale        string // why the client's details may be out of date
}

// FormKey is one of the client's keys as the grant step offers it.
type FormKey struct {
	Kid     string
	Expires time.Time
	Expired bool
	Kept    bool // the portal can sign with it; otherwise sign in the browser or paste
}

// Form describes the integration for the try page.
func (t *Try) Form() Form {
	mp := t.env.Maskinporten
	f := Form{Env: t.env.Name, Label: t.env.label(), ClientID: t.target.ClientID, Name: t.target.Name,
		Scopes: slices.Clone(t.target.Scopes), MaxLifetime: maskinporten.MaxGrantLifetime, TestToggle: t.env.TestToggle,
		Issuer: mp.Issuer(), TokenURL: mp.TokenEndpoint(), Stale: t.target.Stale}
	for _, s := range clients.AltinnServiceOwnerScopes {
		if slices.Contains(f.Scopes, s) {
			f.Preselected = append(f.Preselected, s)
		}
	}
	if al := t.env.Altinn; al != nil {
		f.ExchangeURL, f.InstancesURL, f.PlatformURL = al.ExchangeURL(), al.InstancesURL(), al.PlatformURL()
	}
	now := t.svc.now()
	for _, k := range t.target.Keys {
		exp := k.Expires()
		f.Keys = append(f.Keys, FormKey{Kid: k.Kid, Expires: exp, Expired: !exp.IsZero() && !exp.After(now),
			Kept: slices.Contains(t.target.Kept, k.Kid)})
	}
	return f
}
