// Package notify delivers the portal's messages to people: invitation and set-password links
// and key-expiry warnings, by email (SMTP) and/or as signed JSON to a webhook.
//
// Sending never blocks a request: messages go to a small queue that one worker drains; when the
// queue is full the message is dropped with a warning (the pages still show links to copy).
// Links carry one-time tokens, so they are never logged: log lines name the kind and recipients.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// TLS modes of the SMTP connection.
const (
	TLSNone     = "none"     // plain text (a local relay)
	TLSStartTLS = "starttls" // upgrade with STARTTLS, required
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
)

// SMTP configures email delivery. It is off while Host is empty.
type SMTP struct {
	Host     string
	Port     int
	Username string // optional: no authentication without one
	Password string
	From     string
	TLS      string // TLSNone, TLSStartTLS or TLSImplicit
}

// Webhook configures JSON delivery. It is off while URL is empty.
type Webhook struct {
	URL    string
	Secret []byte // HMAC-SHA256 key of the X-Portal-Signature header
}

// Config builds a Notifier.
type Config struct {
	SMTP       SMTP
	Webhook    Webhook
	Log        *slog.Logger
	QueueSize  int          // default 64
	HTTPClient *http.Client // default: a client with a 10 s timeout
	RetryWait  time.Duration
}

// Invitation is an invitation link for a person to join a team.
type Invitation struct {
	To      string
	Team    string
	Role    string
	Inviter string
	Link    string
	Expires time.Time
}

// PasswordLink is a set-password link for an account.
type PasswordLink struct {
	To   string
	Name string
	Link string
}

// KeyExpiry warns a team's owners that a key of one of their integrations expires soon.
type KeyExpiry struct {
	To          []string
	Env         string
	Integration string
	ClientID    string
	Kid         string
	Expires     time.Time
	DaysLeft    int
	Threshold   int // 30, 7 or 1: the warning this is
}

// PrivilegedScopes tells administrators that a client other than the portal's admin client
// holds privileged scopes (Digdir's self-service admin scopes and the like).
type PrivilegedScopes struct {
	To          []string
	Env         string
	Integration string
	ClientID    string
	Team        string // "" when unowned
	Scopes      []string
	Link        string // the integration's page
}

// message is one rendered notification, ready for every channel.
type message struct {
	kind    string // "invitation", "password_link", "key_expiry", "privileged_scopes"
	to      []string
	subject string
	text    string
	data    any // the webhook's "data"
}

// Notifier sends messages in the background. A nil *Notifier, or one without a channel, sends
// nothing; its methods may still be called.
type Notifier struct {
	log       *slog.Logger
	smtp      SMTP
	hook      Webhook
	client    *http.Client
	retryWait time.Duration
	queue     chan message

	closeOnce sync.Once
	done      chan struct{}
	// sendMail and postHook are the channels; tests may count calls through them.
	sendMail func(ctx context.Context, m message) error
}

// New builds a Notifier and starts its worker when a channel is configured; Close stops it.
func New(cfg Config) *Notifier {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 64
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.RetryWait == 0 {
		cfg.RetryWait = 2 * time.Second
	}
	n := &Notifier{log: cfg.Log, smtp: cfg.SMTP, hook: cfg.Webhook, client: cfg.HTTPClient, retryWait: cfg.RetryWait,
		queue: make(chan message, cfg.QueueSize), done: make(chan struct{})}
	n.sendMail = n.deliverMail
	if !n.Enabled() {
		close(n.done)
		return n
	}
	go n.run()
	return n
}

// Enabled reports whether any channel is configured.
func (n *Notifier) Enabled() bool { return n != nil && (n.smtp.Host != "" || n.hook.URL != "") }

// Channels names the configured channels, for the start-up log.
func (n *Notifier) Channels() []string {
	var out []string
	if n != nil && n.smtp.Host != "" {
		out = append(out, "smtp")
	}
	if n != nil && n.hook.URL != "" {
		out = append(out, "webhook")
	}
	return out
}

// Close stops taking messages and waits until the queued ones are sent or ctx ends.
func (n *Notifier) Close(ctx context.Context) error {
	if !n.Enabled() {
		return nil
	}
	n.closeOnce.Do(func() { close(n.queue) })
	select {
	case <-n.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("notify: %d message(s) not sent: %w", len(n.queue), ctx.Err())
	}
}

// Invitation queues an invitation link. It reports whether the message was queued.
func (n *Notifier) Invitation(inv Invitation) bool {
	return n.enqueue(renderInvitation(inv))
}

// PasswordLink queues a set-password link. It reports whether the message was queued.
func (n *Notifier) PasswordLink(pl PasswordLink) bool {
	return n.enqueue(renderPasswordLink(pl))
}

// KeyExpiry queues a key-expiry warning. It reports whether the message was queued.
func (n *Notifier) KeyExpiry(k KeyExpiry) bool {
	return n.enqueue(renderKeyExpiry(k))
}

// Privileged queues a privileged-scope finding for administrators. It reports whether the
// message was queued.
func (n *Notifier) Privileged(p PrivilegedScopes) bool {
	return n.enqueue(renderPrivileged(p))
}

func (n *Notifier) enqueue(m message) (queued bool) {
	if !n.Enabled() || len(m.to) == 0 {
		return false
	}
	defer func() {
		// A send after Close: the queue is closed, the message is dropped like on a full queue.
		if recover() != nil {
			n.log.Warn("notification dropped: the notifier is closed", "kind", m.kind, "to", m.to)
			queued = false
		}
	}()
	select {
	case n.queue <- m:
		return true
	default:
		n.log.Warn("notification dropped: the queue is full", "kind", m.kind, "to", m.to)
		return false
	}
}

func (n *Notifier) run() {
	defer close(n.done)
	for m := range n.queue {
		n.deliver(m)
	}
}

// deliver sends m on every channel; each has its own timeout so a slow one cannot stall the queue.
func (n *Notifier) deliver(m message) {
	if n.smtp.Host != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := n.sendMail(ctx, m)
		cancel()
		if err != nil {
			n.log.Error("notification not sent", "kind", m.kind, "to", m.to, "channel", "smtp", "err", err)
		} else {
			n.log.Info(sentLine(m.kind), "to", m.to, "channel", "smtp")
		}
	}
	if n.hook.URL != "" {
		err := n.postHook(m)
		if err != nil {
			n.log.Error("notification not sent", "kind", m.kind, "to", m.to, "channel", "webhook", "err", err)
		} else {
			n.log.Info(sentLine(m.kind), "to", m.to, "channel", "webhook")
		}
	}
}

func sentLine(kind string) string {
	switch kind {
	case "invitation":
		return "invitation sent"
	case "password_link":
		return "set-password link sent"
	}
	return "key expiry warning sent"
}

// errPermanent marks a failure a retry cannot fix (a 4xx answer).
var errPermanent = errors.New("not retried")
