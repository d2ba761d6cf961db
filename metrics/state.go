package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/msnbridge/msnbridge/bridge"
)

// stateCollector turns a bridge.Stats snapshot into gauges at scrape time,
// so that they are never stale and the core keeps no gauges of its own.
type stateCollector struct {
	mu    sync.Mutex
	stats StatsFunc

	logins, switchboards, queued, up *prometheus.Desc
}

func newStateCollector() *stateCollector {
	return &stateCollector{
		logins: prometheus.NewDesc(namespace+"_logins", "MSN logins by state.", []string{"state"}, nil),
		switchboards: prometheus.NewDesc(namespace+"_switchboards_open",
			"MSN switchboard (conversation) connections open.", nil, nil),
		queued: prometheus.NewDesc(namespace+"_queued_events",
			"Events waiting to be delivered to frontends (all users).", nil, nil),
		up: prometheus.NewDesc(namespace+"_stats_up",
			"1 when the last scrape could read the core's state (the store answered), else 0.", nil, nil),
	}
}

func (c *stateCollector) set(f StatsFunc) {
	c.mu.Lock()
	c.stats = f
	c.mu.Unlock()
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.logins
	ch <- c.switchboards
	ch <- c.queued
	ch <- c.up
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	f := c.stats
	c.mu.Unlock()
	if f == nil {
		return // not watching a core (yet)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := f(ctx)
	// The logins and switchboards are known even when the store is not.
	for _, s := range bridge.LoginStates {
		ch <- prometheus.MustNewConstMetric(c.logins, prometheus.GaugeValue, float64(st.Logins[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(c.switchboards, prometheus.GaugeValue, float64(st.Switchboards))
	up := 1.0
	if err != nil {
		up = 0
	} else {
		ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(st.Queued))
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
}
