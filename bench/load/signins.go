package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"portal/bench/benchutil"
	"portal/internal/maskinporten"
)

// Routes of the sign-in storm phase.
const (
	rStormPage   = "storm: page (dashboard, list)"
	rStormToken  = "storm: sim token endpoint"
	rStormSignIn = "storm: sign-in"
)

// stormResult is the sign-in storm: n concurrent sign-ins, each a fresh person with a wrong
// password from an address of its own (so neither throttle stops it before the password is
// hashed), with one signed-in session reading pages and one client fetching tokens throughout,
// compared with the same reading and fetching in a calm window just before.
type stormResult struct {
	n                int
	calm, storm      phase
	rssIdle, rssPeak int64 // kB; idle measured after start-up in the same run
	outcomes         map[int]int
	transportErrors  int
}

// runStorm measures a calm window of calm, then the storm for stormFor.
func runStorm(ctx context.Context, base, tokenURL string, pid int, tr http.RoundTripper, rec *benchutil.Recorder, s *seeded,
	reader *session, n int, calm, stormFor time.Duration, rssIdle int64) (*stormResult, error) {
	res := &stormResult{n: n, rssIdle: rssIdle, outcomes: map[int]int{}}
	var targets []seededClient
	for _, c := range s.clients {
		if c.env == "tt02" && c.serviceOwner {
			targets = append(targets, c)
		}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("no tt02 service-owner client to fetch tokens for")
	}
	background := func(ctx context.Context) {
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				path := "/"
				if i%2 == 1 {
					path = "/envs/tt02/integrations"
				}
				_, _ = reader.get(ctx, rStormPage, path, false)
				sleep(ctx, 100*time.Millisecond)
			}
		})
		wg.Go(func() {
			hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			issuer := strings.TrimSuffix(tokenURL, "token")
			for i := 0; ctx.Err() == nil; i++ {
				c := targets[i%len(targets)]
				signer := maskinporten.Signer{Key: s.pool[c.pool[0]], Alg: maskinporten.RS256, KeyID: c.kids[0]}
				g, err := maskinporten.SignGrant(maskinporten.Grant{Audience: issuer, ClientID: c.id,
					Scopes: []string{"altinn:serviceowner/instances.read"}, IssuedAt: time.Now()}, signer)
				if err != nil {
					continue
				}
				postToken(ctx, hc, rec, tokenURL, g)
				sleep(ctx, 100*time.Millisecond)
			}
		})
		wg.Wait()
	}
	window := func(d time.Duration, extra func(ctx context.Context)) phase {
		ph := phase{from: time.Since(rec.Start())}
		lctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		var wg sync.WaitGroup
		wg.Go(func() { background(lctx) })
		wg.Go(func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-lctx.Done():
					return
				case <-t.C:
					if kb, err := benchutil.RSSKB(pid); err == nil {
						ph.rssMax = max(ph.rssMax, kb)
					}
				}
			}
		})
		if extra != nil {
			wg.Go(func() { extra(lctx) })
		}
		wg.Wait()
		ph.to = time.Since(rec.Start())
		ph.window = ph.to - ph.from
		return ph
	}
	res.calm = window(calm, nil)
	res.calm.name = "calm"
	var mu sync.Mutex
	var seq atomic.Int64
	res.storm = window(stormFor, func(ctx context.Context) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range n {
			wg.Go(func() {
				<-start
				for ctx.Err() == nil {
					i := seq.Add(1)
					status, err := stormSignIn(ctx, base, tr, rec, i, w)
					if ctx.Err() != nil {
						return
					}
					mu.Lock()
					if err != nil {
						res.transportErrors++
					} else {
						res.outcomes[status]++
					}
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
	})
	res.storm.name = "storm"
	res.rssPeak = res.storm.rssMax
	return res, ctx.Err()
}

// stormSignIn is one person opening the sign-in page and posting a wrong password for an
// address nobody has, from an address of its own (X-Forwarded-For, believed from loopback).
func stormSignIn(ctx context.Context, base string, tr http.RoundTripper, rec *benchutil.Recorder, i int64, worker int) (int, error) {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Transport: tr, Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	addr := fmt.Sprintf("10.%d.%d.%d", worker%256, (i/256)%256, i%256)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/login", nil)
	req.Header.Set("X-Forwarded-For", addr)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	m := csrfField.FindSubmatch(body)
	if m == nil {
		return resp.StatusCode, fmt.Errorf("no anti-forgery field on the sign-in page")
	}
	form := url.Values{"_csrf": {string(m[1])}, "email": {fmt.Sprintf("storm%d@bench.invalid", i)}, "password": {"a wrong password, not secret"}}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", addr)
	start := time.Now()
	resp, err = hc.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	failure := ""
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusServiceUnavailable {
		failure = fmt.Sprintf("POST /login: %d (want 401, or 503 when every hashing slot is busy)", resp.StatusCode)
	}
	if ctx.Err() == nil {
		rec.Add(rStormSignIn, start, time.Since(start), failure)
	}
	return resp.StatusCode, nil
}

func postToken(ctx context.Context, hc *http.Client, rec *benchutil.Recorder, tokenURL, grant string) {
	form := "grant_type=" + url.QueryEscape(maskinporten.GrantType) + "&assertion=" + url.QueryEscape(grant)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	start := time.Now()
	resp, err := hc.Do(req)
	failure := ""
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failure = fmt.Sprintf("%d", resp.StatusCode)
		}
	} else {
		failure = "transport: " + err.Error()
	}
	if ctx.Err() == nil {
		rec.Add(rStormToken, start, time.Since(start), failure)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// stormSection is the storm's part of the report, also logged when the phase runs alone.
func stormSection(r *stormResult, rec *benchutil.Recorder) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## Sign-in storm\n\n")
	w("%d workers each sign in over and over for %s, every attempt a fresh person (GET /login, then POST /login) with an unknown email and a wrong password "+
		"from an address of its own, so every attempt reaches the password check (argon2id, the production parameters). Meanwhile one signed-in session reads "+
		"pages and one client fetches tokens from the simulated Maskinporten, as in the calm window of %s just before.\n\n",
		r.n, r.storm.window.Round(100*time.Millisecond), r.calm.window.Round(100*time.Millisecond))
	w("| figure | calm | storm | storm × calm |\n|---|---:|---:|---:|\n")
	w("| resident size, peak (idle after start-up: %s) | %s (%s idle) | %s (%s idle) | %s |\n", mib(r.rssIdle),
		mib(r.calm.rssMax), ratio(float64(r.calm.rssMax), float64(r.rssIdle)), mib(r.rssPeak), ratio(float64(r.rssPeak), float64(r.rssIdle)),
		ratio(float64(r.rssPeak), float64(r.calm.rssMax)))
	for _, name := range []string{rStormPage, rStormToken, rHealthz, rStatic} {
		c := benchutil.Summarize(rec.Samples(name), r.calm.from, r.calm.to)
		s := benchutil.Summarize(rec.Samples(name), r.storm.from, r.storm.to)
		w("| p95 %s (requests, errors) | %s (%d, %d) | %s (%d, %d) | %s |\n", name, msf(c.P95), c.N, c.Errors, msf(s.P95), s.N, s.Errors, dratio(s.P95, c.P95))
	}
	si := benchutil.Summarize(rec.Samples(rStormSignIn), r.storm.from, r.storm.to)
	w("| sign-in POST p50 / p95 | | %s / %s | |\n", msf(si.P50), msf(si.P95))
	w("\nSign-in outcomes: %d checked and refused (401), %d turned away while every hashing slot was busy (503 with Retry-After), %d throttled (429), %d other, %d transport errors.\n\n",
		r.outcomes[http.StatusUnauthorized], r.outcomes[http.StatusServiceUnavailable], r.outcomes[http.StatusTooManyRequests],
		sumOther(r.outcomes), r.transportErrors)
	return b.String()
}

func sumOther(m map[int]int) int {
	n := 0
	for k, v := range m {
		if k != http.StatusUnauthorized && k != http.StatusServiceUnavailable && k != http.StatusTooManyRequests {
			n += v
		}
	}
	return n
}
