package gateway

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/leader"
	"github.com/causewayhq/causeway/internal/store"
)

// latencyBounds are the upper bounds of the latency histogram's buckets; a
// last bucket takes everything slower. latencyColumns name them in the
// gateway_analytics table.
var (
	latencyBounds = []time.Duration{
		time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
		25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
		500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
	}
	latencyColumns = []string{
		"lat_1ms", "lat_2_5ms", "lat_5ms", "lat_10ms", "lat_25ms", "lat_50ms", "lat_100ms",
		"lat_250ms", "lat_500ms", "lat_1s", "lat_2_5s", "lat_5s", "lat_10s", "lat_inf",
	}
)

const buckets = 14 // len(latencyColumns)

// maxPendingRows bounds the analytics a node keeps in memory while the
// database cannot take them.
const maxPendingRows = 100000

// Stats are call counts and latency percentiles. Calls answered with an
// event stream are counted in Calls and Streams, and their duration in
// StreamSeconds; the percentiles leave them out, as a stream lasts as long
// as its client stays.
type Stats struct {
	Calls        int64   `json:"calls"`
	ClientErrors int64   `json:"client_errors" doc:"Responses with a 4xx status"`
	ServerErrors int64   `json:"server_errors" doc:"Responses with a 5xx status"`
	P50          float64 `json:"p50_ms" doc:"Median latency in milliseconds, estimated from a histogram; event streams are left out"`
	P95          float64 `json:"p95_ms"`
	P99          float64 `json:"p99_ms"`
	Streams      int64   `json:"streams" doc:"Calls answered with an event stream that ended, counted in the minute they ended"`
	// StreamSeconds is the time those streams stayed open, in total.
	StreamSeconds float64 `json:"stream_seconds" doc:"How long those streams stayed open, in total"`
}

// Timed is how many calls the percentiles are over: the calls that were
// not event streams.
func (s Stats) Timed() int64 { return s.Calls - s.Streams }

// RouteStats are the stats of one route pattern, such as
// "GET /v1/accounts/{id}".
type RouteStats struct {
	Route string `json:"route"`
	Stats
}

// MinuteStats are one minute of an app's calls, over all routes.
type MinuteStats struct {
	Minute time.Time `json:"minute"`
	Calls  int64     `json:"calls"`
	Errors int64     `json:"errors" doc:"Responses with a 4xx or 5xx status"`
}

// Analytics are an app's API calls over a time range.
type Analytics struct {
	AppID  string        `json:"app_id,omitempty" doc:"The app; absent for every app together"`
	From   time.Time     `json:"from"`
	To     time.Time     `json:"to"`
	Totals Stats         `json:"totals"`
	Routes []RouteStats  `json:"routes"`
	Series []MinuteStats `json:"series" doc:"Minutes with at least one call, oldest first"`
}

// MaxAnalyticsRange is the longest range one Analytics call covers.
const MaxAnalyticsRange = 31 * 24 * time.Hour

type aggKey struct {
	app, route string
	minute     int64 // microseconds since the epoch, at the start of the minute
}

type counts struct {
	calls, clientErrors, serverErrors int64
	latency                           [buckets]int64
	streams, streamMS                 int64
}

func (c *counts) merge(o *counts) {
	c.calls += o.calls
	c.clientErrors += o.clientErrors
	c.serverErrors += o.serverErrors
	c.streams += o.streams
	c.streamMS += o.streamMS
	for i := range c.latency {
		c.latency[i] += o.latency[i]
	}
}

// aggregator adds up calls in memory between flushes.
type aggregator struct {
	mu      sync.Mutex
	pending map[aggKey]*counts
}

func newAggregator() *aggregator { return &aggregator{pending: map[aggKey]*counts{}} }

func bucketOf(d time.Duration) int {
	for i, b := range latencyBounds {
		if d <= b {
			return i
		}
	}
	return buckets - 1
}

// add counts one call of d; streamed says it was answered with an event
// stream, whose duration is not latency.
func (a *aggregator) add(app, route string, at time.Time, status int, d time.Duration, streamed bool) {
	k := aggKey{app: app, route: route, minute: store.Micros(at.Truncate(time.Minute))}
	b := bucketOf(d)
	a.mu.Lock()
	c := a.pending[k]
	if c == nil {
		c = &counts{}
		a.pending[k] = c
	}
	c.calls++
	switch {
	case status >= 500:
		c.serverErrors++
	case status >= 400:
		c.clientErrors++
	}
	if streamed {
		c.streams++
		c.streamMS += d.Milliseconds()
	} else {
		c.latency[b]++
	}
	a.mu.Unlock()
}

func (a *aggregator) take() map[aggKey]*counts {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) == 0 {
		return nil
	}
	m := a.pending
	a.pending = map[aggKey]*counts{}
	return m
}

// putBack returns counts a flush could not write; it reports how many rows
// it had to drop because memory is bounded.
func (a *aggregator) putBack(m map[aggKey]*counts) (dropped int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, c := range m {
		if have := a.pending[k]; have != nil {
			have.merge(c)
			continue
		}
		if len(a.pending) >= maxPendingRows {
			dropped++
			continue
		}
		a.pending[k] = c
	}
	return dropped
}

// countColumns are a row's counts, in the order of counts' fields as
// Flush writes them and Analytics reads them.
var countColumns = append(append([]string{"calls", "client_errors", "server_errors"}, latencyColumns...), "streams", "stream_ms")

// sumCounts sums countColumns over the rows a query groups.
var sumCounts = func() string {
	sums := make([]string, len(countColumns))
	for i, c := range countColumns {
		sums[i] = "CAST(SUM(" + c + ") AS BIGINT)"
	}
	return strings.Join(sums, ", ")
}()

// upsertAnalytics adds a node's counts to the shared row, so every node's
// flushes sum up.
var upsertAnalytics = func() string {
	cols := append([]string{"app_id", "minute", "route"}, countColumns...)
	params := make([]string, len(cols))
	var sets []string
	for i, c := range cols {
		params[i] = fmt.Sprintf("$%d", i+1)
		if i >= 3 {
			sets = append(sets, fmt.Sprintf("%s = t.%s + excluded.%s", c, c, c))
		}
	}
	return "INSERT INTO gateway_analytics AS t (" + strings.Join(cols, ", ") + ") VALUES (" +
		strings.Join(params, ", ") + ") ON CONFLICT (app_id, minute, route) DO UPDATE SET " + strings.Join(sets, ", ")
}()

// Flush writes the analytics held in memory to the database. The gateway
// flushes every FlushInterval and on Close; tests call it directly. On
// failure the counts are kept for the next flush.
func (g *Gateway) Flush(ctx context.Context) error {
	m := g.analytics.take()
	if len(m) == 0 {
		return nil
	}
	var calls int64
	err := g.db.Tx(ctx, func(tx *sql.Tx) error {
		calls = 0
		stmt, err := tx.PrepareContext(ctx, upsertAnalytics)
		if err != nil {
			return err
		}
		defer stmt.Close()
		args := make([]any, 6+buckets+2)
		for k, c := range m {
			args[0], args[1], args[2] = k.app, k.minute, k.route
			args[3], args[4], args[5] = c.calls, c.clientErrors, c.serverErrors
			for i, n := range c.latency {
				args[6+i] = n
			}
			args[6+buckets], args[7+buckets] = c.streams, c.streamMS
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return err
			}
			calls += c.calls
		}
		return nil
	})
	if err != nil {
		g.metrics.flushErrors.Inc()
		if dropped := g.analytics.putBack(m); dropped > 0 {
			g.log.ErrorContext(ctx, "analytics buffer full; dropped counts", "rows", dropped)
		}
		return err
	}
	g.metrics.flushedCalls.Add(float64(calls))
	return nil
}

// Analytics returns an app's calls from from (rounded down to its minute)
// until to; every app's together when appID is empty (the platform's
// traffic, for the bank). Calls reach the database within FlushInterval.
// It does not check that the app exists: callers decide who may see which
// app.
func (g *Gateway) Analytics(ctx context.Context, appID string, from, to time.Time) (*Analytics, error) {
	if !from.Before(to) {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_range", "from must be before to")
	}
	if to.Sub(from) > MaxAnalyticsRange {
		return nil, causeway.Errorf(causeway.EINVALID, "invalid_range", "the range may span at most %d days", int(MaxAnalyticsRange.Hours()/24))
	}
	from = from.UTC().Truncate(time.Minute)
	to = to.UTC()
	out := &Analytics{AppID: appID, From: from, To: to, Routes: []RouteStats{}, Series: []MinuteStats{}}

	where, args := `minute >= $1 AND minute < $2`, []any{store.Micros(from), store.Micros(to)}
	if appID != "" {
		where, args = where+` AND app_id = $3`, append(args, appID)
	}
	rows, err := g.db.QueryContext(ctx,
		`SELECT route, `+sumCounts+` FROM gateway_analytics
		 WHERE `+where+` GROUP BY route ORDER BY route`, args...)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer rows.Close()
	var total counts
	for rows.Next() {
		var route string
		var c counts
		dest := []any{&route, &c.calls, &c.clientErrors, &c.serverErrors}
		for i := range c.latency {
			dest = append(dest, &c.latency[i])
		}
		dest = append(dest, &c.streams, &c.streamMS)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		total.merge(&c)
		out.Routes = append(out.Routes, RouteStats{Route: route, Stats: c.stats()})
	}
	if err := rows.Err(); err != nil {
		return nil, store.Classify(err)
	}
	out.Totals = total.stats()

	series, err := g.db.QueryContext(ctx,
		`SELECT minute, CAST(SUM(calls) AS BIGINT), CAST(SUM(client_errors + server_errors) AS BIGINT)
		 FROM gateway_analytics WHERE `+where+`
		 GROUP BY minute ORDER BY minute`, args...)
	if err != nil {
		return nil, store.Classify(err)
	}
	defer series.Close()
	for series.Next() {
		var minute int64
		var p MinuteStats
		if err := series.Scan(&minute, &p.Calls, &p.Errors); err != nil {
			return nil, err
		}
		p.Minute = store.FromMicros(minute)
		out.Series = append(out.Series, p)
	}
	return out, store.Classify(series.Err())
}

func (c *counts) stats() Stats {
	return Stats{
		Calls:         c.calls,
		ClientErrors:  c.clientErrors,
		ServerErrors:  c.serverErrors,
		P50:           c.percentile(0.50),
		P95:           c.percentile(0.95),
		P99:           c.percentile(0.99),
		Streams:       c.streams,
		StreamSeconds: float64(c.streamMS) / 1000,
	}
}

// percentile estimates the q-quantile of the latencies in milliseconds by
// linear interpolation inside the histogram bucket that holds it, as
// Prometheus' histogram_quantile does. Calls slower than the last bound
// are reported at that bound.
func (c *counts) percentile(q float64) float64 {
	var n int64
	for _, b := range c.latency {
		n += b
	}
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	var seen float64
	lower := 0.0
	for i, b := range c.latency {
		if i == buckets-1 {
			return ms(latencyBounds[len(latencyBounds)-1])
		}
		upper := ms(latencyBounds[i])
		if b > 0 && seen+float64(b) >= rank {
			v := lower + (upper-lower)*(rank-seen)/float64(b)
			return math.Round(v*1000) / 1000
		}
		seen += float64(b)
		lower = upper
	}
	return lower
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// AnalyticsRetention is how long per-minute API analytics are kept: the
// charts reach back 31 days, the rest is for a year-on-year look.
const AnalyticsRetention = 400 * 24 * time.Hour

// Jobs are the gateway's periodic jobs for the cluster's leader: pruning
// expired idempotency keys every ten minutes, and analytics past
// AnalyticsRetention hourly.
func (g *Gateway) Jobs() []leader.Job {
	return []leader.Job{
		{Name: "prune expired idempotency keys", Every: 10 * time.Minute, Do: g.PruneIdempotencyKeys},
		{Name: "prune API analytics", Every: time.Hour, Do: func(ctx context.Context) (int64, error) {
			return g.PruneAnalytics(ctx, g.now().Add(-AnalyticsRetention))
		}},
	}
}

// PruneAnalytics deletes the analytics of minutes before the given time,
// and says how many rows it deleted.
func (g *Gateway) PruneAnalytics(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := g.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM gateway_analytics WHERE minute < $1`, store.Micros(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
