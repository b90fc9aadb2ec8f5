package benchutil

import (
	"slices"
	"sync"
	"time"
)

// Quantile returns the q-quantile (0..1) of sorted by the nearest-rank method.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Sample is one request: when it started (since the recorder's start), how long it took,
// and whether it failed.
type Sample struct {
	At      time.Duration
	Latency time.Duration
	Failed  bool
}

// Recorder collects samples by name, safe for concurrent use.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	by    map[string][]Sample
	first map[string]string // first failure per name
}

// NewRecorder starts a recorder's clock.
func NewRecorder(start time.Time) *Recorder {
	return &Recorder{start: start, by: map[string][]Sample{}, first: map[string]string{}}
}

// Start is the recorder's time zero.
func (r *Recorder) Start() time.Time { return r.start }

// Add records a request that started at t and took d; failure describes it when it failed.
func (r *Recorder) Add(name string, t time.Time, d time.Duration, failure string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.by[name] = append(r.by[name], Sample{At: t.Sub(r.start), Latency: d, Failed: failure != ""})
	if failure != "" && r.first[name] == "" {
		r.first[name] = failure
	}
}

// Names lists the recorded names in order.
func (r *Recorder) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n := range r.by {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Samples returns a copy of name's samples.
func (r *Recorder) Samples(name string) []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.by[name])
}

// FirstFailure is the first failure recorded for name.
func (r *Recorder) FirstFailure(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first[name]
}

// Summary is the statistics of a set of samples within a window.
type Summary struct {
	N, Errors     int
	P50, P95, P99 time.Duration
	Mean          time.Duration
}

// Summarize computes the statistics of the samples that started in [from, to); the
// percentiles cover successful requests only.
func Summarize(samples []Sample, from, to time.Duration) Summary {
	var s Summary
	var lats []time.Duration
	var sum time.Duration
	for _, x := range samples {
		if x.At < from || x.At >= to {
			continue
		}
		s.N++
		if x.Failed {
			s.Errors++
			continue
		}
		lats = append(lats, x.Latency)
		sum += x.Latency
	}
	if len(lats) == 0 {
		return s
	}
	slices.Sort(lats)
	s.P50, s.P95, s.P99 = Quantile(lats, 0.50), Quantile(lats, 0.95), Quantile(lats, 0.99)
	s.Mean = sum / time.Duration(len(lats))
	return s
}

// PerInterval returns the q-quantile of the successful samples per interval from 0 to end;
// intervals without samples are -1.
func PerInterval(samples []Sample, interval, end time.Duration, q float64) []time.Duration {
	n := int((end + interval - 1) / interval)
	buckets := make([][]time.Duration, n)
	for _, x := range samples {
		if x.Failed || x.At < 0 || x.At >= end {
			continue
		}
		i := int(x.At / interval)
		buckets[i] = append(buckets[i], x.Latency)
	}
	out := make([]time.Duration, n)
	for i, b := range buckets {
		if len(b) == 0 {
			out[i] = -1
			continue
		}
		slices.Sort(b)
		out[i] = Quantile(b, q)
	}
	return out
}
