//go:build integration

package xmpp

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/xmpp/xmpptest"
)

// TestMediaWithProsody runs display pictures and files against the real
// Prosody of scripts/prosody.sh, its HTTP upload service included (the
// gateway's uploads and a client's own, as Conversations makes them), with
// real XMPP clients; only the core is fake.
func TestMediaWithProsody(t *testing.T) {
	xe := xmpptest.EnvFromOS(t)
	uploadJID := getenv(t, "MSNBRIDGE_TEST_XMPP_UPLOAD")
	// Prosody's HTTP listener (its upload service's links).
	httpBase := getenv(t, "MSNBRIDGE_TEST_XMPP_HTTP")
	gw := xe.JID
	core := newFakeCore()
	// Prosody's upload service is on 127.0.0.1: the links users send must
	// be fetched from there.
	g, err := New(config.XMPP{Enabled: true, JID: gw, Server: xe.Component, Secret: xe.Secret, AllowPrivateURLs: true},
		core, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	// The bridge's own listener, for the fallback links.
	mediaSrv := httptest.NewUnstartedServer(nil)
	mediaSrv.Start()
	t.Cleanup(mediaSrv.Close)
	h, err := g.MediaHandler(mediaSrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	mediaSrv.Config.Handler = h
	ctx := runConnected(t, g)

	suffix := newID()[:8]
	alice := xe.Dial(t, "media"+suffix)
	user := bridge.UserID{Frontend: Kind, ID: alice.Bare()}
	core.mu.Lock()
	core.logins[user.ID] = "alice@hotmail.com"
	core.mu.Unlock()
	const bobPassport = "bob@hotmail.com"
	bobJID := `bob\40hotmail.com@` + gw
	portal, _ := core.DirectPortal(ctx, user, bobPassport)
	alice.Presence(t, "subscribe", bobJID)
	core.waitCall(t, "AddContact")

	picture := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 3000)...)
	sum := sha1.Sum(picture)
	hash := hex.EncodeToString(sum[:])

	t.Run("avatar hash in presence and PHOTO in the vCard", func(t *testing.T) {
		core.mu.Lock()
		core.avatars[hash] = picture
		core.mu.Unlock()
		bob := bridge.Contact{Passport: bobPassport, FriendlyName: "Bob", OnContactList: true, Status: bridge.StatusOnline}
		if _, err := g.Deliver(ctx, user, bridge.Presence{Contact: bob}); err != nil {
			t.Fatal(err)
		}
		n := alice.Expect(t, "bob's presence, no picture yet", func(n *xmpptest.Node) bool {
			return n.Is("presence", "") && n.From(bobJID)
		})
		if x := n.Child(nsVCardX, "x"); x == nil || x.Child("", "photo") != nil {
			t.Errorf("presence before the picture is known: %+v", x)
		}
		bob.Avatar = hash
		if _, err := g.Deliver(ctx, user, bridge.Presence{Contact: bob}); err != nil {
			t.Fatal(err)
		}
		n = alice.Expect(t, "bob's presence with his picture's hash", func(n *xmpptest.Node) bool {
			return n.Is("presence", "") && n.From(bobJID) && n.Child(nsVCardX, "x").Child("", "photo") != nil
		})
		if got := n.Child(nsVCardX, "x").Child("", "photo").Text(); got != hash {
			t.Errorf("photo hash %q, want %q", got, hash)
		}
		r := alice.IQ(t, "get", bobJID, `<vCard xmlns='vcard-temp'/>`)
		photo := r.Child(nsVCard, "vCard").Child("", "PHOTO")
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(photo.Child("", "BINVAL").Text()))
		if err != nil || !bytes.Equal(data, picture) || photo.Child("", "TYPE").Text() != "image/png" {
			t.Errorf("vCard PHOTO type %q, %d bytes (err %v); want the picture", photo.Child("", "TYPE").Text(), len(data), err)
		}
		if got := r.Child(nsVCard, "vCard").Child("", "FN").Text(); got != "Bob" {
			t.Errorf("FN %q", got)
		}
		r = alice.IQ(t, "get", gw, `<vCard xmlns='vcard-temp'/>`)
		if r.Child(nsVCard, "vCard").Child("", "FN").Text() == "" {
			t.Errorf("the gateway's vCard has no FN: %+v", r)
		}
		stranger := xe.Dial(t, "nobody"+suffix)
		r = stranger.IQ(t, "get", bobJID, `<vCard xmlns='vcard-temp'/>`)
		if r.Condition() != "registration-required" {
			t.Errorf("an unregistered user's vCard get: %q", r.Condition())
		}
	})

	t.Run("file from MSN through the server's HTTP upload", func(t *testing.T) {
		data := bytes.Repeat([]byte("holiday "), 4000)
		core.addMedia("m1", "beach photo.jpg", "image/jpeg", data)
		if _, err := g.Deliver(ctx, user, bridge.File{Portal: portal.ID, Sender: bobPassport, Name: "beach photo.jpg",
			Size: int64(len(data)), MIME: "image/jpeg", Media: "m1", Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
		n := alice.Expect(t, "the file as a link", func(n *xmpptest.Node) bool {
			return n.Is("message", "chat") && n.From(bobJID) && n.Child("jabber:x:oob", "x") != nil
		})
		link := n.Child("jabber:x:oob", "x").Child("", "url").Text()
		if n.Body() != link || !strings.HasPrefix(link, httpBase+"/") {
			t.Errorf("body %q, OOB URL %q; want the upload service's URL in both", n.Body(), link)
		}
		if e, ok := g.uploads.get(xe.Domain); !ok || e.svc == nil || e.svc.jid != uploadJID || e.svc.maxSize != 16<<20 {
			t.Errorf("upload service found: %+v", e.svc)
		}
		if got := xmpptest.Fetch(t, link); !bytes.Equal(got, data) {
			t.Errorf("the link serves %d bytes, want the %d of the file", len(got), len(data))
		}
	})

	t.Run("file from MSN through the bridge's own listener", func(t *testing.T) {
		g.uploads.set(xe.Domain, nil, time.Hour) // as on a server without upload
		data := []byte("%PDF-1.4 minutes of the meeting")
		core.addMedia("m2", "minutes.pdf", "application/pdf", data)
		if _, err := g.Deliver(ctx, user, bridge.File{Portal: portal.ID, Sender: bobPassport, Name: "minutes.pdf",
			Size: int64(len(data)), MIME: "application/pdf", Media: "m2"}); err != nil {
			t.Fatal(err)
		}
		n := alice.Expect(t, "the file as a bridge link", func(n *xmpptest.Node) bool {
			return n.Is("message", "chat") && n.From(bobJID) && n.Child("jabber:x:oob", "x") != nil
		})
		link := n.Child("jabber:x:oob", "x").Child("", "url").Text()
		if link != mediaSrv.URL+"/media/m2/minutes.pdf" || n.Body() != link {
			t.Errorf("body %q, OOB URL %q", n.Body(), link)
		}
		if got := xmpptest.Fetch(t, link); !bytes.Equal(got, data) {
			t.Errorf("the link serves %q", got)
		}
		resp, err := http.Get(mediaSrv.URL + "/media/expired/minutes.pdf")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("an unknown id: %s", resp.Status)
		}

		// Without a listener either, the user is told.
		g.files.mu.Lock()
		g.files.publicURL = ""
		g.files.mu.Unlock()
		defer func() {
			g.files.mu.Lock()
			g.files.publicURL = mediaSrv.URL
			g.files.mu.Unlock()
		}()
		if _, err := g.Deliver(ctx, user, bridge.File{Portal: portal.ID, Sender: bobPassport, Name: "minutes.pdf",
			Size: int64(len(data)), MIME: "application/pdf", Media: "m2"}); err != nil {
			t.Fatal(err)
		}
		n = alice.Expect(t, "a note that a file could not be offered", func(n *xmpptest.Node) bool {
			return n.Is("message", "chat") && n.From(bobJID) && strings.Contains(n.Body(), "minutes.pdf")
		})
		if n.Child("jabber:x:oob", "x") != nil || !strings.Contains(n.Body(), "could not be offered") {
			t.Errorf("message %q", n.Body())
		}
		g.uploads.forget(xe.Domain)
	})

	t.Run("file to MSN from an upload link", func(t *testing.T) {
		data := bytes.Repeat([]byte{0xff, 0xd8, 'j', 'p'}, 2500)
		link := alice.Upload(t, uploadJID, "cat.jpg", "image/jpeg", data)
		alice.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='f1' to='`+bobJID+`'><body>`+link+`</body>`+
			`<x xmlns='jabber:x:oob'><url>`+link+`</url></x><request xmlns='urn:xmpp:receipts'/></message>`)
		c := core.waitCall(t, "SendFile")
		if c.portal != portal.ID || c.file.Name != "cat.jpg" || c.file.MIME != "image/jpeg" || !bytes.Equal(c.data, data) {
			t.Fatalf("SendFile(%s, %q, %q, %d bytes)", c.portal, c.file.Name, c.file.MIME, len(c.data))
		}
		if _, err := g.Deliver(ctx, user, bridge.DeliveryResult{Portal: portal.ID, FrontendID: c.fid}); err != nil {
			t.Fatal(err)
		}
		r := alice.Expect(t, "receipt for the file", func(n *xmpptest.Node) bool { return n.Child(nsReceipts, "received") != nil })
		if r.Child(nsReceipts, "received").Attr("id") != "f1" {
			t.Errorf("receipt %+v", r.Child(nsReceipts, "received"))
		}

		// A bare link to an upload, as some clients send it, and declined.
		link = alice.Upload(t, uploadJID, "notes.txt", "text/plain", []byte("remember the milk"))
		alice.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='f2' to='`+bobJID+`'><body>`+link+`</body></message>`)
		c = core.waitCall(t, "SendFile")
		if c.file.Name != "notes.txt" || string(c.data) != "remember the milk" {
			t.Fatalf("SendFile(%q, %q)", c.file.Name, c.data)
		}
		if _, err := g.Deliver(ctx, user, bridge.DeliveryResult{Portal: portal.ID, FrontendID: c.fid, Err: bridge.ErrFileDeclined}); err != nil {
			t.Fatal(err)
		}
		e := alice.Expect(t, "error for the declined file", func(n *xmpptest.Node) bool { return n.Is("message", "error") && n.Attr("id") == "f2" })
		if e.Condition() != "not-acceptable" || !strings.Contains(e.Child("", "error").Child("", "text").Text(), "declined") {
			t.Errorf("declined: %q %q", e.Condition(), e.Child("", "error").Child("", "text").Text())
		}

		alice.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='f3' to='`+bobJID+`'><body>x</body>`+
			`<x xmlns='jabber:x:oob'><url>`+httpBase+`/file_share/nope/missing.png</url></x></message>`)
		e = alice.Expect(t, "error for a link that does not work", func(n *xmpptest.Node) bool { return n.Is("message", "error") && n.Attr("id") == "f3" })
		if !strings.Contains(e.Child("", "error").Child("", "text").Text(), "404") {
			t.Errorf("broken link: %q", e.Child("", "error").Child("", "text").Text())
		}
		// The text beside the link still went as a message.
		if c := core.waitCall(t, "SendMessage"); c.text.Body != "x" {
			t.Errorf("text beside the link: %q", c.text.Body)
		}

		// A bare link that is no file goes as the text it is.
		bare := httpBase + "/file_share/nope/gone.png"
		alice.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='f4' to='`+bobJID+`'><body>`+bare+`</body></message>`)
		if c := core.waitCall(t, "SendMessage"); c.text.Body != bare {
			t.Errorf("a bare broken link sent as %q", c.text.Body)
		}
	})
}

func getenv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run `eval \"$(scripts/prosody.sh start)\"` first", name)
	}
	return v
}

// runConnected runs g until the test ends and returns once its component
// connection to Prosody is up, with a context that ends with the test.
func runConnected(t *testing.T, g *Gateway) context.Context {
	t.Helper()
	connected := make(chan struct{}, 10)
	g.onConnect = func() { connected <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error)
	go func() { runDone <- g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-runDone })
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("component never connected")
	}
	return ctx
}
