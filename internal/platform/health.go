package platform

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/causewayhq/causeway/internal/httpapi"
	"github.com/causewayhq/causeway/internal/outbox"
)

func (p *Platform) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// Health is the state of one dependency.
type Health struct {
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
}

func (p *Platform) check(ctx context.Context) (db, bus Health) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	db.Healthy, bus.Healthy = true, true
	if err := p.DB.PingContext(ctx); err != nil {
		db = Health{Error: err.Error()}
	}
	if err := p.Bus.Health(ctx); err != nil {
		bus = Health{Error: err.Error()}
	}
	return db, bus
}

// readyz answers 200 when the database and the bus are reachable, 503
// otherwise, so a load balancer takes the node out while they are down.
func (p *Platform) readyz(w http.ResponseWriter, r *http.Request) {
	db, bus := p.check(r.Context())
	status, code := "ready", http.StatusOK
	switch {
	case p.draining.Load():
		status, code = "draining", http.StatusServiceUnavailable
	case !db.Healthy || !bus.Healthy:
		status, code = "unavailable", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"status": status, "database": db, "bus": bus})
}

// StatusOutput is the bank's view of this node.
type StatusOutput struct {
	Body struct {
		Version       string    `json:"version"`
		Mode          string    `json:"mode"`
		InstanceID    string    `json:"instance_id" doc:"Shared by every node of this installation"`
		StartedAt     time.Time `json:"started_at"`
		UptimeSeconds int64     `json:"uptime_seconds"`
		Database      struct {
			Health
			Engine   string `json:"engine" enum:"sqlite,postgres"`
			Location string `json:"location"`
		} `json:"database"`
		Bus struct {
			Health
			Kind     string `json:"kind" enum:"embedded,external"`
			Location string `json:"location"`
		} `json:"bus"`
		Outbox struct {
			Pending int `json:"pending" doc:"committed events not yet published to the bus"`
		} `json:"outbox"`
		Leader bool `json:"leader" doc:"This node holds the outbox lease: it publishes events and runs the periodic jobs (retention, expiry); one node at a time"`
	}
}

func (p *Platform) registerStatus() {
	huma.Register(p.HTTP.Bank, httpapi.Route{ID: "get-status", Method: http.MethodGet, Path: "/status",
		Summary:     "Platform status",
		Description: "Version, uptime, mode, and the database and bus in use with their health."}.Bank(), func(ctx context.Context, _ *struct{}) (*StatusOutput, error) {
		out := &StatusOutput{}
		b := &out.Body
		b.Version = p.cfg.Version
		b.Mode = string(p.cfg.Mode)
		b.InstanceID = p.instanceID
		b.StartedAt = p.started.UTC()
		b.UptimeSeconds = int64(time.Since(p.started).Seconds())
		b.Database.Health, b.Bus.Health = p.check(ctx)
		b.Database.Engine = string(p.DB.Dialect)
		b.Database.Location = p.DB.Location
		b.Bus.Kind = "external"
		if p.Bus.Embedded() {
			b.Bus.Kind = "embedded"
		}
		b.Bus.Location = p.Bus.Location()
		b.Leader = p.Lease.Held()
		if b.Database.Healthy {
			n, err := outbox.Pending(ctx, p.DB)
			if err != nil {
				return nil, err
			}
			b.Outbox.Pending = n
		}
		return out, nil
	})
}
