// Package metrics owns what monitoring sees of the bridge: the Prometheus
// metrics (through prometheus/client_golang) and the /health and /ready
// checks. It implements bridge.Observer for what happens (messages, errors,
// MSN round trips) and reads bridge.Stats at scrape time for what is (logins
// by state, switchboards, queued events). It lives outside bridge/ so that
// the core stays free of any metrics library, and outside cmd/ so that it
// can be tested against the real core.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/msnbridge/msnbridge/bridge"
)

const namespace = "msnbridge"

// StatsFunc reports the core's state; (*bridge.Bridge).Stats is one.
type StatsFunc func(ctx context.Context) (bridge.Stats, error)

// Metrics is the bridge's Prometheus registry. Pass it as
// bridge.Options.Observer, then call Watch with the core's Stats.
type Metrics struct {
	reg      *prometheus.Registry
	messages *prometheus.CounterVec
	errors   *prometheus.CounterVec
	rtt      prometheus.Histogram
	state    *stateCollector
}

var _ bridge.Observer = (*Metrics)(nil)

// New makes the registry with the Go runtime and process collectors and the
// bridge's own metrics.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "messages_bridged_total",
			Help: "Messages bridged, by direction (to_msn, from_msn) and frontend (matrix, xmpp).",
		}, []string{"direction", "frontend"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "errors_total",
			Help: "Failures by kind: login, auth, send, delivery, dropped, queue, store.",
		}, []string{"kind"}),
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "msn_round_trip_seconds",
			Help:    "Time from an MSN keepalive (PNG) to the server's answer (QNG).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		state: newStateCollector(),
	}
	// Zero series for every kind, so that rate() works from the first scrape.
	for _, k := range []bridge.ErrorKind{bridge.ErrorLogin, bridge.ErrorAuth, bridge.ErrorSend,
		bridge.ErrorDelivery, bridge.ErrorDropped, bridge.ErrorQueue, bridge.ErrorStore} {
		m.errors.WithLabelValues(string(k))
	}
	m.reg.MustRegister(m.messages, m.errors, m.rtt, m.state,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// MessageBridged implements bridge.Observer.
func (m *Metrics) MessageBridged(frontend string, dir bridge.Direction) {
	m.messages.WithLabelValues(string(dir), frontend).Inc()
}

// Error implements bridge.Observer.
func (m *Metrics) Error(kind bridge.ErrorKind) { m.errors.WithLabelValues(string(kind)).Inc() }

// RoundTrip implements bridge.Observer.
func (m *Metrics) RoundTrip(d time.Duration) { m.rtt.Observe(d.Seconds()) }

// Watch makes every scrape read the core's state through stats.
func (m *Metrics) Watch(stats StatsFunc) { m.state.set(stats) }

// Registry is the registry behind Handler, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
