package sim

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
)

// loadSecrets reads the environment's keys, CA and admin credentials, creating them on first
// start, so tokens and certificates stay valid across restarts.
func (w *world) loadSecrets(ctx context.Context) error {
	var mpPEM, caKeyPEM, caCertPEM, altPEM, adminKeyPEM, adminCertPEM string
	err := w.s.wdb.QueryRowContext(ctx, `SELECT mp_key_pem, mp_kid, ca_key_pem, ca_cert_pem, altinn_key_pem,
		altinn_kid, admin_client_id, admin_key_pem, admin_cert_pem FROM sim_envs WHERE env = ?`, w.name).
		Scan(&mpPEM, &w.mpKid, &caKeyPEM, &caCertPEM, &altPEM, &w.altinnKid, &w.adminClientID, &adminKeyPEM, &adminCertPEM)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if err := w.createSecrets(ctx); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("load secrets: %w", err)
	default:
		if w.mpKey, err = parseKeyPEM(mpPEM); err != nil {
			return fmt.Errorf("maskinporten key: %w", err)
		}
		if w.caKey, err = parseKeyPEM(caKeyPEM); err != nil {
			return fmt.Errorf("CA key: %w", err)
		}
		if w.caCert, err = parseCertPEM(caCertPEM); err != nil {
			return fmt.Errorf("CA certificate: %w", err)
		}
		if w.altinnKey, err = parseKeyPEM(altPEM); err != nil {
			return fmt.Errorf("altinn key: %w", err)
		}
		if w.adminKey, err = parseKeyPEM(adminKeyPEM); err != nil {
			return fmt.Errorf("admin key: %w", err)
		}
		if w.adminCert, err = parseCertPEM(adminCertPEM); err != nil {
			return fmt.Errorf("admin certificate: %w", err)
		}
	}
	// A changed service owner or a certificate near its end gets a fresh certificate for the
	// same key, so the admin file always works.
	if no, _ := certOrgNo(w.adminCert); no != w.s.cfg.OrgNo || w.adminCert.NotAfter.Before(w.clock.now().AddDate(0, 1, 0)) {
		if err := w.reissueAdminCert(ctx); err != nil {
			return err
		}
	}
	w.caPool = x509.NewCertPool()
	w.caPool.AddCert(w.caCert)
	return w.buildPublished()
}

func (w *world) createSecrets(ctx context.Context) error {
	keys := make([]*rsa.PrivateKey, 4)
	for i := range keys {
		k, err := w.s.cfg.GenerateKey()
		if err != nil {
			return fmt.Errorf("generate key: %w", err)
		}
		k.Precompute()
		keys[i] = k
	}
	w.mpKey, w.caKey, w.altinnKey, w.adminKey = keys[0], keys[1], keys[2], keys[3]
	w.mpKid = keyID("sim-"+w.name+"-mp-", &w.mpKey.PublicKey)
	w.altinnKid = keyID("sim-"+w.name+"-altinn-", &w.altinnKey.PublicKey)
	w.adminClientID = uuid.NewString()
	now := w.clock.now()
	var err error
	if w.caCert, err = newCA(w.name, w.caKey, now); err != nil {
		return err
	}
	if w.adminCert, err = w.newAdminCert(); err != nil {
		return err
	}
	pems := make([]string, 4)
	for i, k := range keys {
		if pems[i], err = encodeKeyPEM(k); err != nil {
			return err
		}
	}
	_, err = w.s.wdb.ExecContext(ctx, `INSERT INTO sim_envs (env, mp_key_pem, mp_kid, ca_key_pem, ca_cert_pem,
		altinn_key_pem, altinn_kid, admin_client_id, admin_key_pem, admin_cert_pem, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		w.name, pems[0], w.mpKid, pems[1], encodeCertPEM(w.caCert.Raw), pems[2], w.altinnKid,
		w.adminClientID, pems[3], encodeCertPEM(w.adminCert.Raw), timestamp(now))
	if err != nil {
		return fmt.Errorf("store secrets: %w", err)
	}
	w.s.log.Info("sim environment created", "env", w.name, "kid", w.mpKid, "admin_client_id", w.adminClientID)
	return nil
}

func (w *world) newAdminCert() (*x509.Certificate, error) {
	nb := w.clock.now().Add(-time.Hour)
	return issueCertificate(w.caCert, w.caKey, &w.adminKey.PublicKey, CertificateRequest{
		OrgNo: w.s.cfg.OrgNo, OrgName: w.s.cfg.OrgName, NotBefore: nb, NotAfter: nb.AddDate(3, 0, 0),
	})
}

func (w *world) reissueAdminCert(ctx context.Context) error {
	c, err := w.newAdminCert()
	if err != nil {
		return err
	}
	w.adminCert = c
	if _, err := w.s.wdb.ExecContext(ctx, `UPDATE sim_envs SET admin_cert_pem = ? WHERE env = ?`,
		encodeCertPEM(c.Raw), w.name); err != nil {
		return fmt.Errorf("store admin certificate: %w", err)
	}
	return nil
}

// buildPublished prepares what is served unchanged on every request: JWKS, metadata and the
// access-token header.
func (w *world) buildPublished() error {
	w.jwks = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &w.mpKey.PublicKey, KeyID: w.mpKid, Algorithm: "RS256", Use: "sig",
	}}}
	var err error
	if w.jwksJSON, err = json.Marshal(w.jwks); err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	md := metadata{
		Issuer:                      w.issuer,
		TokenEndpoint:               w.issuer + "token",
		JWKSURI:                     w.issuer + "jwk",
		TokenEndpointAuthMethods:    []string{"private_key_jwt"},
		GrantTypes:                  []string{grantTypeJWTBearer},
		TokenEndpointAuthSigningAlg: []string{"RS256", "RS384", "RS512"},
		AuthorizationDetailsTypes:   []string{"urn:altinn:systemuser", "urn:altinn:consent"},
	}
	if w.metadata, err = json.Marshal(md); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	h, err := json.Marshal(struct {
		Kid string `json:"kid"`
		Alg string `json:"alg"`
	}{w.mpKid, "RS256"})
	if err != nil {
		return fmt.Errorf("token header: %w", err)
	}
	w.tokenHeader = base64.RawURLEncoding.EncodeToString(h)
	return nil
}
