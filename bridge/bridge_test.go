package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
	"github.com/msnbridge/msnbridge/store"
)

// fakeFrontend records what the core delivers. It stands in for matrix/ and
// xmpp/, which have their own tests against real servers.
type fakeFrontend struct {
	kind string
	mu   sync.Mutex
	evs  []bridge.Event
	who  []bridge.UserID // the user of each event in evs
	down bool
	n    int
	wake chan struct{}
}

func newFake(kind string) *fakeFrontend {
	return &fakeFrontend{kind: kind, wake: make(chan struct{}, 1)}
}

func (f *fakeFrontend) Kind() string { return f.kind }

func (f *fakeFrontend) Deliver(ctx context.Context, user bridge.UserID, ev bridge.Event) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return "", errors.New("homeserver unreachable")
	}
	f.evs = append(f.evs, ev)
	f.who = append(f.who, user)
	f.n++
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return fmt.Sprintf("$ev%d", f.n), nil
}

func (f *fakeFrontend) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *fakeFrontend) events() []bridge.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bridge.Event(nil), f.evs...)
}

// waitFor waits until an event satisfying match has been delivered and
// returns it.
func (f *fakeFrontend) waitFor(t *testing.T, what string, match func(bridge.Event) bool) bridge.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	seen := 0
	for {
		evs := f.events()
		for _, ev := range evs[seen:] {
			if match(ev) {
				return ev
			}
		}
		seen = len(evs)
		select {
		case <-f.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; delivered: %+v", what, evs)
		}
	}
}

func loginState(s bridge.LoginState) func(bridge.Event) bool {
	return func(ev bridge.Event) bool {
		e, ok := ev.(bridge.LoginStateChange)
		return ok && e.State == s
	}
}

type env struct {
	srv   *msnptest.Server
	st    *store.Store
	fe    *fakeFrontend
	b     *bridge.Bridge
	user  bridge.UserID
	dbURI string
	key   string
	// queueLimit bounds the store's event queue per user (0: default).
	queueLimit int
	// files and pictures configure issue 11's features (zero: off).
	files    config.Files
	pictures config.DisplayPictures
	proto    msnp.Protocol
	// obs is told what the core does (nil: nothing).
	obs bridge.Observer
}

func newEnv(t *testing.T) *env { return newEnvProto(t, msnp.MSNP12) }

// newEnvProto runs the bridge and the server on one protocol version:
// Tweener up to MSNP12, SSO with the address book from MSNP15.
func newEnvProto(t *testing.T, proto msnp.Protocol) *env {
	t.Helper()
	srv := msnptest.NewServer()
	t.Cleanup(srv.Close)
	srv.SetVersions(int(proto))
	srv.AddAccount("alice@example.com", "alicepw", "Alice")
	srv.AddAccount("bob@example.com", "bobpw", "Bob")
	srv.AddContact("alice@example.com", "bob@example.com")
	e := &env{srv: srv, proto: proto, user: bridge.UserID{Frontend: "matrix", ID: "@alice:example.org"},
		dbURI: "file:" + filepath.Join(t.TempDir(), "bridge.db"), key: store.GenerateKey()}
	e.start(t)
	return e
}

func (e *env) start(t *testing.T) {
	t.Helper()
	sealer, err := store.NewSealerBase64(e.key)
	if err != nil {
		t.Fatal(err)
	}
	opts := []store.Option{store.WithSealer(sealer)}
	if e.queueLimit > 0 {
		opts = append(opts, store.WithQueueLimit(e.queueLimit))
	}
	st, err := store.Open(context.Background(), "sqlite3", e.dbURI, zerolog.Nop(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	if e.fe == nil {
		e.fe = newFake("matrix")
	}
	b, err := bridge.New(bridge.Options{
		MSN: e.msnConfig(),
		Bridge: config.Bridge{Permissions: map[string]string{
			"example.org": "user", "@mallory:evil.example": "none",
		}, Files: e.files, DisplayPictures: e.pictures},
		Store: st, Log: zerolog.Nop(), Observer: e.obs,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		DeliveryRetry: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.AddFrontend(e.fe)
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.b = b
	t.Cleanup(e.stop)
}

func (e *env) msnConfig() config.MSN {
	c := config.MSN{Server: e.srv.NSAddr(), LoginURL: e.srv.LoginURL(), Protocols: []string{e.proto.String()}}
	if e.proto >= msnp.MSNP15 {
		c.RSTURL, c.SOAPBaseURL = e.srv.RSTURL(), e.srv.SOAPBaseURL()
	}
	return c
}

// peerConfig is how MSN-side test clients reach the server.
func (e *env) peerConfig() msnp.Config {
	c := msnp.Config{Server: e.srv.NSAddr(), LoginURL: e.srv.LoginURL(), Protocols: []msnp.Protocol{e.proto}}
	if e.proto >= msnp.MSNP15 {
		c.RSTURL, c.SOAPBaseURL = e.srv.RSTURL(), e.srv.SOAPBaseURL()
	}
	return c
}

func (e *env) stop() {
	if e.b != nil {
		e.b.Stop()
		e.b = nil
		e.st.Close()
	}
}

func (e *env) login(t *testing.T) {
	t.Helper()
	if err := e.b.Login(context.Background(), e.user, "Alice@Example.com", "alicepw"); err != nil {
		t.Fatal(err)
	}
	e.fe.waitFor(t, "connected", loginState(bridge.LoginConnected))
}

// bob logs bob in with a plain msnp client, as the MSN-side peer.
func (e *env) bob(t *testing.T, handler func(msnp.Event)) *msnp.Client {
	t.Helper()
	if handler == nil {
		handler = func(msnp.Event) {}
	}
	c, err := msnp.New(e.peerConfig(), "bob@example.com", "bobpw", handler)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLoginPresenceAndContacts(t *testing.T) {
	forProtocols(t, testLoginPresenceAndContacts)
}

// forProtocols runs a test on the Tweener and the SSO generations.
func forProtocols(t *testing.T, f func(*testing.T, msnp.Protocol)) {
	for _, p := range []msnp.Protocol{msnp.MSNP12, msnp.MSNP18} {
		t.Run(p.String(), func(t *testing.T) { f(t, p) })
	}
}

func testLoginPresenceAndContacts(t *testing.T, proto msnp.Protocol) {
	e := newEnvProto(t, proto)
	e.login(t)
	ctx := context.Background()

	bob := e.bob(t, nil)
	if err := bob.SetStatus(ctx, msnp.StatusBusy); err != nil {
		t.Fatal(err)
	}
	ev := e.fe.waitFor(t, "bob busy", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Passport == "bob@example.com" && p.Contact.Status == bridge.StatusBusy
	}).(bridge.Presence)
	if ev.Contact.FriendlyName != "Bob" {
		t.Errorf("friendly name %q, want Bob", ev.Contact.FriendlyName)
	}
	if err := bob.SetPersonalMessage(ctx, "<b>at work</b>"); err != nil {
		t.Fatal(err)
	}
	e.fe.waitFor(t, "bob's PSM", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.PersonalMessage == "<b>at work</b>"
	})

	cs, err := e.b.Contacts(ctx, e.user)
	if err != nil || len(cs) != 1 || cs[0].Passport != "bob@example.com" || !cs[0].OnContactList {
		t.Fatalf("Contacts = %+v, %v", cs, err)
	}
	st, err := e.b.Status(ctx, e.user)
	if err != nil || st.State != bridge.LoginConnected || st.Protocol != proto.String() || st.Passport != "alice@example.com" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if err := e.b.SetStatus(ctx, e.user, bridge.StatusAway); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.srv.WaitStatus(wctx, "alice@example.com", "AWY"); err != nil {
		t.Fatalf("alice's status on the server: %v", err)
	}
	if err := e.b.SetPersonalMessage(ctx, e.user, "bridged"); err != nil {
		t.Fatal(err)
	}
}

func TestWrongPasswordStopsRetrying(t *testing.T) {
	e := newEnv(t)
	if err := e.b.Login(context.Background(), e.user, "alice@example.com", "nope"); err != nil {
		t.Fatal(err)
	}
	e.fe.waitFor(t, "bad credentials", loginState(bridge.LoginBadCredentials))
	time.Sleep(300 * time.Millisecond) // longer than the test backoff: a retry would show
	n := 0
	for _, ev := range e.fe.events() {
		if loginState(bridge.LoginConnecting)(ev) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d connection attempts after a wrong password, want 1", n)
	}
}

func TestSignedInElsewhereDoesNotFight(t *testing.T) {
	e := newEnv(t)
	e.login(t)
	e.srv.Kick("alice@example.com", "OTH")
	e.fe.waitFor(t, "signed in elsewhere", loginState(bridge.LoginElsewhere))
	time.Sleep(300 * time.Millisecond)
	if e.srv.Online("alice@example.com") {
		t.Fatal("the bridge logged back in after OUT OTH")
	}
	// The user can take the account back on purpose.
	if err := e.b.Relogin(context.Background(), e.user); err != nil {
		t.Fatal(err)
	}
	e.fe.waitFor(t, "connected again", loginState(bridge.LoginConnected))
}

func TestReconnectsAfterDrop(t *testing.T) {
	e := newEnv(t)
	e.login(t)
	before := len(e.fe.events())
	e.srv.Drop("alice@example.com")
	e.fe.waitFor(t, "server down", loginState(bridge.LoginServerDown))
	deadline := time.Now().Add(10 * time.Second)
	for {
		reconnected := false
		for _, ev := range e.fe.events()[before:] {
			if loginState(bridge.LoginConnected)(ev) {
				reconnected = true
			}
		}
		if reconnected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("did not reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEventsWaitForFrontendAndSurviveRestart(t *testing.T) {
	e := newEnv(t)
	e.login(t)
	ctx := context.Background()
	bob := e.bob(t, nil)
	e.fe.setDown(true)
	for _, s := range []msnp.Status{msnp.StatusBusy, msnp.StatusAway, msnp.StatusOnThePhone} {
		if err := bob.SetStatus(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// The events are held in the store while the frontend is down...
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := e.st.Queue.Len(ctx, store.UserID{Frontend: "matrix", ID: "@alice:example.org"})
		if err != nil {
			t.Fatal(err)
		}
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d events queued", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// ...across a restart of the bridge...
	e.stop()
	e.fe.setDown(false)
	before := len(e.fe.events())
	e.start(t)
	e.fe.waitFor(t, "bob on the phone", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Status == bridge.StatusPhone
	})
	// ...and arrive in the order they happened.
	var got []bridge.Status
	for _, ev := range e.fe.events()[before:] {
		if p, ok := ev.(bridge.Presence); ok && p.Contact.Passport == "bob@example.com" {
			got = append(got, p.Contact.Status)
		}
	}
	want := []bridge.Status{bridge.StatusBusy, bridge.StatusAway, bridge.StatusPhone}
	if fmt.Sprint(got[:3]) != fmt.Sprint(want) {
		t.Fatalf("presence order %v, want %v first", got, want)
	}
	// The stored login resumed by itself.
	e.fe.waitFor(t, "resumed login", loginState(bridge.LoginConnected))
}

func TestPermissionsAndIsolation(t *testing.T) {
	e := newEnv(t)
	e.login(t)
	ctx := context.Background()
	mallory := bridge.UserID{Frontend: "matrix", ID: "@mallory:evil.example"}
	if err := e.b.Login(ctx, mallory, "bob@example.com", "bobpw"); !errors.Is(err, bridge.ErrNotPermitted) {
		t.Fatalf("login by a user without permission: %v", err)
	}
	other := bridge.UserID{Frontend: "matrix", ID: "@carol:example.org"}
	p, err := e.b.DirectPortal(ctx, e.user, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.b.SetPortalRoom(ctx, e.user, p.ID, "!room:example.org"); err != nil {
		t.Fatal(err)
	}
	got, err := e.b.PortalByRoom(ctx, e.user, "!room:example.org")
	if err != nil || got.ID != p.ID || got.Contact != "bob@example.com" || got.Kind != bridge.PortalDirect {
		t.Fatalf("PortalByRoom = %+v, %v", got, err)
	}
	// Another user (not logged in) can see neither the portal nor contacts.
	if _, err := e.b.Portal(ctx, other, p.ID); !errors.Is(err, bridge.ErrNotLoggedIn) {
		t.Fatalf("other user's Portal: %v", err)
	}
	if _, err := e.b.Contacts(ctx, other); !errors.Is(err, bridge.ErrNotLoggedIn) {
		t.Fatalf("other user's Contacts: %v", err)
	}
	if err := e.b.SendMessage(ctx, other, p.ID, bridge.OutgoingMessage{Text: bridge.Text{Body: "hi"}}); err == nil {
		t.Fatal("another user sent into alice's portal")
	}
}

func TestContactEdits(t *testing.T) { forProtocols(t, testContactEdits) }

func testContactEdits(t *testing.T, proto msnp.Protocol) {
	e := newEnvProto(t, proto)
	e.srv.AddAccount("carol@example.com", "carolpw", "Carol")
	e.login(t)
	ctx := context.Background()
	if err := e.b.AddContact(ctx, e.user, "carol@example.com"); err != nil {
		t.Fatal(err)
	}
	if e.srv.Lists("alice@example.com", "carol@example.com")&1 == 0 {
		t.Fatal("carol not on alice's forward list")
	}
	e.fe.waitFor(t, "carol added", func(ev bridge.Event) bool {
		c, ok := ev.(bridge.ContactChange)
		return ok && c.Kind == bridge.ContactAdded && c.Contact.Passport == "carol@example.com"
	})
	if err := e.b.BlockContact(ctx, e.user, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if e.srv.Lists("alice@example.com", "bob@example.com")&4 == 0 {
		t.Fatal("bob not blocked on the server")
	}
	if err := e.b.UnblockContact(ctx, e.user, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := e.b.RemoveContact(ctx, e.user, "carol@example.com"); err != nil {
		t.Fatal(err)
	}
	if e.srv.Lists("alice@example.com", "carol@example.com")&1 != 0 {
		t.Fatal("carol still on alice's forward list")
	}
	if err := e.b.AddContact(ctx, e.user, "not a passport"); err == nil {
		t.Fatal("a malformed passport was accepted")
	}
}

func TestSomeoneAddsYou(t *testing.T) { forProtocols(t, testSomeoneAddsYou) }

func testSomeoneAddsYou(t *testing.T, proto msnp.Protocol) {
	e := newEnvProto(t, proto)
	e.srv.AddAccount("dave@example.com", "davepw", "Dave")
	e.login(t)
	dave, err := msnp.New(e.peerConfig(), "dave@example.com", "davepw", func(msnp.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dave.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer dave.Close()
	if err := dave.AddContact(ctx, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	e.fe.waitFor(t, "dave added you", func(ev bridge.Event) bool {
		c, ok := ev.(bridge.ContactChange)
		return ok && c.Kind == bridge.ContactAddedYou && c.Contact.Passport == "dave@example.com"
	})
	if err := e.b.AddContact(ctx, e.user, "dave@example.com"); err != nil {
		t.Fatal(err)
	}
	if l := e.srv.Lists("alice@example.com", "dave@example.com"); l&3 != 3 {
		t.Fatalf("after accepting, alice's lists for dave = %d, want FL and AL", l)
	}
}

func TestLogoutForgetsLogin(t *testing.T) {
	e := newEnv(t)
	e.login(t)
	ctx := context.Background()
	if err := e.b.Logout(ctx, e.user); err != nil {
		t.Fatal(err)
	}
	e.fe.waitFor(t, "logged out", loginState(bridge.LoginLoggedOut))
	if n, _ := e.st.Logins.Count(ctx); n != 0 {
		t.Fatalf("%d logins stored after logout", n)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.srv.WaitOffline(wctx, "alice@example.com"); err != nil {
		t.Fatal("still signed in to MSN after logout")
	}
	if _, err := e.b.Status(ctx, e.user); !errors.Is(err, bridge.ErrNotLoggedIn) {
		t.Fatalf("Status after logout: %v", err)
	}
}

func TestOfflineKeepsTheLoginAcrossRestarts(t *testing.T) {
	e := newEnv(t)
	e.login(t)
	ctx := context.Background()
	if err := e.b.SetStatus(ctx, e.user, bridge.StatusOffline); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.srv.WaitOffline(wctx, "alice@example.com"); err != nil {
		t.Fatal("still signed in to MSN after going offline")
	}
	e.stop()
	e.start(t)
	st, err := e.b.Status(ctx, e.user)
	if err != nil || st.Passport != "alice@example.com" || st.State != bridge.LoginLoggedOut {
		t.Fatalf("Status after a restart: %+v, %v; want the kept login, logged out", st, err)
	}
	if e.srv.Online("alice@example.com") {
		t.Fatal("a restart signed in a login that went offline on purpose")
	}
	// Any other status signs it back in.
	if err := e.b.SetStatus(ctx, e.user, bridge.StatusAway); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.WaitStatus(wctx, "alice@example.com", "AWY"); err != nil {
		t.Fatalf("status %s after coming back, want AWY", e.srv.Status("alice@example.com"))
	}
}

func TestLoginsAreRateLimited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = e.b.Login(ctx, e.user, "alice@example.com", "alicepw")
	}
	if !errors.Is(err, bridge.ErrRateLimited) {
		t.Fatalf("ten logins in a row: %v, want ErrRateLimited", err)
	}
	// Another user is not held back by the first.
	if err := e.b.Login(ctx, bridge.UserID{Frontend: "matrix", ID: "@bob:example.org"}, "bob@example.com", "bobpw"); err != nil {
		t.Fatalf("another user's login: %v", err)
	}
}

// errorCounter counts the errors the core reports to monitoring.
type errorCounter struct {
	mu sync.Mutex
	n  map[bridge.ErrorKind]int
}

func (c *errorCounter) MessageBridged(string, bridge.Direction) {}
func (c *errorCounter) RoundTrip(time.Duration)                 {}
func (c *errorCounter) Error(kind bridge.ErrorKind) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[bridge.ErrorKind]int{}
	}
	c.n[kind]++
}

func (c *errorCounter) count(kind bridge.ErrorKind) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

func TestQueueOverflowIsReported(t *testing.T) {
	e := newEnv(t)
	e.stop()
	e.queueLimit = 3
	errs := &errorCounter{}
	e.obs = errs
	e.start(t)
	e.login(t)
	ctx := context.Background()
	alice := store.UserID{Frontend: "matrix", ID: "@alice:example.org"}
	queued := func() int {
		n, err := e.st.Queue.Len(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	bob := e.bob(t, nil)
	// An event the frontend has taken stays in the queue until the outbox
	// deletes it, after Deliver returns: the "connected" state seen above
	// can still hold a slot, and would make a third presence overflow.
	eventually(t, "the events before the outage out of the queue", func() bool { return queued() == 0 })
	e.fe.setDown(true)
	statuses := []msnp.Status{msnp.StatusBusy, msnp.StatusAway, msnp.StatusOnThePhone, msnp.StatusBeRightBack, msnp.StatusOutToLunch}
	for _, s := range statuses {
		if err := bob.SetStatus(ctx, s); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := e.srv.WaitStatus(wctx, "bob@example.com", string(s)); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	// The server has sent every change, but the core may not have queued
	// the last ones yet: wait until each presence is queued or lost, or
	// the frontend would come back early and take the late ones.
	eventually(t, "every presence queued or lost", func() bool {
		return queued()+errs.count(bridge.ErrorQueue) == len(statuses)
	})
	if n, lost := queued(), errs.count(bridge.ErrorQueue); n != 3 || lost != 2 {
		t.Fatalf("%d events queued and %d lost, want 3 (the limit) and 2", n, lost)
	}
	e.fe.setDown(false)
	n := e.fe.waitFor(t, "the overflow notice", func(ev bridge.Event) bool {
		n, ok := ev.(bridge.Notice)
		return ok && strings.Contains(n.Text, "lost")
	}).(bridge.Notice)
	if !strings.Contains(n.Text, "2 events") {
		t.Errorf("notice %q does not count the 2 lost events", n.Text)
	}
}
