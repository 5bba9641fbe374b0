/*
Copyright 2026 The Kubernetes Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package keeper

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are image-keeper's Prometheus metrics, in their own registry.
type Metrics struct {
	Registry      *prometheus.Registry
	wanted        prometheus.Gauge
	present       prometheus.Gauge
	pulls         *prometheus.CounterVec
	pullDuration  *prometheus.HistogramVec
	lastReconcile prometheus.Gauge
	configStale   prometheus.Gauge
	slotWait      prometheus.Histogram
}

// NewMetrics registers image-keeper's metrics, and Go and process metrics, in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		wanted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "image_keeper_wanted_images",
			Help: "Number of images image-keeper keeps present.",
		}),
		present: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "image_keeper_present_images",
			Help: "Number of wanted images present in the container runtime at the last pass.",
		}),
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "image_keeper_pulls_total",
			Help: "Pulls of missing images, by result (success, failure).",
		}, []string{"result"}),
		pullDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "image_keeper_pull_duration_seconds",
			Help:    "Duration of pulls of missing images, by result.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14), // 50 ms .. ~7 min
		}, []string{"result"}),
		lastReconcile: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "image_keeper_last_reconcile_timestamp_seconds",
			Help: "Unix time of the last pass that reached the container runtime.",
		}),
		configStale: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "image_keeper_config_stale",
			Help: "1 while the last configuration reload failed and the previous configuration is in force, else 0.",
		}),
		slotWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "image_keeper_pull_slot_wait_seconds",
			Help:    "Time waited for one of the cluster's pull slots (--pull-slots) before pulling.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 20), // 10 ms .. ~87 min (GiveUpAfter is 1 h)
		}),
	}
	m.Registry.MustRegister(m.wanted, m.present, m.pulls, m.pullDuration, m.lastReconcile, m.configStale, m.slotWait,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Both results exist from the start, so a rate() over them is defined before the first pull.
	for _, result := range []string{"success", "failure"} {
		m.pulls.WithLabelValues(result)
	}
	return m
}

func (m *Metrics) observePull(result string, d time.Duration) {
	m.pulls.WithLabelValues(result).Inc()
	m.pullDuration.WithLabelValues(result).Observe(d.Seconds())
}
