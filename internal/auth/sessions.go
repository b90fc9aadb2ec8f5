package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"portal/internal/store"
)

// SessionCookie is the session cookie's name; with Secure it carries the __Host- prefix, so
// browsers take it only over HTTPS, for this host and path "/", never set by a sibling domain.
const SessionCookie = "portal_session"

const userIDKey = "user_id"

// SessionOptions configure the session store.
type SessionOptions struct {
	// KeyPairs sign (and optionally encrypt) the cookie, as securecookie takes them: pairs of
	// hash and block keys, newest first, so keys can be rotated.
	KeyPairs    [][]byte
	Secure      bool
	IdleTimeout time.Duration // default 2 h
	MaxLifetime time.Duration // default 12 h
	Now         func() time.Time
}

// SessionStore is a gorilla/sessions Store that keeps sessions in SQLite. The cookie carries
// only a signed random id; the row (keyed by the id's hash) carries the user, so a session can
// be revoked and a stolen database yields no live cookies.
type SessionStore struct {
	db     *store.DB
	codecs []securecookie.Codec
	opts   SessionOptions
	name   string // the cookie's name
}

var _ sessions.Store = (*SessionStore)(nil)

// NewSessionStore returns a store over db.
func NewSessionStore(db *store.DB, opts SessionOptions) (*SessionStore, error) {
	if len(opts.KeyPairs) == 0 || len(opts.KeyPairs[0]) < 32 {
		return nil, errors.New("session store needs a signing key of at least 32 bytes")
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 2 * time.Hour
	}
	if opts.MaxLifetime == 0 {
		opts.MaxLifetime = 12 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	codecs := securecookie.CodecsFromPairs(opts.KeyPairs...)
	for _, c := range codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.MaxAge(int(opts.MaxLifetime.Seconds()))
		}
	}
	name := SessionCookie
	if opts.Secure {
		name = "__Host-" + SessionCookie
	}
	return &SessionStore{db: db, codecs: codecs, opts: opts, name: name}, nil
}

// CookieName is the name of the session cookie.
func (s *SessionStore) CookieName() string { return s.name }

func (s *SessionStore) options() *sessions.Options {
	return &sessions.Options{
		Path:     "/",
		MaxAge:   int(s.opts.MaxLifetime.Seconds()),
		Secure:   s.opts.Secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// Get returns the request's session, cached per request by gorilla's registry.
func (s *SessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New loads the session named in the cookie, or returns a new empty one when there is none or
// it is invalid, idle too long, or too old.
func (s *SessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	sess.Options = s.options()
	sess.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return sess, nil
	}
	var id string
	if err := securecookie.DecodeMulti(name, c.Value, &id, s.codecs...); err != nil {
		return sess, nil // tampered or signed with a retired key: start afresh
	}
	ctx := r.Context()
	row, err := s.db.SessionByHash(ctx, HashToken(id))
	if errors.Is(err, store.ErrNotFound) {
		return sess, nil
	}
	if err != nil {
		return sess, err
	}
	now := s.opts.Now()
	if now.Sub(row.LastSeenAt) >= s.opts.IdleTimeout || now.Sub(row.CreatedAt) >= s.opts.MaxLifetime {
		if err := s.db.DeleteSession(ctx, row.IDHash); err != nil {
			return sess, err
		}
		return sess, nil
	}
	// Writing on every request would serialise reads behind the single writer; a minute's
	// resolution is plenty for a two-hour idle timeout.
	if now.Sub(row.LastSeenAt) > time.Minute {
		if err := s.db.TouchSession(ctx, row.IDHash, now); err != nil {
			return sess, err
		}
	}
	sess.ID = id
	sess.IsNew = false
	sess.Values[userIDKey] = row.UserID
	return sess, nil
}

// Save writes the session: MaxAge < 0 ends it; a session without an id but with a user gets a
// fresh random id (this is where rotation happens); an existing one needs no write.
func (s *SessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	ctx := r.Context()
	if sess.Options.MaxAge < 0 {
		if sess.ID != "" {
			if err := s.db.DeleteSession(ctx, HashToken(sess.ID)); err != nil {
				return err
			}
		}
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", sess.Options))
		return nil
	}
	if sess.ID != "" {
		return nil
	}
	userID, ok := sess.Values[userIDKey].(int64)
	if !ok || userID == 0 {
		return nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("session id: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	now := s.opts.Now()
	if err := s.db.InsertSession(ctx, store.Session{IDHash: HashToken(id), UserID: userID, CreatedAt: now, LastSeenAt: now,
		Address: truncate(clientAddress(r), 64), UserAgent: truncate(r.UserAgent(), 256)}); err != nil {
		return err
	}
	encoded, err := securecookie.EncodeMulti(sess.Name(), id, s.codecs...)
	if err != nil {
		return fmt.Errorf("encode session cookie: %w", err)
	}
	sess.ID = id
	http.SetCookie(w, sessions.NewCookie(sess.Name(), encoded, sess.Options))
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

type addrKey struct{}

// WithClientAddress records the client's address (as the trusted-proxy rules decided it) for
// the session store.
func WithClientAddress(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, addrKey{}, addr)
}

func clientAddress(r *http.Request) string {
	if a, ok := r.Context().Value(addrKey{}).(string); ok {
		return a
	}
	return r.RemoteAddr
}

// CurrentUser returns the user id of the request's session, 0 when signed out.
func (s *SessionStore) CurrentUser(r *http.Request) (int64, error) {
	id, _, err := s.Current(r)
	return id, err
}

// Current returns the user id and the session id of the request's session; 0 and "" when
// signed out. The session id changes at every sign-in, so what is bound to it (the
// anti-forgery token) changes too.
func (s *SessionStore) Current(r *http.Request) (int64, string, error) {
	sess, err := s.Get(r, s.name)
	if err != nil {
		return 0, "", err
	}
	id, _ := sess.Values[userIDKey].(int64)
	if id == 0 {
		return 0, "", nil
	}
	return id, sess.ID, nil
}

// Begin ends the request's current session, if any, and starts a new one for userID: the id
// changes at every sign-in, so a planted id is worthless.
func (s *SessionStore) Begin(w http.ResponseWriter, r *http.Request, userID int64) error {
	if err := s.End(w, r); err != nil {
		return err
	}
	sess := sessions.NewSession(s, s.name)
	sess.Options = s.options()
	sess.IsNew = true
	sess.Values[userIDKey] = userID
	return s.Save(r, w, sess)
}

// End ends the request's session and clears its cookie.
func (s *SessionStore) End(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.Get(r, s.name)
	if err != nil {
		return err
	}
	if sess.IsNew {
		return nil
	}
	sess.Options.MaxAge = -1
	return s.Save(r, w, sess)
}

// DeleteStale removes sessions past their idle or absolute timeout.
func (s *SessionStore) DeleteStale(ctx context.Context) (int64, error) {
	now := s.opts.Now()
	return s.db.DeleteStaleSessions(ctx, now.Add(-s.opts.IdleTimeout), now.Add(-s.opts.MaxLifetime))
}
