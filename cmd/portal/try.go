package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"portal/internal/altinn"
	"portal/internal/keys"
	"portal/internal/maskinporten"
	"portal/internal/tryit"
)

const tryUsage = `usage: portal try --env tt02 --client-id ID (--key FILE --kid KID | --x5c P12-or-PEM [--password-file F])
                  --scope "SCOPE ..." [--exchange] [--test] [--instances APPID] [--config FILE]

Runs an integration's access chain live: a JWT grant signed with the client's own key (or
business certificate), Maskinporten's token, and optionally Altinn's token exchange and the
first page of an app's instances. Each step is printed as one JSON line, secrets masked; the
exit status is 1 at the first step that fails, and its line says why.`

// errStepFailed says a try stopped at a failing step (already printed as JSON).
var errStepFailed = errors.New("a step failed")

// runTry is `portal try`.
func runTry(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var f tryFlags
	cfg, err := commandConfig("try", args, getenv, stderr, f.bind)
	if err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	ec, ok := cfg.Envs[f.env]
	if !ok {
		return usagef("--env %q is not configured (have %s)", f.env, strings.Join(slices.Sorted(maps.Keys(cfg.Envs)), ", "))
	}
	signer, err := f.signer()
	if err != nil {
		return err
	}
	env, target, note, err := tryEnv(ctx, cfg, f.env, ec, f.clientID)
	if err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintln(stderr, "portal try:", note)
	}
	plan := tryit.Plan{Exchange: f.exchange, Test: f.test}
	if f.instances != "" {
		q := altinn.InstanceQuery{AppID: f.instances, Size: f.size}
		if !strings.Contains(f.instances, "/") {
			q = altinn.InstanceQuery{Org: f.instances, Size: f.size}
		}
		plan.Instances = &q
	}
	if f.test && !env.TestToggle {
		return usagef("--test is offered in tt02 only")
	}
	req := tryit.GrantRequest{Scopes: f.scopes(), Resource: f.resource, ConsumerOrg: f.consumerOrg, Lifetime: f.lifetime}
	chain := tryit.NewChain(env, target, nil)
	steps := chain.RunAll(ctx, plan, func() tryit.Step { return chain.Sign(req, f.clientID, signer) })
	enc := json.NewEncoder(stdout)
	for _, s := range steps {
		if f.reveal {
			s = s.Revealed()
		}
		if err := enc.Encode(s); err != nil {
			return err
		}
		if !s.OK {
			return fmt.Errorf("%w: %s: %s", errStepFailed, s.Name, s.Error)
		}
	}
	return nil
}

type tryFlags struct {
	env, clientID, keyFile, kid, x5c, passwordFile, scope, instances, consumerOrg string
	resource                                                                      stringList
	exchange, test, reveal                                                        bool
	size                                                                          int
	lifetime                                                                      time.Duration
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func (f *tryFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.env, "env", "tt02", "environment: tt02 or prod")
	fs.StringVar(&f.clientID, "client-id", "", "the integration's client id (required)")
	fs.StringVar(&f.keyFile, "key", "", "private key file (PEM or JWK) of a key registered on the client")
	fs.StringVar(&f.kid, "kid", "", "the key's kid on the client (default: the JWK's own kid)")
	fs.StringVar(&f.x5c, "x5c", "", "business certificate with its private key: PKCS#12 (.p12/.pfx) or PEM (certificates and key)")
	fs.StringVar(&f.passwordFile, "password-file", "", "file holding the PKCS#12 password (default: no password)")
	fs.StringVar(&f.scope, "scope", "", "the scopes to ask for, separated by spaces (required)")
	fs.Var(&f.resource, "resource", "audience restriction for the token (repeatable)")
	fs.StringVar(&f.consumerOrg, "consumer-org", "", "organisation number to act for through Altinn delegation")
	fs.DurationVar(&f.lifetime, "lifetime", maskinporten.MaxGrantLifetime, "the grant's lifetime, at most 120s")
	fs.BoolVar(&f.exchange, "exchange", false, "exchange the Maskinporten token for an Altinn token")
	fs.BoolVar(&f.test, "test", false, "add test=true to the exchange (tt02 only)")
	fs.StringVar(&f.instances, "instances", "", "list the first page of instances of an app (org/app) or an org (implies --exchange)")
	fs.IntVar(&f.size, "size", 10, "page size for --instances")
	fs.BoolVar(&f.reveal, "reveal", false, "print tokens and grants in full (they are masked by default)")
}

func (f *tryFlags) check() error {
	switch {
	case f.clientID == "":
		return usagef("try needs --client-id\n%s", tryUsage)
	case len(f.scopes()) == 0:
		return usagef("try needs --scope\n%s", tryUsage)
	case (f.keyFile == "") == (f.x5c == ""):
		return usagef("try needs either --key FILE (with --kid) or --x5c FILE\n%s", tryUsage)
	case f.passwordFile != "" && f.x5c == "":
		return usagef("--password-file goes with --x5c")
	case f.lifetime <= 0 || f.lifetime > maskinporten.MaxGrantLifetime:
		return usagef("--lifetime must be between 1s and 120s")
	case f.size < 0:
		return usagef("--size must not be negative")
	}
	return nil
}

func (f *tryFlags) scopes() []string {
	return strings.Fields(strings.ReplaceAll(f.scope, ",", " "))
}

// signer reads the key (and certificate chain) the grant is signed with.
func (f *tryFlags) signer() (maskinporten.Signer, error) {
	if f.keyFile != "" {
		data, err := os.ReadFile(f.keyFile)
		if err != nil {
			return maskinporten.Signer{}, usagef("--key: %v", errors.Unwrap(err))
		}
		key, err := keys.ParsePrivate(data)
		clear(data)
		if err != nil {
			return maskinporten.Signer{}, usagef("--key %s: %v", f.keyFile, err)
		}
		kid := f.kid
		if kid == "" {
			kid = key.KID
		}
		if kid == "" {
			return maskinporten.Signer{}, usagef("--key %s names no kid: give --kid", f.keyFile)
		}
		return maskinporten.Signer{Key: key, KeyID: kid, Alg: string(key.Alg)}, nil
	}
	data, err := os.ReadFile(f.x5c)
	if err != nil {
		return maskinporten.Signer{}, usagef("--x5c: %v", errors.Unwrap(err))
	}
	defer clear(data)
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return pemCertificateSigner(f.x5c, data)
	}
	password := ""
	if f.passwordFile != "" {
		p, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return maskinporten.Signer{}, usagef("--password-file: %v", errors.Unwrap(err))
		}
		password = strings.TrimRight(string(p), "\r\n")
	}
	priv, leaf, cas, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return maskinporten.Signer{}, usagef("--x5c %s: the password is wrong (give it with --password-file)", f.x5c)
		}
		return maskinporten.Signer{}, usagef("--x5c %s is neither PEM nor a PKCS#12 file this tool can read: %v", f.x5c, err)
	}
	rk, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return maskinporten.Signer{}, usagef("--x5c %s holds a %T key; Maskinporten takes RSA keys only", f.x5c, priv)
	}
	key, err := keys.NewPrivateKey(rk, "", "")
	if err != nil {
		return maskinporten.Signer{}, usagef("--x5c %s: %v", f.x5c, err)
	}
	return maskinporten.Signer{Key: key, Chain: append([]*x509.Certificate{leaf}, cas...)}, nil
}

// pemCertificateSigner reads a PEM file with the business certificate (leaf first) and its key.
func pemCertificateSigner(name string, data []byte) (maskinporten.Signer, error) {
	key, err := keys.ParsePrivate(data)
	if err != nil {
		return maskinporten.Signer{}, usagef("--x5c %s: %v", name, err)
	}
	chain, err := parseCertificates(data)
	if err != nil {
		return maskinporten.Signer{}, usagef("--x5c %s: %v", name, err)
	}
	if len(chain) == 0 {
		return maskinporten.Signer{}, usagef("--x5c %s holds no CERTIFICATE block", name)
	}
	// The certificate that matches the key leads the chain, its issuers follow.
	chain, err = orderChain(key, chain)
	if err != nil {
		return maskinporten.Signer{}, usagef("--x5c %s: %v", name, err)
	}
	return maskinporten.Signer{Key: key, Chain: chain}, nil
}

// tryEnv builds the environment's upstream clients the way the portal does: from the
// simulator's admin file for a simulated environment, from the configuration otherwise. With
// admin credentials it also reads the client, so the grant's local checks know its keys and
// scopes; without them, those checks are skipped (note says so).
func tryEnv(ctx context.Context, cfg Config, name string, ec EnvConfig, clientID string) (tryit.Env, *tryit.Target, string, error) {
	issuer, platform, selfService, adminPath := ec.Issuer, ec.PlatformURL, ec.SelfServiceURL, ec.AdminFile
	if ec.Simulated() {
		adminPath = cfg.dataPath("sim-" + name + "-admin.json")
	}
	var admin *adminFile
	if adminPath != "" {
		a, err := readAdminFile(adminPath)
		if err != nil && ec.Simulated() {
			return tryit.Env{}, nil, "", fmt.Errorf("%s is simulated, but %v (start the simulators first: portal sim, or portal serve)", name, err)
		}
		if err == nil {
			admin = &a
			if ec.Simulated() {
				issuer, platform, selfService = a.Issuer, a.PlatformURL, a.SelfServiceURL
			}
		}
	}
	if issuer == "" {
		return tryit.Env{}, nil, "", usagef("%s has no Maskinporten issuer configured", name)
	}
	var mp *maskinporten.Client
	var err error
	if admin != nil {
		a := *admin
		a.Issuer = issuer
		mp, err = maskinportenClient(a, selfService, name, ec.AdminScopes, nil, nil) // a command: no metrics to serve
	} else {
		mp, err = maskinporten.New(maskinporten.Config{Issuer: issuer, HTTPClient: &http.Client{Transport: http.DefaultTransport},
			Timeout: 10 * time.Second})
	}
	if err != nil {
		return tryit.Env{}, nil, "", err
	}
	env := tryit.Env{Name: name, Label: ec.Label, Maskinporten: mp, TestToggle: name == "tt02"}
	if platform != "" {
		if env.Altinn, err = altinn.New(altinn.Config{PlatformURL: platform, HTTPClient: &http.Client{Transport: http.DefaultTransport},
			Timeout: 10 * time.Second}); err != nil {
			return tryit.Env{}, nil, "", err
		}
	}
	for _, other := range EnvNames {
		oc, ok := cfg.Envs[other]
		if other == name || !ok {
			continue
		}
		if oc.Simulated() {
			if a, err := readAdminFile(cfg.dataPath("sim-" + other + "-admin.json")); err == nil {
				env.OtherIssuers = append(env.OtherIssuers, a.Issuer)
			}
		} else if oc.Issuer != "" {
			env.OtherIssuers = append(env.OtherIssuers, oc.Issuer)
		}
	}
	if admin == nil || selfService == "" {
		return env, nil, "no admin credentials for " + name + ": the grant's checks against the client's keys and scopes are skipped", nil
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	reg, err := mp.GetClient(ctx, clientID)
	if err != nil {
		return env, nil, "the client could not be read with the admin credentials (" + upstreamMessage(err) + "): the grant's checks against its keys and scopes are skipped", nil
	}
	set, err := mp.GetJWKS(ctx, clientID)
	if err != nil {
		return env, nil, "the client's keys could not be read (" + upstreamMessage(err) + "): the grant's checks against them are skipped", nil
	}
	return env, &tryit.Target{ClientID: reg.ClientID, OrgNo: reg.ClientOrgno, Scopes: reg.Scopes, Keys: set.Keys}, "", nil
}
