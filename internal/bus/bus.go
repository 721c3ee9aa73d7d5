// Package bus connects the platform to its event log: NATS JetStream embedded
// in the process (file store under the data dir) by default, or an external
// NATS cluster with JetStream when a URL is given. Everything above the
// connection — streams, publishing, consumers — is the same code for both.
package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway"
)

// Config selects the bus. With URL empty, a NATS server with JetStream runs
// inside the process with its store under DataDir/nats; it accepts no
// network connections unless ListenAddr (host:port) is set.
type Config struct {
	URL        string
	DataDir    string
	ListenAddr string
	// Prefix namespaces stream names and subjects, so several platforms (or
	// tests) can share one NATS. Default "causeway".
	Prefix string
}

// Bus is a connection to JetStream.
type Bus struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	srv    *server.Server // nil for an external NATS
	prefix string
	loc    string
}

// Open starts the embedded server or connects to the external one, and
// checks that JetStream answers.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = "causeway"
	}
	b := &Bus{prefix: prefix}
	var err error
	if cfg.URL != "" {
		b.loc = redact(cfg.URL)
		b.nc, err = nats.Connect(cfg.URL, connectOptions(b.loc)...)
		if err != nil {
			return nil, fmt.Errorf("nats %s: %w", b.loc, err)
		}
	} else {
		if err := b.startEmbedded(cfg); err != nil {
			return nil, err
		}
	}
	b.js, err = jetstream.New(b.nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("nats %s: %w", b.loc, err)
	}
	if err := b.Health(ctx); err != nil {
		b.Close()
		return nil, fmt.Errorf("nats %s: jetstream: %w", b.loc, err)
	}
	return b, nil
}

func connectOptions(name string) []nats.Option {
	return []nats.Option{
		nats.Name("causeway"),
		nats.Timeout(5 * time.Second),
		// Keep reconnecting for as long as the process lives: a NATS restart
		// must not need a platform restart.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(-1), // fail publishes while disconnected instead of buffering them
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
	}
}

func (b *Bus) startEmbedded(cfg Config) error {
	opts := &server.Options{
		ServerName: "causeway-embedded",
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "nats"),
		DontListen: true,
		NoSigs:     true,
		NoLog:      true,
	}
	b.loc = "embedded (" + opts.StoreDir + ")"
	if cfg.ListenAddr != "" {
		host, port, err := net.SplitHostPort(cfg.ListenAddr)
		if err != nil {
			return fmt.Errorf("nats listen address %q: %w", cfg.ListenAddr, err)
		}
		opts.DontListen = false
		opts.Host = host
		opts.Port, err = strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("nats listen address %q: %w", cfg.ListenAddr, err)
		}
		b.loc = "embedded (" + opts.StoreDir + ", listening on " + cfg.ListenAddr + ")"
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return errors.New("embedded nats: not ready after 10s")
	}
	b.srv = srv
	b.nc, err = nats.Connect("", append(connectOptions(b.loc), nats.InProcessServer(srv))...)
	if err != nil {
		srv.Shutdown()
		return fmt.Errorf("embedded nats: %w", err)
	}
	return nil
}

func redact(raw string) string {
	var hosts []string
	for _, part := range strings.Split(raw, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			return "(unparseable url)"
		}
		hosts = append(hosts, u.Host)
	}
	return strings.Join(hosts, ",")
}

// Embedded reports whether the NATS server runs inside this process.
func (b *Bus) Embedded() bool { return b.srv != nil }

// Location describes the server without credentials, for status pages.
func (b *Bus) Location() string { return b.loc }

// JetStream returns the JetStream context for streams and consumers.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Conn returns the underlying connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Stream returns the namespaced name of a stream, e.g. CAUSEWAY_EVENTS.
func (b *Bus) Stream(name string) string {
	return strings.ToUpper(b.prefix) + "_" + strings.ToUpper(name)
}

// Subject returns a namespaced subject, e.g. causeway.events.payment.completed.
func (b *Bus) Subject(tokens ...string) string {
	return b.prefix + "." + strings.Join(tokens, ".")
}

// EnsureStream creates the named stream, or updates it to cfg if it exists
// with other settings. cfg.Name is replaced by the namespaced name; subjects
// must already be namespaced (see Subject).
//
// A stream that already has cfg's settings is left alone: every node and
// relay ensures the stream as it starts, and an update that changes nothing
// still rewrites the stream's configuration while consumers are being
// created on it (which the NATS server does not guard against: the race
// detector caught its file store read and written at once).
func (b *Bus) EnsureStream(ctx context.Context, name string, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Name = b.Stream(name)
	s, err := b.js.Stream(ctx, cfg.Name)
	switch {
	case err == nil && sameStreamSettings(s.CachedInfo().Config, cfg):
		return s, nil
	case err == nil || errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = b.js.CreateOrUpdateStream(ctx, cfg)
	}
	if err != nil {
		return nil, Classify(fmt.Errorf("stream %s: %w", cfg.Name, err))
	}
	return s, nil
}

// sameStreamSettings reports whether the stream configured as have already
// has the settings Causeway's streams set in want (description, subjects,
// storage, duplicate window, age and replicas); the server fills in the
// rest with defaults of its own.
func sameStreamSettings(have, want jetstream.StreamConfig) bool {
	return have.Description == want.Description && slices.Equal(have.Subjects, want.Subjects) &&
		have.Storage == want.Storage && have.Duplicates == want.Duplicates && have.MaxAge == want.MaxAge &&
		max(have.Replicas, 1) == max(want.Replicas, 1)
}

// Publish writes data to subject with msgID as Nats-Msg-Id, so JetStream
// drops a second publish of the same id within the stream's duplicate
// window. It returns once the stream has stored the message.
func (b *Bus) Publish(ctx context.Context, subject, msgID string, data []byte) error {
	msg := nats.NewMsg(subject)
	msg.Data = data
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	_, err := b.js.PublishMsg(ctx, msg)
	return Classify(err)
}

// Health checks that the connection is up and JetStream answers.
func (b *Bus) Health(ctx context.Context) error {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return causeway.Errorf(causeway.EUNAVAILABLE, "bus_unavailable", "nats connection is %s", strings.ToLower(st.String()))
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return Classify(err)
	}
	return nil
}

// Close drains the connection and stops the embedded server.
func (b *Bus) Close() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// Classify turns an error that means "the bus cannot be reached" into a
// causeway EUNAVAILABLE error. Other errors are returned unchanged.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var ce *causeway.Error
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return errors.Join(err, causeway.Errorf(causeway.EUNAVAILABLE, "bus_unavailable", "the event bus is unavailable; try again shortly"))
	}
	return err
}

// ErrLostRace is what CompareAndPut returns when another writer changed
// the key since it was read at rev: read it again and decide again.
var ErrLostRace = errors.New("bus: the key changed since it was read")

// CompareAndPut writes data at key of kv only if the key is still at
// revision rev, 0 meaning absent, and returns the new revision. It is the
// compare-and-set every shared counter on a bucket is built on.
func CompareAndPut(ctx context.Context, kv jetstream.KeyValue, key string, data []byte, rev uint64) (uint64, error) {
	var err error
	if rev == 0 {
		rev, err = kv.Create(ctx, key, data)
	} else {
		rev, err = kv.Update(ctx, key, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, ErrLostRace
	}
	return rev, err
}
