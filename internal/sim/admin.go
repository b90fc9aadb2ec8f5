package sim

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// AdminCredentials is the content of DataDir/sim-{env}-admin.json: everything a client needs
// to use the environment's self-service API as the seeded service owner.
type AdminCredentials struct {
	Issuer              string   `json:"issuer"`
	SelfServiceURL      string   `json:"selfservice_url"`
	PlatformURL         string   `json:"platform_url"`
	Org                 string   `json:"org"`
	OrgNo               string   `json:"orgno"`
	ClientID            string   `json:"client_id"`
	Scopes              []string `json:"scopes"`
	CertificateChainPEM string   `json:"certificate_chain_pem"` // business certificate, then the CA
	PrivateKeyPEM       string   `json:"private_key_pem"`       // PKCS#8
}

// AdminFile is the path of an environment's admin credential file.
func AdminFile(dataDir, env string) string {
	return filepath.Join(dataDir, "sim-"+env+"-admin.json")
}

// AdminCredentials returns what the environment's admin file holds.
func (s *Sim) AdminCredentials(env string) (AdminCredentials, error) {
	w, err := s.world(env)
	if err != nil {
		return AdminCredentials{}, err
	}
	return w.adminCredentials()
}

func (w *world) adminCredentials() (AdminCredentials, error) {
	key, err := encodeKeyPEM(w.adminKey)
	if err != nil {
		return AdminCredentials{}, err
	}
	return AdminCredentials{
		Issuer:              w.issuer,
		SelfServiceURL:      w.ssURL,
		PlatformURL:         w.platURL,
		Org:                 w.s.cfg.OrgCode,
		OrgNo:               w.s.cfg.OrgNo,
		ClientID:            w.adminClientID,
		Scopes:              append([]string(nil), adminScopes...),
		CertificateChainPEM: encodeCertPEM(w.adminCert.Raw) + encodeCertPEM(w.caCert.Raw),
		PrivateKeyPEM:       key,
	}, nil
}

// writeAdminFile writes the credentials with mode 0600 through a temporary file, so a reader
// never sees half a file.
func (w *world) writeAdminFile() error {
	c, err := w.adminCredentials()
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("admin file: %w", err)
	}
	path := AdminFile(w.s.cfg.DataDir, w.name)
	tmp, err := os.CreateTemp(w.s.cfg.DataDir, ".sim-admin-*")
	if err != nil {
		return fmt.Errorf("admin file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("admin file: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("admin file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("admin file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("admin file: %w", err)
	}
	return nil
}

// CAPEM returns an environment's test CA certificate in PEM.
func (s *Sim) CAPEM(env string) (string, error) {
	w, err := s.world(env)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.caCert.Raw})), nil
}

// adminRoutes serves the runtime switches for tests and demos:
//
//	GET    /sim/admin/faults                       all faults set
//	PUT    /sim/admin/faults/{env}/{upstream}      set (body: Faults JSON)
//	DELETE /sim/admin/faults/{env}/{upstream}      clear
//	GET    /sim/admin/clock                        now and offset per environment
//	POST   /sim/admin/clock/{env}                  {"shift": "24h"} or {"offset": "0s"}
//
// Only loopback peers reach them, even when the simulators listen elsewhere: the clock and the
// faults change what every client of the simulators sees, and they ask for no credentials.
func (s *Sim) adminRoutes(root *http.ServeMux) {
	mux := http.NewServeMux()
	root.Handle("/sim/admin/", loopbackOnly(mux))
	mux.HandleFunc("GET /sim/admin/faults", func(rw http.ResponseWriter, r *http.Request) {
		out := map[string]map[string]Faults{}
		for _, env := range Environments {
			out[env] = map[string]Faults{}
			for _, u := range upstreams {
				f, _ := s.FaultsOf(env, u)
				out[env][u] = f
			}
		}
		writeJSON(rw, http.StatusOK, out)
	})
	mux.HandleFunc("PUT /sim/admin/faults/{env}/{upstream}", func(rw http.ResponseWriter, r *http.Request) {
		var f Faults
		r.Body = http.MaxBytesReader(rw, r.Body, 64<<10)
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			adminError(rw, http.StatusBadRequest, "faults: "+err.Error())
			return
		}
		if err := s.SetFaults(r.PathValue("env"), r.PathValue("upstream"), f); err != nil {
			adminError(rw, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(rw, http.StatusOK, f)
	})
	mux.HandleFunc("DELETE /sim/admin/faults/{env}/{upstream}", func(rw http.ResponseWriter, r *http.Request) {
		if err := s.SetFaults(r.PathValue("env"), r.PathValue("upstream"), Faults{}); err != nil {
			adminError(rw, http.StatusBadRequest, err.Error())
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /sim/admin/clock", func(rw http.ResponseWriter, r *http.Request) {
		out := map[string]clockState{}
		for _, env := range Environments {
			out[env] = s.clockState(env)
		}
		writeJSON(rw, http.StatusOK, out)
	})
	mux.HandleFunc("POST /sim/admin/clock/{env}", func(rw http.ResponseWriter, r *http.Request) {
		env := r.PathValue("env")
		var in struct {
			Shift  string `json:"shift"`
			Offset string `json:"offset"`
		}
		r.Body = http.MaxBytesReader(rw, r.Body, 64<<10)
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			adminError(rw, http.StatusBadRequest, "clock: "+err.Error())
			return
		}
		if (in.Shift == "") == (in.Offset == "") {
			adminError(rw, http.StatusBadRequest, "clock: give exactly one of shift and offset")
			return
		}
		var err error
		if in.Shift != "" {
			var d time.Duration
			if d, err = time.ParseDuration(in.Shift); err == nil {
				_, err = s.ShiftClock(env, d)
			}
		} else {
			var d time.Duration
			if d, err = time.ParseDuration(in.Offset); err == nil {
				err = s.SetClockOffset(env, d)
			}
		}
		if err != nil {
			adminError(rw, http.StatusBadRequest, "clock: "+err.Error())
			return
		}
		writeJSON(rw, http.StatusOK, s.clockState(env))
	})
}

type clockState struct {
	Now    string `json:"now"`
	Offset string `json:"offset"`
}

func (s *Sim) clockState(env string) clockState {
	w := s.worlds[env]
	return clockState{
		Now:    w.clock.now().UTC().Format(time.RFC3339Nano),
		Offset: time.Duration(w.clock.offset.Load()).String(),
	}
}

// loopbackOnly refuses every request whose peer is not a loopback address.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !LoopbackPeer(r.RemoteAddr) {
			adminError(rw, http.StatusForbidden, "the simulator admin API answers only on loopback (127.0.0.1 or ::1)")
			return
		}
		next.ServeHTTP(rw, r)
	})
}

// LoopbackPeer reports whether a request's remote address (host:port) is a loopback address.
func LoopbackPeer(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func adminError(rw http.ResponseWriter, status int, msg string) {
	writeJSON(rw, status, map[string]string{"error": msg})
}

// sweepJTIs forgets used jtis whose grants can no longer be valid, per environment clock.
func (s *Sim) sweepJTIs() {
	defer s.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			for _, env := range Environments {
				now := s.worlds[env].clock.now().Unix()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := s.jtis.sweep(ctx, env, now); err != nil {
					s.log.Warn("sweep used jtis", "env", env, "err", err)
				}
				cancel()
			}
		}
	}
}
