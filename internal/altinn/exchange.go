package altinn

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Exchange trades a Maskinporten access token for an Altinn token. test
// adds ?test=true, which in tt02 turns Digdir's org claim into ttd. The
// answer is the bare JWT.
func (c *Client) Exchange(ctx context.Context, maskinportenToken string, test bool) (string, error) {
	if maskinportenToken == "" {
		return "", errors.New("altinn exchange: no token")
	}
	u := c.ExchangeURL()
	if test {
		u += "?test=true"
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// text/plain: with application/json ASP.NET may wrap the JWT in quotes.
	resp, err := c.get(ctx, outgoing{op: "exchange", url: u, token: maskinportenToken, accept: "text/plain"})
	if err != nil {
		return "", fmt.Errorf("altinn %w", err)
	}
	if resp.status != 200 {
		return "", ParseError("exchange", resp.status, resp.body)
	}
	tok := strings.Trim(strings.TrimSpace(string(resp.body)), `"`)
	if !looksLikeJWT(tok) {
		// Never echo the body: it may be a token in an unexpected wrapper.
		return "", fmt.Errorf("altinn exchange: answer (%d bytes, %s) is not a JWT", len(resp.body), resp.header.Get("Content-Type"))
	}
	return tok, nil
}

func looksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
