// Package bridgetest runs the real core against an in-process MSN server
// (msnptest) with a recording frontend, for the tests of packages that sit
// on top of the core (metrics, provisioning). It owns no production code.
package bridgetest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
	"github.com/msnbridge/msnbridge/store"
)

// Accounts seeded on the server: Alice and Bob, contacts of each other.
const (
	Alice, AlicePassword = "alice@example.com", "alicepw"
	Bob, BobPassword     = "bob@example.com", "bobpw"
)

// User is the bridge user the tests act as; the permissions allow
// example.org and refuse evil.example.
var (
	User    = bridge.UserID{Frontend: "matrix", ID: "@alice:example.org"}
	Mallory = bridge.UserID{Frontend: "matrix", ID: "@mallory:evil.example"}
)

// Env is one running core.
type Env struct {
	Server   *msnptest.Server
	Store    *store.Store
	Core     *bridge.Bridge
	Frontend *Frontend
}

// New starts msnptest, a store in t's temporary directory and the core
// with obs as its Observer (may be nil). Everything stops at the test's end.
func New(t testing.TB, obs bridge.Observer) *Env {
	t.Helper()
	srv := msnptest.NewServer()
	t.Cleanup(srv.Close)
	srv.SetVersions(12)
	srv.AddAccount(Alice, AlicePassword, "Alice")
	srv.AddAccount(Bob, BobPassword, "Bob")
	srv.AddContact(Alice, Bob)
	sealer, err := store.NewSealerBase64(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite3", "file:"+filepath.Join(t.TempDir(), "bridge.db"),
		zerolog.Nop(), store.WithSealer(sealer))
	if err != nil {
		t.Fatal(err)
	}
	core, err := bridge.New(bridge.Options{
		MSN: config.MSN{Server: srv.NSAddr(), LoginURL: srv.LoginURL(), Protocols: []string{"MSNP12"}},
		Bridge: config.Bridge{Permissions: map[string]string{
			"example.org": "user", "@mallory:evil.example": "none",
		}},
		Store: st, Log: zerolog.Nop(), Observer: obs,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		DeliveryRetry: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	fe := &Frontend{kind: "matrix", wake: make(chan struct{}, 1)}
	core.AddFrontend(fe)
	if err := core.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		core.Stop()
		st.Close()
	})
	return &Env{Server: srv, Store: st, Core: core, Frontend: fe}
}

// Frontend records what the core delivers; SetDown makes it refuse.
type Frontend struct {
	kind string
	mu   sync.Mutex
	evs  []bridge.Event
	down bool
	wake chan struct{}
}

func (f *Frontend) Kind() string { return f.kind }

func (f *Frontend) Deliver(ctx context.Context, user bridge.UserID, ev bridge.Event) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return "", errors.New("homeserver unreachable")
	}
	f.evs = append(f.evs, ev)
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return fmt.Sprintf("$ev%d", len(f.evs)), nil
}

// SetDown makes Deliver fail (true) or succeed again (false).
func (f *Frontend) SetDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// WaitFor waits until an event satisfying match has been delivered.
func (f *Frontend) WaitFor(t testing.TB, what string, match func(bridge.Event) bool) bridge.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	seen := 0
	for {
		f.mu.Lock()
		evs := append([]bridge.Event(nil), f.evs...)
		f.mu.Unlock()
		for _, ev := range evs[seen:] {
			if match(ev) {
				return ev
			}
		}
		seen = len(evs)
		select {
		case <-f.wake:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; delivered: %+v", what, evs)
		}
	}
}

// LoginState matches a LoginStateChange to s.
func LoginState(s bridge.LoginState) func(bridge.Event) bool {
	return func(ev bridge.Event) bool {
		e, ok := ev.(bridge.LoginStateChange)
		return ok && e.State == s
	}
}

// Eventually polls cond until it holds, failing the test after 10 s. It is
// for state that changes without an event to wait on (a counter bumped
// after a delivery returns).
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
