package sim

import (
	"net/url"
	"strings"
)

// parseBoolParam reads an optional boolean query parameter ("true"/"false", any case).
func parseBoolParam(q url.Values, name string) (bool, []fieldError) {
	vs, ok := q[name]
	if !ok || len(vs) == 0 {
		return false, nil
	}
	if len(vs) > 1 {
		return false, []fieldError{fieldErr("Query", name, name+" is given more than once")}
	}
	switch strings.ToLower(strings.TrimSpace(vs[0])) {
	case "true":
		return true, nil
	case "false", "":
		return false, nil
	}
	return false, []fieldError{fieldErr("Query", name, name+" must be true or false")}
}

// scopeFilter holds the filters of /scopes/all and /scopes/access/all (§2.3).
type scopeFilter struct {
	accessibleForAll *bool
	integrationType  string // lower case; "" means any
	inactive         bool   // include inactive scopes
	delegated        bool   // only scopes with a delegation source
}

var integrationTypes = map[string]bool{
	"maskinporten": true, "idporten": true, "api_klient": true, "ansattporten": true, "krr": true, "eformidling": true,
}

func parseScopeFilter(q url.Values) (scopeFilter, []fieldError) {
	var f scopeFilter
	var errs []fieldError
	if _, ok := q["accessible_for_all"]; ok {
		v, fes := parseBoolParam(q, "accessible_for_all")
		errs = append(errs, fes...)
		f.accessibleForAll = &v
	}
	var fes []fieldError
	f.inactive, fes = parseBoolParam(q, "inactive")
	errs = append(errs, fes...)
	f.delegated, fes = parseBoolParam(q, "delegated_sources")
	errs = append(errs, fes...)
	if vs := q["integration_type"]; len(vs) > 0 {
		// The new frontend sends upper case (MASKINPORTEN).
		t := strings.ToLower(strings.TrimSpace(vs[0]))
		if len(vs) > 1 || !integrationTypes[t] {
			errs = append(errs, fieldErr("Query", "integration_type", "integration_type must be one of maskinporten, idporten, api_klient, ansattporten, krr, eformidling"))
		}
		f.integrationType = t
	}
	return f, errs
}

func (f scopeFilter) match(sc *Scope) bool {
	if !sc.Active && !f.inactive {
		return false
	}
	if f.accessibleForAll != nil && sc.AccessibleForAll != *f.accessibleForAll {
		return false
	}
	if f.delegated && sc.DelegationSource == "" {
		return false
	}
	if f.integrationType != "" && len(sc.AllowedIntegrationTypes) > 0 {
		for _, t := range sc.AllowedIntegrationTypes {
			if t == f.integrationType {
				return true
			}
		}
		return false
	}
	return true
}
