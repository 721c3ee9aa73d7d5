package events

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causewayhq/causeway"
	"github.com/causewayhq/causeway/internal/bus"
	"github.com/causewayhq/causeway/internal/outbox"
	"github.com/causewayhq/causeway/internal/page"
)

// The feeds read the event stream directly: its sequence is the order of
// events (ids only roughly follow it: transactions commit out of id order),
// and a position in the feed is a stream sequence. Each read uses a
// short-lived consumer of its own, deleted afterwards, so feeds hold no
// state on any node.

// Page sizes of the pull feed.
const (
	DefaultPageSize = page.DefaultSize
	MaxPageSize     = page.MaxSize
)

// fetchBatch is how many messages one fetch asks for.
const fetchBatch = 256

// Page is one page of the pull feed.
type Page struct {
	// Events are the CloudEvents the app may see, oldest first.
	Events []*Envelope
	// Cursor is the position after the last event read (visible or not),
	// or "" when nothing was ever read; pass it as after to continue.
	Cursor string
}

// Pull returns up to limit events that appID may see, oldest first, after
// the position after: "" for the oldest event, an event id, or a Cursor
// from a previous page. An event id that is not in the stream, or that the
// app may not see, is ENOTFOUND unknown_event. A page may hold fewer events
// than limit although more follow (its reading is bounded in time and
// messages); only an empty page with an unchanged cursor means the app has
// caught up.
func (s *Service) Pull(ctx context.Context, appID, after string, limit int) (*Page, error) {
	if appID == "" {
		return nil, errNoApp
	}
	limit, err := page.Limit(limit)
	if err != nil {
		return nil, err
	}
	st, err := s.eventStream(ctx)
	if err != nil {
		return nil, err
	}
	pos, err := s.position(ctx, st, appID, after)
	if err != nil {
		return nil, err
	}
	events, last, err := s.read(ctx, st, appID, pos, limit)
	if err != nil {
		return nil, err
	}
	p := &Page{Events: events}
	if last > 0 {
		p.Cursor = encodeCursor(last)
	}
	return p, nil
}

// eventStream returns the events stream with fresh state (its last
// sequence), creating it if the relay has not yet.
func (s *Service) eventStream(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.bus.JetStream().Stream(ctx, s.bus.Stream(outbox.StreamName))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = outbox.EnsureStream(ctx, s.bus, s.opts.Stream)
	}
	if err != nil {
		return nil, bus.Classify(fmt.Errorf("events: stream: %w", err))
	}
	return st, nil
}

// A cursor is opaque to clients: base64url of "events:<stream sequence>".
const cursorPrefix = "events:"

func encodeCursor(seq uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatUint(seq, 10)))
}

func decodeCursor(c string) (uint64, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	n, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(n, 10, 64)
	return seq, err == nil
}

// position turns after (empty, a cursor or an event id) into the stream
// sequence to read after.
func (s *Service) position(ctx context.Context, st jetstream.Stream, appID, after string) (uint64, error) {
	if after == "" {
		return 0, nil
	}
	if seq, ok := decodeCursor(after); ok {
		return seq, nil
	}
	return s.locate(ctx, st, appID, after)
}

// locate finds the stream sequence of the event with the given id. Ids made
// by the platform start with their creation millisecond (see package ids),
// and an event reaches the stream after it is created, so the search starts
// a second before that (for clocks that disagree a little) and reads
// headers only; other ids are searched from the start. The search is
// bounded by ScanLimit and ReadTimeout.
func (s *Service) locate(ctx context.Context, st jetstream.Stream, appID, id string) (uint64, error) {
	unknown := causeway.Errorf(causeway.ENOTFOUND, "unknown_event",
		"event %q is not in the event stream, or not one this app may see; omit after to start at the oldest event, or pass the next_cursor of a previous page", id)
	if len(id) > maxIDLength || !printable(id) || st.CachedInfo().State.Msgs == 0 {
		return 0, unknown
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadTimeout)
	defer cancel()
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       true,
		MemoryStorage:     true,
		InactiveThreshold: consumerIdle,
	}
	if created, ok := idTime(id); ok {
		start := created.Add(-time.Second)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := st.CreateConsumer(ctx, cfg)
	if err != nil {
		return 0, bus.Classify(fmt.Errorf("events: locate %s: %w", id, err))
	}
	defer s.dropConsumer(st, cons)
	for scanned := 0; scanned < s.opts.ScanLimit; {
		batch, err := cons.FetchNoWait(fetchBatch)
		if err != nil {
			return 0, bus.Classify(fmt.Errorf("events: locate %s: %w", id, err))
		}
		n, found := 0, uint64(0)
		var env *Envelope
		for m := range batch.Messages() {
			n++
			if found != 0 || m.Headers().Get(jetstream.MsgIDHeader) != id {
				continue
			}
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			found = meta.Sequence.Stream
			h := m.Headers()
			env = &Envelope{Seq: found, ID: id, Type: h.Get(outbox.HeaderEventType),
				AppID: h.Get(outbox.HeaderAppID), CustomerID: h.Get(outbox.HeaderCustomerID)}
		}
		if err := batch.Error(); err != nil {
			return 0, bus.Classify(fmt.Errorf("events: locate %s: %w", id, err))
		}
		if env != nil {
			ok, err := s.vis.Visible(ctx, appID, env)
			if err != nil {
				return 0, err
			}
			if !ok {
				return 0, unknown
			}
			return found, nil
		}
		if n == 0 || ctx.Err() != nil {
			break
		}
		scanned += n
	}
	return 0, unknown
}

// read returns up to limit events appID may see after stream sequence pos,
// and the sequence of the last message it consumed (pos if none). It stops
// at the end of the stream as it was when the request began, and within
// ScanLimit messages and ReadTimeout.
func (s *Service) read(ctx context.Context, st jetstream.Stream, appID string, pos uint64, limit int) ([]*Envelope, uint64, error) {
	end := st.CachedInfo().State.LastSeq
	if pos >= end {
		return nil, pos, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadTimeout)
	defer cancel()
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       pos + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: consumerIdle,
	})
	if err != nil {
		return nil, pos, bus.Classify(fmt.Errorf("events: read: %w", err))
	}
	defer s.dropConsumer(st, cons)
	var out []*Envelope
	var delivered uint64 // the consumer's own sequence, to notice a lost message
	for scanned := 0; pos < end && len(out) < limit && scanned < s.opts.ScanLimit && ctx.Err() == nil; {
		batch, err := cons.FetchNoWait(int(min(end-pos, fetchBatch)))
		if err != nil {
			return nil, pos, bus.Classify(fmt.Errorf("events: read: %w", err))
		}
		n, stop := 0, false
		for m := range batch.Messages() {
			if stop {
				continue // drain the batch
			}
			n++
			meta, err := m.Metadata()
			if err != nil || meta.Sequence.Consumer != delivered+1 {
				// A message went missing on the way: end the page before
				// it, and the next page starts there again.
				stop = true
				continue
			}
			delivered++
			env, err := FromMsg(m)
			if err != nil {
				s.log.WarnContext(ctx, "skipping a stream message that is not a CloudEvent", "seq", meta.Sequence.Stream, "error", err.Error())
				pos = meta.Sequence.Stream
				continue
			}
			ok, err := s.vis.Visible(ctx, appID, env)
			if err != nil {
				return nil, pos, err
			}
			pos = env.Seq
			if ok {
				out = append(out, env)
				stop = len(out) == limit
			}
		}
		if err := batch.Error(); err != nil && !stop {
			return nil, pos, bus.Classify(fmt.Errorf("events: read: %w", err))
		}
		if n == 0 || stop {
			break
		}
		scanned += n
	}
	return out, pos, nil
}

// consumerIdle is how long the server keeps a feed's consumer that its
// request forgot to delete (the node died mid-request).
const consumerIdle = time.Minute

// dropConsumer deletes a feed's consumer once its request is done.
func (s *Service) dropConsumer(st jetstream.Stream, c jetstream.Consumer) {
	info := c.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := st.DeleteConsumer(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.log.DebugContext(ctx, "could not delete a feed consumer; the server drops it when idle", "consumer", info.Name, "error", err.Error())
	}
}

// idTime returns the creation time of an id made by package ids: the
// first 48 bits of its 26-character Crockford base32 body (after the last
// '_') are the millisecond.
func idTime(id string) (time.Time, bool) {
	i := strings.LastIndexByte(id, '_')
	body := id[i+1:]
	if len(body) != 26 {
		return time.Time{}, false
	}
	var ms uint64
	for _, c := range []byte(body[:10]) {
		v := strings.IndexByte(crockford, c|0x20) // case-insensitive
		if v < 0 {
			return time.Time{}, false
		}
		ms = ms<<5 | uint64(v)
	}
	return time.UnixMilli(int64(ms)), true
}

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"
