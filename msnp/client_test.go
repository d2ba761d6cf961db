package msnp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

const wait = 10 * time.Second

var allVersions = []msnp.Protocol{msnp.MSNP8, msnp.MSNP9, msnp.MSNP10, msnp.MSNP11, msnp.MSNP12, msnp.MSNP13, msnp.MSNP14, msnp.MSNP15, msnp.MSNP16, msnp.MSNP17, msnp.MSNP18}

// events collects a client's events so tests can await them in order.
type events struct {
	mu   sync.Mutex
	cond *sync.Cond
	evs  []msnp.Event
	pos  int
}

func newEvents() *events {
	e := &events{}
	e.cond = sync.NewCond(&e.mu)
	return e
}

func (e *events) handle(ev msnp.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
	e.cond.Broadcast()
}

// next returns the first event from the read position on that match
// accepts, moving the position past it. It fails the test after wait.
func (e *events) next(t *testing.T, what string, accept func(msnp.Event) bool) msnp.Event {
	t.Helper()
	deadline := time.Now().Add(wait)
	// Wake the wait below at the deadline even if no event comes. The
	// broadcast is taken under the lock so it cannot fall between the
	// deadline check and Wait.
	timer := time.AfterFunc(wait, func() {
		e.mu.Lock()
		e.cond.Broadcast()
		e.mu.Unlock()
	})
	defer timer.Stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		for ; e.pos < len(e.evs); e.pos++ {
			if accept(e.evs[e.pos]) {
				e.pos++
				return e.evs[e.pos-1]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event within %v; got %s", what, wait, fmtEvents(e.evs))
		}
		e.cond.Wait()
	}
}

// since returns the events from index from on.
func (e *events) all() []msnp.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]msnp.Event(nil), e.evs...)
}

func fmtEvents(evs []msnp.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %T%+v", ev, ev)
	}
	return b.String()
}

func is[T msnp.Event](ev msnp.Event) bool { _, ok := ev.(T); return ok }

func newServer(t *testing.T) *msnptest.Server {
	s := msnptest.NewServer()
	t.Cleanup(s.Close)
	return s
}

func config(s *msnptest.Server, p msnp.Protocol) msnp.Config {
	return msnp.Config{Server: s.NSAddr(), LoginURL: s.LoginURL(), RSTURL: s.RSTURL(), Protocols: []msnp.Protocol{p}}
}

func connect(t *testing.T, cfg msnp.Config, passport, password string) (*msnp.Client, *events) {
	t.Helper()
	ev := newEvents()
	c, err := msnp.New(cfg, passport, password, ev.handle)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("%s: Connect: %v", passport, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ev
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func forVersions(t *testing.T, vs []msnp.Protocol, f func(t *testing.T, p msnp.Protocol)) {
	for _, p := range vs {
		t.Run(p.String(), func(t *testing.T) { f(t, p) })
	}
}

// online sets the status and waits for the initial presence dump to end.
func online(t *testing.T, c *msnp.Client, ev *events) {
	t.Helper()
	if err := c.SetStatus(ctxT(t), msnp.StatusOnline); err != nil {
		t.Fatalf("SetStatus: %v", err)
	}
	ev.next(t, "PresenceSynced", is[msnp.PresenceSynced])
}

func TestLoginAndContactList(t *testing.T) {
	forVersions(t, allVersions, func(t *testing.T, p msnp.Protocol) {
		s := newServer(t)
		s.AddAccount("alice@example.com", "pw,=%x", "Alice")
		s.AddAccount("bob@example.com", "bobpw", "Bob Smith")
		s.AddContact("alice@example.com", "bob@example.com")
		c, _ := connect(t, config(s, p), "alice@example.com", "pw,=%x")
		if c.Protocol() != p {
			t.Errorf("Protocol() = %v, want %v", c.Protocol(), p)
		}
		if !s.Online("alice@example.com") {
			t.Error("server does not see alice online")
		}
		if c.FriendlyName() != "Alice" {
			t.Errorf("FriendlyName() = %q", c.FriendlyName())
		}
		cs := c.Contacts()
		if len(cs) != 1 {
			t.Fatalf("Contacts() = %+v", cs)
		}
		b := cs[0]
		if b.Passport != "bob@example.com" || b.Lists&(msnp.FL|msnp.AL|msnp.RL) != msnp.FL|msnp.AL|msnp.RL || b.Status != msnp.StatusOffline {
			t.Errorf("contact = %+v", b)
		}
		if p >= msnp.MSNP10 && b.GUID == "" {
			t.Errorf("no GUID on %s: %+v", p, b)
		}
	})
}

func TestLoginViaNexus(t *testing.T) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "")
	cfg := msnp.Config{Server: s.NSAddr(), NexusURL: s.NexusURL(), Protocols: []msnp.Protocol{msnp.MSNP12}}
	c, _ := connect(t, cfg, "alice@example.com", "pw")
	if c.Protocol() != msnp.MSNP12 {
		t.Fatal(c.Protocol())
	}
}

func TestAuthenticationFailures(t *testing.T) {
	forVersions(t, []msnp.Protocol{msnp.MSNP8, msnp.MSNP12, msnp.MSNP15, msnp.MSNP18}, func(t *testing.T, p msnp.Protocol) {
		s := newServer(t)
		s.AddAccount("alice@example.com", "right", "")
		for _, tc := range []struct{ who, pw string }{
			{"alice@example.com", "wrong"},
			{"nobody@example.com", "right"},
		} {
			c, err := msnp.New(config(s, p), tc.who, tc.pw, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Connect(ctxT(t))
			if !errors.Is(err, msnp.ErrAuthentication) || errors.Is(err, msnp.ErrNetwork) {
				t.Errorf("%s/%s: Connect = %v, want ErrAuthentication", tc.who, tc.pw, err)
			}
		}
		// A 911 from the server itself counts the same.
		s.RefuseLogins(911)
		c, _ := msnp.New(config(s, p), "alice@example.com", "right", nil)
		if err := c.Connect(ctxT(t)); !errors.Is(err, msnp.ErrAuthentication) || msnp.CodeOf(err) != msnp.ErrAuthFailed {
			t.Errorf("refused login: %v", err)
		}
		s.RefuseLogins(600)
		if err := c.Connect(ctxT(t)); errors.Is(err, msnp.ErrAuthentication) || msnp.CodeOf(err) != msnp.ErrServerBusy {
			t.Errorf("busy server: %v", err)
		}
	})
}

func TestNetworkFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, _ := msnp.New(msnp.Config{Server: addr, LoginURL: "http://" + addr + "/login"}, "alice@example.com", "pw", nil)
	err = c.Connect(ctxT(t))
	if !errors.Is(err, msnp.ErrNetwork) || errors.Is(err, msnp.ErrAuthentication) {
		t.Fatalf("Connect = %v, want ErrNetwork", err)
	}
}

func TestVersionFallback(t *testing.T) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "")
	s.SetVersions(8)
	cfg := config(s, msnp.MSNP12)
	cfg.Protocols = []msnp.Protocol{msnp.MSNP12, msnp.MSNP11, msnp.MSNP8}
	c, _ := connect(t, cfg, "alice@example.com", "pw")
	if c.Protocol() != msnp.MSNP8 {
		t.Fatalf("Protocol() = %v, want MSNP8", c.Protocol())
	}
	c2, _ := msnp.New(config(s, msnp.MSNP12), "alice@example.com", "pw", nil)
	if err := c2.Connect(ctxT(t)); !errors.Is(err, msnp.ErrNoCommonVersion) {
		t.Fatalf("no common version: %v", err)
	}
}

func TestPresenceBothWays(t *testing.T) {
	forVersions(t, allVersions, func(t *testing.T, p msnp.Protocol) {
		s := newServer(t)
		s.AddAccount("alice@example.com", "pw", "Alice")
		s.AddAccount("bob@example.com", "pw", "Bob")
		s.AddContact("alice@example.com", "bob@example.com")
		a, aev := connect(t, config(s, p), "alice@example.com", "pw")
		online(t, a, aev)
		for _, ev := range aev.all() {
			if is[msnp.ContactPresence](ev) {
				t.Fatalf("presence while bob is offline: %s", fmtEvents(aev.all()))
			}
		}
		b, bev := connect(t, config(s, p), "bob@example.com", "pw")
		online(t, b, bev)
		// Alice's presence must come before PresenceSynced, as ILN.
		var sawAlice bool
		for _, ev := range bev.all() {
			if cp, ok := ev.(msnp.ContactPresence); ok && cp.Passport == "alice@example.com" {
				sawAlice = cp.Initial && cp.Status == msnp.StatusOnline && cp.FriendlyName == "Alice"
			}
			if is[msnp.PresenceSynced](ev) {
				break
			}
		}
		if p >= msnp.MSNP11 {
			// Her UBX belongs to the dump too.
			var sawPSM bool
			for _, ev := range bev.all() {
				if pm, ok := ev.(msnp.PersonalMessage); ok && pm.Passport == "alice@example.com" {
					sawPSM = true
				}
				if is[msnp.PresenceSynced](ev) {
					break
				}
			}
			if !sawPSM {
				t.Errorf("alice's UBX came after PresenceSynced: %s", fmtEvents(bev.all()))
			}
		}
		if !sawAlice {
			t.Fatalf("bob did not get alice's initial presence before PresenceSynced: %s", fmtEvents(bev.all()))
		}
		ev := aev.next(t, "bob online", func(ev msnp.Event) bool {
			cp, ok := ev.(msnp.ContactPresence)
			return ok && cp.Passport == "bob@example.com"
		}).(msnp.ContactPresence)
		if ev.Initial || ev.Status != msnp.StatusOnline || ev.FriendlyName != "Bob" || ev.ClientID != msnp.DefaultClientID {
			t.Errorf("bob online = %+v", ev)
		}
		if err := b.SetStatus(ctxT(t), msnp.StatusAway); err != nil {
			t.Fatal(err)
		}
		aev.next(t, "bob away", func(ev msnp.Event) bool {
			cp, ok := ev.(msnp.ContactPresence)
			return ok && cp.Status == msnp.StatusAway
		})
		if ct, _ := a.Contact("bob@example.com"); ct.Status != msnp.StatusAway {
			t.Errorf("Contacts() does not track presence: %+v", ct)
		}
		if b.Status() != msnp.StatusAway {
			t.Errorf("own Status() = %v", b.Status())
		}
		b.Close()
		aev.next(t, "bob offline", func(ev msnp.Event) bool {
			co, ok := ev.(msnp.ContactOffline)
			return ok && co.Passport == "bob@example.com"
		})
		d := bev.next(t, "Disconnected", is[msnp.Disconnected]).(msnp.Disconnected)
		if d.Reason != msnp.ReasonLoggedOut {
			t.Errorf("after Close: %+v", d)
		}
	})
}

func TestPersonalMessage(t *testing.T) {
	forVersions(t, []msnp.Protocol{msnp.MSNP11, msnp.MSNP12, msnp.MSNP13, msnp.MSNP14, msnp.MSNP15, msnp.MSNP18}, func(t *testing.T, p msnp.Protocol) {
		s := newServer(t)
		s.AddAccount("alice@example.com", "pw", "")
		s.AddAccount("bob@example.com", "pw", "")
		s.AddContact("alice@example.com", "bob@example.com")
		a, aev := connect(t, config(s, p), "alice@example.com", "pw")
		online(t, a, aev)
		b, bev := connect(t, config(s, p), "bob@example.com", "pw")
		online(t, b, bev)
		const text = `fish & chips <3 "quoted"`
		if err := b.SetPersonalMessage(ctxT(t), text); err != nil {
			t.Fatal(err)
		}
		if got := s.PSM("bob@example.com"); got != text {
			t.Errorf("server has PSM %q", got)
		}
		aev.next(t, "PersonalMessage", func(ev msnp.Event) bool {
			pm, ok := ev.(msnp.PersonalMessage)
			return ok && pm.Passport == "bob@example.com" && pm.Text == text
		})
	})
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "")
	a, _ := connect(t, config(s, msnp.MSNP8), "alice@example.com", "pw")
	if err := a.SetPersonalMessage(ctxT(t), "x"); !errors.Is(err, msnp.ErrUnsupported) {
		t.Errorf("PSM on MSNP8: %v", err)
	}
}

func TestFriendlyName(t *testing.T) {
	forVersions(t, allVersions, func(t *testing.T, p msnp.Protocol) {
		s := newServer(t)
		s.AddAccount("alice@example.com", "pw", "Alice")
		a, aev := connect(t, config(s, p), "alice@example.com", "pw")
		const name = "Alice 100% Ünïcode"
		if err := a.SetFriendlyName(ctxT(t), name); err != nil {
			t.Fatal(err)
		}
		ev := aev.next(t, "FriendlyNameChanged", is[msnp.FriendlyNameChanged]).(msnp.FriendlyNameChanged)
		if ev.Name != name || a.FriendlyName() != name || s.FriendlyName("alice@example.com") != name {
			t.Errorf("event %q, client %q, server %q", ev.Name, a.FriendlyName(), s.FriendlyName("alice@example.com"))
		}
	})
}

func TestContactListEdits(t *testing.T) {
	forVersions(t, allVersions, func(t *testing.T, p msnp.Protocol) {
		s := newServer(t)
		s.AddAccount("alice@example.com", "pw", "Alice")
		s.AddAccount("carol@example.com", "pw", "Carol")
		a, _ := connect(t, config(s, p), "alice@example.com", "pw")
		c, cev := connect(t, config(s, p), "carol@example.com", "pw")
		ctx := ctxT(t)
		lists := func() int { return s.Lists("alice@example.com", "carol@example.com") }

		if err := a.AddContact(ctx, "carol@example.com"); err != nil {
			t.Fatal(err)
		}
		if lists()&3 != 3 {
			t.Fatalf("after AddContact the server has lists %d", lists())
		}
		if ct, ok := a.Contact("carol@example.com"); !ok || ct.Lists&(msnp.FL|msnp.AL) != msnp.FL|msnp.AL {
			t.Fatalf("client has %+v", ct)
		}
		added := cev.next(t, "AddedBy", is[msnp.AddedBy]).(msnp.AddedBy)
		if added.Passport != "alice@example.com" || added.Name != "Alice" {
			t.Errorf("AddedBy = %+v", added)
		}
		if err := c.AcceptPending(ctx, "alice@example.com"); err != nil {
			t.Fatal(err)
		}
		if l := s.Lists("carol@example.com", "alice@example.com"); l&3 != 3 {
			t.Errorf("after AcceptPending carol has lists %d for alice", l)
		}

		if err := a.Block(ctx, "carol@example.com"); err != nil {
			t.Fatal(err)
		}
		if lists()&6 != 4 {
			t.Fatalf("after Block the server has lists %d", lists())
		}
		if err := a.Unblock(ctx, "carol@example.com"); err != nil {
			t.Fatal(err)
		}
		if lists()&6 != 2 {
			t.Fatalf("after Unblock the server has lists %d", lists())
		}
		if err := a.RemoveContact(ctx, "carol@example.com"); err != nil {
			t.Fatal(err)
		}
		if lists()&1 != 0 {
			t.Fatalf("after RemoveContact the server has lists %d", lists())
		}
		cev.next(t, "RemovedBy", func(ev msnp.Event) bool {
			r, ok := ev.(msnp.RemovedBy)
			return ok && r.Passport == "alice@example.com"
		})
		if ct, _ := a.Contact("carol@example.com"); ct.Lists&msnp.FL != 0 {
			t.Errorf("client still has carol on FL: %+v", ct)
		}
		if err := a.AddContact(ctx, "no such user"); err == nil {
			t.Error("invalid passport accepted")
		}
	})
}

func TestDeclinePending(t *testing.T) {
	forVersions(t, []msnp.Protocol{msnp.MSNP8, msnp.MSNP12, msnp.MSNP13, msnp.MSNP14, msnp.MSNP15, msnp.MSNP18}, testDeclinePending)
}

func testDeclinePending(t *testing.T, p msnp.Protocol) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "")
	s.AddAccount("carol@example.com", "pw", "")
	s.AddContactOneWay("alice@example.com", "carol@example.com")
	c, cev := connect(t, config(s, p), "carol@example.com", "pw")
	ct, ok := c.Contact("alice@example.com")
	if !ok || ct.Lists&msnp.PL == 0 {
		t.Fatalf("pending contact not listed: %+v", c.Contacts())
	}
	if ev := cev.next(t, "AddedBy", is[msnp.AddedBy]).(msnp.AddedBy); ev.Passport != "alice@example.com" {
		t.Fatalf("AddedBy = %+v", ev)
	}
	if err := c.DeclinePending(ctxT(t), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if l := s.Lists("carol@example.com", "alice@example.com"); l&4 == 0 {
		t.Fatalf("server lists %d", l)
	}
}

func TestDisconnectReasons(t *testing.T) {
	forVersions(t, []msnp.Protocol{msnp.MSNP12, msnp.MSNP15, msnp.MSNP18}, testDisconnectReasons)
}

func testDisconnectReasons(t *testing.T, p msnp.Protocol) {
	for _, tc := range []struct {
		name   string
		do     func(s *msnptest.Server, cfg msnp.Config, t *testing.T)
		reason msnp.DisconnectReason
	}{
		{"other login", func(s *msnptest.Server, cfg msnp.Config, t *testing.T) {
			connect(t, cfg, "alice@example.com", "pw")
		}, msnp.ReasonOtherLogin},
		{"kick OTH", func(s *msnptest.Server, _ msnp.Config, t *testing.T) { s.Kick("alice@example.com", "OTH") }, msnp.ReasonOtherLogin},
		{"shutdown", func(s *msnptest.Server, _ msnp.Config, t *testing.T) { s.Kick("alice@example.com", "SSD") }, msnp.ReasonServerShutdown},
		{"drop", func(s *msnptest.Server, _ msnp.Config, t *testing.T) { s.Drop("alice@example.com") }, msnp.ReasonConnectionLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			s.AddAccount("alice@example.com", "pw", "")
			cfg := config(s, p)
			// The same machine signing in again: on MSNP16+ only a
			// distinct GUID signs in beside the first endpoint.
			cfg.MachineGUID = "{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}"
			c, ev := connect(t, cfg, "alice@example.com", "pw")
			tc.do(s, cfg, t)
			d := ev.next(t, "Disconnected", is[msnp.Disconnected]).(msnp.Disconnected)
			if d.Reason != tc.reason || d.Err == nil {
				t.Fatalf("Disconnected = %+v, want reason %v", d, tc.reason)
			}
			if tc.reason == msnp.ReasonConnectionLost && !errors.Is(d.Err, msnp.ErrNetwork) {
				t.Errorf("connection loss cause %v does not match ErrNetwork", d.Err)
			}
			if err := c.SetStatus(ctxT(t), msnp.StatusOnline); !errors.Is(err, msnp.ErrNotConnected) {
				t.Errorf("request after disconnect: %v", err)
			}
			if n := len(ev.all()); !is[msnp.Disconnected](ev.all()[n-1]) {
				t.Errorf("events after Disconnected: %s", fmtEvents(ev.all()))
			}
		})
	}
}

func TestKeepalive(t *testing.T) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "")
	cfg := config(s, msnp.MSNP11)
	cfg.KeepaliveInterval = 20 * time.Millisecond
	c, _ := connect(t, cfg, "alice@example.com", "pw")
	from := 0
	for i := 0; i < 3; i++ {
		if _, err := s.WaitReceived(ctxT(t), "alice@example.com", "PNG", from); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		from = len(s.Received("alice@example.com"))
	}
	if c.Protocol() == 0 {
		t.Fatal("answered pings ended the connection")
	}
}

// TestKeepaliveTimeout uses a server that answers the login but never a
// PNG: the client must give up on it.
func TestKeepaliveTimeout(t *testing.T) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "")
	// A proxy that forwards everything but swallows PNG.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		cc, err := ln.Accept()
		if err != nil {
			return
		}
		sc, err := net.Dial("tcp", s.NSAddr())
		if err != nil {
			cc.Close()
			return
		}
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := sc.Read(buf)
				if err != nil {
					cc.Close()
					return
				}
				cc.Write(buf[:n])
			}
		}()
		r := msnp.NewReader(cc)
		w := msnp.NewWriter(sc)
		for {
			cmd, err := r.ReadCommand()
			if err != nil {
				sc.Close()
				return
			}
			if cmd.Name != "PNG" {
				w.WriteCommand(cmd)
			}
		}
	}()
	cfg := config(s, msnp.MSNP11)
	cfg.Server = ln.Addr().String()
	cfg.KeepaliveInterval = 20 * time.Millisecond
	cfg.KeepaliveTimeout = 100 * time.Millisecond
	_, ev := connect(t, cfg, "alice@example.com", "pw")
	d := ev.next(t, "Disconnected", is[msnp.Disconnected]).(msnp.Disconnected)
	if d.Reason != msnp.ReasonConnectionLost || !errors.Is(d.Err, msnp.ErrKeepaliveTimeout) || !errors.Is(d.Err, msnp.ErrNetwork) {
		t.Fatalf("Disconnected = %+v", d)
	}
}

func TestChallengeAnswered(t *testing.T) {
	forVersions(t, allVersions, func(t *testing.T, p msnp.Protocol) {
		s := newServer(t)
		s.AddAccount("alice@example.com", "pw", "")
		s.SetChallenge(true)
		c, ev := connect(t, config(s, p), "alice@example.com", "pw")
		q, err := s.WaitReceived(ctxT(t), "alice@example.com", "QRY", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(q.Payload) != 32 {
			t.Errorf("QRY payload %q", q.Payload)
		}
		// A wrong answer would have cost the connection (540).
		online(t, c, ev)
		for _, e := range ev.all() {
			if is[msnp.Disconnected](e) {
				t.Fatalf("disconnected: %s", fmtEvents(ev.all()))
			}
		}
	})
}

func TestSwitchboardRequestAndInvite(t *testing.T) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "Alice")
	s.AddAccount("bob@example.com", "pw", "Bob")
	s.AddContact("alice@example.com", "bob@example.com")
	a, aev := connect(t, config(s, msnp.MSNP12), "alice@example.com", "pw")
	if _, _, err := a.RequestSwitchboard(ctxT(t)); msnp.CodeOf(err) != msnp.ErrNotAllowedOffline {
		t.Fatalf("XFR SB before CHG: %v, want 913", err)
	}
	online(t, a, aev)
	bcfg := config(s, msnp.MSNP12)
	bcfg.ManualSwitchboards = true // the RNG below names no real switchboard
	b, bev := connect(t, bcfg, "bob@example.com", "pw")
	online(t, b, bev)
	addr, cookie, err := a.RequestSwitchboard(ctxT(t))
	if err != nil || addr == "" || cookie == "" {
		t.Fatalf("RequestSwitchboard = %q, %q, %v", addr, cookie, err)
	}
	// msnptest has no switchboard yet: ring bob the way the server would.
	s.SendRaw("bob@example.com", []byte("RNG 2bfc718a59d5d8040037d83ab4601b1 127.0.0.1:1864 CKI 6234174b036025840f0f alice@example.com Alice%20A\r\n"))
	inv := bev.next(t, "SwitchboardInvite", is[msnp.SwitchboardInvite]).(msnp.SwitchboardInvite)
	want := msnp.SwitchboardInvite{SessionID: "2bfc718a59d5d8040037d83ab4601b1", Addr: "127.0.0.1:1864",
		Cookie: "6234174b036025840f0f", Inviter: "alice@example.com", InviterName: "Alice A"}
	if inv != want {
		t.Fatalf("invite = %+v, want %+v", inv, want)
	}
}

func TestServerNotices(t *testing.T) {
	forVersions(t, []msnp.Protocol{msnp.MSNP12, msnp.MSNP15, msnp.MSNP18}, testServerNotices)
}

func testServerNotices(t *testing.T, p msnp.Protocol) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "")
	_, ev := connect(t, config(s, p), "alice@example.com", "pw")
	body := "MIME-Version: 1.0\r\nContent-Type: application/x-msmsgssystemmessage\r\n\r\nType: 1\r\nArg1: 5\r\n"
	notPayload := "<NOTIFICATION id=\"0\"><TO pid=\"0x0:0x0\" name=\"alice@example.com\"/></NOTIFICATION>"
	raw := fmt.Sprintf("NOT %d\r\n%sMSG Hotmail Hotmail %d\r\n%s", len(notPayload), notPayload, len(body), body)
	s.SendRaw("alice@example.com", []byte(raw))
	n := ev.next(t, "maintenance notice", func(e msnp.Event) bool {
		n, ok := e.(msnp.ServerNotice)
		return ok && n.ContentType == "application/x-msmsgssystemmessage"
	}).(msnp.ServerNotice)
	if n.MaintenanceMinutes != 5 {
		t.Fatalf("notice = %+v", n)
	}
	for _, e := range ev.all() {
		if is[msnp.Disconnected](e) {
			t.Fatal("NOT payload cost the connection")
		}
	}
	if s.AnnounceMaintenance(10) != 1 {
		t.Fatal("server told nobody")
	}
	n = ev.next(t, "announced maintenance", is[msnp.ServerNotice]).(msnp.ServerNotice)
	if n.ContentType != "application/x-msmsgssystemmessage" || n.MaintenanceMinutes != 10 {
		t.Fatalf("notice = %+v", n)
	}
}

func TestTracesAreRedacted(t *testing.T) {
	forVersions(t, []msnp.Protocol{msnp.MSNP12, msnp.MSNP15, msnp.MSNP18}, testTracesAreRedacted)
}

func testTracesAreRedacted(t *testing.T, p msnp.Protocol) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "s3cret-pass", "")
	var buf syncBuffer
	cfg := config(s, p)
	cfg.Logger = zerolog.New(&buf).Level(zerolog.DebugLevel)
	c, ev := connect(t, cfg, "alice@example.com", "s3cret-pass")
	online(t, c, ev)
	c.RequestSwitchboard(ctxT(t))
	c.Close()
	logs := buf.String()
	auth := "TWN"
	if p >= msnp.MSNP15 {
		auth = "SSO"
	}
	if !strings.Contains(logs, "USR 4 "+auth+" S <redacted>") || !strings.Contains(logs, "CKI <redacted>") {
		t.Fatalf("trace lacks the redacted lines:\n%s", logs)
	}
	if strings.Contains(logs, "s3cret") || strings.Contains(logs, "MSPAuth: 0") || strings.Contains(logs, "pwd=") {
		t.Fatalf("secret in trace:\n%s", logs)
	}
	// The ticket the server issued must not appear anywhere.
	for _, cmd := range s.Received("alice@example.com") {
		if cmd.Name == "USR" && cmd.Arg(2) == "S" {
			for _, secret := range cmd.Args[3:] {
				if strings.Contains(logs, secret) {
					t.Fatalf("ticket or proof %q in trace", secret)
				}
			}
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRedirect puts a dispatch server in front of msnptest: it answers
// USR TWN I with XFR NS, and the client must log in at the address given.
func TestRedirect(t *testing.T) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r, w := msnp.NewReader(nc), msnp.NewWriter(nc)
		for {
			cmd, err := r.ReadCommand()
			if err != nil {
				return
			}
			trid := cmd.Arg(0)
			switch cmd.Name {
			case "VER":
				w.WriteCommand(&msnp.Command{Name: "VER", Args: []string{trid, "MSNP12"}})
			case "CVR":
				w.WriteCommand(&msnp.Command{Name: "CVR", Args: []string{trid, "7.5.0324", "7.5.0324", "7.5.0324", "x", "y"}})
			case "USR":
				w.WriteCommand(&msnp.Command{Name: "XFR", Args: []string{trid, "NS", s.NSAddr(), "0", "127.0.0.1:1863"}})
			}
		}
	}()
	cfg := config(s, msnp.MSNP12)
	cfg.Server = ln.Addr().String()
	c, _ := connect(t, cfg, "alice@example.com", "pw")
	if !s.Online("alice@example.com") || c.Protocol() != msnp.MSNP12 {
		t.Fatal("not logged in after the redirect")
	}
}

// TestStuckHandler: a handler that stops returning gets the connection
// closed once MaxQueuedEvents wait, instead of unbounded memory.
func TestStuckHandler(t *testing.T) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "")
	release := make(chan struct{})
	got := make(chan msnp.Event, 100)
	cfg := config(s, msnp.MSNP12)
	cfg.MaxQueuedEvents = 3
	c, err := msnp.New(cfg, "alice@example.com", "pw", func(ev msnp.Event) {
		<-release
		got <- ev
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var raw strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&raw, "FLN user%d@example.com\r\n", i)
	}
	s.SendRaw("alice@example.com", []byte(raw.String()))
	if err := s.WaitOffline(ctxT(t), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	close(release)
	var evs []msnp.Event
	for {
		select {
		case ev := <-got:
			evs = append(evs, ev)
			if d, ok := ev.(msnp.Disconnected); ok {
				if d.Reason != msnp.ReasonConnectionLost || d.Err == nil || !strings.Contains(d.Err.Error(), "not keeping up") {
					t.Fatalf("Disconnected = %+v", d)
				}
				if len(evs) > 5 {
					t.Fatalf("%d events queued past the limit: %s", len(evs), fmtEvents(evs))
				}
				return
			}
		case <-time.After(wait):
			t.Fatalf("no Disconnected; got %s", fmtEvents(evs))
		}
	}
}

// TestMalformedServerLine: garbage from the server ends the session with a
// protocol error, not a panic and not a network error.
func TestMalformedServerLine(t *testing.T) {
	for _, raw := range []string{"this is not msnp\r\n", "NLN NLN\r\n", "ILN 9\r\n", "RNG x\r\n"} {
		s := newServer(t)
		s.AddAccount("alice@example.com", "pw", "")
		_, ev := connect(t, config(s, msnp.MSNP12), "alice@example.com", "pw")
		s.SendRaw("alice@example.com", []byte(raw))
		d := ev.next(t, "Disconnected", is[msnp.Disconnected]).(msnp.Disconnected)
		var pe *msnp.ProtocolError
		if d.Reason != msnp.ReasonConnectionLost || !errors.As(d.Err, &pe) || errors.Is(d.Err, msnp.ErrNetwork) {
			t.Errorf("%q: Disconnected = %+v", raw, d)
		}
	}
}
