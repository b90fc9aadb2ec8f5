package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"portal/bench/benchutil"
	"portal/internal/maskinporten"
)

const (
	// A grant's iat is set this far ahead of its signing; the simulator accepts iat within
	// ±10 s of its clock, so grants stay usable for about iatLead+10 s after signing.
	iatLead   = 5 * time.Second
	roundSign = 3 * time.Second // at most this long signing one round
	roundFire = 8 * time.Second // at most this long firing one round, counted from its signing
)

type tokenPhase struct {
	cpu      uint64
	window   time.Duration
	requests int
}

// runTokens signs grants for the seeded tt02 service-owner clients with their pool keys in
// rounds, and fires each round at the simulated token endpoint with conc clients; the server's
// CPU is summed over the firing windows only.
func runTokens(ctx context.Context, dir string, pid int, tr http.RoundTripper, rec *benchutil.Recorder, s *seeded, conc int) (tokenPhase, error) {
	var tp tokenPhase
	b, err := os.ReadFile(filepath.Join(dir, "sim-tt02-admin.json"))
	if err != nil {
		return tp, err
	}
	var adm struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(b, &adm); err != nil || adm.Issuer == "" {
		return tp, fmt.Errorf("no issuer in sim-tt02-admin.json: %v", err)
	}
	if err := benchutil.LoopbackOnly(adm.Issuer); err != nil {
		return tp, err
	}
	tokenURL := adm.Issuer + "token"
	var targets []seededClient
	for _, c := range s.clients {
		if c.env == "tt02" && c.serviceOwner {
			targets = append(targets, c)
		}
	}
	if len(targets) == 0 {
		return tp, fmt.Errorf("no tt02 service-owner clients to ask tokens for")
	}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	rate := 0.0
	n := 0
	for ctx.Err() == nil {
		want := 200 * conc
		if rate > 0 {
			want = int(rate*roundFire.Seconds()*1.1) + conc
		}
		grants := signRound(ctx, adm.Issuer, targets, s, want, &n)
		if ctx.Err() != nil || len(grants) == 0 {
			break
		}
		signedAt := time.Now()
		c0, _, err := benchutil.CPUTicks(pid)
		if err != nil {
			return tp, err
		}
		start := time.Now()
		fired := fire(ctx, hc, rec, tokenURL, grants, conc, signedAt.Add(roundFire))
		window := time.Since(start)
		c1, _, err := benchutil.CPUTicks(pid)
		if err != nil {
			return tp, err
		}
		tp.cpu += c1 - c0
		tp.window += window
		tp.requests += fired
		if fired > 0 {
			rate = float64(fired) / window.Seconds()
		}
	}
	return tp, nil
}

// signRound signs up to n grants on all cores, stopping at roundSign or when ctx ends.
func signRound(ctx context.Context, issuer string, targets []seededClient, s *seeded, n int, counter *int) []string {
	out := make([]string, n)
	var next atomic.Int64
	stopAt := time.Now().Add(roundSign)
	first := *counter
	*counter += n
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(stopAt) {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c := targets[(first+i)%len(targets)]
				signer := maskinporten.Signer{Key: s.pool[c.pool[0]], Alg: maskinporten.RS256, KeyID: c.kids[0]}
				g, err := maskinporten.SignGrant(maskinporten.Grant{Audience: issuer, ClientID: c.id,
					Scopes: []string{"altinn:serviceowner/instances.read"}, IssuedAt: time.Now().Add(iatLead)}, signer)
				if err == nil {
					out[i] = g
				}
			}
		})
	}
	wg.Wait()
	grants := out[:0]
	for _, g := range out {
		if g != "" {
			grants = append(grants, g)
		}
	}
	return grants
}

// fire posts grants with conc workers until they run out, deadline passes or ctx ends, and
// returns how many it sent.
func fire(ctx context.Context, hc *http.Client, rec *benchutil.Recorder, tokenURL string, grants []string, conc int, deadline time.Time) int {
	var next, sent atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= len(grants) {
					return
				}
				form := "grant_type=" + url.QueryEscape(maskinporten.GrantType) + "&assertion=" + url.QueryEscape(grants[i])
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				start := time.Now()
				resp, err := hc.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
					resp.Body.Close()
				}
				d := time.Since(start)
				if ctx.Err() != nil {
					return
				}
				failure := ""
				switch {
				case err != nil:
					failure = "transport: " + err.Error()
				case resp.StatusCode != http.StatusOK:
					failure = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
				}
				rec.Add(rToken, start, d, failure)
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	return int(sent.Load())
}
