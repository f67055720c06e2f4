package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdict-authz/verdict/loader"
)

// registerFleetMetrics exports the shared state's follower (--state-db):
// revisions, lag, staleness and the connection, read at each scrape.
func registerFleetMetrics(reg *prometheus.Registry, ld *loader.Loader) {
	gauge := func(name, help string, value func(*loader.FleetStatus) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			st := ld.FleetStatus()
			if st == nil {
				return 0
			}
			return value(st)
		})
	}
	boolean := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	reg.MustRegister(
		gauge("verdict_state_applied_revision", "The last change of the shared run-time state applied by this sidecar.",
			func(s *loader.FleetStatus) float64 { return float64(s.AppliedRevision) }),
		gauge("verdict_state_head_revision", "The last change the state database was seen to hold.",
			func(s *loader.FleetStatus) float64 { return float64(s.HeadRevision) }),
		gauge("verdict_state_lag_changes", "Changes the database holds that this sidecar has not applied yet.",
			func(s *loader.FleetStatus) float64 { return float64(s.Lag) }),
		gauge("verdict_state_staleness_seconds", "Seconds since the run-time state was last confirmed current.",
			func(s *loader.FleetStatus) float64 { return s.StalenessSeconds }),
		gauge("verdict_state_stale", "1 while the run-time state is older than --state-max-staleness (consent-based allows are denied).",
			func(s *loader.FleetStatus) float64 { return boolean(s.Stale) }),
		gauge("verdict_state_connected", "1 while the last exchange with the state database succeeded.",
			func(s *loader.FleetStatus) float64 { return boolean(s.Connected) }),
	)
}
