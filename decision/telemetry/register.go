package telemetry

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register adds other packages' collectors (the shadow candidate's) to the
// registry GET /metrics serves.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.registry.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}
