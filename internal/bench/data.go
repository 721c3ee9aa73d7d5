package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causewayhq/causeway/internal/audit"
	"github.com/causewayhq/causeway/internal/auth"
	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/datashare/agent"
	"github.com/causewayhq/causeway/internal/datashare/dataclient"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/outbox"
)

// DefaultDataBytes is the size of the data benchmark's dataset unless
// CAUSEWAY_BENCH_DATA_BYTES says otherwise (an integer, or with a KiB,
// MiB or GiB suffix).
const DefaultDataBytes = 1 << 30

// DataConfig shapes the data benchmark.
type DataConfig struct {
	// Bytes is about the size of the dataset's plaintext.
	Bytes int64
	// AgentBinary, when set, runs the data agent as `AgentBinary agent
	// --once ...` in a process of its own, whose peak RSS is reported;
	// otherwise the agent runs in this process, over loopback HTTP all the
	// same.
	AgentBinary string
}

// Data measures data partnering's delivery: a synthetic dataset flows from
// the data agent (generate, CSV, age-encrypt, upload in parts) through the
// hub (blob store) to a client (download, decrypt, checksum), on
// loopback, against raw in-memory age encryption and decryption of the same
// rows in the same run. It fails unless the client's plaintext has the
// source's checksum. Peak memory is reported per component beside the
// dataset's size: it must stay flat as the dataset grows.
func Data(ctx context.Context, opts Options) (*Report, error) {
	size := int64(DefaultDataBytes)
	if v := os.Getenv("CAUSEWAY_BENCH_DATA_BYTES"); v != "" {
		n, err := parseBytes(v)
		if err != nil {
			return nil, fmt.Errorf("data: CAUSEWAY_BENCH_DATA_BYTES: %w", err)
		}
		size = n
	}
	return DataWith(ctx, opts, DataConfig{Bytes: size, AgentBinary: selfBinary()})
}

// selfBinary is the running executable when it is the causeway command
// (which has the agent subcommand), not a test binary.
func selfBinary() string {
	exe, err := os.Executable()
	if err != nil || strings.HasSuffix(exe, ".test") {
		return ""
	}
	return exe
}

func parseBytes(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = v, m
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size", s)
	}
	return n * mult, nil
}

// DataWith runs the data benchmark with cfg.
//
// With opts.Server the hub is that server and the agent is the server's
// own (in-process, or the bank's `causeway agent`): the bank publishes a
// synthetic dataset of cfg.Bytes there, an app signed up there asks for
// it, the bank approves, the server's agent produces the ciphertext
// (agent_to_hub is from the approval to the content being ready, by the
// server's clock) and the client here downloads and decrypts it. The
// access request is revoked afterwards, which deletes the ciphertext; the
// dataset stays in the catalog, named bench-…. The agent's and the hub's
// memory are the server's, out of reach: only this process's is reported.
func DataWith(ctx context.Context, opts Options, cfg DataConfig) (*Report, error) {
	run := dataBench
	if opts.Server != "" {
		run = dataOnServer
	}
	r, err := run(ctx, opts, cfg)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return r, nil
}

const dataSeed = 20261125

func dataBench(ctx context.Context, opts Options, cfg DataConfig) (*Report, error) {
	rows := max(cfg.Bytes/agent.SyntheticRowBytes, 1)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}

	rawElapsed, rawHeap, want, err := rawAge(ctx, rows, id)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	plainBytes := want.N

	// The hub: the datashare service and handlers on loopback.
	hub, err := startDataHub(ctx, opts.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer hub.close()
	d, err := hub.svc.PublishDataset(ctx, datashare.NewDataset{Name: "bench", Licence: "bench",
		Source: datashare.Source{Kind: datashare.SourceGenerator, Generator: datashare.GenSynthetic, Rows: rows, Seed: dataSeed}})
	if err != nil {
		return nil, err
	}
	req, err := hub.svc.RequestAccess(ctx, auth.AppCaller(hub.appID), datashare.NewAccessRequest{DatasetID: d.ID, Purpose: "benchmark", DurationDays: 1, Recipient: id.Recipient().String()})
	if err != nil {
		return nil, err
	}
	if _, err := hub.svc.Approve(ctx, req.ID, datashare.Decision{By: "bench"}); err != nil {
		return nil, err
	}

	// Agent -> hub.
	heap := startHeapSampler()
	start := time.Now()
	agentRSS, err := hub.runAgent(ctx, cfg.AgentBinary)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	uploadElapsed := time.Since(start)
	hubHeap := heap.stop()

	// Hub -> client, decrypting as it arrives.
	client, err := dataclient.New(ctx, hub.url, dataclient.Credentials{Token: hub.appToken})
	if err != nil {
		return nil, err
	}
	got, downloadElapsed, clientHeap, cipherBytes, err := download(ctx, client, req.ID, "", id)
	if err != nil {
		return nil, err
	}
	if got.Sum() != want.Sum() || got.N != plainBytes {
		return nil, fmt.Errorf("the client's plaintext (%d bytes, sha256 %s) is not the source's (%d bytes, %s)", got.N, got.Sum(), plainBytes, want.Sum())
	}

	raw := mbps(plainBytes, rawElapsed)
	dataMiB := float64(plainBytes) / (1 << 20)
	r := NewReport("data", opts.runtime(false))
	r.Figures = append(r.Figures,
		NewFigure("agent_hub_client_mb_per_s", mbps(plainBytes, uploadElapsed+downloadElapsed), "MB/s", "raw_age_encrypt_decrypt_mb_per_s", raw),
		NewFigure("agent_to_hub_mb_per_s", mbps(plainBytes, uploadElapsed), "MB/s", "raw_age_encrypt_decrypt_mb_per_s", raw),
		NewFigure("hub_to_client_decrypt_mb_per_s", mbps(plainBytes, downloadElapsed), "MB/s", "raw_age_encrypt_decrypt_mb_per_s", raw),
	)
	if agentRSS > 0 {
		r.Figures = append(r.Figures,
			NewFigure("agent_process_peak_rss_mib", mib(agentRSS), "MiB", "dataset_mib", dataMiB),
			NewFigure("hub_peak_heap_mib", mib(hubHeap), "MiB", "dataset_mib", dataMiB))
	} else {
		r.Figures = append(r.Figures, NewFigure("agent_and_hub_peak_heap_mib", mib(hubHeap), "MiB", "dataset_mib", dataMiB))
	}
	r.Figures = append(r.Figures,
		NewFigure("hub_and_client_peak_heap_mib", mib(clientHeap), "MiB", "dataset_mib", dataMiB),
		NewFigure("raw_age_peak_heap_mib", mib(rawHeap), "MiB", "dataset_mib", dataMiB),
		NewFigure("ciphertext_overhead_bytes", float64(cipherBytes-plainBytes), "B", "plaintext_bytes", float64(plainBytes)),
	)
	if hwm := vmHWM(); hwm > 0 {
		r.Figures = append(r.Figures, NewFigure("bench_process_peak_rss_mib", mib(hwm), "MiB", "dataset_mib", dataMiB))
	}
	return r, nil
}

// download streams the content of access request reqID in format to the
// client, decrypting it with id as it arrives, and returns the plaintext's
// hash and size, how long it took, the peak heap meanwhile and the
// ciphertext's size.
func download(ctx context.Context, client *dataclient.Client, reqID, format string, id age.Identity) (
	got *dataclient.HashingWriter, elapsed time.Duration, peakHeap uint64, cipherBytes int64, err error,
) {
	heap := startHeapSampler()
	start := time.Now()
	cpr, cpw := io.Pipe()
	go func() {
		n, _, err := client.Stream(ctx, reqID, format, cpw)
		cipherBytes = n
		cpw.CloseWithError(err)
	}()
	got = dataclient.NewHashingWriter()
	_, err = dataclient.Decrypt(got, cpr, []age.Identity{id})
	elapsed, peakHeap = time.Since(start), heap.stop()
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("client: %w", err)
	}
	return got, elapsed, peakHeap, cipherBytes, nil
}

// mbps is n bytes in d, in MB/s.
func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// mib is n bytes in MiB.
func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// rawAge is the baseline: generate rows, encrypt them to id, decrypt and
// hash them, all in memory. It returns how long that took, the peak heap
// meanwhile and the plaintext's hash.
func rawAge(ctx context.Context, rows int64, id *age.X25519Identity) (time.Duration, uint64, *dataclient.HashingWriter, error) {
	heap := startHeapSampler()
	start := time.Now()
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 256<<10)
		enc, err := age.Encrypt(bw, id.Recipient())
		if err == nil {
			err = agent.Synthetic(ctx, enc, datashare.FormatCSV, rows, dataSeed)
		}
		if err == nil {
			err = enc.Close()
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	want := dataclient.NewHashingWriter()
	_, err := dataclient.Decrypt(want, pr, []age.Identity{id})
	elapsed := time.Since(start)
	peak := heap.stop()
	return elapsed, peak, want, err
}

func dataOnServer(ctx context.Context, opts Options, cfg DataConfig) (*Report, error) {
	srv, err := connectServer(ctx, opts, 2)
	if err != nil {
		return nil, err
	}
	defer srv.Close()

	rows := max(cfg.Bytes/agent.SyntheticRowBytes, 1)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	rawElapsed, rawHeap, want, err := rawAge(ctx, rows, id)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	plainBytes := want.N
	client, reqID, decidedAt, err := approvedOnServer(ctx, srv, rows, id)
	if err != nil {
		return nil, err
	}

	// Agent -> hub, on the server: until the content is ready, by the
	// server's clock. The wait is bounded by what an agent fifty times
	// slower than the baseline would need, within limits.
	wait := min(max(50*rawElapsed, 2*time.Minute), 30*time.Minute)
	ready, err := waitContent(ctx, client, reqID, wait)
	if err != nil {
		return nil, err
	}
	uploadElapsed := ready.Sub(decidedAt)

	// Hub -> client, decrypting as it arrives.
	got, downloadElapsed, clientHeap, cipherBytes, err := download(ctx, client, reqID, datashare.FormatCSV, id)
	if err != nil {
		return nil, err
	}
	if got.Sum() != want.Sum() || got.N != plainBytes {
		return nil, fmt.Errorf("the client's plaintext (%d bytes, sha256 %s) is not the source's (%d bytes, %s): does the server (version %s) generate the same synthetic rows as this benchmark?",
			got.N, got.Sum(), plainBytes, want.Sum(), srv.Version)
	}

	raw := mbps(plainBytes, rawElapsed)
	dataMiB := float64(plainBytes) / (1 << 20)
	r := srv.report("data")
	r.Figures = append(r.Figures,
		NewFigure("agent_hub_client_mb_per_s", mbps(plainBytes, uploadElapsed+downloadElapsed), "MB/s", "raw_age_encrypt_decrypt_mb_per_s", raw),
		NewFigure("agent_to_hub_mb_per_s", mbps(plainBytes, uploadElapsed), "MB/s", "raw_age_encrypt_decrypt_mb_per_s", raw),
		NewFigure("hub_to_client_decrypt_mb_per_s", mbps(plainBytes, downloadElapsed), "MB/s", "raw_age_encrypt_decrypt_mb_per_s", raw),
		NewFigure("client_peak_heap_mib", mib(clientHeap), "MiB", "dataset_mib", dataMiB),
		NewFigure("raw_age_peak_heap_mib", mib(rawHeap), "MiB", "dataset_mib", dataMiB),
		NewFigure("ciphertext_overhead_bytes", float64(cipherBytes-plainBytes), "B", "plaintext_bytes", float64(plainBytes)),
	)
	if hwm := vmHWM(); hwm > 0 {
		r.Figures = append(r.Figures, NewFigure("bench_process_peak_rss_mib", mib(hwm), "MiB", "dataset_mib", dataMiB))
	}
	return r, nil
}

// approvedOnServer publishes a synthetic dataset of rows on the server,
// signs up an app that asks for it encrypted to id, and approves the
// request (revoked when the benchmark closes the server). It returns the
// app's client, the request's id and when it was approved, by the
// server's clock.
func approvedOnServer(ctx context.Context, srv *server, rows int64, id *age.X25519Identity) (*dataclient.Client, string, time.Time, error) {
	var d datashare.Dataset
	if err := srv.call(ctx, http.MethodPost, "/bank/v1/datasets", srv.Admin, datashare.NewDataset{
		Name: randomToken("bench-"), Licence: "benchmark data, synthetic",
		Description: "Synthetic rows published by `causeway bench data`; its access request is revoked after the run.",
		Source:      datashare.Source{Kind: datashare.SourceGenerator, Generator: datashare.GenSynthetic, Rows: rows, Seed: dataSeed},
	}, http.StatusCreated, &d); err != nil {
		return nil, "", time.Time{}, fmt.Errorf("publish dataset: %w", err)
	}
	app, err := srv.signUp(ctx, "Data benchmark", []string{auth.ScopeDataRead})
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("setup: %w", err)
	}
	client, err := dataclient.New(ctx, srv.URL, dataclient.Credentials{ClientID: app.ClientID, ClientSecret: app.ClientSecret},
		dataclient.WithTransport(srv.client.Transport))
	if err != nil {
		return nil, "", time.Time{}, err
	}
	req, err := client.Request(ctx, datashare.NewAccessRequest{DatasetID: d.ID, Purpose: "benchmark", DurationDays: 1,
		Recipient: id.Recipient().String(), Format: datashare.FormatCSV})
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("request access: %w", err)
	}
	// Revoked even when the run fails: downloads stop and the server
	// deletes the ciphertext.
	srv.closers = append(srv.closers, func() error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return srv.call(ctx, http.MethodPost, "/bank/v1/dataset-access-requests/"+req.ID+"/revoke", srv.Admin,
			datashare.Decision{By: "causeway bench", Reason: "benchmark done"}, http.StatusOK, nil)
	})
	var approved datashare.AccessRequest
	if err := srv.call(ctx, http.MethodPost, "/bank/v1/dataset-access-requests/"+req.ID+"/approve", srv.Admin,
		datashare.Decision{By: "causeway bench", Reason: "benchmark"}, http.StatusOK, &approved); err != nil {
		return nil, "", time.Time{}, fmt.Errorf("approve: %w", err)
	}
	if approved.DecidedAt == nil {
		return nil, "", time.Time{}, errors.New("approve: the answer has no decided_at")
	}

	return client, req.ID, *approved.DecidedAt, nil
}

// waitContent polls access request id until its content is ready, and
// returns when it became ready by the server's clock. It fails when the
// agent gave up on it, or after wait.
func waitContent(ctx context.Context, client *dataclient.Client, id string, wait time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	status := "not listed"
	for {
		req, err := client.Status(ctx, id)
		if err != nil && ctx.Err() == nil {
			return time.Time{}, fmt.Errorf("access request %s: %w", id, err)
		}
		if req != nil {
			for _, c := range req.Content {
				if c.Format != datashare.FormatCSV {
					continue
				}
				status = c.Status
				switch {
				case c.Status == datashare.ContentReady && c.ReadyAt != nil:
					return *c.ReadyAt, nil
				case c.Status == datashare.ContentFailed:
					return time.Time{}, fmt.Errorf("the server's data agent failed to produce the content: %s", c.Error)
				}
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("after %s the content of access request %s is %s, not ready: does the server run a data agent (serve's in-process default, or `causeway agent` with --data-agent external)?", wait, id, status)
		case <-tick.C:
		}
	}
}

// dataHub is the hub side of the benchmark.
type dataHub struct {
	svc        *datashare.Service
	url        string
	adminToken string
	appID      string
	appToken   string
	dir        string
	closers    []func() error
}

func startDataHub(ctx context.Context, databaseURL string) (_ *dataHub, err error) {
	h := &dataHub{appID: "app_bench", adminToken: randomToken("cwadm_"), appToken: randomToken("bench_")}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	db, err := openFresh(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	h.closers = append(h.closers, db.Close)
	// The bank's decisions append to the audit trail.
	if err := audit.Migrate(ctx, db.DB); err != nil {
		return nil, err
	}
	if err := outbox.Migrate(ctx, db.DB); err != nil {
		return nil, err
	}
	if err := datashare.Migrate(ctx, db.DB); err != nil {
		return nil, err
	}
	if h.dir, err = os.MkdirTemp("", "causeway-bench-data-"); err != nil {
		return nil, err
	}
	h.closers = append(h.closers, func() error { return os.RemoveAll(h.dir) })
	logger := slog.New(slog.DiscardHandler)
	if h.svc, err = datashare.New(db.DB, datashare.Options{DataDir: h.dir, Logger: logger}); err != nil {
		return nil, err
	}
	srv := httpapi.New(httpapi.Config{Version: "bench", AdminToken: h.adminToken, Logger: logger, Registerer: prometheus.NewRegistry()})
	// What the gateway would do for the bench app's token.
	app := &auth.App{ID: h.appID, Scopes: []string{auth.ScopeDataRead}}
	srv.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tok, ok := httpapi.BearerToken(r.Header.Get("Authorization")); ok && tok == h.appToken {
				r = r.WithContext(auth.WithApp(r.Context(), app))
			}
			next.ServeHTTP(w, r)
		})
	})
	h.svc.Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	h.closers = append(h.closers, hs.Close)
	h.url = "http://" + ln.Addr().String()
	return h, nil
}

func (h *dataHub) close() {
	for i := len(h.closers) - 1; i >= 0; i-- {
		h.closers[i]()
	}
}

// runAgent works the hub's jobs with a data agent, in a process of its own
// when binary is set (returning its peak RSS), else in this process.
func (h *dataHub) runAgent(ctx context.Context, binary string) (peakRSS uint64, err error) {
	if binary == "" {
		key := make([]byte, 32)
		rand.Read(key)
		a, err := agent.New(agent.Config{PseudonymKey: key, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return 0, err
		}
		return 0, (&agent.Remote{Agent: a, Hub: h.url, Token: h.adminToken, Once: true, Logger: slog.New(slog.DiscardHandler)}).Run(ctx)
	}
	cmd := exec.CommandContext(ctx, binary, "agent", "--hub", h.url, "--token", h.adminToken, "--once",
		"--agent-dir", filepath.Join(h.dir, "agent"), "--log-level", "warn")
	// The agent reads CAUSEWAY_ variables: give it none of the caller's.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAUSEWAY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	// Not the child's rusage: Go starts a child sharing this process's
	// memory until it execs (CLONE_VM), and Linux charges the high-water
	// mark of that memory to the child, so ru_maxrss would report this
	// process's peak. The child's own VmHWM only grows; sampled until it
	// exits, it misses at most the last few milliseconds.
	rss := sampleVmHWM(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	err = cmd.Wait()
	peakRSS = rss.stop()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	// The agent exits when no job is left: a job it failed is left too.
	jobs, err := h.svc.Jobs(ctx, 1)
	if err == nil && len(jobs) > 0 {
		return 0, errors.New("the agent left its job unfinished: " + strings.TrimSpace(stderr.String()))
	}
	return peakRSS, err
}

func randomToken(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// peakSampler records the highest value read returned, read every
// interval until stop.
type peakSampler struct {
	stopc chan struct{}
	done  chan struct{}
	peak  uint64
}

func samplePeak(interval time.Duration, read func() uint64) *peakSampler {
	s := &peakSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			s.peak = max(s.peak, read())
			select {
			case <-s.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *peakSampler) stop() uint64 {
	close(s.stopc)
	<-s.done
	return s.peak
}

// startHeapSampler records the peak of the Go heap's live objects, from a
// collected heap on.
func startHeapSampler() *peakSampler {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	return samplePeak(10*time.Millisecond, func() uint64 {
		metrics.Read(sample)
		if v := sample[0].Value; v.Kind() == metrics.KindUint64 {
			return v.Uint64()
		}
		return 0
	})
}

// vmHWM is this process's peak resident set size, from /proc (0 where
// there is none).
func vmHWM() uint64 { return vmHWMOf("/proc/self/status") }

// sampleVmHWM reads the VmHWM of the status file at path every 5 ms until
// stop.
func sampleVmHWM(path string) *peakSampler {
	return samplePeak(5*time.Millisecond, func() uint64 { return vmHWMOf(path) })
}

// vmHWMOf is the peak resident set size in a /proc status file (0 where
// there is none, as for a process that has exited).
func vmHWMOf(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}
