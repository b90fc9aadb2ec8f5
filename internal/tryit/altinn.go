package tryit

import "portal/internal/altinn"

// The Storage query and instance types the try page builds and shows, so the web layer needs
// no upstream adapter of its own.
type (
	InstanceQuery = altinn.InstanceQuery
	DateFilter    = altinn.DateFilter
	InstanceOwner = altinn.InstanceOwner
)

// ParseDateFilter reads a Storage date filter such as "gt:2026-01-01T00:00:00Z".
func ParseDateFilter(s string) (DateFilter, error) { return altinn.ParseDateFilter(s) }
