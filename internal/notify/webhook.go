package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the request body under the
// configured secret; receivers recompute it over the raw body and compare in constant time.
const SignatureHeader = "X-Portal-Signature"

// Sign returns the SignatureHeader value for body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether sig is body's signature under secret.
func Verify(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}

// hookBody is what the webhook receives.
type hookBody struct {
	Type    string    `json:"type"` // invitation, password_link, key_expiry
	To      []string  `json:"to"`
	Subject string    `json:"subject"`
	Text    string    `json:"text"`
	Data    any       `json:"data"`
	SentAt  time.Time `json:"sent_at"`
}

// postHook POSTs m once and, after a network error or a 5xx answer, once more.
func (n *Notifier) postHook(m message) error {
	body, err := json.Marshal(hookBody{Type: m.kind, To: m.to, Subject: m.subject, Text: m.text, Data: m.data, SentAt: time.Now().UTC()})
	if err != nil {
		return err
	}
	err = n.postOnce(body)
	if err == nil || errors.Is(err, errPermanent) {
		return err
	}
	time.Sleep(n.retryWait)
	return n.postOnce(body)
}

func (n *Notifier) postOnce(body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.hook.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", redactURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "portal-notify")
	req.Header.Set(SignatureHeader, Sign(n.hook.Secret, body))
	resp, err := n.client.Do(req)
	if err != nil {
		// The URL itself may be a secret (many services put a token in the path): never log it.
		return fmt.Errorf("webhook: %w", redactURL(err))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 500:
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return fmt.Errorf("webhook answered %d: %w", resp.StatusCode, errPermanent)
}

func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
