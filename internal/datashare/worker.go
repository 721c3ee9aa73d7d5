package datashare

import (
	"context"
	"io"
	"time"

	"github.com/causewayhq/causeway"
)

// Producer is a data agent as the hub sees it: given a job, it hands back
// the dataset's rows already encrypted to the job's recipient. The hub
// reads only ciphertext from it. Package datashare/agent implements it.
type Producer interface {
	Produce(ctx context.Context, job *Job) (io.ReadCloser, error)
}

// RunProducer runs an in-process data agent until ctx is done: it claims
// due jobs (woken at once by approvals and downloads, and every few
// seconds anyway), streams each producer's ciphertext into the blob store
// and completes the job, or records the failure. The platform runs it in
// the background unless the data agent is external.
func (s *Service) RunProducer(ctx context.Context, p Producer) error {
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for {
		for ctx.Err() == nil {
			jobs, err := s.Jobs(ctx, 10)
			if err != nil {
				s.log.WarnContext(ctx, "data agent: listing jobs failed", "error", err.Error())
				break
			}
			if len(jobs) == 0 {
				break
			}
			for _, j := range jobs {
				s.produce(ctx, p, j.ID)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-tick.C:
		}
	}
}

// produce claims and runs one job. Errors are recorded on the job.
func (s *Service) produce(ctx context.Context, p Producer, jobID string) {
	j, err := s.Claim(ctx, jobID)
	if err != nil {
		if causeway.ErrorCode(err) != "job_unavailable" {
			s.log.WarnContext(ctx, "data agent: claim failed", "job_id", jobID, "error", err.Error())
		}
		return
	}
	log := s.log.With("job_id", j.ID, "access_request_id", j.RequestID, "dataset", j.Dataset.Name, "format", j.Format)
	start := time.Now()
	size, err := s.fill(ctx, p, j)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: the lease runs out and another agent takes over
		}
		log.WarnContext(ctx, "data agent: job failed", "error", err.Error())
		if ferr := s.FailContent(context.WithoutCancel(ctx), j.ID, j.Lease, err.Error()); ferr != nil && causeway.ErrorKind(ferr) != causeway.ECONFLICT {
			log.WarnContext(ctx, "data agent: recording the failure failed", "error", ferr.Error())
		}
		return
	}
	log.InfoContext(ctx, "data agent: content ready", "bytes", size, "duration_ms", time.Since(start).Milliseconds())
}

// fill streams the producer's ciphertext into the job's upload and
// completes it.
func (s *Service) fill(ctx context.Context, p Producer, j *Job) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc, err := p.Produce(ctx, j)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	// Write in parts, so the lease is checked (and stretched) as the
	// upload goes, exactly as for a remote agent, and a revocation stops
	// the work.
	const part = 8 << 20
	var off int64
	for {
		n, err := s.AppendContent(ctx, j.ID, j.Lease, off, io.LimitReader(rc, part))
		if err != nil {
			return off, err
		}
		if n == off {
			break
		}
		off = n
	}
	// A producer's own failure (a failed query, a missing file) comes
	// out of Read, and so out of AppendContent, above. The hub hashed what
	// it stored; there is no wire to check here.
	if _, err := s.CompleteContent(ctx, j.ID, j.Lease, off, ""); err != nil {
		return off, err
	}
	return off, nil
}
