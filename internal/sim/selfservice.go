package sim

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Scopes of the self-service API (§2.2). Which scope each endpoint demands is unconfirmed;
// reads need dcr.read, creating and deleting dcr.write, and updates and keys dcr.write or
// dcr.modify. GET /scopes/access/all needs Quirks.ScopeAccessScopes (default
// idporten:scopes.write, what NAV's digdirator asks for; undocumented).
const (
	scopeDCRRead     = "idporten:dcr.read"
	scopeDCRWrite    = "idporten:dcr.write"
	scopeDCRModify   = "idporten:dcr.modify"
	scopeScopesWrite = "idporten:scopes.write"
)

// principal is the organisation behind a self-service request.
type principal struct {
	orgNo    string
	clientID string
	scopes   map[string]bool
}

func (p *principal) has(any ...string) bool {
	for _, s := range any {
		if p.scopes[s] {
			return true
		}
	}
	return false
}

func (w *world) selfServiceRoutes(mux *http.ServeMux, prefix string) {
	api := prefix + "/api/v1"
	mux.HandleFunc("GET "+api+"/clients", w.authed(w.listClients, scopeDCRRead))
	mux.HandleFunc("POST "+api+"/clients", w.authed(w.createClient, scopeDCRWrite))
	mux.HandleFunc("GET "+api+"/clients/{id}", w.authed(w.getClient, scopeDCRRead))
	mux.HandleFunc("PUT "+api+"/clients/{id}", w.authed(w.updateClient, scopeDCRWrite, scopeDCRModify))
	mux.HandleFunc("DELETE "+api+"/clients/{id}", w.authed(w.deleteClient, scopeDCRWrite))
	mux.HandleFunc("GET "+api+"/clients/{id}/jwks", w.authed(w.getJWKS, scopeDCRRead))
	mux.HandleFunc("POST "+api+"/clients/{id}/jwks", w.authed(w.replaceJWKS, scopeDCRWrite, scopeDCRModify))
	mux.HandleFunc("PUT "+api+"/clients/{id}/jwks", w.authed(w.replaceJWKS, scopeDCRWrite, scopeDCRModify))
	mux.HandleFunc("DELETE "+api+"/clients/{id}/jwks", w.authed(w.deleteJWKS, scopeDCRWrite, scopeDCRModify))
	mux.HandleFunc("GET "+api+"/scopes/all", w.listAllScopes)
	accessScopes := w.s.cfg.Quirks.ScopeAccessScopes
	if len(accessScopes) == 0 {
		accessScopes = []string{scopeScopesWrite}
	}
	mux.HandleFunc("GET "+api+"/scopes/access/all", w.authed(w.listAccess, accessScopes...))
	mux.HandleFunc(prefix+"/", func(rw http.ResponseWriter, r *http.Request) {
		writeAPIError(rw, http.StatusNotFound, generalError("No endpoint "+r.Method+" "+strings.TrimPrefix(r.URL.Path, prefix)))
	})
}

type authedHandler func(rw http.ResponseWriter, r *http.Request, p *principal)

// authed demands a Maskinporten token of this environment holding one of scopes.
func (w *world) authed(h authedHandler, scopes ...string) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			tok, ok = strings.CutPrefix(auth, "bearer ")
		}
		if !ok || tok == "" {
			rw.Header().Set("WWW-Authenticate", `Bearer`)
			writeAPIError(rw, http.StatusUnauthorized, generalError("Full authentication is required to access this resource"))
			return
		}
		c, err := w.verifyAccessToken(tok, w.clock.now())
		if err != nil {
			rw.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeAPIError(rw, http.StatusUnauthorized, generalError("Invalid access token: "+err.Error()))
			return
		}
		// Digdir: "Selvbetjeningsklienten må bruke virksomhetssertifikat". A client that
		// authenticated with a registered key gets a token, but not one this API takes.
		if c.ClientAmr != amrBusinessCertificate {
			writeAPIError(rw, http.StatusForbidden, generalError("The self-service API accepts only tokens of clients that authenticate with a business certificate (client_amr "+
				amrBusinessCertificate+"); this token's client_amr is "+c.ClientAmr))
			return
		}
		p := &principal{clientID: c.ClientID, scopes: map[string]bool{}}
		p.orgNo, _ = strings.CutPrefix(c.Consumer.ID, "0192:")
		for _, s := range strings.Fields(c.Scope) {
			p.scopes[s] = true
		}
		if !p.has(scopes...) {
			writeAPIError(rw, http.StatusForbidden, generalError("Insufficient scope for this operation, requires one of: "+strings.Join(scopes, ", ")))
			return
		}
		h(rw, r, p)
	}
}

func generalError(msg string) fieldError { return fieldError{ErrorMessage: msg} }

func fieldErr(object, field, msg string) fieldError {
	return fieldError{ErrorMessage: msg, IsFieldError: true, ObjectName: object, FieldIdentifier: field}
}

// writeAPIError writes Digdir's error body (§2.7): error and error_description repeat the
// messages, each preceded by ", " as the real API does.
func writeAPIError(rw http.ResponseWriter, status int, errs ...fieldError) {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString(", ")
		b.WriteString(e.ErrorMessage)
	}
	writeJSON(rw, status, apiError{
		Status: status, Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000000000Z"),
		CorrelationID: traceID(), Errors: errs, Error: b.String(), Description: b.String(),
	})
}

func decodeBody(r *http.Request, rw http.ResponseWriter, v any) bool {
	r.Body = http.MaxBytesReader(rw, r.Body, 1<<20)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeAPIError(rw, http.StatusBadRequest, generalError("Invalid JSON in request body: "+err.Error()))
		return false
	}
	return true
}

// applyClientDefaults fills what Digdir fills for a Maskinporten client (§2.4).
func applyClientDefaults(c *client) {
	if c.IntegrationType == "" {
		c.IntegrationType = "maskinporten"
	}
	if c.ApplicationType == "" {
		c.ApplicationType = "web"
	}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = "private_key_jwt"
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{grantTypeJWTBearer}
	}
	if c.AccessTokenLifetime == 0 {
		c.AccessTokenLifetime = 120
	}
	if c.AuthorizationLifetime == 0 {
		c.AuthorizationLifetime = 7200
	}
	if c.RefreshTokenLifetime == 0 {
		c.RefreshTokenLifetime = 600
	}
	if c.RefreshTokenUsage == "" {
		c.RefreshTokenUsage = "ONETIME"
	}
	if c.Scopes == nil {
		c.Scopes = []string{}
	}
}

// buildClient validates a create (old == nil) or update request and returns the resulting
// client. Field errors are collected so a caller sees all problems at once.
func (w *world) buildClient(req *clientRequest, orgNo string, old *client) (client, []fieldError) {
	const obj = "Client"
	var errs []fieldError
	var c client
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return strings.TrimSpace(*p)
	}
	switch it := str(req.IntegrationType); {
	case old != nil && it != "" && it != old.IntegrationType:
		errs = append(errs, fieldErr(obj, "integration_type", "integration_type can not be changed"))
	case old == nil && it == "":
		errs = append(errs, fieldErr(obj, "integration_type", "integration_type is required"))
	case it != "" && it != "maskinporten":
		errs = append(errs, fieldErr(obj, "integration_type", "integration_type "+it+" is not supported by the simulator, only maskinporten"))
	}
	if old != nil {
		// PUT replaces the client: Digdir asks for the GET result without the server-set
		// members, and scopes always sent (an absent list is not "no scopes").
		for _, m := range req.readOnlyMembers() {
			errs = append(errs, fieldErr(obj, m, m+" is set by the server and must not be sent when updating a client; send the GET result without created, last_updated and jwks_uri"))
		}
		if req.Scopes == nil {
			errs = append(errs, fieldErr(obj, "scopes", "scopes is required when updating a client; send [] to remove every scope"))
		}
	}
	c.IntegrationType = "maskinporten"
	if c.ClientName = str(req.ClientName); c.ClientName == "" {
		errs = append(errs, fieldErr(obj, "client_name", "client_name is required"))
	} else if len(c.ClientName) > 255 {
		errs = append(errs, fieldErr(obj, "client_name", "client_name is longer than 255 characters"))
	}
	if c.Description = str(req.Description); c.Description == "" {
		errs = append(errs, fieldErr(obj, "description", "description is required"))
	}
	if at := str(req.ApplicationType); at != "" && at != "web" {
		errs = append(errs, fieldErr(obj, "application_type", "application_type must be web for maskinporten clients"))
	}
	if m := str(req.TokenEndpointAuthMethod); m != "" && m != "private_key_jwt" {
		errs = append(errs, fieldErr(obj, "token_endpoint_auth_method", "token_endpoint_auth_method must be private_key_jwt for maskinporten clients"))
	}
	if req.GrantTypes != nil {
		gts := *req.GrantTypes
		if len(gts) != 1 || (gts[0] != grantTypeJWTBearer && gts[0] != "jwt_bearer_token") {
			errs = append(errs, fieldErr(obj, "grant_types", "grant_types must be ["+grantTypeJWTBearer+"] for maskinporten clients"))
		}
	}
	if req.ClientSecret != nil {
		errs = append(errs, fieldErr(obj, "client_secret", "maskinporten clients can not have a client_secret"))
	}
	if len(req.RedirectURIs) > 0 {
		errs = append(errs, fieldErr(obj, "redirect_uris", "redirect_uris are not allowed for maskinporten clients"))
	}
	if o := str(req.ClientOrgno); o != "" && o != orgNo {
		errs = append(errs, fieldErr(obj, "client_orgno", "client_orgno must be the organisation of the access token ("+orgNo+")"))
	}
	lifetime := func(field string, p *int) int {
		if p == nil {
			return 0
		}
		if *p <= 0 {
			errs = append(errs, fieldErr(obj, field, field+" must be greater than 0; leave it out to get the default"))
		}
		return *p
	}
	c.AccessTokenLifetime = lifetime("access_token_lifetime", req.AccessTokenLifetime)
	c.AuthorizationLifetime = lifetime("authorization_lifetime", req.AuthorizationLifetime)
	c.RefreshTokenLifetime = lifetime("refresh_token_lifetime", req.RefreshTokenLifetime)
	if u := str(req.RefreshTokenUsage); u != "" && u != "ONETIME" && u != "REUSE" {
		errs = append(errs, fieldErr(obj, "refresh_token_usage", "refresh_token_usage must be ONETIME or REUSE"))
	} else {
		c.RefreshTokenUsage = u
	}
	c.Scopes = []string{}
	seen := map[string]bool{}
	for _, s := range req.Scopes {
		if seen[s] {
			continue
		}
		seen[s] = true
		sc := w.view.scope(s)
		switch {
		case sc == nil || !sc.Active:
			errs = append(errs, fieldErr(obj, "scopes", "scope "+s+" does not exist"))
		case !sc.allowsMaskinporten():
			errs = append(errs, fieldErr(obj, "scopes", "scope "+s+" is not allowed for integration_type maskinporten"))
		case !w.view.granted(s, orgNo):
			errs = append(errs, fieldErr(obj, "scopes", "organization "+orgNo+" does not have access to scope "+s))
		default:
			c.Scopes = append(c.Scopes, s)
		}
	}
	c.ClientOrgno = orgNo
	applyClientDefaults(&c)
	return c, errs
}

func (w *world) listClients(rw http.ResponseWriter, r *http.Request, p *principal) {
	inactive, fes := parseBoolParam(r.URL.Query(), "inactive")
	if len(fes) > 0 {
		writeAPIError(rw, http.StatusBadRequest, fes...)
		return
	}
	q := `SELECT body FROM sim_clients WHERE env = ? AND client_orgno = ?`
	if !inactive {
		q += ` AND active = 1`
	}
	rows, err := w.s.rdb.QueryContext(r.Context(), q+` ORDER BY json_extract(body, '$.created'), client_id`, w.name, p.orgNo)
	if err != nil {
		w.internalError(rw, "list clients", err)
		return
	}
	defer rows.Close()
	out := []json.RawMessage{}
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			w.internalError(rw, "list clients", err)
			return
		}
		out = append(out, json.RawMessage(b))
	}
	if err := rows.Err(); err != nil {
		w.internalError(rw, "list clients", err)
		return
	}
	writeJSON(rw, http.StatusOK, out)
}

func (w *world) internalError(rw http.ResponseWriter, op string, err error) {
	w.s.log.Error("self-service "+op, "env", w.name, "err", err)
	writeAPIError(rw, http.StatusInternalServerError, generalError("Internal error"))
}

var errNotFound = errors.New("not found")

// loadClient reads a client of orgNo; inactive ones only when asked for.
func (w *world) loadClient(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id, orgNo string, inactive bool) (*client, error) {
	var body string
	err := q.QueryRowContext(ctx, `SELECT body FROM sim_clients WHERE env = ? AND client_id = ? AND client_orgno = ?`,
		w.name, id, orgNo).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load client %s: %w", id, err)
	}
	var c client
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		return nil, fmt.Errorf("load client %s: %w", id, err)
	}
	if !c.Active && !inactive {
		return nil, errNotFound
	}
	return &c, nil
}

func notFound(rw http.ResponseWriter, id string) {
	writeAPIError(rw, http.StatusNotFound, generalError("Client "+id+" not found"))
}

func (w *world) getClient(rw http.ResponseWriter, r *http.Request, p *principal) {
	inactive, fes := parseBoolParam(r.URL.Query(), "inactive")
	if len(fes) > 0 {
		writeAPIError(rw, http.StatusBadRequest, fes...)
		return
	}
	id := r.PathValue("id")
	c, err := w.loadClient(r.Context(), w.s.rdb, id, p.orgNo, inactive)
	switch {
	case errors.Is(err, errNotFound):
		notFound(rw, id)
	case err != nil:
		w.internalError(rw, "get client", err)
	default:
		writeJSON(rw, http.StatusOK, c)
	}
}

func (w *world) createClient(rw http.ResponseWriter, r *http.Request, p *principal) {
	var req clientRequest
	if !decodeBody(r, rw, &req) {
		return
	}
	c, fes := w.buildClient(&req, p.orgNo, nil)
	if len(fes) > 0 {
		writeAPIError(rw, http.StatusBadRequest, fes...)
		return
	}
	now := w.clock.now()
	c.ClientID = uuid.NewString()
	c.JWKSURI = clientJWKSURI(c.ClientID)
	c.Created, c.LastUpdated = timestamp(now), timestamp(now)
	c.Active = true
	body, err := json.Marshal(c)
	if err != nil {
		w.internalError(rw, "create client", err)
		return
	}
	if _, err := w.s.wdb.ExecContext(r.Context(), `INSERT INTO sim_clients (env, client_id, client_orgno, active, body)
		VALUES (?, ?, ?, 1, ?)`, w.name, c.ClientID, c.ClientOrgno, string(body)); err != nil {
		w.internalError(rw, "create client", err)
		return
	}
	w.s.log.Info("sim client created", "env", w.name, "client_id", c.ClientID, "org", p.orgNo)
	w.publishClient(r.Context(), c.ClientID)
	writeJSON(rw, http.StatusCreated, c)
}

func (w *world) updateClient(rw http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	var req clientRequest
	if !decodeBody(r, rw, &req) {
		return
	}
	var out client
	err := w.inTx(r.Context(), func(tx *sql.Tx) error {
		old, err := w.loadClient(r.Context(), tx, id, p.orgNo, false)
		if err != nil {
			return err
		}
		c, fes := w.buildClient(&req, p.orgNo, old)
		if len(fes) > 0 {
			return validationError(fes)
		}
		c.ClientID, c.Created, c.Active, c.JWKSURI = old.ClientID, old.Created, true, clientJWKSURI(old.ClientID)
		c.LastUpdated = timestamp(w.clock.now())
		body, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(r.Context(), `UPDATE sim_clients SET body = ? WHERE env = ? AND client_id = ?`,
			string(body), w.name, id); err != nil {
			return fmt.Errorf("update client: %w", err)
		}
		out = c
		return nil
	})
	if w.writeTxError(rw, id, "update client", err) {
		return
	}
	w.publishClient(r.Context(), id)
	writeJSON(rw, http.StatusOK, out)
}

// deleteClient deactivates: Digdir never deletes entities physically (§2.3).
func (w *world) deleteClient(rw http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	err := w.inTx(r.Context(), func(tx *sql.Tx) error {
		c, err := w.loadClient(r.Context(), tx, id, p.orgNo, false)
		if err != nil {
			return err
		}
		c.Active = false
		c.LastUpdated = timestamp(w.clock.now())
		body, err := json.Marshal(c)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(r.Context(), `UPDATE sim_clients SET active = 0, body = ? WHERE env = ? AND client_id = ?`,
			string(body), w.name, id)
		return err
	})
	if w.writeTxError(rw, id, "delete client", err) {
		return
	}
	w.s.log.Info("sim client deactivated", "env", w.name, "client_id", id)
	w.publishClient(r.Context(), id)
	rw.WriteHeader(http.StatusOK)
}

// clientJWKSURI is the relative jwks_uri the real API shows on a client (§2.4, Oslo's fixture).
func clientJWKSURI(id string) string { return "/clients/" + id + "/jwks" }

type validationError []fieldError

func (v validationError) Error() string { return "validation failed" }

func (w *world) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := w.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// writeTxError answers a failed transaction and reports whether it did.
func (w *world) writeTxError(rw http.ResponseWriter, id, op string, err error) bool {
	var ve validationError
	switch {
	case err == nil:
		return false
	case errors.Is(err, errNotFound):
		notFound(rw, id)
	case errors.As(err, &ve):
		writeAPIError(rw, http.StatusBadRequest, ve...)
	default:
		w.internalError(rw, op, err)
	}
	return true
}

// publishClient hands a client's new state to the simulated Maskinporten, after the
// propagation delay when one is set.
func (w *world) publishClient(ctx context.Context, id string) {
	cs, err := loadMPClients(context.WithoutCancel(ctx), w.s.wdb, w.name, id)
	if err != nil {
		w.s.log.Error("publish client", "env", w.name, "client_id", id, "err", err)
		return
	}
	now := w.clock.now()
	w.view.publish(id, cs[id], now.Add(w.s.cfg.PropagationDelay), now)
}

func (w *world) listAllScopes(rw http.ResponseWriter, r *http.Request) {
	f, fes := parseScopeFilter(r.URL.Query())
	if len(fes) > 0 {
		writeAPIError(rw, http.StatusBadRequest, fes...)
		return
	}
	w.view.mu.RLock()
	out := make([]Scope, 0, len(w.view.scopes))
	for _, sc := range w.view.scopes {
		if sc.Visibility == "PUBLIC" && f.match(sc) {
			out = append(out, *sc)
		}
	}
	w.view.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(rw, http.StatusOK, out)
}

func (w *world) listAccess(rw http.ResponseWriter, r *http.Request, p *principal) {
	f, fes := parseScopeFilter(r.URL.Query())
	if len(fes) > 0 {
		writeAPIError(rw, http.StatusBadRequest, fes...)
		return
	}
	rows, err := w.s.rdb.QueryContext(r.Context(), `SELECT scope, state, created, last_updated FROM sim_scope_access
		WHERE env = ? AND consumer_orgno = ? ORDER BY scope`, w.name, p.orgNo)
	if err != nil {
		w.internalError(rw, "list access", err)
		return
	}
	defer rows.Close()
	out := []scopeAccess{}
	for rows.Next() {
		a := scopeAccess{ConsumerOrgno: p.orgNo}
		if err := rows.Scan(&a.Scope, &a.State, &a.Created, &a.LastUpdated); err != nil {
			w.internalError(rw, "list access", err)
			return
		}
		sc := w.view.scope(a.Scope)
		if sc == nil || !f.match(sc) {
			continue
		}
		a.OwnerOrgno = sc.OwnerOrgno
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		w.internalError(rw, "list access", err)
		return
	}
	writeJSON(rw, http.StatusOK, out)
}
