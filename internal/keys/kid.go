package keys

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"
)

// MaxKIDLength bounds kids: Digdir states no limit, and kids travel in every
// grant header and in metric labels.
const MaxKIDLength = 64

// ValidKID reports whether kid is 1 to MaxKIDLength ASCII letters, digits,
// '.', '_' or '-', the characters Digdir allows.
func ValidKID(kid string) bool {
	if kid == "" || len(kid) > MaxKIDLength {
		return false
	}
	for i := 0; i < len(kid); i++ {
		if !kidByte(kid[i]) {
			return false
		}
	}
	return true
}

func kidByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

func invalidKID(kid string) error {
	return refuse(ErrInvalidKID, fmt.Sprintf(
		"the kid %q is not allowed: use 1 to %d letters a-z, digits, '.', '_' or '-'", clip(kid, MaxKIDLength+8), MaxKIDLength))
}

// CheckKID returns a refusal a person can act on when kid is not valid.
func CheckKID(kid string) error {
	if !ValidKID(kid) {
		return invalidKID(kid)
	}
	return nil
}

const (
	maxSlugLength = 32
	suffixLength  = 6
)

// SuggestKID proposes a kid from the integration's name and environment, the
// date and a random suffix, e.g. "skatt-innsyn-tt02-20250301-k3x9qa".
// Callers still check it is unused, since Digdir may require kids to be
// unique across all customers.
func SuggestKID(name, env string, now time.Time) string {
	parts := []string{}
	if s := truncateSlug(Slug(name), maxSlugLength); s != "" {
		parts = append(parts, s)
	}
	if s := truncateSlug(Slug(env), 8); s != "" {
		parts = append(parts, s)
	}
	parts = append(parts, now.UTC().Format("20060102"), randomSuffix())
	return strings.Join(parts, "-")
}

// randomSuffix is lower-case base32: about 30 bits, enough to make clashes
// between suggestions unlikely; uniqueness is still checked by the caller.
func randomSuffix() string {
	return strings.ToLower(rand.Text()[:suffixLength])
}

// transliterations covers Norwegian and common Latin letters; anything else
// outside ASCII becomes a separator.
var transliterations = map[rune]string{
	'æ': "ae", 'ø': "o", 'å': "a", 'ä': "a", 'ö': "o", 'ü': "u", 'ß': "ss",
	'é': "e", 'è': "e", 'ê': "e", 'ë': "e", 'á': "a", 'à': "a", 'â': "a",
	'í': "i", 'ì': "i", 'ï': "i", 'ó': "o", 'ò': "o", 'ô': "o", 'ú': "u",
	'ù': "u", 'û': "u", 'ñ': "n", 'ç': "c", 'š': "s", 'ž': "z", 'č': "c",
}

// Slug lowers s to ASCII letters and digits separated by single '-'.
func Slug(s string) string {
	var b strings.Builder
	sep := false
	for _, r := range strings.ToLower(s) {
		add := transliterations[r]
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			add = string(r)
		}
		if add == "" {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteString(add)
	}
	return b.String()
}

func truncateSlug(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.TrimRight(s[:n], "-")
}
