package bridge

import (
	"context"
	"time"
)

// This file is what the core tells monitoring (the metrics package): events
// as they happen through an Observer, and a snapshot of its state through
// Stats. The core knows no metrics library.

// Direction says which way a message was bridged.
type Direction string

const (
	ToMSN   Direction = "to_msn"   // from a frontend user to an MSN contact
	FromMSN Direction = "from_msn" // from MSN, delivered to the frontend
)

// ErrorKind names a class of failure for monitoring.
type ErrorKind string

const (
	ErrorLogin    ErrorKind = "login"    // an MSN session could not be made or kept
	ErrorAuth     ErrorKind = "auth"     // MSN refused the passport or password
	ErrorSend     ErrorKind = "send"     // a message did not reach MSN
	ErrorDelivery ErrorKind = "delivery" // a frontend refused an event (it retries)
	ErrorDropped  ErrorKind = "dropped"  // an event the frontend can never take
	ErrorQueue    ErrorKind = "queue"    // an event lost: the queue was full or the store down
	ErrorStore    ErrorKind = "store"    // a store write the core needed failed
)

// Observer is told what the core does. Its methods are called on the core's
// goroutines and must return quickly; they must not call back into the core.
type Observer interface {
	MessageBridged(frontend string, dir Direction)
	Error(kind ErrorKind)
	// RoundTrip is one MSN keepalive's PNG-to-QNG time.
	RoundTrip(d time.Duration)
}

type nopObserver struct{}

func (nopObserver) MessageBridged(string, Direction) {}
func (nopObserver) Error(ErrorKind)                  {}
func (nopObserver) RoundTrip(time.Duration)          {}

// Stats is a snapshot of the core's state.
type Stats struct {
	// Logins counts the running logins by state (every state is present).
	Logins map[LoginState]int
	// Switchboards is the number of MSN switchboard connections open.
	Switchboards int
	// Queued is the number of events waiting for delivery to frontends.
	Queued int
}

// LoginStates lists every LoginState, for callers that want zeros too.
var LoginStates = []LoginState{LoginConnecting, LoginConnected, LoginBadCredentials, LoginElsewhere, LoginServerDown, LoginLoggedOut}

// Stats reports the core's state now. Queued is read from the store.
func (b *Bridge) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Logins: make(map[LoginState]int, len(LoginStates))}
	for _, s := range LoginStates {
		st.Logins[s] = 0
	}
	b.mu.Lock()
	logins := make([]*login, 0, len(b.logins))
	for _, l := range b.logins {
		logins = append(logins, l)
	}
	b.mu.Unlock()
	for _, l := range logins {
		l.mu.Lock()
		state, client := l.state, l.client
		l.mu.Unlock()
		if state != "" {
			st.Logins[state]++
		}
		if client != nil {
			st.Switchboards += client.OpenSwitchboards()
		}
	}
	users, err := b.store.Queue.Users(ctx)
	if err != nil {
		return st, err
	}
	for _, u := range users {
		n, err := b.store.Queue.Len(ctx, u)
		if err != nil {
			return st, err
		}
		st.Queued += n
	}
	return st, nil
}

// Ping says whether the core's store answers, for readiness checks.
func (b *Bridge) Ping(ctx context.Context) error {
	_, err := b.store.Version(ctx)
	return err
}
