package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/store"
)

// An outbox delivers one user's events to their frontend in order. Every
// event is written to the store's queue before delivery and removed after
// it, so events survive a frontend outage and a crash of the bridge (at
// least once; the message map turns that into exactly once for messages).
type outbox struct {
	b     *Bridge
	user  UserID
	log   zerolog.Logger
	wake  chan struct{}
	mu    sync.Mutex
	lost  int // events refused because the queue was full, not yet reported
	retry time.Duration

	// Owned by run's goroutine: the last event delivered, and the last
	// removed from the queue (removal of messages waits for the batch).
	delivered, removed int64
}

// envelope is an event as stored in the queue.
type envelope struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	Err  string          `json:"err,omitempty"` // DeliveryResult.Err
	// ErrIs names the core error DeliveryResult.Err wraps (errorKinds), so
	// that errors.Is still finds it after the queue.
	ErrIs string `json:"err_is,omitempty"`
}

// errorKinds are the core's errors that frontends test DeliveryResult.Err
// against with errors.Is; the queue keeps them by name.
var errorKinds = map[string]error{
	"file_declined":  ErrFileDeclined,
	"not_connected":  ErrNotConnected,
	"not_logged_in":  ErrNotLoggedIn,
	"no_such_portal": ErrNoSuchPortal,
	"files_disabled": ErrFilesDisabled,
}

// queuedError is an error read back from the queue: its text, and the core
// error it wrapped.
type queuedError struct {
	msg  string
	kind error
}

func (e *queuedError) Error() string { return e.msg }
func (e *queuedError) Unwrap() error { return e.kind }

// queuedTypes names every event type the queue holds, once: the name goes
// into the stored envelope and reads it back. An event type missing here
// cannot be queued (encodeEvent says so).
var (
	queuedNames   = map[reflect.Type]string{}
	queuedDecoder = map[string]func([]byte) (Event, error){}
)

func queueable[T Event](name string) {
	queuedNames[reflect.TypeFor[T]()] = name
	queuedDecoder[name] = func(b []byte) (Event, error) {
		var v T
		err := json.Unmarshal(b, &v)
		return v, err
	}
}

func init() {
	queueable[Message]("message")
	queueable[File]("file")
	queueable[Typing]("typing")
	queueable[Nudge]("nudge")
	queueable[Presence]("presence")
	queueable[ContactChange]("contact")
	queueable[Membership]("membership")
	queueable[DeliveryResult]("delivery")
	queueable[LoginStateChange]("login")
	queueable[Notice]("notice")
}

func encodeEvent(ev Event) ([]byte, error) {
	name, ok := queuedNames[reflect.TypeOf(ev)]
	if !ok {
		return nil, fmt.Errorf("bridge: cannot queue event %T", ev)
	}
	env := envelope{Type: name}
	if d, ok := ev.(DeliveryResult); ok && d.Err != nil {
		// An error does not marshal: keep its text and the core error it
		// wraps.
		env.Err = d.Err.Error()
		for name, kind := range errorKinds {
			if errors.Is(d.Err, kind) {
				env.ErrIs = name
				break
			}
		}
		d.Err = nil
		ev = d
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	env.Data = data
	return json.Marshal(env)
}

func decodeEvent(b []byte) (Event, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, err
	}
	decode, ok := queuedDecoder[env.Type]
	if !ok {
		return nil, fmt.Errorf("bridge: unknown queued event type %q", env.Type)
	}
	ev, err := decode(env.Data)
	if d, ok := ev.(DeliveryResult); ok && env.Err != "" {
		d.Err = errors.New(env.Err)
		if kind, ok := errorKinds[env.ErrIs]; ok {
			d.Err = &queuedError{msg: env.Err, kind: kind}
		}
		ev = d
	}
	return ev, err
}

// push queues ev for delivery. It blocks neither on the frontend nor on
// the store (unless maxPendingEvents await their commit): the event is
// committed by the bridge's queue writer, in order with the user's other
// events, before anything delivers it (see queueWriter).
func (o *outbox) push(ev Event) {
	payload, err := encodeEvent(ev)
	if err != nil {
		o.log.Error().Err(err).Msg("dropping an event that cannot be queued")
		return
	}
	o.b.writer.add(pendingEvent{o: o, payload: payload, ev: ev})
}

// queueLost records an event the store refused.
func (o *outbox) queueLost(ev Event, err error) {
	o.mu.Lock()
	o.lost++
	o.mu.Unlock()
	o.b.obs.Error(ErrorQueue)
	o.log.Error().Err(err).Str("event", fmt.Sprintf("%T", ev)).Msg("event queue full or unavailable; event lost, the user will be told")
}

// maxPendingEvents bounds the events emitted and not yet committed: past
// it, emitting waits for the store.
const maxPendingEvents = 4096

// queueWriter commits the events the bridge emits to the store's queue, in
// the order they were emitted, as many in one transaction as arrived while
// the previous one committed.
//
// Emitting does not wait for the commit. Nothing needs it to: an event from
// MSN is not acknowledged to the MSN server (a receiving client sends no
// acknowledgement), so a crash before the commit loses exactly what a crash
// a moment earlier would have lost, the events MSN had sent and the bridge
// had not yet handled. What the queue promises starts at the commit: the
// outbox delivers only events read back from the store, so nothing is told
// to a frontend before it is committed, and a committed event survives a
// crash and is delivered in order. Stop waits for the writer, so stopping
// loses nothing.
type queueWriter struct {
	b       *Bridge
	mu      sync.Mutex
	room    sync.Cond // signalled when pending shrinks
	pending []pendingEvent
	running bool
	idle    sync.WaitGroup // held while the writer's goroutine runs
}

type pendingEvent struct {
	o       *outbox
	payload []byte
	ev      Event // for the log
}

func newQueueWriter(b *Bridge) *queueWriter {
	w := &queueWriter{b: b}
	w.room.L = &w.mu
	return w
}

func (w *queueWriter) add(ev pendingEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.pending) >= maxPendingEvents {
		w.room.Wait()
	}
	w.pending = append(w.pending, ev)
	if !w.running {
		w.running = true
		w.idle.Add(1)
		go w.run()
	}
}

// run commits batches until nothing is pending, then ends: an idle bridge
// keeps no writer goroutine.
func (w *queueWriter) run() {
	defer w.idle.Done()
	for {
		w.mu.Lock()
		batch := w.pending
		w.pending = nil
		if len(batch) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.room.Broadcast()
		w.mu.Unlock()
		w.commit(batch)
	}
}

func (w *queueWriter) commit(batch []pendingEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events := make([]*store.Pushed, len(batch))
	for i, ev := range batch {
		events[i] = &store.Pushed{User: ev.o.user.storeID(), Payload: ev.payload}
	}
	w.b.store.Queue.PushAll(ctx, events)
	var last *outbox
	for i, ev := range batch {
		if err := events[i].Err; err != nil {
			ev.o.queueLost(ev.ev, err)
		}
		if ev.o != last { // a burst is usually one user's
			ev.o.poke()
			last = ev.o
		}
	}
}

// wait returns when every event added so far is committed (or lost).
func (w *queueWriter) wait() { w.idle.Wait() }

func (o *outbox) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run delivers queued events until ctx ends.
func (o *outbox) run(ctx context.Context) {
	backoff := o.retry
	for {
		delivered, err := o.drain(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			o.b.obs.Error(ErrorDelivery)
			o.log.Warn().Err(err).Dur("retry_in", backoff).Msg("frontend did not take an event; will retry in order")
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		if delivered {
			backoff = o.retry
		}
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		}
	}
}

// drain delivers everything queued for the user, oldest first, stopping at
// the first event the frontend refuses.
//
// What is delivered is removed from the queue, and what a crash between a
// delivery and its removal repeats is the same as when each event was
// removed on its own: a message's mapping is committed before the next
// event is delivered, so a message delivered again after a crash is
// recognised by it and skipped (deliver); every other event is removed
// before the next is delivered. Only the removal of messages is deferred,
// to one statement per batch.
func (o *outbox) drain(ctx context.Context) (bool, error) {
	fe := o.b.frontend(o.user.Frontend)
	if fe == nil {
		return false, fmt.Errorf("no %s frontend is running", o.user.Frontend)
	}
	user := o.user.storeID()
	any := false
	for {
		batch, err := o.b.store.Queue.Peek(ctx, user, 64)
		if err != nil {
			return any, err
		}
		if len(batch) == 0 {
			break
		}
		for _, q := range batch {
			if q.ID <= o.delivered {
				continue // delivered, its removal failed: removed below
			}
			var mapping *store.MessageMapping
			ev, err := decodeEvent(q.Payload)
			if err != nil {
				o.log.Error().Err(err).Int64("queue_id", q.ID).Msg("dropping an undecodable queued event")
			} else if mapping, err = o.deliver(ctx, fe, ev, q.ID > o.b.freshAfter); errors.Is(err, ErrUndeliverable) {
				o.b.obs.Error(ErrorDropped)
				o.log.Warn().Err(err).Str("event", fmt.Sprintf("%T", ev)).Msg("frontend cannot take this event; dropping it")
			} else if err != nil {
				return any, o.removeDelivered(ctx, err)
			}
			any = true
			o.delivered = q.ID
			if mapping != nil {
				// The mapping guards the message against a repeat; its
				// queue row can go with the batch's. Without the mapping
				// a crash would repeat it: deliver nothing more until the
				// store works again.
				if err := o.b.store.Queue.Delivered(ctx, user, 0, *mapping); err != nil {
					return any, o.removeDelivered(ctx, fmt.Errorf("recording a message mapping: %w", err))
				}
				continue
			}
			if err := o.removeDelivered(ctx, nil); err != nil {
				return any, err
			}
		}
		if err := o.removeDelivered(ctx, nil); err != nil {
			return any, err
		}
	}
	o.mu.Lock()
	lost := o.lost
	o.lost = 0
	o.mu.Unlock()
	if lost > 0 {
		n := Notice{Text: fmt.Sprintf("%d events from MSN could not be kept while your client was unreachable (the queue was full) and were lost.", lost)}
		if _, err := fe.Deliver(ctx, o.user, n); err != nil {
			o.mu.Lock()
			o.lost += lost
			o.mu.Unlock()
			return any, err
		}
	}
	return any, nil
}

// removeDelivered removes the delivered events still queued and returns
// cause, or the removal's error when there is no cause.
func (o *outbox) removeDelivered(ctx context.Context, cause error) error {
	if o.delivered <= o.removed {
		return cause
	}
	err := o.b.store.Queue.Delivered(ctx, o.user.storeID(), o.delivered)
	if err == nil {
		o.removed = o.delivered
	}
	if cause != nil {
		return cause
	}
	return err
}

// deliver hands one event to the frontend. For a message it returns the
// mapping to record, so that a message delivered before a crash is not
// delivered again. fresh says the event was queued by this process, which
// has not delivered it yet: no mapping can exist.
func (o *outbox) deliver(ctx context.Context, fe Frontend, ev Event, fresh bool) (*store.MessageMapping, error) {
	msg, isMsg := ev.(Message)
	if f, isFile := ev.(File); isFile {
		// A file is a message with an attachment as far as de-duplication
		// and the metrics go.
		msg, isMsg = Message{Portal: f.Portal, MSNID: f.MSNID, Time: f.Time}, true
	}
	if isMsg && msg.MSNID != "" && !fresh {
		if _, err := o.b.store.Messages.ByMSNID(ctx, string(msg.Portal), msg.MSNID); err == nil {
			return nil, nil // already delivered
		}
	}
	id, err := fe.Deliver(ctx, o.user, ev)
	if err != nil {
		return nil, err
	}
	if isMsg {
		o.b.obs.MessageBridged(o.user.Frontend, FromMSN)
	}
	if !isMsg || msg.MSNID == "" {
		return nil, nil
	}
	if id == "" {
		id = "msn:" + msg.MSNID // the frontend has no id for it; keep the de-duplication
	}
	return &store.MessageMapping{
		PortalID: string(msg.Portal), MSNID: msg.MSNID, FrontendID: id,
		Direction: store.FromMSN, Time: msg.Time,
	}, nil
}

func (u UserID) storeID() store.UserID { return store.UserID{Frontend: u.Frontend, ID: u.ID} }
