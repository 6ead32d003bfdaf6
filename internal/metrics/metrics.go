// Package metrics holds the service's Prometheus collectors, on a registry of its own so
// tests can build as many servers as they like.
package metrics

import (
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vehicle-data/vehicle-data/internal/admission"
)

// Metrics is the set of collectors the server updates.
type Metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	rowsIngested  prometheus.Counter
	chunkBytes    prometheus.Counter
	rowsExported  *prometheus.CounterVec
	uploadsPurged prometheus.Counter
}

// New registers the collectors, the Go runtime's and the figures of the pools, by name
// (label pool).
func New(pools map[string]*pgxpool.Pool) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vehicle_data_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vehicle_data_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"route", "method"}),
		rowsIngested: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vehicle_data_rows_ingested_total", Help: "Rows inserted by finalized uploads.",
		}),
		chunkBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vehicle_data_upload_chunk_bytes_total", Help: "Bytes of upload chunks received.",
		}),
		rowsExported: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vehicle_data_rows_exported_total", Help: "Rows written by exports, by format.",
		}, []string{"format"}),
		uploadsPurged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vehicle_data_uploads_purged_total", Help: "Abandoned uploads removed after the maximum age.",
		}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.rowsIngested, m.chunkBytes, m.rowsExported, m.uploadsPurged,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if len(pools) > 0 {
		m.reg.MustRegister(newPoolCollector(pools))
	}
	return m
}

// AddGates exposes the admission gates' figures: capacity, in use and refusals, by limit.
func (m *Metrics) AddGates(gates ...*admission.Gate) {
	if len(gates) > 0 {
		m.reg.MustRegister(&gateCollector{gates: gates})
	}
}

// AddReadStandby exposes where reads go and the read standby's lag, from state (the last
// check's: whether reads go to the standby, its lag and whether that is known).
func (m *Metrics) AddReadStandby(state func() (usable bool, lag time.Duration, lagKnown bool)) {
	m.reg.MustRegister(standbyCollector(state))
}

type standbyCollector func() (bool, time.Duration, bool)

var (
	standbyUsable = prometheus.NewDesc("vehicle_data_read_standby_usable", "1 while reads go to the read standby, 0 while they go to the primary.", nil, nil)
	standbyLag    = prometheus.NewDesc("vehicle_data_read_standby_lag_seconds", "How far the read standby was behind the primary at the last check; absent when unknown.", nil, nil)
)

func (c standbyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- standbyUsable
	ch <- standbyLag
}

func (c standbyCollector) Collect(ch chan<- prometheus.Metric) {
	usable, lag, known := c()
	v := 0.0
	if usable {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(standbyUsable, prometheus.GaugeValue, v)
	if known {
		ch <- prometheus.MustNewConstMetric(standbyLag, prometheus.GaugeValue, lag.Seconds())
	}
}

type gateCollector struct{ gates []*admission.Gate }

var (
	gateCapacity = prometheus.NewDesc("vehicle_data_limit_capacity", "Capacity of a concurrency limit (requests, or bytes for chunk-bytes-in-flight).", []string{"limit"}, nil)
	gateInUse    = prometheus.NewDesc("vehicle_data_limit_in_use", "Units of a concurrency limit in use.", []string{"limit"}, nil)
	gateRefused  = prometheus.NewDesc("vehicle_data_limit_refused_total", "Requests refused with a 503 at a concurrency limit.", []string{"limit"}, nil)
)

func (c *gateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- gateCapacity
	ch <- gateInUse
	ch <- gateRefused
}

func (c *gateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c.gates {
		st := g.Stats()
		ch <- prometheus.MustNewConstMetric(gateCapacity, prometheus.GaugeValue, float64(st.Capacity), st.Name)
		ch <- prometheus.MustNewConstMetric(gateInUse, prometheus.GaugeValue, float64(st.InUse), st.Name)
		ch <- prometheus.MustNewConstMetric(gateRefused, prometheus.CounterValue, float64(st.Refused), st.Name)
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveRequest records one finished request. route is the matched pattern, never the
// raw path, so the label set stays small.
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, statusLabel(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// RowsIngested counts rows inserted by a finalize.
func (m *Metrics) RowsIngested(n int64) { m.rowsIngested.Add(float64(n)) }

// ChunkBytes counts stored chunk bytes.
func (m *Metrics) ChunkBytes(n int64) { m.chunkBytes.Add(float64(n)) }

// RowsExported counts exported rows of one format.
func (m *Metrics) RowsExported(format string, n int64) {
	m.rowsExported.WithLabelValues(format).Add(float64(n))
}

func statusLabel(s int) string {
	const digits = "0123456789"
	if s < 100 || s > 999 {
		return "other"
	}
	return string([]byte{digits[s/100], digits[s/10%10], digits[s%10]})
}

// poolCollector exposes pgxpool's figures at scrape time.
type poolCollector struct {
	pools                                 map[string]*pgxpool.Pool
	total, idle, acquired, max, acquires  *prometheus.Desc
	waitCount, waitSeconds, emptyAcquires *prometheus.Desc
}

func newPoolCollector(pools map[string]*pgxpool.Pool) *poolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("vehicle_data_db_pool_"+name, help, []string{"pool"}, nil)
	}
	return &poolCollector{
		pools:         pools,
		total:         d("connections", "Open connections."),
		idle:          d("idle_connections", "Idle connections."),
		acquired:      d("acquired_connections", "Connections in use."),
		max:           d("max_connections", "Pool size limit."),
		acquires:      d("acquires_total", "Successful acquires."),
		waitCount:     d("acquire_waits_total", "Acquires that had to wait."),
		waitSeconds:   d("acquire_wait_seconds_total", "Time spent waiting to acquire."),
		emptyAcquires: d("empty_acquires_total", "Acquires that found the pool empty."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.total, c.idle, c.acquired, c.max, c.acquires, c.waitCount, c.waitSeconds, c.emptyAcquires} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for name, pool := range c.pools {
		s := pool.Stat()
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		k := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, name)
		}
		g(c.total, float64(s.TotalConns()))
		g(c.idle, float64(s.IdleConns()))
		g(c.acquired, float64(s.AcquiredConns()))
		g(c.max, float64(s.MaxConns()))
		k(c.acquires, float64(s.AcquireCount()))
		k(c.waitCount, float64(s.EmptyAcquireCount()))
		k(c.waitSeconds, s.AcquireDuration().Seconds())
		k(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	}
}

// UploadsPurged counts abandoned uploads removed by the purge job.
func (m *Metrics) UploadsPurged(n int64) { m.uploadsPurged.Add(float64(n)) }
