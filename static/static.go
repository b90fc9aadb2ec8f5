// Package static embeds the portal's CSS, scripts and images. static/vendor is filled from npm
// by `make assets` (gitignored); a committed placeholder keeps a fresh clone building.
package static

import "embed"

// Files holds css/, js/, img/ and vendor/.
//
//go:embed css js img vendor
var Files embed.FS
