package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"portal/internal/auth"
	"portal/internal/clients"
	"portal/internal/notify"
	"portal/internal/store"
	"portal/web"
)

// notifyConfig is the notification part of Config (embedded, so its keys sit at the top level of
// the config file). Without smtp_host and webhook_url nothing is sent: links are shown to copy
// and expiry warnings appear on the dashboard only.
type notifyConfig struct {
	SMTPHost      string `json:"smtp_host"`
	SMTPPort      int    `json:"smtp_port"` // default 587 (starttls), 465 (tls), 25 (none)
	SMTPUsername  string `json:"smtp_username"`
	SMTPPassword  string `json:"smtp_password"` // or PORTAL_SMTP_PASSWORD(_FILE); never printed
	SMTPFrom      string `json:"smtp_from"`
	SMTPTLS       string `json:"smtp_tls"` // none, starttls (default) or tls
	WebhookURL    string `json:"webhook_url"`
	WebhookSecret string `json:"webhook_secret"` // or PORTAL_WEBHOOK_SECRET(_FILE); never printed
}

// loadNotifyEnv reads the PORTAL_SMTP_* and PORTAL_WEBHOOK_* variables over the file's values.
func (c *Config) loadNotifyEnv(getenv func(string) string) []string {
	var p []string
	for name, dst := range map[string]*string{"PORTAL_SMTP_HOST": &c.SMTPHost, "PORTAL_SMTP_USERNAME": &c.SMTPUsername,
		"PORTAL_SMTP_FROM": &c.SMTPFrom, "PORTAL_SMTP_TLS": &c.SMTPTLS, "PORTAL_WEBHOOK_URL": &c.WebhookURL} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if v := getenv("PORTAL_SMTP_PORT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			p = append(p, fmt.Sprintf("PORTAL_SMTP_PORT %q must be a port number", v))
		}
		c.SMTPPort = n
	}
	for name, dst := range map[string]*string{"PORTAL_SMTP_PASSWORD": &c.SMTPPassword, "PORTAL_WEBHOOK_SECRET": &c.WebhookSecret} {
		v, err := secretValue(getenv, name, "")
		if err != nil {
			p = append(p, err.Error())
		}
		if v != nil {
			*dst = string(v)
		}
	}
	return p
}

// validateNotify fills the defaults of a configured channel and lists what is wrong. It never
// repeats a secret, nor the webhook URL (many services put a token in it).
func (c *Config) validateNotify() []string {
	var p []string
	if c.SMTPHost == "" {
		for key, set := range map[string]bool{"smtp_port": c.SMTPPort != 0, "smtp_username": c.SMTPUsername != "",
			"smtp_password": c.SMTPPassword != "", "smtp_from": c.SMTPFrom != "", "smtp_tls": c.SMTPTLS != ""} {
			if set {
				p = append(p, key+" is set but smtp_host is not: set smtp_host to send email")
			}
		}
	} else {
		if c.SMTPTLS == "" {
			c.SMTPTLS = notify.TLSStartTLS
		}
		defaultPort := map[string]int{notify.TLSStartTLS: 587, notify.TLSImplicit: 465, notify.TLSNone: 25}
		port, known := defaultPort[c.SMTPTLS]
		if !known {
			p = append(p, fmt.Sprintf("smtp_tls %q: use none, starttls or tls", c.SMTPTLS))
		}
		if c.SMTPPort == 0 {
			c.SMTPPort = port
		}
		if c.SMTPPort < 1 || c.SMTPPort > 65535 {
			p = append(p, fmt.Sprintf("smtp_port %d must be between 1 and 65535", c.SMTPPort))
		}
		if strings.ContainsAny(c.SMTPHost, ":/ ") {
			p = append(p, fmt.Sprintf("smtp_host %q must be a host name or address alone (the port goes in smtp_port)", c.SMTPHost))
		}
		if c.SMTPFrom == "" {
			p = append(p, "smtp_from must name the sender address when smtp_host is set")
		} else if _, err := mail.ParseAddress(c.SMTPFrom); err != nil {
			p = append(p, fmt.Sprintf("smtp_from %q is not an email address (for example Portal <portal@example.no>)", c.SMTPFrom))
		}
		if (c.SMTPUsername == "") != (c.SMTPPassword == "") {
			p = append(p, "smtp_username and smtp_password (or PORTAL_SMTP_PASSWORD) go together: set both or neither")
		}
	}
	if c.WebhookURL == "" {
		if c.WebhookSecret != "" {
			p = append(p, "webhook_secret is set but webhook_url is not")
		}
		return p
	}
	u, err := url.Parse(c.WebhookURL)
	switch {
	case err != nil || u.Host == "":
		p = append(p, "webhook_url must be an absolute https URL")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLocalHost(u.Hostname()):
	default:
		p = append(p, "webhook_url must use https (plain http only to localhost)")
	}
	if len(c.WebhookSecret) < 32 {
		p = append(p, "webhook_secret (or PORTAL_WEBHOOK_SECRET) must be at least 32 characters when webhook_url is set (try: openssl rand -hex 32)")
	}
	return p
}

func isLocalHost(h string) bool {
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// newNotifier builds the notifier the configuration asks for; it sends nothing without a channel.
func newNotifier(cfg Config, log *slog.Logger) *notify.Notifier {
	n := notify.New(notify.Config{Log: log.With("component", "notify"),
		SMTP: notify.SMTP{Host: cfg.SMTPHost, Port: cfg.SMTPPort, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword,
			From: cfg.SMTPFrom, TLS: cfg.SMTPTLS},
		Webhook: notify.Webhook{URL: cfg.WebhookURL, Secret: []byte(cfg.WebhookSecret)}})
	if n.Enabled() {
		log.Info("notifications on", "channels", n.Channels())
		if cfg.PublicURL == "" {
			log.Warn("notifications carry links built from the listen address: set public_url to the address people use")
		}
	}
	return n
}

// webNotifier adapts n to what the web handlers call; nil when n sends nothing, so the pages
// behave exactly as without notifications.
func webNotifier(n *notify.Notifier) web.Notifier {
	if !n.Enabled() {
		return nil
	}
	return linkNotifier{n}
}

type linkNotifier struct{ n *notify.Notifier }

// SendFactorReset tells a person an administrator reset their second factor.
func (l linkNotifier) SendFactorReset(to, name, resetBy, signIn string) bool {
	return l.n.FactorReset(notify.FactorReset{To: to, Name: name, ResetBy: resetBy, SignIn: signIn})
}

func (l linkNotifier) SendInvitation(to, team, role, inviter, link string, expires time.Time) bool {
	return l.n.Invitation(notify.Invitation{To: to, Team: team, Role: role, Inviter: inviter, Link: link, Expires: expires})
}

func (l linkNotifier) SendPasswordLink(to, name, link string) bool {
	return l.n.PasswordLink(notify.PasswordLink{To: to, Name: name, Link: link})
}

// expiryThresholds are the days before a key's expiry at which its team's owners are warned,
// nearest first.
var expiryThresholds = []int{1, 7, 30}

// expiryWarner sends each key-expiry warning once per threshold, remembering what it sent in
// the notifications_sent table so restarts do not send again.
type expiryWarner struct {
	clients *clients.Service
	db      *store.DB
	notify  *notify.Notifier
	log     *slog.Logger
}

// warnFunc returns the warning step of the daily expiry loop, or nil when nothing can be sent.
func (w expiryWarner) warnFunc() func(ctx context.Context, now time.Time) {
	if !w.notify.Enabled() {
		return nil
	}
	return w.warn
}

// warn queues a warning for every key whose nearest threshold (30, 7 or 1 days) has been
// reached and not yet warned about. A key first seen at 5 days left gets the 7-day warning
// only; expired keys get none (the dashboard shows them).
func (w expiryWarner) warn(ctx context.Context, now time.Time) {
	keys, err := w.clients.AllKeyExpiries(ctx, clients.ExpiryFilter{Within: expiryThresholds[len(expiryThresholds)-1]})
	if err != nil {
		if ctx.Err() == nil {
			w.log.Error("check key expiries for warnings", "err", err)
		}
		return
	}
	owners := map[int64][]string{}
	for _, k := range keys {
		left := k.Expires.Sub(now)
		if k.Expires.IsZero() || left <= 0 || k.TeamID == 0 {
			continue
		}
		threshold := 0
		for _, t := range expiryThresholds {
			if left <= time.Duration(t)*24*time.Hour {
				threshold = t
				break
			}
		}
		if threshold == 0 {
			continue
		}
		to, ok := owners[k.TeamID]
		if !ok {
			members, err := w.db.TeamMembers(ctx, k.TeamID)
			if err != nil {
				w.log.Error("read team owners for a key expiry warning", "team", k.Team, "err", err)
				continue
			}
			for _, m := range members {
				if m.Role == auth.TeamOwner {
					to = append(to, m.Email)
				}
			}
			owners[k.TeamID] = to
		}
		if len(to) == 0 {
			w.log.Warn("key expires soon and its team has no owner to warn", "env", k.Env, "client_id", k.ClientID, "kid", k.Kid, "team", k.Team)
			continue
		}
		claimed, err := w.db.ClaimExpiryWarning(ctx, k.Env, k.ClientID, k.Kid, threshold, now)
		if err != nil {
			w.log.Error("record a key expiry warning", "err", err)
			continue
		}
		if !claimed {
			continue
		}
		w.notify.KeyExpiry(notify.KeyExpiry{To: to, Env: k.Env, Integration: k.Name, ClientID: k.ClientID, Kid: k.Kid,
			Expires: k.Expires, DaysLeft: int(math.Floor(left.Hours() / 24)), Threshold: threshold})
	}
}

// privilegedWarner tells every active administrator about each client found holding privileged
// scopes, once per finding (a changed scope set is a new finding): the finding's row records
// that it was told, before the message is queued, so restarts do not tell again.
type privilegedWarner struct {
	clients *clients.Service
	db      *store.DB
	notify  *notify.Notifier
	public  string
	log     *slog.Logger
}

// warn runs after each sync.
func (w *privilegedWarner) warn(ctx context.Context, _ string) {
	if !w.notify.Enabled() || w.clients == nil {
		return
	}
	pending, err := w.clients.PendingPrivileged(ctx)
	if err != nil || len(pending) == 0 {
		if err != nil && ctx.Err() == nil {
			w.log.Error("read privileged-scope findings", "err", err)
		}
		return
	}
	users, err := w.db.ListUsers(ctx)
	if err != nil {
		w.log.Error("read administrators for a privileged-scope finding", "err", err)
		return
	}
	var to []string
	for _, u := range users {
		if u.Role == auth.RoleAdmin && !u.Disabled {
			to = append(to, u.Email)
		}
	}
	if len(to) == 0 {
		return
	}
	for _, f := range pending {
		claimed, err := w.clients.ClaimPrivileged(ctx, f)
		if err != nil {
			w.log.Error("record a privileged-scope notice", "err", err)
			continue
		}
		if !claimed {
			continue
		}
		w.log.Warn("a client holds privileged scopes: administrators told", "env", f.Env, "client_id", f.ClientID, "scopes", f.Scopes)
		w.notify.Privileged(notify.PrivilegedScopes{To: to, Env: f.Env, Integration: f.Name, ClientID: f.ClientID, Team: f.Team,
			Scopes: f.Scopes, Link: strings.TrimRight(w.public, "/") + "/envs/" + url.PathEscape(f.Env) + "/integrations/" + url.PathEscape(f.ClientID)})
	}
}
