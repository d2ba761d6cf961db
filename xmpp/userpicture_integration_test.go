//go:build integration

package xmpp

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/xmpp/xmpptest"
)

// TestUserPictureWithProsody: the avatar an XMPP user publishes at their
// own server (vcard-temp, or XEP-0084 PEP, which Prosody's
// mod_vcard_legacy turns into an XEP-0153 hash and a vCard PHOTO) becomes
// their MSN display picture, fetched from the real Prosody once per hash.
func TestUserPictureWithProsody(t *testing.T) {
	xe := xmpptest.EnvFromOS(t)
	gw := xe.JID
	core := newFakeCore()
	g, err := New(config.XMPP{Enabled: true, JID: gw, Server: xe.Component, Secret: xe.Secret},
		core, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	g.userPictureInterval = 50 * time.Millisecond
	var fetches atomic.Int32
	g.fetchVCard = func(ctx context.Context, bare string) (*node, error) {
		fetches.Add(1)
		return g.requestVCard(ctx, bare) // the real IQ to Prosody
	}
	ctx := runConnected(t, g)

	alice := xe.Dial(t, "avatar"+newID()[:8])
	user := bridge.UserID{Frontend: Kind, ID: alice.Bare()}
	core.mu.Lock()
	core.logins[user.ID] = "alice@hotmail.com"
	core.mu.Unlock()
	// As after registration (XEP-0100 §4.1): the gateway sees the user's
	// presence, and may read what their server shows to presence
	// subscribers.
	if err := g.send(outPresence{Type: "subscribe", From: gw, To: user.ID}); err != nil {
		t.Fatal(err)
	}
	alice.Expect(t, "subscribe from the gateway", func(n *xmpptest.Node) bool {
		return n.Is("presence", "subscribe") && n.From(gw)
	})
	alice.Presence(t, "subscribed", gw)

	hashOf := func(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }
	setVCard := func(pic []byte) {
		t.Helper()
		photo := ""
		if pic != nil {
			photo = `<PHOTO><TYPE>image/png</TYPE><BINVAL>` + base64.StdEncoding.EncodeToString(pic) + `</BINVAL></PHOTO>`
		}
		if r := alice.IQ(t, "set", "", `<vCard xmlns='vcard-temp'><FN>Alice</FN>`+photo+`</vCard>`); r.Attr("type") != "result" {
			t.Fatalf("vCard set: %s", r.Condition())
		}
	}
	waitPicture := func(what string, want []byte) {
		t.Helper()
		c := core.waitCall(t, "SetDisplayPicture")
		if c.user != user.ID || !bytes.Equal(c.data, want) || (want == nil) != (c.data == nil) {
			t.Fatalf("%s: SetDisplayPicture(%s, %d bytes), want %d bytes", what, c.user, len(c.data), len(want))
		}
	}
	// settled waits until the gateway has handled what alice sent so far
	// (her stanzas are handled in order), and says whether a picture is
	// being fetched or set for her.
	settled := func() (busy bool) {
		t.Helper()
		alice.IQ(t, "get", gw, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		g.userPics.mu.Lock()
		defer g.userPics.mu.Unlock()
		u := g.userPics.users[user.ID]
		return u != nil && u.busy
	}

	picA := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("A"), 2000)...)
	picB := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("B"), 3000)...)
	picC := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("C"), 1000)...)

	t.Run("vcard-temp avatar", func(t *testing.T) {
		setVCard(picA)
		alice.SendRaw(t, `<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo>`+hashOf(picA)+`</photo></x></presence>`)
		waitPicture("first avatar", picA)
		if v, _ := core.FrontendValue(ctx, Kind, userPictureKeyPrefix+user.ID); v != "alice@hotmail.com "+hashOf(picA) {
			t.Errorf("remembered %q", v)
		}
		// The same hash again (a status change) is not fetched again.
		alice.SendRaw(t, `<presence xmlns='jabber:client'><show>away</show><x xmlns='vcard-temp:x:update'><photo>`+hashOf(picA)+`</photo></x></presence>`)
		if busy := settled(); busy || fetches.Load() != 1 {
			t.Errorf("the same hash fetched again: %d fetches, busy %v", fetches.Load(), busy)
		}
	})

	t.Run("changed avatar", func(t *testing.T) {
		setVCard(picB)
		alice.SendRaw(t, `<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo>`+hashOf(picB)+`</photo></x></presence>`)
		waitPicture("changed avatar", picB)
		if n := fetches.Load(); n != 2 {
			t.Errorf("%d fetches, want 2", n)
		}
	})

	t.Run("PEP avatar", func(t *testing.T) {
		// XEP-0084 as Conversations or Dino publish it; the presence
		// carries no XEP-0153 of the client's own: Prosody adds it.
		h := hashOf(picC)
		r := alice.IQ(t, "set", "", `<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:avatar:data'>`+
			`<item id='`+h+`'><data xmlns='urn:xmpp:avatar:data'>`+base64.StdEncoding.EncodeToString(picC)+`</data></item></publish></pubsub>`)
		if r.Attr("type") != "result" {
			t.Fatalf("publishing avatar data: %s", r.Condition())
		}
		r = alice.IQ(t, "set", "", `<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:avatar:metadata'>`+
			`<item id='`+h+`'><metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='`+strconv.Itoa(len(picC))+`' id='`+h+`' type='image/png'/></metadata></item></publish></pubsub>`)
		if r.Attr("type") != "result" {
			t.Fatalf("publishing avatar metadata: %s", r.Condition())
		}
		alice.SendRaw(t, `<presence xmlns='jabber:client'/>`)
		waitPicture("PEP avatar", picC)
	})

	t.Run("avatar removed", func(t *testing.T) {
		setVCard(nil) // purges the PEP avatar too
		alice.SendRaw(t, `<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo/></x></presence>`)
		waitPicture("no avatar", nil)
		n := fetches.Load()
		alice.SendRaw(t, `<presence xmlns='jabber:client'><show>dnd</show></presence>`) // Prosody adds <photo/>
		if busy := settled(); busy || fetches.Load() != n {
			t.Errorf("clearing again: %d fetches (was %d), busy %v", fetches.Load(), n, busy)
		}
		for len(core.calls) > 0 {
			if c := <-core.calls; c.name == "SetDisplayPicture" {
				t.Errorf("the picture was set again: %d bytes", len(c.data))
			}
		}
	})
}
