package rendezvous

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
)

// Rate limit kinds, as labels of peerdrop_rendezvous_rate_limited_total.
const (
	limitConnect = iota
	limitPair
	limitPresence
	limitMessage
	nLimits
)

var limitNames = [nLimits]string{"connect", "pair", "presence", "message"}

// metrics are the server's counters; gauges are read from its tables at
// scrape time.
type metrics struct {
	connsTotal   atomic.Uint64
	refused      atomic.Uint64 // connections refused: server full
	received     atomic.Uint64
	relayed      atomic.Uint64
	relayedBytes atomic.Uint64
	limited      [nLimits]atomic.Uint64
	idle         atomic.Uint64 // connections closed for silence
	slow         atomic.Uint64 // connections closed for not reading
	abusive      atomic.Uint64 // connections closed after MaxStrikes
	storeErrors  atomic.Uint64 // requests refused because the store failed
	errors       map[string]*atomic.Uint64
}

func (m *metrics) init() {
	m.errors = make(map[string]*atomic.Uint64, len(errorCodes))
	for _, c := range errorCodes {
		m.errors[c] = new(atomic.Uint64)
	}
}

func (m *metrics) countError(code string) {
	if c := m.errors[code]; c != nil {
		c.Add(1)
	}
}

// Metrics returns the handler of the server's counters in the Prometheus
// text format, for any path. The server's own handler does not serve them:
// peerdrop serve puts them on a listener of their own (loopback by default).
func (s *Server) Metrics() http.Handler { return http.HandlerFunc(s.handleMetrics) }

// handleMetrics writes the Prometheus text exposition format (version 0.0.4).
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	st := s.Stats()
	var b strings.Builder
	metric := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP peerdrop_rendezvous_%s %s\n# TYPE peerdrop_rendezvous_%s %s\n", name, help, name, typ)
	}
	value := func(name, labels string, v uint64) {
		fmt.Fprintf(&b, "peerdrop_rendezvous_%s%s %d\n", name, labels, v)
	}
	gauge := func(name, help string, v int) {
		metric(name, "gauge", help)
		value(name, "", uint64(v))
	}
	counter := func(name, help string, v uint64) {
		metric(name, "counter", help)
		value(name, "", v)
	}
	gauge("connections", "Open WebSocket connections.", st.Conns)
	counter("connections_total", "WebSocket connections accepted.", s.m.connsTotal.Load())
	counter("connections_refused_total", "Connections refused because the server is full.", s.m.refused.Load())
	gauge("rooms", "Pairing rooms with members.", st.Rooms)
	gauge("links", "Presence links between a device and its finder.", st.Links)
	gauge("codes_open", "Pairing codes that still admit joins.", st.OpenCodes)
	gauge("devices_announced", "Devices reachable by find.", st.Announced)
	counter("messages_received_total", "Messages received from clients.", s.m.received.Load())
	counter("messages_relayed_total", "Signal messages relayed.", s.m.relayed.Load())
	counter("relayed_bytes_total", "Bytes of signal payload relayed.", s.m.relayedBytes.Load())
	metric("rate_limited_total", "counter", "Connections or messages refused by a rate limit.")
	for i, n := range limitNames {
		value("rate_limited_total", `{kind="`+n+`"}`, s.m.limited[i].Load())
	}
	metric("closed_total", "counter", "Connections closed by the server, by reason.")
	value("closed_total", `{reason="idle"}`, s.m.idle.Load())
	value("closed_total", `{reason="slow"}`, s.m.slow.Load())
	value("closed_total", `{reason="abuse"}`, s.m.abusive.Load())
	counter("store_failures_total", "Requests refused or left undone because the store (Redis) failed.", s.m.storeErrors.Load())
	if rt, ok := s.store.(roundTripper); ok {
		n, sum, errs := rt.roundTrips()
		counter("store_round_trips_total", "Round trips to the store (Redis), successful or not.", n)
		counter("store_round_trip_microseconds_total", "Time spent in round trips to the store (Redis): divided by store_round_trips_total, the mean round trip.", uint64(sum.Microseconds()))
		counter("store_errors_total", "Round trips to the store (Redis) that failed to reach it.", errs)
	}
	metric("errors_total", "counter", "Error messages sent to clients, by code.")
	for _, c := range errorCodes {
		value("errors_total", `{code="`+c+`"}`, s.m.errors[c].Load())
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}
