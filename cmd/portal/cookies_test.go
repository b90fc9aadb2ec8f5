package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestCookiesUnderHTTPSPublicURL: behind a TLS-terminating proxy that is not in
// trusted_proxies, an https public URL alone makes every cookie Secure with a __Host- name.
func TestCookiesUnderHTTPSPublicURL(t *testing.T) {
	dir := t.TempDir()
	env := func(string) string { return "" }
	if err := run(t.Context(), []string{"user", "add", "--data", dir, "--email", "ada@example.no", "--name", "Ada", "--role", "member"}, // a member: no second factor to enrol first
		env, strings.NewReader("correct horse battery\n"), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	logs := &browserLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", dir, "--addr", addr, "--sim-addr", "127.0.0.1:0", "--public-url", "https://portal.example"},
			env, strings.NewReader(""), io.Discard, logs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	wctx, wcancel := context.WithTimeout(t.Context(), browserStartTimeout)
	defer wcancel()
	if _, err := logs.waitFor(wctx, nil, browserListeningPattern); err != nil {
		t.Fatalf("not listening: %v\n%s", err, logs)
	}
	base := "http://" + addr
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	jar := map[string]string{} // by hand: a cookie jar would keep Secure cookies off plain HTTP
	seen := map[string]bool{}
	do := func(req *http.Request) (*http.Response, string) {
		t.Helper()
		for k, v := range jar {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, ck := range resp.Cookies() {
			seen[ck.Name] = true
			if !strings.HasPrefix(ck.Name, "__Host-") || !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.Domain != "" || ck.SameSite != http.SameSiteLaxMode {
				t.Errorf("cookie %s: Secure %v HttpOnly %v Path %q Domain %q SameSite %v; want __Host-, Secure, HttpOnly, Path /, no Domain, Lax",
					ck.Name, ck.Secure, ck.HttpOnly, ck.Path, ck.Domain, ck.SameSite)
			}
			if ck.MaxAge < 0 {
				delete(jar, ck.Name)
			} else {
				jar[ck.Name] = ck.Value
			}
		}
		return resp, string(b)
	}
	token := regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
	req, _ := http.NewRequest(http.MethodGet, base+"/login", nil)
	_, body := do(req)
	m := token.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no token on the sign-in page:\n%s", body)
	}
	form := url.Values{"email": {"ada@example.no"}, "password": {"correct horse battery"}, "_csrf": {m[1]}}
	req, _ = http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, body := do(req); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d\n%s", resp.StatusCode, body)
	}
	req, _ = http.NewRequest(http.MethodGet, base+"/account", nil)
	if resp, _ := do(req); resp.StatusCode != http.StatusOK {
		t.Fatalf("the __Host- session cookie does not sign in: %d", resp.StatusCode)
	}
	for _, name := range []string{"__Host-portal_csrf", "__Host-portal_session"} {
		if !seen[name] {
			t.Errorf("no %s cookie; saw %v", name, seen)
		}
	}

	// Turning Secure off while people arrive over HTTPS is a configuration mistake.
	// (The context is cancelled: a portal that is not refused stops at once.)
	stopped, stop := context.WithCancel(t.Context())
	stop()
	err := run(stopped, []string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--sim-addr", "127.0.0.1:0", "--public-url", "https://portal.example"},
		func(k string) string { return map[string]string{"PORTAL_SECURE_COOKIES": "false"}[k] }, strings.NewReader(""), io.Discard, io.Discard)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "secure_cookies") {
		t.Fatalf("secure_cookies false with an https public URL: %v", err)
	}
}
