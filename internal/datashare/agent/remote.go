package agent

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/causewayhq/causeway/internal/datashare"
	"github.com/causewayhq/causeway/internal/page"
)

// Remote runs an Agent against a hub over HTTP, as `causeway agent` does
// on the bank's premises: it connects out to the hub (nothing connects in),
// polls GET /bank/v1/agent/jobs, claims each job, streams the Agent's
// ciphertext up in parts and completes the job, or reports its failure.
type Remote struct {
	Agent *Agent
	// Hub is the hub's base URL, e.g. https://causeway.bank.example.
	Hub string
	// Token is the bank's admin token or the hub's data agent token.
	Token string
	// Client sends the requests; default a client without an overall
	// timeout (each call has its own deadline).
	Client *http.Client
	// Poll is the pause between polls when there is no work; default 5 s.
	Poll time.Duration
	// Once makes Run return when no job is left, instead of polling on.
	Once bool
	// PartSize is the size of one upload part; default and maximum
	// datashare.MaxPartBytes (the hub's request body limit). A hub that
	// answers 413 gets parts half the size.
	PartSize int
	Logger   *slog.Logger
}

// Run works jobs until ctx is done (or, with Once, until none is left).
// A hub that refuses the token ends it with an error; a hub that cannot
// be reached is retried.
func (r *Remote) Run(ctx context.Context) error {
	log := cmp.Or(r.Logger, slog.Default())
	if r.Client == nil {
		r.Client = &http.Client{}
	}
	if r.PartSize <= 0 || r.PartSize > datashare.MaxPartBytes {
		r.PartSize = datashare.MaxPartBytes
	}
	poll := cmp.Or(r.Poll, 5*time.Second)
	log.InfoContext(ctx, "data agent connected out to the hub", "hub", r.Hub)
	for {
		var page page.Page[*datashare.Job]
		err := r.call(ctx, http.MethodGet, "/bank/v1/agent/jobs?limit=20", nil, &page)
		var he *HubError
		switch {
		case errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden):
			return fmt.Errorf("the hub refused the token: %s", he.Detail)
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			log.WarnContext(ctx, "data agent: polling the hub failed; retrying", "error", err.Error())
		default:
			for _, j := range page.Data {
				if ctx.Err() != nil {
					return nil
				}
				r.work(ctx, log, j.ID)
			}
			if len(page.Data) > 0 {
				continue
			}
			if r.Once {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// work claims and produces one job.
func (r *Remote) work(ctx context.Context, log *slog.Logger, jobID string) {
	var job datashare.Job
	if err := r.call(ctx, http.MethodPost, "/bank/v1/agent/jobs/"+url.PathEscape(jobID)+"/claim", struct{}{}, &job); err != nil {
		if code(err) != "job_unavailable" {
			log.WarnContext(ctx, "data agent: claim failed", "job_id", jobID, "error", err.Error())
		}
		return
	}
	log = log.With("job_id", job.ID, "access_request_id", job.RequestID, "dataset", job.Dataset.Name, "format", job.Format)
	start := time.Now()
	size, err := r.upload(ctx, &job)
	switch c := code(err); {
	case err == nil:
		log.InfoContext(ctx, "data agent: content delivered", "bytes", size, "duration_ms", time.Since(start).Milliseconds())
	case c == "access_ended" || c == "lease_lost":
		log.InfoContext(ctx, "data agent: job withdrawn by the hub", "reason", c)
	case ctx.Err() != nil:
		// Shutting down: the lease runs out and the job is claimed again.
	default:
		log.WarnContext(ctx, "data agent: job failed", "error", err.Error())
		if ferr := r.call(context.WithoutCancel(ctx), http.MethodPost, "/bank/v1/agent/jobs/"+url.PathEscape(job.ID)+"/fail",
			datashare.FailBody{Lease: job.Lease, Error: err.Error()}, nil); ferr != nil {
			log.WarnContext(ctx, "data agent: reporting the failure failed", "error", ferr.Error())
		}
	}
}

// upload streams the job's ciphertext to the hub in parts and completes
// the job.
func (r *Remote) upload(ctx context.Context, job *datashare.Job) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc, err := r.Agent.Produce(ctx, job)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	// One goroutine reads (and so drives the encryption) while this one
	// uploads the part before: with a few part buffers in flight, making
	// and sending overlap.
	type chunk struct {
		buf []byte
		n   int
		err error
	}
	free := make(chan []byte, 3)
	for range cap(free) {
		free <- make([]byte, r.PartSize)
	}
	full := make(chan chunk, cap(free))
	go func() {
		defer close(full)
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			n, err := io.ReadFull(rc, buf)
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			full <- chunk{buf: buf, n: n, err: err}
			if err != nil {
				return
			}
		}
	}()
	h := sha256.New()
	var off int64
	for c := range full {
		if c.n > 0 {
			h.Write(c.buf[:c.n])
			if off, err = r.put(ctx, job, off, c.buf[:c.n]); err != nil {
				return off, err
			}
		}
		free <- c.buf
		if c.err == io.EOF {
			break
		}
		if c.err != nil {
			return off, c.err
		}
	}
	if err := ctx.Err(); err != nil {
		return off, err
	}
	err = r.call(ctx, http.MethodPost, "/bank/v1/agent/jobs/"+url.PathEscape(job.ID)+"/complete",
		datashare.CompleteBody{Lease: job.Lease, Size: off, SHA256: hex.EncodeToString(h.Sum(nil))}, nil)
	return off, err
}

// put sends one part starting at off and returns the new offset. A part
// is retried on network errors and 5xx; a part the hub already has (its
// answer was lost) is recognised by the offset the hub reports.
func (r *Remote) put(ctx context.Context, job *datashare.Job, off int64, part []byte) (int64, error) {
	want := off + int64(len(part))
	var last error
	for attempt := range 4 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return off, ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 250 * time.Millisecond):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, r.Hub+"/bank/v1/agent/jobs/"+url.PathEscape(job.ID)+"/content", bytes.NewReader(part))
		if err != nil {
			return off, err
		}
		req.Header.Set("Authorization", "Bearer "+r.Token)
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set(datashare.HeaderLease, job.Lease)
		req.Header.Set(datashare.HeaderUploadOffset, strconv.FormatInt(off, 10))
		res, err := r.Client.Do(req)
		if err != nil {
			last = err
			continue
		}
		got, perr := strconv.ParseInt(res.Header.Get(datashare.HeaderUploadOffset), 10, 64)
		herr := readError(res)
		if herr == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		switch {
		case res.StatusCode == http.StatusOK && perr == nil && got == want:
			return want, nil
		case res.StatusCode == http.StatusConflict && code(herr) == "wrong_offset" && perr == nil && got == want:
			return want, nil // an earlier attempt landed
		case res.StatusCode == http.StatusRequestEntityTooLarge && len(part) > 1024:
			half := len(part) / 2
			r.PartSize = half
			mid, err := r.put(ctx, job, off, part[:half])
			if err != nil {
				return mid, err
			}
			return r.put(ctx, job, mid, part[half:])
		case res.StatusCode >= 500:
			last = herr
			continue
		case herr != nil:
			return off, herr
		default:
			return off, fmt.Errorf("the hub reported offset %q after a part ending at %d", res.Header.Get(datashare.HeaderUploadOffset), want)
		}
	}
	return off, fmt.Errorf("uploading a part failed 4 times: %w", last)
}

// call sends a JSON request and decodes a JSON answer into out (if not
// nil). A non-2xx answer is a *HubError.
func (r *Remote) call(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.Hub+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := r.Client.Do(req)
	if err != nil {
		return err
	}
	if err := readError(res); err != nil {
		return err
	}
	defer res.Body.Close()
	if out == nil {
		io.Copy(io.Discard, res.Body)
		return nil
	}
	return json.NewDecoder(res.Body).Decode(out)
}

// HubError is a problem the hub answered with.
type HubError struct {
	Status int
	Code   string
	Detail string
}

func (e *HubError) Error() string {
	return fmt.Sprintf("hub answered %d %s: %s", e.Status, e.Code, e.Detail)
}

// readError returns nil for a 2xx answer (leaving the body to read), else
// the problem it carries (and closes the body).
func readError(res *http.Response) error {
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return nil
	}
	defer res.Body.Close()
	var p struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if json.Unmarshal(b, &p) != nil || p.Code == "" {
		p.Code, p.Detail = "http_"+strconv.Itoa(res.StatusCode), strings.TrimSpace(string(b))
	}
	return &HubError{Status: res.StatusCode, Code: p.Code, Detail: p.Detail}
}

func code(err error) string {
	var he *HubError
	if errors.As(err, &he) {
		return he.Code
	}
	return ""
}
