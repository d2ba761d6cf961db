//go:build integration

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
	"github.com/msnbridge/msnbridge/store"
	"github.com/msnbridge/msnbridge/xmpp"
	"github.com/msnbridge/msnbridge/xmpp/xmpptest"
)

// This test runs the whole bridge (run, as the binary does) with the real
// core, the XMPP gateway on the real Prosody of scripts/prosody.sh and an
// in-process MSN server, and uses it as an XMPP user and MSN contacts would.

const (
	nsChatStates = "http://jabber.org/protocol/chatstates"
	nsAttention  = "urn:xmpp:attention:0"
	nsReceipts   = "urn:xmpp:receipts"
	nsRegister   = "jabber:iq:register"
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsData       = "jabber:x:data"
	nsNick       = "http://jabber.org/protocol/nick"
)

func e2eXMPPConfig(t *testing.T, srv *msnptest.Server, xe xmpptest.Env) *config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.MSN.Server = srv.NSAddr()
	cfg.MSN.LoginURL = srv.LoginURL()
	cfg.MSN.Protocols = []string{"MSNP12"}
	cfg.Matrix.Enabled = false
	cfg.XMPP = config.XMPP{Enabled: true, JID: xe.JID, Server: xe.Component, Secret: xe.Secret, Name: "MSN e2e"}
	cfg.Database.URI = "file:" + filepath.Join(t.TempDir(), "bridge.db")
	cfg.Bridge.EncryptionKey = store.GenerateKey()
	cfg.Bridge.Permissions = map[string]string{xe.Domain: "user"}
	cfg.Bridge.Files.Dir = t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

// e2eLogger logs the bridge at debug level to a file that the test prints
// the end of when it fails (MSNBRIDGE_TEST_LOG names a file to keep).
func e2eLogger(t *testing.T) *config.Logger {
	t.Helper()
	path := os.Getenv("MSNBRIDGE_TEST_LOG")
	if path == "" {
		path = filepath.Join(t.TempDir(), "bridge.log")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	log, err := config.NewLogger(config.Logging{Level: "debug", Format: "json"}, f)
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after the bridge has stopped.
	t.Cleanup(func() {
		f.Close()
		if !t.Failed() {
			return
		}
		if b, err := os.ReadFile(path); err == nil {
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("bridge log (last %d lines):\n%s", min(len(lines), 150), strings.Join(lines[max(0, len(lines)-150):], "\n"))
		}
	})
	return log
}

// startXMPPBridge runs the bridge and waits until its component answers
// service discovery through Prosody (Prosody answers with an error while
// no component is connected).
func startXMPPBridge(t *testing.T, cfg *config.Config, log *config.Logger, probe *xmpptest.Client) *bridgeRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &bridgeRun{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx, cfg, log) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		reply := probe.IQWithin(t, 2*time.Second, "get", cfg.XMPP.JID, `<query xmlns='`+nsDiscoInfo+`'/>`)
		if reply.Attr("type") == "result" {
			return r
		}
		if time.Now().After(deadline) {
			r.cancel()
			t.Fatalf("the gateway never answered discovery (last reply: %q)", reply.Condition())
		}
		// Nothing to wait on from outside: the component has connected
		// when Prosody routes to it, so ask again shortly. (An IQ routed
		// to the previous run's closing connection gets no reply at all.)
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor polls cond (state held by an msnp peer) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// count says how many events of the peer match.
func (p *msnPeer) count(match func(msnp.Event) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, ev := range p.evs {
		if match(ev) {
			n++
		}
	}
	return n
}

func textFrom(from, text string) func(msnp.Event) bool {
	return func(ev msnp.Event) bool {
		m, ok := ev.(msnp.ConversationMessage)
		return ok && strings.EqualFold(m.From, from) && m.Text == text
	}
}

func chatFrom(j, body string) func(*xmpptest.Node) bool {
	return func(n *xmpptest.Node) bool {
		return n.Is("message", "chat") && n.From(j) && n.Body() == body
	}
}

func TestXMPPEndToEnd(t *testing.T) {
	xe := xmpptest.EnvFromOS(t)
	srv := msnptest.NewServer()
	defer srv.Close()
	srv.SetVersions(12)
	for _, a := range [][2]string{{"alice@example.com", "Alice"}, {"bob@example.com", "Bob"}, {"carol@example.com", "Carol"}} {
		srv.AddAccount(a[0], "pw-"+a[0], a[1])
	}
	srv.AddContact("alice@example.com", "bob@example.com")
	srv.AddContact("alice@example.com", "carol@example.com")
	srv.AddContact("bob@example.com", "carol@example.com")

	cfg := e2eXMPPConfig(t, srv, xe)
	log := e2eLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	gw := xe.JID
	suffix := xmpptest.NewID()[:8]
	user := xe.Dial(t, "alice"+suffix)
	br := startXMPPBridge(t, cfg, log, user)
	defer func() {
		if br != nil {
			br.stop(t)
		}
	}()
	// Deferred after the bridge's stop, so it runs first: where each
	// goroutine of the still running bridge is, for a failure that hangs.
	defer func() {
		if t.Failed() {
			buf := make([]byte, 4<<20)
			t.Logf("goroutines at the failure:\n%s", buf[:runtime.Stack(buf, true)])
		}
	}()
	bobJID := mustContactJID(t, gw, "bob@example.com")
	carolJID := mustContactJID(t, gw, "carol@example.com")

	t.Run("discovery and registration", func(t *testing.T) {
		r := user.IQ(t, "get", gw, `<query xmlns='`+nsDiscoInfo+`'/>`)
		id := r.Child(nsDiscoInfo, "query").Child("", "identity")
		if id.Attr("category") != "gateway" || id.Attr("type") != "msn" || id.Attr("name") != "MSN e2e" {
			t.Fatalf("identity %+v, want gateway/msn named MSN e2e", id)
		}
		hasRegister := false
		for _, f := range r.Child(nsDiscoInfo, "query").All("", "feature") {
			hasRegister = hasRegister || f.Attr("var") == nsRegister
		}
		if !hasRegister {
			t.Fatal("the gateway does not offer registration")
		}
		r = user.IQ(t, "get", gw, `<query xmlns='`+nsRegister+`'/>`)
		q := r.Child(nsRegister, "query")
		if q.Child("", "registered") != nil {
			t.Fatal("a new user is already registered")
		}
		var vars []string
		for _, f := range q.Child(nsData, "x").All("", "field") {
			vars = append(vars, f.Attr("var"))
		}
		if got := strings.Join(vars, ","); got != "FORM_TYPE,passport,password" {
			t.Fatalf("form fields %s", got)
		}
		r = user.IQ(t, "set", gw, `<query xmlns='`+nsRegister+`'><x xmlns='`+nsData+`' type='submit'>
			<field var='FORM_TYPE'><value>`+nsRegister+`</value></field>
			<field var='passport'><value>alice@example.com</value></field>
			<field var='password'><value>pw-alice@example.com</value></field></x></query>`)
		if r.Attr("type") != "result" {
			t.Fatalf("registration refused: %s", r.Condition())
		}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if err := srv.WaitOnline(wctx, "alice@example.com"); err != nil {
			t.Fatalf("alice is not online on MSN: %v", err)
		}
		user.Expect(t, "the gateway asking for the user's presence", func(n *xmpptest.Node) bool {
			return n.Is("presence", "subscribe") && n.From(gw)
		})
		user.Presence(t, "subscribed", gw)
		user.Presence(t, "subscribe", gw)
		p := user.Expect(t, "the gateway available", func(n *xmpptest.Node) bool {
			return n.Is("presence", "") && n.From(gw)
		})
		if !strings.Contains(p.Child("", "status").Text(), "alice@example.com") {
			t.Errorf("gateway status %q does not name the passport", p.Child("", "status").Text())
		}
		r = user.IQ(t, "get", gw, `<query xmlns='`+nsRegister+`'/>`)
		if r.Child(nsRegister, "query").Child("", "registered") == nil {
			t.Error("the registration form does not say the user is registered")
		}
	})

	t.Run("contact list import", func(t *testing.T) {
		for _, c := range []struct{ jid, nick string }{{bobJID, "Bob"}, {carolJID, "Carol"}} {
			n := user.Expect(t, "a subscription request from "+c.jid, func(n *xmpptest.Node) bool {
				return n.Is("presence", "subscribe") && n.From(c.jid)
			})
			if got := n.Child(nsNick, "nick").Text(); got != c.nick {
				t.Errorf("nick of %s is %q, want %q", c.jid, got, c.nick)
			}
			user.Presence(t, "subscribed", c.jid)
			user.Presence(t, "subscribe", c.jid)
			user.Expect(t, c.jid+" accepting the subscription", func(n *xmpptest.Node) bool {
				return n.Is("presence", "subscribed") && n.From(c.jid)
			})
		}
	})

	t.Run("the user's presence sets the MSN status", func(t *testing.T) {
		user.SendRaw(t, `<presence xmlns='jabber:client'><show>away</show></presence>`)
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if err := srv.WaitStatus(wctx, "alice@example.com", "AWY"); err != nil {
			t.Fatalf("alice's MSN status is %s, want AWY", srv.Status("alice@example.com"))
		}
		user.SendRaw(t, `<presence xmlns='jabber:client'/>`)
		if err := srv.WaitStatus(wctx, "alice@example.com", "NLN"); err != nil {
			t.Fatalf("alice's MSN status is %s, want NLN", srv.Status("alice@example.com"))
		}
	})

	bob := newMSNPeer(t, srv, "bob@example.com", "pw-bob@example.com")

	t.Run("contact presence", func(t *testing.T) {
		user.Expect(t, "bob online", func(n *xmpptest.Node) bool {
			return n.Is("presence", "") && n.From(bobJID) && n.Child("", "show") == nil
		})
		if err := bob.SetStatus(ctx, msnp.StatusBusy); err != nil {
			t.Fatal(err)
		}
		user.Expect(t, "bob busy", func(n *xmpptest.Node) bool {
			return n.Is("presence", "") && n.From(bobJID) && n.Child("", "show").Text() == "dnd"
		})
		if err := bob.SetPersonalMessage(ctx, "building <things> & more"); err != nil {
			t.Fatal(err)
		}
		user.Expect(t, "bob's personal message", func(n *xmpptest.Node) bool {
			return n.Is("presence", "") && n.From(bobJID) && n.Child("", "show").Text() == "dnd" &&
				n.Child("", "status").Text() == "building <things> & more"
		})
	})

	t.Run("MSN to XMPP", func(t *testing.T) {
		if err := bob.Chat("alice@example.com").SendText(ctx, "Hello <from> MSN", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		user.Expect(t, "bob's message", chatFrom(bobJID, "Hello <from> MSN"))
	})

	t.Run("styling both ways", func(t *testing.T) {
		f := msnp.DefaultTextFormat()
		f.Italic = true
		if err := bob.Chat("alice@example.com").SendText(ctx, "slanted", f); err != nil {
			t.Fatal(err)
		}
		user.Expect(t, "bob's italic message as XEP-0393 styling", chatFrom(bobJID, "_slanted_"))
		user.Message(t, bobJID, "*loud*")
		waitFor(t, "bob receiving a bold message", func() bool {
			return bob.has(func(ev msnp.Event) bool {
				m, ok := ev.(msnp.ConversationMessage)
				return ok && m.Text == "loud" && m.Format.Bold && !m.Format.Italic
			})
		})
	})

	t.Run("unicode and long messages", func(t *testing.T) {
		const hello = "héllo wörld 👋 — 日本語"
		if err := bob.Chat("alice@example.com").SendText(ctx, hello, msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		user.Expect(t, "bob's unicode message", chatFrom(bobJID, hello))
		user.Message(t, bobJID, hello+" back")
		waitFor(t, "bob receiving the unicode reply", func() bool { return bob.has(textFrom("alice@example.com", hello+" back")) })

		// Longer than one MSN message: msnp splits it, and nothing is lost.
		before := len(bob.messages())
		long := strings.Repeat("0123456789abcdef ", 300) + "end"
		id := xmpptest.NewID()
		user.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='`+id+`' to='`+bobJID+`'><body>`+long+`</body><request xmlns='`+nsReceipts+`'/></message>`)
		user.ExpectWithin(t, 30*time.Second, "a receipt for the long message", func(n *xmpptest.Node) bool {
			return n.Child(nsReceipts, "received").Attr("id") == id
		})
		waitFor(t, "bob receiving all of the long message", func() bool {
			return strings.Join(bob.messages()[before:], "") == long
		})
	})

	t.Run("XMPP to MSN with a receipt", func(t *testing.T) {
		id := xmpptest.NewID()
		user.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='`+id+`' to='`+bobJID+`'><body>Hi Bob &amp; co</body><request xmlns='`+nsReceipts+`'/></message>`)
		waitFor(t, "bob receiving the message", func() bool { return bob.has(textFrom("alice@example.com", "Hi Bob & co")) })
		r := user.Expect(t, "a receipt", func(n *xmpptest.Node) bool {
			return n.Child(nsReceipts, "received").Attr("id") == id
		})
		if !r.From(bobJID) {
			t.Errorf("receipt from %s, want %s", r.Attr("from"), bobJID)
		}
	})

	t.Run("chat states", func(t *testing.T) {
		user.SendRaw(t, `<message xmlns='jabber:client' type='chat' to='`+bobJID+`'><composing xmlns='`+nsChatStates+`'/></message>`)
		waitFor(t, "bob seeing alice type", func() bool {
			return bob.has(func(ev msnp.Event) bool {
				ty, ok := ev.(msnp.ConversationTyping)
				return ok && strings.EqualFold(ty.From, "alice@example.com")
			})
		})
		if err := bob.Chat("alice@example.com").SendTyping(ctx); err != nil {
			t.Fatal(err)
		}
		user.Expect(t, "bob composing", func(n *xmpptest.Node) bool {
			return n.From(bobJID) && n.Child(nsChatStates, "composing") != nil
		})
	})

	t.Run("attention and nudges", func(t *testing.T) {
		user.SendRaw(t, `<message xmlns='jabber:client' type='chat' to='`+bobJID+`'><attention xmlns='`+nsAttention+`'/></message>`)
		waitFor(t, "bob receiving a nudge", func() bool {
			return bob.has(func(ev msnp.Event) bool {
				nu, ok := ev.(msnp.ConversationNudge)
				return ok && strings.EqualFold(nu.From, "alice@example.com")
			})
		})
		if err := bob.Chat("alice@example.com").SendNudge(ctx); err != nil {
			t.Fatal(err)
		}
		user.Expect(t, "attention from bob", func(n *xmpptest.Node) bool {
			return n.From(bobJID) && n.Child(nsAttention, "attention") != nil
		})
	})

	t.Run("an offline contact", func(t *testing.T) {
		id := user.Message(t, carolJID, "are you there?")
		e := user.Expect(t, "an error for the message to carol", func(n *xmpptest.Node) bool {
			return n.Is("message", "error") && n.Attr("id") == id
		})
		if e.Condition() != "recipient-unavailable" {
			t.Errorf("condition %q, want recipient-unavailable", e.Condition())
		}
	})

	t.Run("a passport MSN cannot reach", func(t *testing.T) {
		// The gateway knows nothing of this contact, so the message goes to
		// MSN, and the failed DeliveryResult comes back as an error.
		id := xmpptest.NewID()
		user.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='`+id+`' to='`+mustContactJID(t, gw, "nobody@example.com")+`'><body>hello?</body><request xmlns='`+nsReceipts+`'/></message>`)
		e := user.ExpectWithin(t, 30*time.Second, "an error for the message to nobody", func(n *xmpptest.Node) bool {
			return n.Attr("id") == id && n.Is("message", "error")
		})
		if e.Condition() != "recipient-unavailable" {
			t.Errorf("condition %q, want recipient-unavailable", e.Condition())
		}
		if n := user.Count(func(n *xmpptest.Node) bool { return n.Child(nsReceipts, "received").Attr("id") == id }); n != 0 {
			t.Error("a receipt for a message MSN did not deliver")
		}
	})

	t.Run("a lost MSN connection comes back by itself", func(t *testing.T) {
		user.Forget()
		if !srv.Drop("alice@example.com") {
			t.Fatal("alice had no MSN session to drop")
		}
		user.Expect(t, "the gateway going unavailable", func(n *xmpptest.Node) bool {
			return n.Is("presence", "unavailable") && n.From(gw)
		})
		user.Expect(t, "bob shown offline with the session gone", func(n *xmpptest.Node) bool {
			return n.Is("presence", "unavailable") && n.From(bobJID)
		})
		user.ExpectWithin(t, 20*time.Second, "the gateway available again", func(n *xmpptest.Node) bool {
			return n.Is("presence", "") && n.From(gw)
		})
		user.Expect(t, "bob back", func(n *xmpptest.Node) bool {
			return n.Is("presence", "") && n.From(bobJID)
		})
		user.Message(t, bobJID, "after the reconnect")
		waitFor(t, "bob receiving a message after the reconnect", func() bool {
			return bob.has(textFrom("alice@example.com", "after the reconnect"))
		})
		if err := bob.Chat("alice@example.com").SendText(ctx, "and back", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		user.Expect(t, "bob's message after the reconnect", chatFrom(bobJID, "and back"))
	})

	t.Run("a restart resumes the login and duplicates nothing", func(t *testing.T) {
		// The user's XMPP status must hold across the restart too.
		user.SendRaw(t, `<presence xmlns='jabber:client'><show>dnd</show></presence>`)
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		if err := srv.WaitStatus(sctx, "alice@example.com", "BSY"); err != nil {
			t.Fatalf("alice's MSN status is %s, want BSY", srv.Status("alice@example.com"))
		}
		br.stop(t)
		br = nil
		user.Expect(t, "bob shown offline as the gateway stops", func(n *xmpptest.Node) bool {
			return n.Is("presence", "unavailable") && n.From(bobJID)
		})
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if err := srv.WaitOffline(wctx, "alice@example.com"); err != nil {
			t.Fatal("alice still online on MSN with the bridge stopped")
		}
		user.Forget()
		br = startXMPPBridge(t, cfg, log, user)
		if err := srv.WaitOnline(wctx, "alice@example.com"); err != nil {
			t.Fatalf("the stored login did not resume: %v", err)
		}
		user.Expect(t, "bob busy again", func(n *xmpptest.Node) bool {
			return n.Is("presence", "") && n.From(bobJID) && n.Child("", "show").Text() == "dnd"
		})
		if err := srv.WaitStatus(wctx, "alice@example.com", "BSY"); err != nil {
			t.Errorf("after the restart alice's MSN status is %s, but her XMPP presence is still dnd", srv.Status("alice@example.com"))
		}
		waitFor(t, "alice back online for bob", func() bool {
			c, ok := bob.Contact("alice@example.com")
			return ok && c.Status != msnp.StatusOffline
		})
		if err := bob.Chat("alice@example.com").SendText(ctx, "after the restart", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		user.Expect(t, "bob's message after the restart", chatFrom(bobJID, "after the restart"))
		user.Message(t, bobJID, "reply after the restart")
		waitFor(t, "bob receiving the reply", func() bool { return bob.has(textFrom("alice@example.com", "reply after the restart")) })

		// Anything delivered twice would have arrived before the reply
		// went round (events reach the user in order).
		if n := user.Count(func(n *xmpptest.Node) bool { return n.Is("message", "chat") && n.Body() != "" }); n != 0 {
			t.Errorf("%d more chat messages arrived after the restart", n)
		}
		if n := user.Count(func(n *xmpptest.Node) bool { return n.Is("presence", "subscribe") }); n != 0 {
			t.Errorf("%d subscription requests again after the restart", n)
		}
		for _, text := range []string{"Hi Bob & co", "reply after the restart"} {
			if n := bob.count(textFrom("alice@example.com", text)); n != 1 {
				t.Errorf("bob received %q %d times", text, n)
			}
		}
	})

	t.Run("a group conversation is a room", func(t *testing.T) {
		carol := newMSNPeer(t, srv, "carol@example.com", "pw-carol@example.com")
		user.Expect(t, "carol online", func(n *xmpptest.Node) bool {
			return n.Is("presence", "") && n.From(carolJID)
		})
		if err := bob.Chat("alice@example.com").Invite(ctx, "carol@example.com"); err != nil {
			t.Fatal(err)
		}
		var info msnp.ConversationInfo
		waitFor(t, "bob's group conversation", func() bool {
			return bob.has(func(ev msnp.Event) bool {
				j, ok := ev.(msnp.ConversationJoined)
				if ok && j.Conversation.Group && len(j.Conversation.Participants) >= 2 {
					info = j.Conversation
					return true
				}
				return false
			})
		})
		if err := bob.Group(info.ID, info.Participants).SendText(ctx, "hi group", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		inv := user.Expect(t, "the invitation to the room (XEP-0249)", func(n *xmpptest.Node) bool {
			return n.Is("message", "") && n.Child("jabber:x:conference", "x") != nil
		})
		room := inv.Child("jabber:x:conference", "x").Attr("jid")
		if !strings.HasPrefix(room, "group-") || !strings.HasSuffix(room, "@"+gw) {
			t.Fatalf("invited to %q", room)
		}
		user.SendRaw(t, `<presence xmlns='jabber:client' to='`+room+`/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`)
		const nsMUCUser = "http://jabber.org/protocol/muc#user"
		nicks := map[string]string{} // contact JID -> nick
		for len(nicks) < 2 {
			n := user.Expect(t, "an occupant", func(n *xmpptest.Node) bool {
				return n.Is("presence", "") && strings.HasPrefix(n.Attr("from"), room+"/") && n.Child(nsMUCUser, "x").Child("", "status") == nil
			})
			nicks[n.Child(nsMUCUser, "x").Child("", "item").Attr("jid")] = strings.TrimPrefix(n.Attr("from"), room+"/")
		}
		if nicks[bobJID] == "" || nicks[carolJID] == "" {
			t.Fatalf("occupants %v, want bob and carol", nicks)
		}
		user.Expect(t, "the user's own presence in the room", func(n *xmpptest.Node) bool {
			return n.Is("presence", "") && n.Attr("from") == room+"/Alice" && n.Child(nsMUCUser, "x").Child("", "status") != nil
		})
		user.Expect(t, "bob's group message", func(n *xmpptest.Node) bool {
			return n.Is("message", "groupchat") && n.Attr("from") == room+"/"+nicks[bobJID] && n.Body() == "hi group"
		})
		waitFor(t, "carol receiving bob's group message", func() bool { return carol.has(textFrom("bob@example.com", "hi group")) })

		user.SendRaw(t, `<message xmlns='jabber:client' type='groupchat' id='g1' to='`+room+`'><body>hi both</body></message>`)
		user.Expect(t, "the room reflecting the user's message", func(n *xmpptest.Node) bool {
			return n.Is("message", "groupchat") && n.Attr("id") == "g1" && n.Attr("from") == room+"/Alice"
		})
		waitFor(t, "bob and carol receiving the user's group message", func() bool {
			return bob.has(textFrom("alice@example.com", "hi both")) && carol.has(textFrom("alice@example.com", "hi both"))
		})

		user.SendRaw(t, `<presence xmlns='jabber:client' type='unavailable' to='`+room+`/Alice'/>`)
		user.Expect(t, "leaving the room", func(n *xmpptest.Node) bool {
			return n.Is("presence", "unavailable") && n.Attr("from") == room+"/Alice"
		})
		waitFor(t, "bob seeing the user leave the conversation", func() bool {
			return bob.has(func(ev msnp.Event) bool {
				l, ok := ev.(msnp.ConversationLeft)
				return ok && strings.EqualFold(l.Passport, "alice@example.com")
			})
		})
	})

	t.Run("a contact signing out", func(t *testing.T) {
		// Older unavailable presences from bob (Prosody's own when the
		// gateway stopped) must not stand for this one.
		user.Forget()
		bob.Close()
		user.Expect(t, "bob offline", func(n *xmpptest.Node) bool {
			return n.Is("presence", "unavailable") && n.From(bobJID)
		})
		id := user.Message(t, bobJID, "gone?")
		e := user.Expect(t, "an error for the message to bob", func(n *xmpptest.Node) bool {
			return n.Is("message", "error") && n.Attr("id") == id
		})
		if e.Condition() != "recipient-unavailable" {
			t.Errorf("condition %q, want recipient-unavailable", e.Condition())
		}
	})

	t.Run("unregister", func(t *testing.T) {
		r := user.IQ(t, "set", gw, `<query xmlns='`+nsRegister+`'><remove/></query>`)
		if r.Attr("type") != "result" {
			t.Fatalf("unregistering failed: %s", r.Condition())
		}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if err := srv.WaitOffline(wctx, "alice@example.com"); err != nil {
			t.Fatal("alice still online on MSN after unregistering")
		}
		user.Expect(t, "bob removed from the roster", func(n *xmpptest.Node) bool {
			item := n.Child(xmpptest.NSRoster, "query").Child("", "item")
			return n.Is("iq", "set") && item.Attr("jid") == bobJID && item.Attr("subscription") == "none"
		})
		id := user.Message(t, bobJID, "still there?")
		e := user.Expect(t, "an error after unregistering", func(n *xmpptest.Node) bool {
			return n.Is("message", "error") && n.Attr("id") == id
		})
		if e.Condition() != "registration-required" {
			t.Errorf("condition %q, want registration-required", e.Condition())
		}
		r = user.IQ(t, "get", gw, `<query xmlns='`+nsRegister+`'/>`)
		if r.Child(nsRegister, "query").Child("", "registered") != nil {
			t.Error("still registered after unregistering")
		}

		// Registering again works as the first time, and so does leaving.
		r = user.IQ(t, "set", gw, `<query xmlns='`+nsRegister+`'><username>alice@example.com</username><password>pw-alice@example.com</password></query>`)
		if r.Attr("type") != "result" {
			t.Fatalf("registering again failed: %s", r.Condition())
		}
		if err := srv.WaitOnline(wctx, "alice@example.com"); err != nil {
			t.Fatal("not online on MSN after registering again")
		}
		user.Expect(t, "carol offered again", func(n *xmpptest.Node) bool {
			return n.Is("presence", "subscribe") && n.From(carolJID)
		})
		r = user.IQ(t, "set", gw, `<query xmlns='`+nsRegister+`'><remove/></query>`)
		if r.Attr("type") != "result" {
			t.Fatalf("unregistering again failed: %s", r.Condition())
		}
		if err := srv.WaitOffline(wctx, "alice@example.com"); err != nil {
			t.Fatal("alice still online on MSN after unregistering again")
		}

		br.stop(t)
		br = nil
		sealer, err := store.NewSealerBase64(cfg.Bridge.EncryptionKey)
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(ctx, cfg.Database.Type, cfg.Database.URI, zerolog.Nop(), store.WithSealer(sealer))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		logins, err := st.Logins.All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(logins) != 0 {
			t.Errorf("the login is still stored: %+v", logins)
		}
	})
}

func mustContactJID(t *testing.T, gw, passport string) string {
	t.Helper()
	dom, err := jid.Parse(gw)
	if err != nil {
		t.Fatal(err)
	}
	j, err := xmpp.ContactJID(dom, passport)
	if err != nil {
		t.Fatal(fmt.Errorf("contact JID of %s: %w", passport, err))
	}
	return j.String()
}

// With xmpp.sign_out_when_unavailable the MSN account follows the user's
// XMPP availability, and the login is kept while signed out, across a
// restart too.
func TestXMPPSignOutWhenUnavailable(t *testing.T) {
	xe := xmpptest.EnvFromOS(t)
	srv := msnptest.NewServer()
	defer srv.Close()
	srv.SetVersions(12)
	srv.AddAccount("dave@example.com", "pw-dave", "Dave")
	srv.AddAccount("erin@example.com", "pw-erin", "Erin")
	srv.AddContact("dave@example.com", "erin@example.com")

	cfg := e2eXMPPConfig(t, srv, xe)
	cfg.XMPP.SignOutWhenUnavailable = true
	log := e2eLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gw := xe.JID
	user := xe.Dial(t, "dave"+xmpptest.NewID()[:8])
	br := startXMPPBridge(t, cfg, log, user)
	defer func() {
		if br != nil {
			br.stop(t)
		}
	}()
	wait := func(what string, f func(context.Context, string) error) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if err := f(wctx, "dave@example.com"); err != nil {
			t.Fatalf("dave is not %s on MSN", what)
		}
	}
	registered := func() bool {
		t.Helper()
		r := user.IQ(t, "get", gw, `<query xmlns='`+nsRegister+`'/>`)
		return r.Child(nsRegister, "query").Child("", "registered") != nil
	}

	// A wrong password: MSN's verdict comes after the registration is
	// stored, so it reaches the user as a message from the gateway.
	r := user.IQ(t, "set", gw, `<query xmlns='`+nsRegister+`'><username>dave@example.com</username><password>wrong</password></query>`)
	if r.Attr("type") != "result" {
		t.Fatalf("registration refused: %s", r.Condition())
	}
	user.Expect(t, "the gateway saying the password is wrong", func(n *xmpptest.Node) bool {
		return n.Is("message", "chat") && n.From(gw) && strings.Contains(n.Body(), "password")
	})
	if srv.Online("dave@example.com") {
		t.Fatal("signed in with a wrong password")
	}
	r = user.IQ(t, "set", gw, `<query xmlns='`+nsRegister+`'><username>dave@example.com</username><password>pw-dave</password></query>`)
	if r.Attr("type") != "result" {
		t.Fatalf("registration refused: %s", r.Condition())
	}
	user.Expect(t, "the gateway asking for the user's presence", func(n *xmpptest.Node) bool {
		return n.Is("presence", "subscribe") && n.From(gw)
	})
	user.Presence(t, "subscribed", gw)
	user.Presence(t, "subscribe", gw)
	wait("online", srv.WaitOnline)

	user.Presence(t, "unavailable", "")
	wait("signed out", srv.WaitOffline)
	if !registered() {
		t.Fatal("signing out for unavailability forgot the registration")
	}
	user.Presence(t, "", "")
	wait("back online", srv.WaitOnline)

	user.Presence(t, "unavailable", "")
	wait("signed out", srv.WaitOffline)
	br.stop(t)
	br = nil
	br = startXMPPBridge(t, cfg, log, user)
	if !registered() {
		t.Fatal("after a restart the signed-out login is not registered any more")
	}
	if srv.Online("dave@example.com") {
		t.Error("a restart signed in a user who is unavailable on XMPP")
	}
	user.Presence(t, "", "")
	wait("online after the restart", srv.WaitOnline)
}
