package web

import "strconv"

// countOf writes a count with its noun in the singular or the plural: "1 integration",
// "2 integrations". English only for now; translations will replace it.
func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
