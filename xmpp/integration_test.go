//go:build integration

package xmpp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/xmpp/xmpptest"
)

// This test runs the gateway against the real Prosody started by
// scripts/prosody.sh, with real XMPP clients; only the core is fake.

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
	file     bridge.OutgoingFile
	data     []byte
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
	media      map[bridge.MediaID]fakeMedia
	avatars    map[string][]byte
	values     map[string]string
}

func newFakeCore() *fakeCore {
	return &fakeCore{
		calls:      make(chan call, 100),
		logins:     make(map[string]string),
		forbidden:  make(map[string]bool),
		contacts:   make(map[string][]bridge.Contact),
		portalByID: make(map[bridge.PortalID]bridge.Portal),
		media:      make(map[bridge.MediaID]fakeMedia),
		avatars:    make(map[string][]byte),
		values:     make(map[string]string),
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
		return p, bridge.ErrNoSuchPortal
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

// SendFile reads the whole file, as the core copies it into its media
// store, and records it with its data.
func (f *fakeCore) SendFile(_ context.Context, u bridge.UserID, id bridge.PortalID, file bridge.OutgoingFile) error {
	data, err := io.ReadAll(io.LimitReader(file.Data, file.Size+1))
	if err != nil {
		return err
	}
	if int64(len(data)) != file.Size {
		return fmt.Errorf("fakeCore: %d bytes of a %d-byte file", len(data), file.Size)
	}
	f.record(call{name: "SendFile", user: u.ID, portal: id, fid: file.FrontendID, file: file, data: data})
	return nil
}

// addMedia puts a file in the fake media store.
func (f *fakeCore) addMedia(id bridge.MediaID, name, mime string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.media[id] = fakeMedia{name: name, mime: mime, data: data}
}

func (f *fakeCore) OpenMedia(_ context.Context, id bridge.MediaID) (*bridge.Media, error) {
	f.mu.Lock()
	m, ok := f.media[id]
	f.mu.Unlock()
	if !ok {
		return nil, bridge.ErrNoSuchMedia
	}
	return &bridge.Media{ReadSeekCloser: readSeekNopCloser{bytes.NewReader(m.data)}, Name: m.name,
		Size: int64(len(m.data)), MIME: m.mime, ModTime: time.Now()}, nil
}

func (f *fakeCore) Avatar(_ context.Context, hash string) ([]byte, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.avatars[hash]
	if !ok {
		return nil, "", bridge.ErrNoSuchMedia
	}
	return d, "image/png", nil
}

func (f *fakeCore) SetDisplayPicture(_ context.Context, u bridge.UserID, image []byte) error {
	f.record(call{name: "SetDisplayPicture", user: u.ID, data: image})
	return nil
}

func (f *fakeCore) FrontendValue(_ context.Context, frontend, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.values[frontend+"/"+key], nil
}

func (f *fakeCore) SetFrontendValue(_ context.Context, frontend, key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[frontend+"/"+key] = value
	return nil
}

type fakeMedia struct {
	name, mime string
	data       []byte
}

type readSeekNopCloser struct{ *bytes.Reader }

func (readSeekNopCloser) Close() error { return nil }

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

func TestGatewayWithProsody(t *testing.T) {
	top := t
	xe := xmpptest.EnvFromOS(t)
	gw := xe.JID
	core := newFakeCore()
	g, err := New(config.XMPP{
		Enabled: true, JID: gw, Server: xe.Component, Secret: xe.Secret,
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
	alice := xe.Dial(t, "alice"+suffix)
	user := bridge.UserID{Frontend: Kind, ID: alice.Bare()}
	bobPassport := "Bob.Smith@Hotmail.com"
	bobJID := `bob.smith\40hotmail.com@` + gw

	t.Run("disco", func(t *testing.T) {
		r := alice.IQ(t, "get", gw, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		id := r.Child(nsDiscoInfo, "query").Child("", "identity")
		if id.Attr("category") != "gateway" || id.Attr("type") != "msn" {
			t.Fatalf("identity %+v, want gateway/msn", id)
		}
		var feats []string
		for _, f := range r.Child(nsDiscoInfo, "query").All("", "feature") {
			feats = append(feats, f.Attr("var"))
		}
		if !strings.Contains(strings.Join(feats, " "), nsRegister) {
			t.Errorf("features %v lack %s", feats, nsRegister)
		}
		r = alice.IQ(t, "get", bobJID, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		if id := r.Child(nsDiscoInfo, "query").Child("", "identity"); id.Attr("category") != "client" {
			t.Errorf("contact identity %+v, want client", id)
		}
	})

	t.Run("register", func(t *testing.T) {
		r := alice.IQ(t, "get", gw, `<query xmlns='jabber:iq:register'/>`)
		form := r.Child(nsRegister, "query").Child(nsData, "x")
		if form == nil || len(form.All("", "field")) < 3 {
			t.Fatalf("no registration form: %+v", r)
		}
		alice.IQ(t, "set", gw, `<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>
			<field var='FORM_TYPE'><value>jabber:iq:register</value></field>
			<field var='passport'><value>alice@hotmail.com</value></field>
			<field var='password'><value>s3cret&amp;&lt;</value></field></x></query>`)
		c := core.waitCall(t, "Login")
		if c.user != user.ID || c.passport != "alice@hotmail.com" || c.password != "s3cret&<" {
			t.Fatalf("Login(%q, %q, %q)", c.user, c.passport, c.password)
		}
		alice.Expect(t, "subscribe from the gateway", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && n.Attr("type") == "subscribe" && n.From(gw)
		})
		alice.Presence(t, "subscribed", gw)
		alice.Presence(t, "subscribe", gw)
		// Prosody turns the gateway's "subscribed" into a roster push; the
		// gateway's presence that follows it reaches the client.
		alice.Expect(t, "presence from the gateway", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && n.Attr("type") == "" && n.From(gw)
		})
	})

	t.Run("user presence sets MSN status", func(t *testing.T) {
		alice.SendRaw(t, `<presence xmlns='jabber:client'><show>dnd</show></presence>`)
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
		n := alice.Expect(t, "subscribe from bob", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && n.Attr("type") == "subscribe" && n.From(bobJID)
		})
		if got := n.Child(nsNick, "nick").Text(); got != bob.FriendlyName {
			t.Errorf("nick %q, want %q", got, bob.FriendlyName)
		}
		alice.Presence(t, "subscribed", bobJID)
		alice.Presence(t, "subscribe", bobJID)
		bob.Status, bob.PersonalMessage = bridge.StatusBusy, "at work & <busy>"
		if _, err := g.Deliver(ctx, user, bridge.Presence{Contact: bob}); err != nil {
			t.Fatal(err)
		}
		n = alice.Expect(t, "bob's presence", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && n.Attr("type") == "" && n.From(bobJID)
		})
		if n.Child("", "show").Text() != "dnd" || n.Child("", "status").Text() != bob.PersonalMessage {
			t.Errorf("presence show %q status %q", n.Child("", "show").Text(), n.Child("", "status").Text())
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
		n := alice.Expect(t, "subscribe from eve", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && n.Attr("type") == "subscribe" && n.Attr("from") != "" && n.From(`eve\40x.org@`+gw)
		})
		if n.Child(nsNick, "nick").Text() != "Eve" {
			t.Errorf("nick %q", n.Child(nsNick, "nick").Text())
		}
	})

	t.Run("roster names and groups via XEP-0356", func(t *testing.T) {
		if !g.rosterPrivileged(xe.Domain) {
			t.Fatal("Prosody did not grant roster privilege: is mod_privilege (prosody-modules) configured?")
		}
		eve := bridge.Contact{Passport: "eve@x.org", FriendlyName: "Eve (renamed)", OnContactList: true, Status: bridge.StatusOnline, Groups: []string{"Friends", "Work"}}
		if _, err := g.Deliver(ctx, user, bridge.Presence{Contact: eve}); err != nil {
			t.Fatal(err)
		}
		n := alice.Expect(t, "roster push renaming eve", func(n *xmpptest.Node) bool {
			item := n.Child(nsRoster, "query").Child("", "item")
			return item != nil && item.Attr("jid") == `eve\40x.org@`+gw && item.Attr("name") == eve.FriendlyName
		})
		var groups []string
		for _, gr := range n.Child(nsRoster, "query").Child("", "item").All("", "group") {
			groups = append(groups, gr.Text())
		}
		if strings.Join(groups, ",") != "Friends,Work" && strings.Join(groups, ",") != "Work,Friends" {
			t.Errorf("groups %v", groups)
		}
	})

	t.Run("chat both ways", func(t *testing.T) {
		alice.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='m1' to='`+bobJID+`'><body>*hi &amp; &lt;/body&gt;*</body><request xmlns='urn:xmpp:receipts'/></message>`)
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
		r := alice.Expect(t, "receipt", func(n *xmpptest.Node) bool { return n.Child(nsReceipts, "received") != nil })
		if r.Child(nsReceipts, "received").Attr("id") != "m1" || !r.From(bobJID) {
			t.Errorf("receipt %+v", r.Child(nsReceipts, "received"))
		}

		if _, err := g.Deliver(ctx, user, bridge.Message{Portal: c.portal, Sender: "bob.smith@hotmail.com",
			Text: bridge.Text{Body: "hello </body><evil/>", Italic: true}, Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
		m := alice.Expect(t, "message from bob", func(n *xmpptest.Node) bool {
			return n.Name.Local == "message" && n.Child("", "body") != nil
		})
		if !m.From(bobJID) || m.Attr("type") != "chat" || m.Child("", "body").Text() != "_hello </body><evil/>_" {
			t.Errorf("message from %s type %s body %q", m.Attr("from"), m.Attr("type"), m.Child("", "body").Text())
		}
	})

	t.Run("chat states and attention", func(t *testing.T) {
		alice.SendRaw(t, `<message xmlns='jabber:client' type='chat' to='`+bobJID+`'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`)
		if c := core.waitCall(t, "SendTyping"); !c.active {
			t.Error("composing sent as not typing")
		}
		alice.SendRaw(t, `<message xmlns='jabber:client' type='chat' to='`+bobJID+`'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>`)
		if c := core.waitCall(t, "SendTyping"); c.active {
			t.Error("paused sent as typing")
		}
		portal, _ := core.DirectPortal(ctx, user, "bob.smith@hotmail.com")
		if _, err := g.Deliver(ctx, user, bridge.Typing{Portal: portal.ID, Sender: "bob.smith@hotmail.com", Active: true}); err != nil {
			t.Fatal(err)
		}
		alice.Expect(t, "composing from bob", func(n *xmpptest.Node) bool {
			return n.Child(nsChatStates, "composing") != nil && n.From(bobJID)
		})
		alice.SendRaw(t, `<message xmlns='jabber:client' type='chat' to='`+bobJID+`'><attention xmlns='urn:xmpp:attention:0'/></message>`)
		if c := core.waitCall(t, "SendNudge"); c.portal != portal.ID {
			t.Errorf("nudge in %s", c.portal)
		}
		if _, err := g.Deliver(ctx, user, bridge.Nudge{Portal: portal.ID, Sender: "bob.smith@hotmail.com"}); err != nil {
			t.Fatal(err)
		}
		alice.Expect(t, "attention from bob", func(n *xmpptest.Node) bool {
			return n.Child(nsAttention, "attention") != nil && n.From(bobJID)
		})
	})

	t.Run("undeliverable events are said to be", func(t *testing.T) {
		for _, ev := range []bridge.Event{
			bridge.ContactChange{Kind: bridge.ContactAdded, Contact: bridge.Contact{Passport: "bad\x01@x.org"}},
			bridge.Presence{Contact: bridge.Contact{Passport: ""}},
			bridge.Message{Portal: "no-such-portal", FromSelf: true, Text: bridge.Text{Body: "lost"}},
			bridge.Nudge{Portal: "no-such-portal", Sender: "bad\x7f@x.org"},
		} {
			if _, err := g.Deliver(ctx, user, ev); !errors.Is(err, bridge.ErrUndeliverable) {
				t.Errorf("Deliver(%T) = %v, want an error wrapping bridge.ErrUndeliverable", ev, err)
			}
		}
		if _, err := g.Deliver(ctx, bridge.UserID{Frontend: "matrix", ID: "@a:b"}, bridge.Notice{Text: "x"}); !errors.Is(err, bridge.ErrUndeliverable) {
			t.Errorf("Deliver to a Matrix user = %v, want ErrUndeliverable", err)
		}
	})

	t.Run("offline contact", func(t *testing.T) {
		carol := bridge.Contact{Passport: "carol@x.org", OnContactList: true, Status: bridge.StatusOffline}
		if _, err := g.Deliver(ctx, user, bridge.Presence{Contact: carol}); err != nil {
			t.Fatal(err)
		}
		carolJID := `carol\40x.org@` + gw
		alice.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='c1' to='`+carolJID+`'><body>hi</body></message>`)
		e := alice.Expect(t, "error about carol", func(n *xmpptest.Node) bool { return n.Attr("type") == "error" && n.Attr("id") == "c1" })
		if e.Condition() != "recipient-unavailable" {
			t.Errorf("condition %q", e.Condition())
		}
	})

	t.Run("roster changes reach MSN", func(t *testing.T) {
		daveJID := `dave\40x.org@` + gw
		r := alice.IQ(t, "set", gw, `<query xmlns='jabber:iq:gateway'><prompt>Dave@X.org</prompt></query>`)
		if got := r.Child(nsGateway, "query").Child("", "jid").Text(); got != daveJID {
			t.Fatalf("jabber:iq:gateway gave %q, want %q", got, daveJID)
		}
		alice.Presence(t, "subscribe", daveJID)
		if c := core.waitCall(t, "AddContact"); c.passport != "dave@x.org" {
			t.Errorf("AddContact(%q)", c.passport)
		}
		alice.Presence(t, "unsubscribe", daveJID)
		if c := core.waitCall(t, "RemoveContact"); c.passport != "dave@x.org" {
			t.Errorf("RemoveContact(%q)", c.passport)
		}
		r = alice.IQ(t, "get", bobJID, `<vCard xmlns='vcard-temp'/>`)
		if got := r.Child(nsVCard, "vCard").Child("", "NICKNAME").Text(); got != "Bob <the builder>" {
			t.Errorf("vCard NICKNAME %q", got)
		}
	})

	t.Run("ad-hoc commands", func(t *testing.T) {
		r := alice.IQ(t, "get", gw, `<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/>`)
		if len(r.Child(nsDiscoItems, "query").All("", "item")) < 8 {
			t.Fatalf("commands: %+v", r.Child(nsDiscoItems, "query"))
		}
		r = alice.IQ(t, "set", gw, `<command xmlns='http://jabber.org/protocol/commands' node='set-status' action='execute'/>`)
		cmd := r.Child(nsCommands, "command")
		if cmd.Attr("status") != "executing" || cmd.Child(nsData, "x") == nil {
			t.Fatalf("set-status did not return a form: %+v", r)
		}
		r = alice.IQ(t, "set", gw, `<command xmlns='http://jabber.org/protocol/commands' node='set-status' sessionid='`+cmd.Attr("sessionid")+`'>
			<x xmlns='jabber:x:data' type='submit'><field var='status'><value>phone</value></field></x></command>`)
		if r.Child(nsCommands, "command").Attr("status") != "completed" {
			t.Fatalf("set-status not completed: %+v", r)
		}
		if c := core.waitCall(t, "SetStatus"); c.status != bridge.StatusPhone {
			t.Errorf("SetStatus(%s)", c.status)
		}
		alice.IQ(t, "set", gw, `<command xmlns='http://jabber.org/protocol/commands' node='block-contact'>
			<x xmlns='jabber:x:data' type='submit'><field var='passport'><value>`+bobJID+`</value></field></x></command>`)
		if c := core.waitCall(t, "BlockContact"); c.passport != "bob.smith@hotmail.com" {
			t.Errorf("BlockContact(%q)", c.passport)
		}
	})

	t.Run("strangers get errors", func(t *testing.T) {
		stranger := xe.Dial(t, "stranger"+suffix)
		stranger.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='s1' to='`+bobJID+`'><body>hi</body></message>`)
		e := stranger.Expect(t, "error", func(n *xmpptest.Node) bool { return n.Attr("type") == "error" && n.Attr("id") == "s1" })
		if e.Condition() != "registration-required" {
			t.Errorf("unregistered user got %q", e.Condition())
		}
		mallory := xe.Dial(t, "mallory"+suffix)
		core.mu.Lock()
		core.forbidden[mallory.Bare()] = true
		core.mu.Unlock()
		mallory.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='x1' to='`+bobJID+`'><body>hi</body></message>`)
		e = mallory.Expect(t, "error", func(n *xmpptest.Node) bool { return n.Attr("type") == "error" && n.Attr("id") == "x1" })
		if e.Condition() != "forbidden" {
			t.Errorf("forbidden user got %q", e.Condition())
		}
		r := mallory.IQ(t, "get", gw, `<query xmlns='jabber:iq:register'/>`)
		if r.Condition() != "forbidden" {
			t.Errorf("forbidden user's register get: %q", r.Condition())
		}
	})

	t.Run("bad stanzas do not end the session", func(t *testing.T) {
		deep := strings.Repeat("<a xmlns='urn:example:deep'>", 100) + strings.Repeat("</a>", 100)
		alice.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='deep' to='`+bobJID+`'><body>x</body>`+deep+`</message>`)
		e := alice.Expect(t, "error for a too deep stanza", func(n *xmpptest.Node) bool { return n.Attr("id") == "deep" })
		if e.Condition() != "not-acceptable" {
			t.Errorf("too deep: %q", e.Condition())
		}
		alice.SendRaw(t, `<iq xmlns='jabber:client' type='get' id='noload' to='`+gw+`'/>`)
		e = alice.Expect(t, "error for an IQ without payload", func(n *xmpptest.Node) bool { return n.Attr("id") == "noload" })
		if e.Condition() != "bad-request" {
			t.Errorf("empty IQ: %q", e.Condition())
		}
		r := alice.IQ(t, "get", gw, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		if r.Attr("type") != "result" {
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
		alice.Expect(t, "message after reconnect", func(n *xmpptest.Node) bool { return n.Child("", "body").Text() == "after reconnect" })
		alice.SendRaw(t, `<message xmlns='jabber:client' type='chat' to='`+bobJID+`'><body>still here</body></message>`)
		if c := core.waitCall(t, "SendMessage"); c.text.Body != "still here" {
			t.Errorf("SendMessage(%q)", c.text.Body)
		}
	})

	t.Run("server restart", func(t *testing.T) {
		// Last but one: the restart ends every client session too.
		out, err := prosodyCommand(t, xe, "restart").CombinedOutput()
		if err != nil {
			t.Fatalf("restarting Prosody: %v: %s", err, out)
		}
		select {
		case <-connects:
		case <-time.After(20 * time.Second):
			t.Fatal("component did not reconnect after the server restarted")
		}
		alice = xe.DialUntil(t, top, "alice2"+suffix)
		user = bridge.UserID{Frontend: Kind, ID: alice.Bare()}
		r := alice.IQ(t, "get", gw, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		if id := r.Child(nsDiscoInfo, "query").Child("", "identity"); id.Attr("type") != "msn" {
			t.Fatalf("after restart: identity %+v", id)
		}
		alice.IQ(t, "set", gw, `<query xmlns='jabber:iq:register'><username>alice2@hotmail.com</username><password>pw</password></query>`)
		if c := core.waitCall(t, "Login"); c.user != user.ID || c.passport != "alice2@hotmail.com" {
			t.Fatalf("Login(%s, %s) after restart", c.user, c.passport)
		}
		if _, err := g.Deliver(ctx, user, bridge.ContactChange{Kind: bridge.ContactAddedYou, Contact: bridge.Contact{Passport: bobPassport, Pending: true}}); err != nil {
			t.Fatal(err)
		}
		alice.Expect(t, "subscribe from bob", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && n.Attr("type") == "subscribe" && n.From(bobJID)
		})
		alice.Presence(t, "subscribed", bobJID)
		// Approving a pending contact accepts them on MSN.
		if c := core.waitCall(t, "AddContact"); c.passport != "bob.smith@hotmail.com" {
			t.Errorf("AddContact(%q)", c.passport)
		}
	})

	t.Run("unregister", func(t *testing.T) {
		core.mu.Lock()
		core.contacts[user.ID] = []bridge.Contact{{Passport: bobPassport, OnContactList: true}}
		core.mu.Unlock()
		alice.IQ(t, "set", gw, `<query xmlns='jabber:iq:register'><remove/></query>`)
		if c := core.waitCall(t, "Logout"); c.user != user.ID {
			t.Errorf("Logout(%s)", c.user)
		}
		// Prosody applies unsubscribe/unsubscribed to the roster and pushes it.
		alice.Expect(t, "roster push ending the subscription with bob", func(n *xmpptest.Node) bool {
			item := n.Child("jabber:iq:roster", "query").Child("", "item")
			return item != nil && item.Attr("jid") == bobJID && item.Attr("subscription") == "none"
		})
		alice.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='u1' to='`+bobJID+`'><body>hi</body></message>`)
		e := alice.Expect(t, "error", func(n *xmpptest.Node) bool { return n.Attr("type") == "error" && n.Attr("id") == "u1" })
		if e.Condition() != "registration-required" {
			t.Errorf("after unregistering: %q", e.Condition())
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		carol := bridge.Contact{Passport: "carol@x.org", Status: bridge.StatusOnline}
		if _, err := g.Deliver(ctx, user, bridge.Presence{Contact: carol}); err != nil {
			t.Fatal(err)
		}
		carolJID := `carol\40x.org@` + gw
		alice.Expect(t, "carol online", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && n.Attr("type") == "" && n.From(carolJID)
		})
		if err := stopGateway(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		alice.Expect(t, "carol offline as the gateway stops", func(n *xmpptest.Node) bool {
			return n.Name.Local == "presence" && n.Attr("type") == "unavailable" && n.From(carolJID)
		})
		_, err := g.Deliver(context.Background(), user, bridge.Presence{Contact: carol})
		if !errors.Is(err, ErrNotConnected) || errors.Is(err, bridge.ErrUndeliverable) {
			t.Errorf("Deliver after Run ended: %v, want ErrNotConnected (retried, not dropped)", err)
		}
	})
}

// prosodyCommand runs scripts/prosody.sh for the instance the test uses,
// which need not be the default one (another checkout's tests may run one
// on other ports and in another folder): its folder and ports are passed on
// as the script's variables.
func prosodyCommand(t *testing.T, xe xmpptest.Env, args ...string) *exec.Cmd {
	t.Helper()
	port := func(addr string) string {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("address %q: %v", addr, err)
		}
		return p
	}
	httpURL, err := url.Parse(getenv(t, "MSNBRIDGE_TEST_XMPP_HTTP"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("../scripts/prosody.sh", args...)
	cmd.Env = append(os.Environ(),
		"PROSODY_DIR="+filepath.Dir(xe.Config),
		"PROSODY_C2S_PORT="+port(xe.C2S),
		"PROSODY_COMPONENT_PORT="+port(xe.Component),
		"PROSODY_HTTP_PORT="+httpURL.Port(),
	)
	return cmd
}
