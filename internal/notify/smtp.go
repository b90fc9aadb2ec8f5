package notify

import (
	"context"
	"fmt"
	"time"

	"github.com/wneessen/go-mail"
)

// deliverMail sends m to each recipient in one SMTP session.
func (n *Notifier) deliverMail(ctx context.Context, m message) error {
	opts := []mail.Option{mail.WithTimeout(10 * time.Second)}
	switch n.smtp.TLS {
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	opts = append(opts, mail.WithPort(n.smtp.Port)) // last: WithSSL picks a port of its own
	if n.smtp.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(n.smtp.Username), mail.WithPassword(n.smtp.Password))
	}
	c, err := mail.NewClient(n.smtp.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	var msgs []*mail.Msg
	for _, to := range m.to {
		msg := mail.NewMsg()
		if err := msg.From(n.smtp.From); err != nil {
			return fmt.Errorf("from address: %w", err)
		}
		if err := msg.To(to); err != nil {
			return fmt.Errorf("recipient %s: %w", to, err)
		}
		msg.Subject(m.subject)
		msg.SetDate()
		msg.SetMessageID()
		msg.SetBodyString(mail.TypeTextPlain, m.text)
		msgs = append(msgs, msg)
	}
	if err := c.DialAndSendWithContext(ctx, msgs...); err != nil {
		return fmt.Errorf("smtp %s:%d: %w", n.smtp.Host, n.smtp.Port, err)
	}
	return nil
}
