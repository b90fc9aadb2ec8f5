package sim

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxKeys is Digdir's limit of keys per client (§2.5).
const maxKeys = 5

// keyLife is how long a posted key lives at most (§2.5).
const keyLife = 365 * 24 * time.Hour

// privateMembers are JWK members that would disclose a private or symmetric key.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

type storedKey struct {
	kid string
	jwk []byte // public members as stored, without exp
	exp int64
}

func validKid(kid string) bool {
	if kid == "" || len(kid) > 200 {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkKeySet validates a posted key set (§2.5) and fixes each key's exp: the posted one capped
// at a year from now, or a year from now when none is posted.
func checkKeySet(raws []json.RawMessage, now time.Time) ([]storedKey, []fieldError) {
	const obj = "JWKS"
	var errs []fieldError
	if len(raws) == 0 {
		return nil, []fieldError{fieldErr(obj, "keys", "keys must not be empty; use DELETE to remove all keys")}
	}
	if len(raws) > maxKeys {
		return nil, []fieldError{fieldErr(obj, "keys", "a client can have at most "+strconv.Itoa(maxKeys)+" keys")}
	}
	maxExp := now.Add(keyLife).Unix()
	seen := map[string]bool{}
	out := make([]storedKey, 0, len(raws))
	for i, raw := range raws {
		field := "keys[" + strconv.Itoa(i) + "]"
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			errs = append(errs, fieldErr(obj, field, field+" is not a JSON object"))
			continue
		}
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				errs = append(errs, fieldErr(obj, field+"."+m, field+" contains private key material ("+m+"); post public keys only"))
			}
		}
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			errs = append(errs, fieldErr(obj, field, field+" is not a valid JWK: "+err.Error()))
			continue
		}
		if k.Kty != "RSA" {
			errs = append(errs, fieldErr(obj, field+".kty", field+": kty must be RSA"))
			continue
		}
		if k.Use == "" {
			errs = append(errs, fieldErr(obj, field+".use", field+": use is required"))
		} else if k.Use != "sig" {
			errs = append(errs, fieldErr(obj, field+".use", field+": use must be sig"))
		}
		switch k.Alg {
		case "RS256", "RS384", "RS512":
		case "":
			errs = append(errs, fieldErr(obj, field+".alg", field+": alg is required"))
		default:
			errs = append(errs, fieldErr(obj, field+".alg", field+": alg must be RS256, RS384 or RS512"))
		}
		switch {
		case !validKid(k.Kid):
			errs = append(errs, fieldErr(obj, field+".kid", field+": kid is required and may contain only letters, digits, '.', '_' and '-'"))
		case seen[k.Kid]:
			errs = append(errs, fieldErr(obj, field+".kid", field+": kid "+k.Kid+" appears more than once"))
		}
		seen[k.Kid] = true
		pub, err := rsaPublicKey(k.N, k.E)
		if err != nil {
			errs = append(errs, fieldErr(obj, field+".n", field+": "+err.Error()))
			continue
		}
		if pub.N.BitLen() < 2048 {
			errs = append(errs, fieldErr(obj, field+".n", field+": RSA keys must be at least 2048 bits"))
		}
		exp := maxExp
		if k.Exp != nil && *k.Exp < maxExp {
			exp = *k.Exp
		}
		k.Exp = nil
		b, err := json.Marshal(k)
		if err != nil {
			errs = append(errs, fieldErr(obj, field, field+": "+err.Error()))
			continue
		}
		out = append(out, storedKey{kid: k.Kid, jwk: b, exp: exp})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func insertKeys(ctx context.Context, tx *sql.Tx, env, clientID string, keys []storedKey) error {
	for i, k := range keys {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sim_client_keys (env, kid, client_id, position, jwk, exp)
			VALUES (?, ?, ?, ?, ?, ?)`, env, k.kid, clientID, i, string(k.jwk), k.exp); err != nil {
			return fmt.Errorf("insert key %s: %w", k.kid, err)
		}
	}
	return nil
}

// keySet reads a client's key set in the wire form; ok is false when it has none.
func (w *world) keySet(ctx context.Context, q querier, id string) (body jwksBody, ok bool, err error) {
	rows, err := q.QueryContext(ctx, `SELECT k.jwk, k.exp, c.jwks_created, c.jwks_updated
		FROM sim_client_keys k JOIN sim_clients c ON c.env = k.env AND c.client_id = k.client_id
		WHERE k.env = ? AND k.client_id = ? ORDER BY k.position`, w.name, id)
	if err != nil {
		return body, false, fmt.Errorf("read keys: %w", err)
	}
	defer rows.Close()
	body.Keys = []json.RawMessage{}
	for rows.Next() {
		var raw string
		var exp int64
		if err := rows.Scan(&raw, &exp, &body.Created, &body.LastUpdated); err != nil {
			return body, false, fmt.Errorf("read keys: %w", err)
		}
		// exp is stored apart from the JWK so re-posted sets keep or renew it explicitly.
		withExp := strings.TrimSuffix(raw, "}") + `,"exp":` + strconv.FormatInt(exp, 10) + "}"
		body.Keys = append(body.Keys, json.RawMessage(withExp))
	}
	return body, len(body.Keys) > 0, rows.Err()
}

func (w *world) getJWKS(rw http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	if _, err := w.loadClient(r.Context(), w.s.rdb, id, p.orgNo, false); err != nil {
		w.writeTxError(rw, id, "get jwks", err)
		return
	}
	body, ok, err := w.keySet(r.Context(), w.s.rdb, id)
	switch {
	case err != nil:
		w.internalError(rw, "get jwks", err)
	case !ok:
		writeAPIError(rw, http.StatusNotFound, generalError("Client "+id+" has no keys"))
	default:
		writeJSON(rw, http.StatusOK, body)
	}
}

// replaceJWKS replaces the whole key set (§2.5).
func (w *world) replaceJWKS(rw http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	var in struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if !decodeBody(r, rw, &in) {
		return
	}
	if in.Keys == nil {
		writeAPIError(rw, http.StatusBadRequest, fieldErr("JWKS", "keys", "keys is required"))
		return
	}
	now := w.clock.now()
	keys, fes := checkKeySet(*in.Keys, now)
	if len(fes) > 0 {
		writeAPIError(rw, http.StatusBadRequest, fes...)
		return
	}
	var out jwksBody
	err := w.inTx(r.Context(), func(tx *sql.Tx) error {
		if _, err := w.loadClient(r.Context(), tx, id, p.orgNo, false); err != nil {
			return err
		}
		// kid is unique across the environment, as Digdir demands across all customers.
		var clash []fieldError
		for i, k := range keys {
			var owner string
			err := tx.QueryRowContext(r.Context(), `SELECT client_id FROM sim_client_keys WHERE env = ? AND kid = ? AND client_id <> ?`,
				w.name, k.kid, id).Scan(&owner)
			if err == nil {
				f := "keys[" + strconv.Itoa(i) + "].kid"
				clash = append(clash, fieldErr("JWKS", f, "kid "+k.kid+" is already in use by another client"))
			} else if err != sql.ErrNoRows {
				return fmt.Errorf("check kid: %w", err)
			}
		}
		if len(clash) > 0 {
			return validationError(clash)
		}
		if _, err := tx.ExecContext(r.Context(), `DELETE FROM sim_client_keys WHERE env = ? AND client_id = ?`, w.name, id); err != nil {
			return fmt.Errorf("replace keys: %w", err)
		}
		if err := insertKeys(r.Context(), tx, w.name, id, keys); err != nil {
			return err
		}
		ts := timestamp(now)
		if _, err := tx.ExecContext(r.Context(), `UPDATE sim_clients SET jwks_created = CASE WHEN jwks_created = '' THEN ? ELSE jwks_created END,
			jwks_updated = ? WHERE env = ? AND client_id = ?`, ts, ts, w.name, id); err != nil {
			return fmt.Errorf("replace keys: %w", err)
		}
		var err error
		out, _, err = w.keySet(r.Context(), tx, id)
		return err
	})
	if w.writeTxError(rw, id, "replace jwks", err) {
		return
	}
	w.s.log.Info("sim client keys replaced", "env", w.name, "client_id", id, "keys", len(keys))
	w.publishClient(r.Context(), id)
	writeJSON(rw, http.StatusOK, out)
}

func (w *world) deleteJWKS(rw http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	err := w.inTx(r.Context(), func(tx *sql.Tx) error {
		if _, err := w.loadClient(r.Context(), tx, id, p.orgNo, false); err != nil {
			return err
		}
		if _, err := tx.ExecContext(r.Context(), `DELETE FROM sim_client_keys WHERE env = ? AND client_id = ?`, w.name, id); err != nil {
			return fmt.Errorf("delete keys: %w", err)
		}
		_, err := tx.ExecContext(r.Context(), `UPDATE sim_clients SET jwks_created = '', jwks_updated = '' WHERE env = ? AND client_id = ?`, w.name, id)
		return err
	})
	if w.writeTxError(rw, id, "delete jwks", err) {
		return
	}
	w.publishClient(r.Context(), id)
	rw.WriteHeader(http.StatusOK)
}
