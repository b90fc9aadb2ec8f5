package notify

import (
	"fmt"
	"strings"
	"time"
)

func renderInvitation(inv Invitation) message {
	inviter := inv.Inviter
	if inviter == "" {
		inviter = "An administrator"
	}
	text := fmt.Sprintf("%s invites you to the team %s in the integration portal, as %s.\n\n"+
		"Open this link to join, creating your account or signing in to the one you have:\n\n%s\n\n"+
		"The link works once, until %s. If you did not expect this, ignore this message.\n",
		inviter, inv.Team, inv.Role, inv.Link, inv.Expires.UTC().Format("2 January 2006 15:04 MST"))
	return message{kind: "invitation", to: []string{inv.To}, subject: "You are invited to the team " + inv.Team, text: text,
		data: map[string]any{"email": inv.To, "team": inv.Team, "role": inv.Role, "inviter": inv.Inviter, "link": inv.Link,
			"expires_at": inv.Expires.UTC().Format(time.RFC3339)}}
}

func renderPasswordLink(pl PasswordLink) message {
	greeting := "Hello"
	if pl.Name != "" {
		greeting = "Hello " + pl.Name
	}
	text := fmt.Sprintf("%s,\n\nOpen this link to choose a password for the integration portal:\n\n%s\n\n"+
		"The link works once, for 72 hours. If you did not expect this, tell your administrator.\n", greeting, pl.Link)
	return message{kind: "password_link", to: []string{pl.To}, subject: "Choose your password for the integration portal", text: text,
		data: map[string]any{"email": pl.To, "name": pl.Name, "link": pl.Link}}
}

func renderKeyExpiry(k KeyExpiry) message {
	when := "expires in " + plural(k.DaysLeft, "day")
	if k.DaysLeft <= 0 {
		when = "expires within a day"
	}
	text := fmt.Sprintf("The key %s of the integration %s (client %s) in %s %s, at %s.\n\n"+
		"Add a new key and move the integration's clients to it before then; Maskinporten refuses tokens signed with an expired key.\n",
		k.Kid, k.Integration, k.ClientID, k.Env, when, k.Expires.UTC().Format(time.RFC3339))
	return message{kind: "key_expiry", to: k.To,
		subject: fmt.Sprintf("[%s] A key of %s %s", k.Env, k.Integration, when), text: text,
		data: map[string]any{"env": k.Env, "integration": k.Integration, "client_id": k.ClientID, "kid": k.Kid,
			"expires_at": k.Expires.UTC().Format(time.RFC3339), "days_left": k.DaysLeft, "threshold": k.Threshold, "owners": k.To}}
}

func renderPrivileged(p PrivilegedScopes) message {
	team := p.Team
	if team == "" {
		team = "no team (unowned)"
	}
	text := fmt.Sprintf("The integration %s (client %s, team %s) in %s holds privileged scopes: %s.\n\n"+
		"Whoever holds one of its keys can change every integration of the organisation, the portal's own admin client included, "+
		"straight through Digdir's API. Remove these scopes unless the integration really needs them:\n\n%s\n",
		p.Integration, p.ClientID, team, p.Env, strings.Join(p.Scopes, ", "), p.Link)
	return message{kind: "privileged_scopes", to: p.To,
		subject: fmt.Sprintf("[%s] %s holds privileged scopes", p.Env, p.Integration), text: text,
		data: map[string]any{"env": p.Env, "integration": p.Integration, "client_id": p.ClientID, "team": p.Team,
			"scopes": p.Scopes, "link": p.Link, "administrators": p.To}}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
