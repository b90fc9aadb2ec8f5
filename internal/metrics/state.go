package metrics

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot is the portal's state as read for one scrape.
type Snapshot struct {
	Syncs []Sync
	Chain *Chain // nil: no audit log to read
	Keys  []KeyExpiry
	Head  *Head // the audit chain head last published; nil before the first
}

// Sync is the outcome of an environment's last sync of its mirror.
type Sync struct {
	Env        string
	Never      bool // not synced yet: only Running is known
	Running    bool
	OK         bool
	FinishedAt time.Time
	LastOKAt   time.Time // zero when no sync has succeeded
	Clients    int       // integrations the last sync found upstream
}

// Chain is the audit chain's state as its incremental verification found it.
type Chain struct {
	VerifiedThrough int64 // the newest event verified
	OK              bool  // false when an event after the checkpoint does not verify
}

// KeyExpiry is when one key of an active integration expires.
type KeyExpiry struct {
	Env, ClientID, Kid string
	Expires            time.Time
}

var (
	syncRunning = prometheus.NewDesc("portal_sync_running",
		"Whether a sync of the environment's mirror is running (1) or not (0).", []string{"env"}, nil)
	syncOK = prometheus.NewDesc("portal_sync_ok",
		"Whether the environment's last sync succeeded (1) or failed (0); absent before the first.", []string{"env"}, nil)
	syncLast = prometheus.NewDesc("portal_sync_last_run_timestamp_seconds",
		"When the environment's last sync finished, successful or not, in seconds since the Unix epoch.", []string{"env"}, nil)
	syncLastOK = prometheus.NewDesc("portal_sync_last_success_timestamp_seconds",
		"When the environment's last successful sync finished, in seconds since the Unix epoch.", []string{"env"}, nil)
	syncClients = prometheus.NewDesc("portal_sync_clients",
		"Integrations the environment's last sync found upstream and mirrored.", []string{"env"}, nil)
	chainVerified = prometheus.NewDesc("portal_audit_chain_verified_event_id",
		"The newest audit event the hash chain is verified up to.", nil, nil)
	headID = prometheus.NewDesc("portal_audit_chain_published_head_event_id",
		"The audit event at the head of the chain when it was last published (at start and every hour).", nil, nil)
	// The hash changes only when a head is published, so this makes about one series an hour.
	headHash = prometheus.NewDesc("portal_audit_chain_published_head_info",
		"The hash of the audit chain head last published, as a label; compare with portal audit verify --heads.", []string{"id", "hash"}, nil)
	chainOK = prometheus.NewDesc("portal_audit_chain_ok",
		"Whether the audit hash chain verifies (1) or is broken after the verified event (0).", nil, nil)
	keyExpiry = prometheus.NewDesc("portal_key_expiry_timestamp_seconds",
		"When each key of each active integration expires, in seconds since the Unix epoch (keys without exp are left out).",
		[]string{"env", "client_id", "kid"}, nil)
)

// snapshotCollector exports a Snapshot. It describes nothing up front (an unchecked
// collector): its series exist only for the scrape that read them.
type snapshotCollector struct{ s Snapshot }

func (snapshotCollector) Describe(chan<- *prometheus.Desc) {}

func (c snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	// A panic here would end the process (Collect runs in the registry's goroutines), so a
	// series whose labels are not valid is left out instead.
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		if m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, labels...); err == nil {
			ch <- m
		}
	}
	for _, s := range c.s.Syncs {
		gauge(syncRunning, boolValue(s.Running), s.Env)
		if s.Never {
			continue
		}
		gauge(syncOK, boolValue(s.OK), s.Env)
		gauge(syncLast, unix(s.FinishedAt), s.Env)
		gauge(syncClients, float64(s.Clients), s.Env)
		if !s.LastOKAt.IsZero() {
			gauge(syncLastOK, unix(s.LastOKAt), s.Env)
		}
	}
	if h := c.s.Head; h != nil {
		gauge(headID, float64(h.ID))
		gauge(headHash, 1, strconv.FormatInt(h.ID, 10), h.Hash)
	}
	if chain := c.s.Chain; chain != nil {
		gauge(chainVerified, float64(chain.VerifiedThrough))
		gauge(chainOK, boolValue(chain.OK))
	}
	seen := map[[3]string]bool{}
	for _, k := range c.s.Keys {
		// Kids come from outside; make them valid label values.
		id := [3]string{k.Env, strings.ToValidUTF8(k.ClientID, "\uFFFD"), strings.ToValidUTF8(k.Kid, "\uFFFD")}
		if k.Expires.IsZero() || seen[id] {
			continue
		}
		seen[id] = true
		gauge(keyExpiry, float64(k.Expires.Unix()), id[:]...)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
