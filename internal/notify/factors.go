package notify

import "fmt"

// FactorReset tells a person that an administrator reset their second factor.
type FactorReset struct {
	To      string
	Name    string
	SignIn  string // the sign-in page's address
	ResetBy string // the administrator's email
}

// FactorReset queues the message. It reports whether it was queued.
func (n *Notifier) FactorReset(fr FactorReset) bool {
	return n.enqueue(renderFactorReset(fr))
}

func renderFactorReset(fr FactorReset) message {
	greeting := "Hello"
	if fr.Name != "" {
		greeting = "Hello " + fr.Name
	}
	text := fmt.Sprintf("%s,\n\nAn administrator (%s) reset the second factor of your account in the integration portal: "+
		"your authenticator app, passkeys and recovery codes no longer work there, and your sessions were ended.\n\n"+
		"At your next sign-in (%s) you set up a new second factor.\n\n"+
		"If you did not ask for this, tell your administrator at once.\n", greeting, fr.ResetBy, fr.SignIn)
	return message{kind: "factor_reset", to: []string{fr.To}, subject: "Your second factor for the integration portal was reset", text: text,
		data: map[string]any{"email": fr.To, "name": fr.Name, "reset_by": fr.ResetBy}}
}
