package keys

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidKID(t *testing.T) {
	tests := []struct {
		kid  string
		want bool
	}{
		{"acme_altinn_2025_Q3", true},
		{"kid-1970-01-01-01-00-00", true},
		{"a", true},
		{"A.b_c-9", true},
		{strings.Repeat("k", MaxKIDLength), true},
		{"", false},
		{strings.Repeat("k", MaxKIDLength+1), false},
		{"with space", false},
		{"slash/", false},
		{"colon:", false},
		{"plus+", false},
		{"æøå", false},
		{"tab\t", false},
		{"nul\x00", false},
		{"emoji🙂", false},
	}
	for _, tt := range tests {
		if got := ValidKID(tt.kid); got != tt.want {
			t.Errorf("ValidKID(%q) = %v, want %v", tt.kid, got, tt.want)
		}
		if err := CheckKID(tt.kid); (err == nil) != tt.want || err != nil && !errors.Is(err, ErrInvalidKID) {
			t.Errorf("CheckKID(%q) = %v", tt.kid, err)
		}
	}
}

func TestSlug(t *testing.T) {
	tests := map[string]string{
		"Skatteetaten innsyn":         "skatteetaten-innsyn",
		"Bærum kommune – Økonomi/Lån": "baerum-kommune-okonomi-lan",
		"  --Hello__World!!  ":        "hello-world",
		"ÆØÅ æøå":                     "aeoa-aeoa",
		"Grüße, Crème":                "grusse-creme",
		"版本 2":                        "2",
		"🙂":                           "",
		"":                            "",
		"already-a-slug-123":          "already-a-slug-123",
		"invalid\xffutf8":             "invalid-utf8",
	}
	for in, want := range tests {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSuggestKID(t *testing.T) {
	day := time.Date(2025, 3, 1, 23, 30, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name, env, prefix string
	}{
		{"Skatteetaten Innsyn", "tt02", "skatteetaten-innsyn-tt02-20250301-"},
		{"", "prod", "prod-20250301-"},
		{"🙂🙂", "tt02", "tt02-20250301-"},
		{strings.Repeat("Langt navn ", 20), "tt02", "langt-navn-langt-navn-langt-navn-tt02-20250301-"},
		{"a", "Weird Env With Spaces", "a-weird-en-20250301-"},
	}
	for _, tt := range tests {
		got := SuggestKID(tt.name, tt.env, day)
		if !ValidKID(got) {
			t.Errorf("SuggestKID(%q) = %q is not a valid kid", tt.name, got)
		}
		if !strings.HasPrefix(got, tt.prefix) || len(got) != len(tt.prefix)+suffixLength {
			t.Errorf("SuggestKID(%q, %q) = %q, want %q + %d characters", tt.name, tt.env, got, tt.prefix, suffixLength)
		}
	}
	// The longest possible suggestion still fits.
	long := SuggestKID(strings.Repeat("x", 500), strings.Repeat("y", 500), day)
	if len(long) > MaxKIDLength || !ValidKID(long) {
		t.Errorf("long suggestion %q (%d)", long, len(long))
	}
	// The random suffix makes suggestions differ.
	seen := map[string]bool{}
	for range 50 {
		seen[SuggestKID("same", "tt02", day)] = true
	}
	if len(seen) < 49 {
		t.Errorf("only %d distinct suggestions of 50", len(seen))
	}
}
