//go:build integration

package xmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
)

// This test runs the gateway against the real Prosody started by
// scripts/prosody.sh, with real XMPP clients; only the core is fake.

func env(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run `eval \"$(scripts/prosody.sh start)\"` first (scripts/test.sh does)", name)
	}
	return v
}

// call is one call the gateway made into the fake core.
type call struct {
	name     string
	user     string
	passport string
	password string
	portal   bridge.PortalID
	text     bridge.Text
	fid      string
	active   bool
	status   bridge.Status
}

// fakeCore records the calls that change something and answers queries
// from a small in-memory model.
type fakeCore struct {
	calls chan call

	mu         sync.Mutex
	logins     map[string]string // user -> passport
	forbidden  map[string]bool
	contacts   map[string][]bridge.Contact
	portalByID map[bridge.PortalID]bridge.Portal
}

func newFakeCore() *fakeCore {
	return &fakeCore{
		calls:      make(chan call, 100),
		logins:     make(map[string]string),
		forbidden:  make(map[string]bool),
		contacts:   make(map[string][]bridge.Contact),
		portalByID: make(map[bridge.PortalID]bridge.Portal),
	}
}

func (f *fakeCore) record(c call) { f.calls <- c }

func (f *fakeCore) Permission(u bridge.UserID) bridge.Permission {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u.Frontend != Kind || f.forbidden[u.ID] {
		return bridge.PermissionNone
	}
	return bridge.PermissionUser
}

func (f *fakeCore) Login(_ context.Context, u bridge.UserID, passport, password string) error {
	f.mu.Lock()
	f.logins[u.ID] = passport
	f.mu.Unlock()
	f.record(call{name: "Login", user: u.ID, passport: passport, password: password})
	return nil
}

func (f *fakeCore) Logout(_ context.Context, u bridge.UserID) error {
	f.mu.Lock()
	delete(f.logins, u.ID)
	f.mu.Unlock()
	f.record(call{name: "Logout", user: u.ID})
	return nil
}

func (f *fakeCore) Relogin(_ context.Context, u bridge.UserID) error {
	f.record(call{name: "Relogin", user: u.ID})
	return nil
}

func (f *fakeCore) Status(_ context.Context, u bridge.UserID) (bridge.LoginStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.logins[u.ID]
	if !ok {
		return bridge.LoginStatus{State: bridge.LoginLoggedOut}, nil
	}
	return bridge.LoginStatus{Passport: p, State: bridge.LoginConnected, Status: bridge.StatusOnline, Protocol: "MSNP12"}, nil
}

func (f *fakeCore) Contacts(_ context.Context, u bridge.UserID) ([]bridge.Contact, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bridge.Contact(nil), f.contacts[u.ID]...), nil
}

func (f *fakeCore) AddContact(_ context.Context, u bridge.UserID, p string) error {
	f.record(call{name: "AddContact", user: u.ID, passport: p})
	return nil
}

func (f *fakeCore) RemoveContact(_ context.Context, u bridge.UserID, p string) error {
	f.record(call{name: "RemoveContact", user: u.ID, passport: p})
	return nil
}

func (f *fakeCore) BlockContact(_ context.Context, u bridge.UserID, p string) error {
	f.record(call{name: "BlockContact", user: u.ID, passport: p})
	return nil
}

func (f *fakeCore) UnblockContact(_ context.Context, u bridge.UserID, p string) error {
	f.record(call{name: "UnblockContact", user: u.ID, passport: p})
	return nil
}

func (f *fakeCore) SetStatus(_ context.Context, u bridge.UserID, s bridge.Status) error {
	f.record(call{name: "SetStatus", user: u.ID, status: s})
	return nil
}

func (f *fakeCore) SetPersonalMessage(_ context.Context, u bridge.UserID, text string) error {
	f.record(call{name: "SetPersonalMessage", user: u.ID, text: bridge.Text{Body: text}})
	return nil
}

func (f *fakeCore) SetFriendlyName(_ context.Context, u bridge.UserID, name string) error {
	f.record(call{name: "SetFriendlyName", user: u.ID, text: bridge.Text{Body: name}})
	return nil
}

func (f *fakeCore) DirectPortal(_ context.Context, u bridge.UserID, passport string) (bridge.Portal, error) {
	p := bridge.Portal{ID: bridge.PortalID("direct:" + u.ID + ":" + passport), Kind: bridge.PortalDirect, Contact: passport}
	f.mu.Lock()
	f.portalByID[p.ID] = p
	f.mu.Unlock()
	return p, nil
}

func (f *fakeCore) Portal(_ context.Context, _ bridge.UserID, id bridge.PortalID) (bridge.Portal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.portalByID[id]
	if !ok {
		return p, errors.New("no such portal")
	}
	return p, nil
}

func (f *fakeCore) PortalByRoom(context.Context, bridge.UserID, string) (bridge.Portal, error) {
	return bridge.Portal{}, errors.New("no rooms in this test")
}

func (f *fakeCore) SetPortalRoom(context.Context, bridge.UserID, bridge.PortalID, string) error {
	return nil
}

func (f *fakeCore) Invite(context.Context, bridge.UserID, bridge.PortalID, string) error { return nil }

func (f *fakeCore) LeavePortal(context.Context, bridge.UserID, bridge.PortalID) error { return nil }

func (f *fakeCore) SendMessage(_ context.Context, u bridge.UserID, id bridge.PortalID, m bridge.OutgoingMessage) error {
	f.record(call{name: "SendMessage", user: u.ID, portal: id, text: m.Text, fid: m.FrontendID})
	return nil
}

func (f *fakeCore) SendTyping(_ context.Context, u bridge.UserID, id bridge.PortalID, active bool) error {
	f.record(call{name: "SendTyping", user: u.ID, portal: id, active: active})
	return nil
}

func (f *fakeCore) SendNudge(_ context.Context, u bridge.UserID, id bridge.PortalID) error {
	f.record(call{name: "SendNudge", user: u.ID, portal: id})
	return nil
}

// The XMPP gateway has no management room; these complete bridge.Core.
func (f *fakeCore) ManagementRoom(context.Context, bridge.UserID) (string, error) { return "", nil }
func (f *fakeCore) SetManagementRoom(context.Context, bridge.UserID, string) error {
	return errors.New("the XMPP gateway has no management room")
}

// waitCall returns the next call named name, skipping others.
func (f *fakeCore) waitCall(t *testing.T, name string) call {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c := <-f.calls:
			if c.name == name {
				return c
			}
			t.Logf("core call %s (waiting for %s)", c.name, name)
		case <-timeout:
			t.Fatalf("no %s call into the core", name)
		}
	}
}

// client is a real XMPP client of the test's Prosody.
type client struct {
	jid  jid.JID
	sess *xmpp.Session
	in   chan *node
}

func register(t *testing.T, name, password string) {
	t.Helper()
	cfg := env(t, "MSNBRIDGE_TEST_XMPP_CONFIG")
	out, err := exec.Command("prosodyctl", "--config", cfg, "register", name, env(t, "MSNBRIDGE_TEST_XMPP_DOMAIN"), password).CombinedOutput()
	if err != nil {
		t.Fatalf("prosodyctl register %s: %v: %s", name, err, out)
	}
}

func dialClient(t *testing.T, name string) *client { return dialClientUntil(t, t, name) }

// dialClientUntil connects a client that lives until owner's test ends.
func dialClientUntil(t, owner *testing.T, name string) *client {
	t.Helper()
	const password = "test-password"
	register(t, name, password)
	domain := env(t, "MSNBRIDGE_TEST_XMPP_DOMAIN")
	addr := jid.MustParse(name + "@" + domain)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := net.Dial("tcp", env(t, "MSNBRIDGE_TEST_XMPP_C2S"))
	if err != nil {
		t.Fatal(err)
	}
	// Secure: no TLS on loopback, but SASL must still run.
	sess, err := xmpp.NewSession(ctx, addr.Domain(), addr, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
			xmpp.SASL("", password, sasl.ScramSha1, sasl.Plain),
			xmpp.BindResource(),
		}}
	}))
	if err != nil {
		t.Fatalf("client %s: %v", name, err)
	}
	c := &client{jid: sess.LocalAddr(), sess: sess, in: make(chan *node, 100)}
	go func() {
		_ = sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			n := &node{}
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(n); err != nil {
				return nil
			}
			// Roster pushes want a result; everything else goes to the test.
			if n.Name.Local == "iq" && n.attr("type") == "set" && n.child("jabber:iq:roster", "query") != nil {
				if err := r.Encode(outIQ{ID: n.attr("id"), Type: "result", To: n.attr("from")}); err != nil {
					return nil
				}
			}
			c.in <- n
			return nil
		}))
	}()
	owner.Cleanup(func() { sess.Close(); conn.Close() })
	// Asking for the roster makes this an "interested resource" (RFC 6121),
	// which then receives roster pushes.
	c.iq(t, "get", "", `<query xmlns='jabber:iq:roster'/>`)
	c.send(t, outPresence{})
	return c
}

func (c *client) send(t *testing.T, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.sess.Encode(ctx, v); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// sendRaw sends literal XML (for payloads the test builds by hand).
func (c *client) sendRaw(t *testing.T, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.sess.Send(ctx, xml.NewDecoder(strings.NewReader(s))); err != nil {
		t.Fatalf("send %s: %v", s, err)
	}
}

// expect returns the next stanza matching ok, skipping others.
func (c *client) expect(t *testing.T, what string, ok func(*node) bool) *node {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n := <-c.in:
			if ok(n) {
				return n
			}
		case <-timeout:
			t.Fatalf("%s: never received %s", c.jid, what)
		}
	}
}

func (c *client) iq(t *testing.T, typ, to, payload string) *node {
	t.Helper()
	id := newID()
	toAttr := ""
	if to != "" {
		toAttr = fmt.Sprintf(" to='%s'", to)
	}
	c.sendRaw(t, fmt.Sprintf(`<iq xmlns='jabber:client' type='%s' id='%s'%s>%s</iq>`, typ, id, toAttr, payload))
	return c.expect(t, "reply to iq "+id, func(n *node) bool { return n.Name.Local == "iq" && n.attr("id") == id })
}

func from(n *node, j string) bool { return jid.MustParse(n.attr("from")).Bare().String() == j }

func condition(n *node) string {
	e := n.child("", "error")
	if e == nil {
		return ""
	}
	for _, c := range e.Nodes {
		if c.Name.Space == nsStanzas && c.Name.Local != "text" {
			return c.Name.Local
		}
	}
	return ""
}

func TestGatewayWithProsody(t *testing.T) {
	top := t
	gw := env(t, "MSNBRIDGE_TEST_XMPP_JID")
	core := newFakeCore()
	g, err := New(config.XMPP{
		Enabled: true, JID: gw, Server: env(t, "MSNBRIDGE_TEST_XMPP_COMPONENT"), Secret: env(t, "MSNBRIDGE_TEST_XMPP_SECRET"),
	}, core, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	g.minBackoff, g.maxBackoff = 20*time.Millisecond, 500*time.Millisecond
	connects := make(chan struct{}, 10)
	g.onConnect = func() { connects <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error)
	go func() { runDone <- g.Run(ctx) }()
	stopGateway := sync.OnceValue(func() error {
		cancel()
		return <-runDone
	})
	t.Cleanup(func() { _ = stopGateway() })
	select {
	case <-connects:
	case <-time.After(10 * time.Second):
		t.Fatal("component never connected")
	}

	suffix := newID()[:8]
	alice := dialClient(t, "alice"+suffix)
	user := bridge.UserID{Frontend: Kind, ID: alice.jid.Bare().String()}
	bobPassport := "Bob.Smith@Hotmail.com"
	bobJID := `bob.smith\40hotmail.com@` + gw

	t.Run("disco", func(t *testing.T) {
		r := alice.iq(t, "get", gw, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		id := r.child(nsDiscoInfo, "query").child("", "identity")
		if id.attr("category") != "gateway" || id.attr("type") != "msn" {
			t.Fatalf("identity %+v, want gateway/msn", id)
		}
		var feats []string
		for _, f := range r.child(nsDiscoInfo, "query").children("", "feature") {
			feats = append(feats, f.attr("var"))
		}
		if !strings.Contains(strings.Join(feats, " "), nsRegister) {
			t.Errorf("features %v lack %s", feats, nsRegister)
		}
		r = alice.iq(t, "get", bobJID, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		if id := r.child(nsDiscoInfo, "query").child("", "identity"); id.attr("category") != "client" {
			t.Errorf("contact identity %+v, want client", id)
		}
	})

	t.Run("register", func(t *testing.T) {
		r := alice.iq(t, "get", gw, `<query xmlns='jabber:iq:register'/>`)
		form := r.child(nsRegister, "query").child(nsData, "x")
		if form == nil || len(form.children("", "field")) < 3 {
			t.Fatalf("no registration form: %+v", r)
		}
		alice.iq(t, "set", gw, `<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>
			<field var='FORM_TYPE'><value>jabber:iq:register</value></field>
			<field var='passport'><value>alice@hotmail.com</value></field>
			<field var='password'><value>s3cret&amp;&lt;</value></field></x></query>`)
		c := core.waitCall(t, "Login")
		if c.user != user.ID || c.passport != "alice@hotmail.com" || c.password != "s3cret&<" {
			t.Fatalf("Login(%q, %q, %q)", c.user, c.passport, c.password)
		}
		alice.expect(t, "subscribe from the gateway", func(n *node) bool {
			return n.Name.Local == "presence" && n.attr("type") == "subscribe" && from(n, gw)
		})
		alice.send(t, outPresence{Type: "subscribed", To: gw})
		alice.send(t, outPresence{Type: "subscribe", To: gw})
		// Prosody turns the gateway's "subscribed" into a roster push; the
		// gateway's presence that follows it reaches the client.
		alice.expect(t, "presence from the gateway", func(n *node) bool {
			return n.Name.Local == "presence" && n.attr("type") == "" && from(n, gw)
		})
	})

	t.Run("user presence sets MSN status", func(t *testing.T) {
		alice.sendRaw(t, `<presence xmlns='jabber:client'><show>dnd</show></presence>`)
		for {
			if c := core.waitCall(t, "SetStatus"); c.status == bridge.StatusBusy {
				break
			}
		}
	})

	t.Run("contact subscription and presence", func(t *testing.T) {
		bob := bridge.Contact{Passport: bobPassport, FriendlyName: "Bob <the builder>", OnContactList: true, Status: bridge.StatusOffline}
		if _, err := g.Deliver(ctx, user, bridge.ContactChange{Kind: bridge.ContactAdded, Contact: bob}); err != nil {
			t.Fatal(err)
		}
		n := alice.expect(t, "subscribe from bob", func(n *node) bool {
			return n.Name.Local == "presence" && n.attr("type") == "subscribe" && from(n, bobJID)
		})
		if got := n.child(nsNick, "nick").text(); got != bob.FriendlyName {
			t.Errorf("nick %q, want %q", got, bob.FriendlyName)
		}
		alice.send(t, outPresence{Type: "subscribed", To: bobJID})
		alice.send(t, outPresence{Type: "subscribe", To: bobJID})
		bob.Status, bob.PersonalMessage = bridge.StatusBusy, "at work & <busy>"
		if _, err := g.Deliver(ctx, user, bridge.Presence{Contact: bob}); err != nil {
			t.Fatal(err)
		}
		n = alice.expect(t, "bob's presence", func(n *node) bool {
			return n.Name.Local == "presence" && n.attr("type") == "" && from(n, bobJID)
		})
		if n.child("", "show").text() != "dnd" || n.child("", "status").text() != bob.PersonalMessage {
			t.Errorf("presence show %q status %q", n.child("", "show").text(), n.child("", "status").text())
		}
	})

	t.Run("contact list import on login", func(t *testing.T) {
		core.mu.Lock()
		core.contacts[user.ID] = []bridge.Contact{
			{Passport: "eve@x.org", FriendlyName: "Eve", OnContactList: true, Status: bridge.StatusOffline, Groups: []string{"Friends"}},
			{Passport: "blocked-only@x.org", Blocked: true},
		}
		core.mu.Unlock()
		if _, err := g.Deliver(ctx, user, bridge.LoginStateChange{State: bridge.LoginConnected}); err != nil {
			t.Fatal(err)
		}
		n := alice.expect(t, "subscribe from eve", func(n *node) bool {
			return n.Name.Local == "presence" && n.attr("type") == "subscribe" && n.attr("from") != "" && from(n, `eve\40x.org@`+gw)
		})
		if n.child(nsNick, "nick").text() != "Eve" {
			t.Errorf("nick %q", n.child(nsNick, "nick").text())
		}
	})

	t.Run("roster names and groups via XEP-0356", func(t *testing.T) {
		if !g.rosterPrivileged(env(t, "MSNBRIDGE_TEST_XMPP_DOMAIN")) {
			t.Fatal("Prosody did not grant roster privilege: is mod_privilege (prosody-modules) configured?")
		}
		eve := bridge.Contact{Passport: "eve@x.org", FriendlyName: "Eve (renamed)", OnContactList: true, Status: bridge.StatusOnline, Groups: []string{"Friends", "Work"}}
		if _, err := g.Deliver(ctx, user, bridge.Presence{Contact: eve}); err != nil {
			t.Fatal(err)
		}
		n := alice.expect(t, "roster push renaming eve", func(n *node) bool {
			item := n.child(nsRoster, "query").child("", "item")
			return item != nil && item.attr("jid") == `eve\40x.org@`+gw && item.attr("name") == eve.FriendlyName
		})
		var groups []string
		for _, gr := range n.child(nsRoster, "query").child("", "item").children("", "group") {
			groups = append(groups, gr.text())
		}
		if strings.Join(groups, ",") != "Friends,Work" && strings.Join(groups, ",") != "Work,Friends" {
			t.Errorf("groups %v", groups)
		}
	})

	t.Run("chat both ways", func(t *testing.T) {
		alice.sendRaw(t, `<message xmlns='jabber:client' type='chat' id='m1' to='`+bobJID+`'><body>*hi &amp; &lt;/body&gt;*</body><request xmlns='urn:xmpp:receipts'/></message>`)
		c := core.waitCall(t, "SendMessage")
		if c.user != user.ID || c.portal != bridge.PortalID("direct:"+user.ID+":bob.smith@hotmail.com") {
			t.Fatalf("SendMessage to %s in %s", c.user, c.portal)
		}
		if c.text != (bridge.Text{Body: "hi & </body>", Bold: true}) {
			t.Errorf("text %+v", c.text)
		}
		if _, err := g.Deliver(ctx, user, bridge.DeliveryResult{Portal: c.portal, FrontendID: c.fid}); err != nil {
			t.Fatal(err)
		}
		r := alice.expect(t, "receipt", func(n *node) bool { return n.child(nsReceipts, "received") != nil })
		if r.child(nsReceipts, "received").attr("id") != "m1" || !from(r, bobJID) {
			t.Errorf("receipt %+v", r.child(nsReceipts, "received"))
		}

		if _, err := g.Deliver(ctx, user, bridge.Message{Portal: c.portal, Sender: "bob.smith@hotmail.com",
			Text: bridge.Text{Body: "hello </body><evil/>", Italic: true}, Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
		m := alice.expect(t, "message from bob", func(n *node) bool {
			return n.Name.Local == "message" && n.child("", "body") != nil
		})
		if !from(m, bobJID) || m.attr("type") != "chat" || m.child("", "body").text() != "_hello </body><evil/>_" {
			t.Errorf("message from %s type %s body %q", m.attr("from"), m.attr("type"), m.child("", "body").text())
		}
	})

	t.Run("chat states and attention", func(t *testing.T) {
		alice.sendRaw(t, `<message xmlns='jabber:client' type='chat' to='`+bobJID+`'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`)
		if c := core.waitCall(t, "SendTyping"); !c.active {
			t.Error("composing sent as not typing")
		}
		alice.sendRaw(t, `<message xmlns='jabber:client' type='chat' to='`+bobJID+`'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>`)
		if c := core.waitCall(t, "SendTyping"); c.active {
			t.Error("paused sent as typing")
		}
		portal, _ := core.DirectPortal(ctx, user, "bob.smith@hotmail.com")
		if _, err := g.Deliver(ctx, user, bridge.Typing{Portal: portal.ID, Sender: "bob.smith@hotmail.com", Active: true}); err != nil {
			t.Fatal(err)
		}
		alice.expect(t, "composing from bob", func(n *node) bool {
			return n.child(nsChatStates, "composing") != nil && from(n, bobJID)
		})
		alice.sendRaw(t, `<message xmlns='jabber:client' type='chat' to='`+bobJID+`'><attention xmlns='urn:xmpp:attention:0'/></message>`)
		if c := core.waitCall(t, "SendNudge"); c.portal != portal.ID {
			t.Errorf("nudge in %s", c.portal)
		}
		if _, err := g.Deliver(ctx, user, bridge.Nudge{Portal: portal.ID, Sender: "bob.smith@hotmail.com"}); err != nil {
			t.Fatal(err)
		}
		alice.expect(t, "attention from bob", func(n *node) bool {
			return n.child(nsAttention, "attention") != nil && from(n, bobJID)
		})
	})

	t.Run("offline contact", func(t *testing.T) {
		carol := bridge.Contact{Passport: "carol@x.org", OnContactList: true, Status: bridge.StatusOffline}
		if _, err := g.Deliver(ctx, user, bridge.Presence{Contact: carol}); err != nil {
			t.Fatal(err)
		}
		carolJID := `carol\40x.org@` + gw
		alice.sendRaw(t, `<message xmlns='jabber:client' type='chat' id='c1' to='`+carolJID+`'><body>hi</body></message>`)
		e := alice.expect(t, "error about carol", func(n *node) bool { return n.attr("type") == "error" && n.attr("id") == "c1" })
		if condition(e) != "recipient-unavailable" {
			t.Errorf("condition %q", condition(e))
		}
	})

	t.Run("roster changes reach MSN", func(t *testing.T) {
		daveJID := `dave\40x.org@` + gw
		r := alice.iq(t, "set", gw, `<query xmlns='jabber:iq:gateway'><prompt>Dave@X.org</prompt></query>`)
		if got := r.child(nsGateway, "query").child("", "jid").text(); got != daveJID {
			t.Fatalf("jabber:iq:gateway gave %q, want %q", got, daveJID)
		}
		alice.send(t, outPresence{Type: "subscribe", To: daveJID})
		if c := core.waitCall(t, "AddContact"); c.passport != "dave@x.org" {
			t.Errorf("AddContact(%q)", c.passport)
		}
		alice.send(t, outPresence{Type: "unsubscribe", To: daveJID})
		if c := core.waitCall(t, "RemoveContact"); c.passport != "dave@x.org" {
			t.Errorf("RemoveContact(%q)", c.passport)
		}
		r = alice.iq(t, "get", bobJID, `<vCard xmlns='vcard-temp'/>`)
		if got := r.child(nsVCard, "vCard").child("", "NICKNAME").text(); got != "Bob <the builder>" {
			t.Errorf("vCard NICKNAME %q", got)
		}
	})

	t.Run("ad-hoc commands", func(t *testing.T) {
		r := alice.iq(t, "get", gw, `<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/>`)
		if len(r.child(nsDiscoItems, "query").children("", "item")) < 8 {
			t.Fatalf("commands: %+v", r.child(nsDiscoItems, "query"))
		}
		r = alice.iq(t, "set", gw, `<command xmlns='http://jabber.org/protocol/commands' node='set-status' action='execute'/>`)
		cmd := r.child(nsCommands, "command")
		if cmd.attr("status") != "executing" || cmd.child(nsData, "x") == nil {
			t.Fatalf("set-status did not return a form: %+v", r)
		}
		r = alice.iq(t, "set", gw, `<command xmlns='http://jabber.org/protocol/commands' node='set-status' sessionid='`+cmd.attr("sessionid")+`'>
			<x xmlns='jabber:x:data' type='submit'><field var='status'><value>phone</value></field></x></command>`)
		if r.child(nsCommands, "command").attr("status") != "completed" {
			t.Fatalf("set-status not completed: %+v", r)
		}
		if c := core.waitCall(t, "SetStatus"); c.status != bridge.StatusPhone {
			t.Errorf("SetStatus(%s)", c.status)
		}
		alice.iq(t, "set", gw, `<command xmlns='http://jabber.org/protocol/commands' node='block-contact'>
			<x xmlns='jabber:x:data' type='submit'><field var='passport'><value>`+bobJID+`</value></field></x></command>`)
		if c := core.waitCall(t, "BlockContact"); c.passport != "bob.smith@hotmail.com" {
			t.Errorf("BlockContact(%q)", c.passport)
		}
	})

	t.Run("strangers get errors", func(t *testing.T) {
		stranger := dialClient(t, "stranger"+suffix)
		stranger.sendRaw(t, `<message xmlns='jabber:client' type='chat' id='s1' to='`+bobJID+`'><body>hi</body></message>`)
		e := stranger.expect(t, "error", func(n *node) bool { return n.attr("type") == "error" && n.attr("id") == "s1" })
		if condition(e) != "registration-required" {
			t.Errorf("unregistered user got %q", condition(e))
		}
		mallory := dialClient(t, "mallory"+suffix)
		core.mu.Lock()
		core.forbidden[mallory.jid.Bare().String()] = true
		core.mu.Unlock()
		mallory.sendRaw(t, `<message xmlns='jabber:client' type='chat' id='x1' to='`+bobJID+`'><body>hi</body></message>`)
		e = mallory.expect(t, "error", func(n *node) bool { return n.attr("type") == "error" && n.attr("id") == "x1" })
		if condition(e) != "forbidden" {
			t.Errorf("forbidden user got %q", condition(e))
		}
		r := mallory.iq(t, "get", gw, `<query xmlns='jabber:iq:register'/>`)
		if condition(r) != "forbidden" {
			t.Errorf("forbidden user's register get: %q", condition(r))
		}
	})

	t.Run("bad stanzas do not end the session", func(t *testing.T) {
		deep := strings.Repeat("<a xmlns='urn:example:deep'>", 100) + strings.Repeat("</a>", 100)
		alice.sendRaw(t, `<message xmlns='jabber:client' type='chat' id='deep' to='`+bobJID+`'><body>x</body>`+deep+`</message>`)
		e := alice.expect(t, "error for a too deep stanza", func(n *node) bool { return n.attr("id") == "deep" })
		if condition(e) != "not-acceptable" {
			t.Errorf("too deep: %q", condition(e))
		}
		alice.sendRaw(t, `<iq xmlns='jabber:client' type='get' id='noload' to='`+gw+`'/>`)
		e = alice.expect(t, "error for an IQ without payload", func(n *node) bool { return n.attr("id") == "noload" })
		if condition(e) != "bad-request" {
			t.Errorf("empty IQ: %q", condition(e))
		}
		r := alice.iq(t, "get", gw, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		if r.attr("type") != "result" {
			t.Fatalf("gateway stopped answering after bad stanzas: %+v", r)
		}
		select {
		case <-connects:
			t.Fatal("the component reconnected: a bad stanza ended its session")
		default:
		}
	})

	t.Run("reconnect", func(t *testing.T) {
		g.dropConnection()
		select {
		case <-connects:
		case <-time.After(15 * time.Second):
			t.Fatal("component did not reconnect")
		}
		if _, err := g.Deliver(ctx, user, bridge.Message{Portal: bridge.PortalID("direct:" + user.ID + ":bob.smith@hotmail.com"),
			Sender: "bob.smith@hotmail.com", Text: bridge.Text{Body: "after reconnect"}}); err != nil {
			t.Fatal(err)
		}
		alice.expect(t, "message after reconnect", func(n *node) bool { return n.child("", "body").text() == "after reconnect" })
		alice.sendRaw(t, `<message xmlns='jabber:client' type='chat' to='`+bobJID+`'><body>still here</body></message>`)
		if c := core.waitCall(t, "SendMessage"); c.text.Body != "still here" {
			t.Errorf("SendMessage(%q)", c.text.Body)
		}
	})

	t.Run("server restart", func(t *testing.T) {
		// Last but one: the restart ends every client session too.
		out, err := exec.Command("../scripts/prosody.sh", "restart").CombinedOutput()
		if err != nil {
			t.Fatalf("restarting Prosody: %v: %s", err, out)
		}
		select {
		case <-connects:
		case <-time.After(20 * time.Second):
			t.Fatal("component did not reconnect after the server restarted")
		}
		alice = dialClientUntil(t, top, "alice2"+suffix)
		user = bridge.UserID{Frontend: Kind, ID: alice.jid.Bare().String()}
		r := alice.iq(t, "get", gw, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		if id := r.child(nsDiscoInfo, "query").child("", "identity"); id.attr("type") != "msn" {
			t.Fatalf("after restart: identity %+v", id)
		}
		alice.iq(t, "set", gw, `<query xmlns='jabber:iq:register'><username>alice2@hotmail.com</username><password>pw</password></query>`)
		if c := core.waitCall(t, "Login"); c.user != user.ID || c.passport != "alice2@hotmail.com" {
			t.Fatalf("Login(%s, %s) after restart", c.user, c.passport)
		}
		if _, err := g.Deliver(ctx, user, bridge.ContactChange{Kind: bridge.ContactAddedYou, Contact: bridge.Contact{Passport: bobPassport, Pending: true}}); err != nil {
			t.Fatal(err)
		}
		alice.expect(t, "subscribe from bob", func(n *node) bool {
			return n.Name.Local == "presence" && n.attr("type") == "subscribe" && from(n, bobJID)
		})
		alice.send(t, outPresence{Type: "subscribed", To: bobJID})
		// Approving a pending contact accepts them on MSN.
		if c := core.waitCall(t, "AddContact"); c.passport != "bob.smith@hotmail.com" {
			t.Errorf("AddContact(%q)", c.passport)
		}
	})

	t.Run("unregister", func(t *testing.T) {
		core.mu.Lock()
		core.contacts[user.ID] = []bridge.Contact{{Passport: bobPassport, OnContactList: true}}
		core.mu.Unlock()
		alice.iq(t, "set", gw, `<query xmlns='jabber:iq:register'><remove/></query>`)
		if c := core.waitCall(t, "Logout"); c.user != user.ID {
			t.Errorf("Logout(%s)", c.user)
		}
		// Prosody applies unsubscribe/unsubscribed to the roster and pushes it.
		alice.expect(t, "roster push ending the subscription with bob", func(n *node) bool {
			item := n.child("jabber:iq:roster", "query").child("", "item")
			return item != nil && item.attr("jid") == bobJID && item.attr("subscription") == "none"
		})
		alice.sendRaw(t, `<message xmlns='jabber:client' type='chat' id='u1' to='`+bobJID+`'><body>hi</body></message>`)
		e := alice.expect(t, "error", func(n *node) bool { return n.attr("type") == "error" && n.attr("id") == "u1" })
		if condition(e) != "registration-required" {
			t.Errorf("after unregistering: %q", condition(e))
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		carol := bridge.Contact{Passport: "carol@x.org", Status: bridge.StatusOnline}
		if _, err := g.Deliver(ctx, user, bridge.Presence{Contact: carol}); err != nil {
			t.Fatal(err)
		}
		carolJID := `carol\40x.org@` + gw
		alice.expect(t, "carol online", func(n *node) bool {
			return n.Name.Local == "presence" && n.attr("type") == "" && from(n, carolJID)
		})
		if err := stopGateway(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		alice.expect(t, "carol offline as the gateway stops", func(n *node) bool {
			return n.Name.Local == "presence" && n.attr("type") == "unavailable" && from(n, carolJID)
		})
		if _, err := g.Deliver(context.Background(), user, bridge.Presence{Contact: carol}); !errors.Is(err, ErrNotConnected) {
			t.Errorf("Deliver after Run ended: %v, want ErrNotConnected", err)
		}
	})
}
