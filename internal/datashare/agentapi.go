package datashare

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/page"
)

// The data agent's protocol, all under /bank/v1/agent and authenticated
// with the bank's admin token or the dedicated agent token:
//
//	GET  /bank/v1/agent/jobs                 jobs ready to claim
//	POST /bank/v1/agent/jobs/{id}/claim      -> the job with a lease
//	PUT  /bank/v1/agent/jobs/{id}/content    one part of the ciphertext:
//	     headers Causeway-Lease and Upload-Offset (where the part starts);
//	     body at most the platform's request body limit (1 MiB). The answer
//	     carries Upload-Offset, the size so far; 409 wrong_offset tells
//	     where to continue.
//	POST /bank/v1/agent/jobs/{id}/complete   {lease, size, sha256}
//	POST /bank/v1/agent/jobs/{id}/fail       {lease, error}
//
// The upload goes in parts because the platform caps every request body
// (httpapi's MaxBodyBytes); parts also let an agent resume a part that
// failed on the way.
const (
	HeaderLease        = "Causeway-Lease"
	HeaderUploadOffset = "Upload-Offset"
	// MaxPartBytes is the largest part the agent sends: the platform's
	// default body limit.
	MaxPartBytes = 1 << 20
)

func (h *handlers) registerAgent(srv *httpapi.Server) {
	// The agent's routes are the bank's, but registered outside its group:
	// requireAgent lets the data agent token in as well as the admin token.
	tags := []string{"Bank", "Data agent"}
	sec := []map[string][]string{{httpapi.SchemeBankAdmin: {}}}
	agent := func(r httpapi.Route) huma.Operation {
		r.Path = "/bank/v1/agent" + r.Path
		r.Description += " Takes the bank's admin token or the data agent token."
		op := r.Public()
		op.Security = sec
		op.Middlewares = huma.Middlewares{h.requireAgent}
		return op
	}
	huma.Register(srv.API, agent(httpapi.Route{ID: "agent-list-jobs", Method: http.MethodGet, Path: "/jobs", Tags: tags,
		Summary: "Jobs waiting for a data agent",
		Description: "Content an agent may produce now: that of approved, unexpired requests which is pending and due, or whose " +
			"agent's lease ran out. Each job names the dataset's source, the format and the recipient to encrypt to."}), h.jobs)
	huma.Register(srv.API, agent(httpapi.Route{ID: "agent-claim-job", Method: http.MethodPost, Path: "/jobs/{id}/claim", Tags: tags,
		Summary: "Claim a job under a lease",
		Description: "Gives the job to the calling agent under a fresh lease (the lease token goes with every upload and the " +
			"completion) and empties any partial upload of an earlier attempt. A job taken by another agent, done, or " +
			"whose request is no longer approved is 409 job_unavailable."}), h.claim)
	huma.Register(srv.API, agent(httpapi.Route{ID: "agent-complete-job", Method: http.MethodPost, Path: "/jobs/{id}/complete", Tags: tags,
		Summary: "Finish a job's upload",
		Description: "Finishes a claimed job once its ciphertext is uploaded (PUT .../content, in parts): the upload must hold size " +
			"bytes (else 409 size_mismatch) whose SHA-256 is sha256 (else 422 checksum_mismatch). The content becomes " +
			"ready to download. A job whose lease went to another agent is 409 lease_lost."}), h.complete)
	huma.Register(srv.API, agent(httpapi.Route{ID: "agent-fail-job", Method: http.MethodPost, Path: "/jobs/{id}/fail", Tags: tags,
		Summary: "Report that a job could not be produced",
		Description: "Records why the agent could not produce the job; it is retried with growing delays and failed for good " +
			"(content_failed, until the bank retries it) after a few attempts. 409 access_ended when the request was " +
			"revoked or expired meanwhile, lease_lost when another agent holds the job."}), h.fail)
	srv.HandleSecured("PUT /bank/v1/agent/jobs/{id}/content", sec, http.HandlerFunc(h.uploadPart))
}

// isAgent reports whether r carries the admin token or the agent token.
func (h *handlers) isAgent(r *http.Request) bool {
	if h.srv.IsAdmin(r) {
		return true
	}
	if !h.s.hasAgent {
		return false
	}
	token, ok := httpapi.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], h.s.agentToken[:]) == 1
}

var errAgentAuth = causeway.Errorf(causeway.EUNAUTHORIZED, "unauthorized", "this route needs the bank's admin token or the data agent token as a bearer token")

func (h *handlers) requireAgent(ctx huma.Context, next func(huma.Context)) {
	r, w := humago.Unwrap(ctx)
	if !h.isAgent(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="causeway-bank"`)
		httpapi.WriteProblem(w, r, errAgentAuth)
		return
	}
	next(ctx)
}

type jobsInput struct {
	Limit int `query:"limit" minimum:"0" maximum:"200" doc:"At most this many; default 50"`
}

func (h *handlers) jobs(ctx context.Context, in *jobsInput) (*httpapi.Out[*page.Page[*Job]], error) {
	jobs, err := h.s.Jobs(ctx, in.Limit)
	return httpapi.Reply(&page.Page[*Job]{Data: jobs}, err)
}

func (h *handlers) claim(ctx context.Context, in *httpapi.IDPath) (*httpapi.Out[*Job], error) {
	return httpapi.Reply(h.s.Claim(ctx, in.ID))
}

// CompleteBody finishes an upload.
type CompleteBody struct {
	Lease  string `json:"lease" maxLength:"64"`
	Size   int64  `json:"size" minimum:"0"`
	SHA256 string `json:"sha256" maxLength:"64" pattern:"^[0-9a-f]{64}$" doc:"SHA-256 of the whole ciphertext, hex"`
}

type completeInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body CompleteBody
}

func (h *handlers) complete(ctx context.Context, in *completeInput) (*httpapi.Out[*ContentInfo], error) {
	return httpapi.Reply(h.s.CompleteContent(ctx, in.ID, in.Body.Lease, in.Body.Size, in.Body.SHA256))
}

// FailBody reports a failed job.
type FailBody struct {
	Lease string `json:"lease" maxLength:"64"`
	Error string `json:"error" maxLength:"4000" text:"multiline"`
}

type failInput struct {
	ID   string `path:"id" maxLength:"64"`
	Body FailBody
}

type okBody struct {
	OK bool `json:"ok"`
}

func (h *handlers) fail(ctx context.Context, in *failInput) (*httpapi.Out[okBody], error) {
	return httpapi.Reply(okBody{OK: true}, h.s.FailContent(ctx, in.ID, in.Body.Lease, in.Body.Error))
}

// UploadResult is the answer to a part.
type UploadResult struct {
	Offset int64 `json:"offset"`
}

func (h *handlers) uploadPart(w http.ResponseWriter, r *http.Request) {
	if !h.isAgent(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="causeway-bank"`)
		httpapi.WriteProblem(w, r, errAgentAuth)
		return
	}
	offset, err := strconv.ParseInt(r.Header.Get(HeaderUploadOffset), 10, 64)
	if err != nil || offset < 0 {
		httpapi.WriteProblem(w, r, causeway.Errorf(causeway.EBADREQUEST, "invalid_offset", "the %s header must give where this part starts (bytes, from 0)", HeaderUploadOffset))
		return
	}
	size, err := h.s.AppendContent(r.Context(), r.PathValue("id"), r.Header.Get(HeaderLease), offset, r.Body)
	if off, ok := UploadOffset(err); ok {
		w.Header().Set(HeaderUploadOffset, strconv.FormatInt(off, 10))
	}
	if err != nil {
		if tooLarge(err) {
			httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusRequestEntityTooLarge, "body_too_large", "the part exceeds the platform's request body limit; send smaller parts"))
			return
		}
		httpapi.WriteProblem(w, r, err)
		return
	}
	w.Header().Set(HeaderUploadOffset, strconv.FormatInt(size, 10))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(UploadResult{Offset: size})
}

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
