package xmpp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
)

// The gateway mostly answers IQs; for HTTP upload (upload.go) it asks the
// server's services too. Their answers arrive through the same handler as
// everything else and are routed here by id before any user queue sees them.

// iqTimeout bounds the wait for a server's answer to one IQ.
const iqTimeout = 10 * time.Second

// iqWaiters are the gateway's IQs awaiting an answer, by id.
type iqWaiters struct {
	mu sync.Mutex
	m  map[string]iqWaiter
}

type iqWaiter struct {
	to    string // the bare or full JID the IQ was sent to
	reply chan *node
}

// iqError is an error answer to one of the gateway's IQs.
type iqError struct {
	Type, Condition, Text string
}

func (e *iqError) Error() string {
	s := "xmpp: IQ error " + e.Condition
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// errorOf reads the stanza error of n.
func errorOf(n *node) *iqError {
	e := &iqError{Condition: "undefined-condition"}
	x := n.Child("", "error")
	if x == nil {
		return e
	}
	e.Type = x.Attr("type")
	for _, c := range x.Children {
		if c.Name.Space != nsStanzas {
			continue
		}
		if c.Name.Local == "text" {
			e.Text = c.Text()
		} else {
			e.Condition = c.Name.Local
		}
	}
	return e
}

// deliver hands an IQ result or error to its waiter, and reports whether
// one was waiting. An answer must come from the JID that was asked, so
// that nobody else can answer in a service's name.
func (w *iqWaiters) deliver(from jid.JID, n *node) bool {
	id := n.Attr("id")
	if id == "" {
		return false
	}
	w.mu.Lock()
	waiter, ok := w.m[id]
	if ok && !sameJID(waiter.to, from) {
		ok = false
	}
	if ok {
		delete(w.m, id)
	}
	w.mu.Unlock()
	if ok {
		waiter.reply <- n // buffered: the waiter may have given up already
	}
	return ok
}

func sameJID(a string, b jid.JID) bool {
	j, err := jid.Parse(a)
	return err == nil && j.Equal(b)
}

func (w *iqWaiters) add(id, to string) chan *node {
	ch := make(chan *node, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = make(map[string]iqWaiter)
	}
	w.m[id] = iqWaiter{to: to, reply: ch}
	return ch
}

func (w *iqWaiters) remove(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, id)
}

// request sends an IQ get from the gateway to to and waits (up to
// iqTimeout, or ctx) for its result, returned whole. An error answer is an
// *iqError.
func (g *Gateway) request(ctx context.Context, to string, payload any) (*node, error) {
	if _, err := jid.Parse(to); err != nil {
		return nil, fmt.Errorf("xmpp: IQ to %q: %w", to, err)
	}
	id := newID()
	ch := g.iqs.add(id, to)
	defer g.iqs.remove(id)
	if err := g.sendCtx(ctx, outIQ{ID: id, Type: "get", From: g.domain.String(), To: to, Payload: payload}); err != nil {
		return nil, err
	}
	t := time.NewTimer(iqTimeout)
	defer t.Stop()
	select {
	case n := <-ch:
		if n.Attr("type") == "error" {
			return nil, errorOf(n)
		}
		return n, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, errors.New("xmpp: no answer from " + to)
	}
}
