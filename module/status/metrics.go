package status

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the counters as Prometheus metrics prefixed
// caddy_applog_. Register it in each config's registry (Caddy creates one
// per config); the values it reads are process-wide and keep counting
// across reloads.
type Collector struct{}

var (
	descRecords = prometheus.NewDesc("caddy_applog_records_total",
		"Records by facility and outcome (accepted, filtered, truncated, dropped).",
		[]string{"facility", "outcome"}, nil)
	descSourceRecords = prometheus.NewDesc("caddy_applog_source_records_total",
		"Records by the door they came in by and outcome (accepted, rejected).",
		[]string{"source", "outcome"}, nil)
	descRate = prometheus.NewDesc("caddy_applog_records_per_second",
		"Accepted records per second over the last minute, by facility.",
		[]string{"facility"}, nil)
	descWriterBytes = prometheus.NewDesc("caddy_applog_writer_bytes_total",
		"Bytes written by applog writers.", []string{"writer", "name"}, nil)
	descWriterEntries = prometheus.NewDesc("caddy_applog_writer_entries_total",
		"Entries written by applog writers.", []string{"writer", "name"}, nil)
	descWriterErrors = prometheus.NewDesc("caddy_applog_writer_errors_total",
		"Write errors of applog writers.", []string{"writer", "name"}, nil)
	descWriterDropped = prometheus.NewDesc("caddy_applog_writer_dropped_total",
		"Entries applog writers gave up on (full queue, oversize).", []string{"writer", "name"}, nil)
	descWriterTruncated = prometheus.NewDesc("caddy_applog_writer_truncated_total",
		"Entries applog writers cut to fit a datagram.", []string{"writer", "name"}, nil)
	descWriterRotations = prometheus.NewDesc("caddy_applog_writer_rotations_total",
		"File rotations done by applog writers.", []string{"writer", "name"}, nil)
	descWriterUnplaced = prometheus.NewDesc("caddy_applog_writer_unplaced_total",
		"Entries a rotate path template could not place, written to its fallback file.", []string{"writer", "name"}, nil)
	descSpoolDepth = prometheus.NewDesc("caddy_applog_spool_depth",
		"Records waiting in a writer's spool.", []string{"writer", "name"}, nil)
	descSpoolAge = prometheus.NewDesc("caddy_applog_spool_oldest_age_seconds",
		"Age of the oldest record waiting in a writer's spool.", []string{"writer", "name"}, nil)
	descUptime = prometheus.NewDesc("caddy_applog_uptime_seconds",
		"Seconds since the applog counters started.", nil, nil)
)

// Describe implements prometheus.Collector.
func (Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecords, descSourceRecords, descRate, descWriterBytes,
		descWriterEntries, descWriterErrors, descWriterDropped, descWriterTruncated, descWriterRotations, descWriterUnplaced, descSpoolDepth, descSpoolAge, descUptime} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (Collector) Collect(ch chan<- prometheus.Metric) {
	s := Take(time.Now())
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, f := range s.Facilities {
		counter(descRecords, f.Accepted, f.Name, "accepted")
		counter(descRecords, f.Filtered, f.Name, "filtered")
		counter(descRecords, f.Truncated, f.Name, "truncated")
		gauge(descRate, f.RatePerSecond, f.Name)
	}
	for _, src := range s.Sources {
		counter(descSourceRecords, src.Accepted, src.Name, "accepted")
		counter(descSourceRecords, src.Rejected, src.Name, "rejected")
	}
	for _, w := range s.Writers {
		counter(descWriterBytes, w.Bytes, w.Kind, w.Name)
		counter(descWriterEntries, w.Entries, w.Kind, w.Name)
		counter(descWriterErrors, w.Errors, w.Kind, w.Name)
		counter(descWriterDropped, w.Dropped, w.Kind, w.Name)
		counter(descWriterTruncated, w.Truncated, w.Kind, w.Name)
		counter(descWriterRotations, w.Rotations, w.Kind, w.Name)
		counter(descWriterUnplaced, w.Unplaced, w.Kind, w.Name)
		gauge(descSpoolDepth, float64(w.SpoolDepth), w.Kind, w.Name)
		gauge(descSpoolAge, w.SpoolOldestAgeSeconds, w.Kind, w.Name)
	}
	gauge(descUptime, s.UptimeSeconds)
}
