//go:build integration

package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"image"
	_ "image/png"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/msnp/msnptest"
	"github.com/msnbridge/msnbridge/xmpp/xmpptest"
)

const (
	nsVCard   = "vcard-temp"
	nsVCardX  = "vcard-temp:x:update"
	nsOOB     = "jabber:x:oob"
	nsUpload  = "urn:xmpp:http:upload:0"
	uploadEnv = "MSNBRIDGE_TEST_XMPP_UPLOAD"
)

// TestXMPPMediaEndToEnd: the whole bridge with the real core, Prosody (and
// its HTTP upload service) and an msnptest.Peer, which speaks its own
// MSNP2P: the peer's display picture becomes a vCard PHOTO announced by
// XEP-0153, a file from the peer becomes an upload link, and a link from
// the XMPP user becomes a file transfer to the peer.
func TestXMPPMediaEndToEnd(t *testing.T) {
	xe := xmpptest.EnvFromOS(t)
	uploadJID := os.Getenv(uploadEnv)
	if uploadJID == "" {
		t.Fatalf("%s is not set: run `eval \"$(scripts/prosody.sh start)\"` first", uploadEnv)
	}
	srv := msnptest.NewServer()
	defer srv.Close()
	srv.SetVersions(12)
	srv.AddAccount("alice@example.com", "pw-alice", "Alice")
	srv.AddAccount("dave@example.com", "pw-dave", "Dave")
	srv.AddContact("alice@example.com", "dave@example.com")

	cfg := e2eXMPPConfig(t, srv, xe)
	// Prosody's upload service is on 127.0.0.1.
	cfg.XMPP.AllowPrivateURLs = true
	log := e2eLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dave, err := srv.NewPeer(ctx, "dave@example.com", "pw-dave")
	if err != nil {
		t.Fatal(err)
	}
	defer dave.Close()
	defer func() {
		if v := dave.Violations(); len(v) > 0 {
			t.Errorf("the bridge broke MSNP2P, as dave saw it:\n%s", strings.Join(v, "\n"))
		}
	}()

	gw := xe.JID
	user := xe.Dial(t, "alice"+xmpptest.NewID()[:8])
	br := startXMPPBridge(t, cfg, log, user)
	defer br.stop(t)
	daveJID := mustContactJID(t, gw, "dave@example.com")

	r := user.IQ(t, "set", gw, `<query xmlns='`+nsRegister+`'><username>alice@example.com</username><password>pw-alice</password></query>`)
	if r.Attr("type") != "result" {
		t.Fatalf("registration refused: %s", r.Condition())
	}
	user.Expect(t, "the gateway asking for the user's presence", func(n *xmpptest.Node) bool {
		return n.Is("presence", "subscribe") && n.From(gw)
	})
	user.Presence(t, "subscribed", gw)
	user.Presence(t, "subscribe", gw)
	user.Expect(t, "a subscription request from dave", func(n *xmpptest.Node) bool {
		return n.Is("presence", "subscribe") && n.From(daveJID)
	})
	user.Presence(t, "subscribed", daveJID)
	user.Presence(t, "subscribe", daveJID)
	user.Expect(t, "dave accepting the subscription", func(n *xmpptest.Node) bool {
		return n.Is("presence", "subscribed") && n.From(daveJID)
	})

	t.Run("display picture as vCard PHOTO", func(t *testing.T) {
		picture := testPNG(t, 96, 96)
		sum := sha1.Sum(picture)
		hash := hex.EncodeToString(sum[:])
		dave.SetDisplayPicture(picture)
		user.ExpectWithin(t, 30*time.Second, "dave's presence announcing his picture", func(n *xmpptest.Node) bool {
			return n.Is("presence", "") && n.From(daveJID) && n.Child(nsVCardX, "x").Child("", "photo").Text() == hash
		})
		r := user.IQ(t, "get", daveJID, `<vCard xmlns='vcard-temp'/>`)
		photo := r.Child(nsVCard, "vCard").Child("", "PHOTO")
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(photo.Child("", "BINVAL").Text()))
		if err != nil || !bytes.Equal(data, picture) {
			t.Fatalf("vCard PHOTO: %d bytes (%v), want dave's %d-byte picture", len(data), err, len(picture))
		}
		if typ := photo.Child("", "TYPE").Text(); typ != "image/png" {
			t.Errorf("PHOTO TYPE %q", typ)
		}
	})

	t.Run("a file from MSN arrives as an upload link", func(t *testing.T) {
		data := bytes.Repeat([]byte("a file over MSNP2P, "), 600) // several P2P chunks
		if err := dave.SendFile(ctx, "alice@example.com", "report.txt", data); err != nil {
			t.Fatalf("dave sending a file: %v", err)
		}
		n := user.ExpectWithin(t, 30*time.Second, "the file as a link from dave", func(n *xmpptest.Node) bool {
			return n.Is("message", "chat") && n.From(daveJID) && n.Child(nsOOB, "x") != nil
		})
		link := n.Child(nsOOB, "x").Child("", "url").Text()
		if n.Body() != link || !strings.Contains(link, "report.txt") {
			t.Errorf("body %q, OOB URL %q", n.Body(), link)
		}
		if got := xmpptest.Fetch(t, link); !bytes.Equal(got, data) {
			t.Errorf("the link serves %d bytes, want the %d dave sent", len(got), len(data))
		}
	})

	t.Run("an upload link from XMPP arrives as a file", func(t *testing.T) {
		data := bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 1000)
		link := user.Upload(t, uploadJID, "drawing.png", "image/png", data)
		user.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='file1' to='`+daveJID+`'><body>`+link+`</body>`+
			`<x xmlns='jabber:x:oob'><url>`+link+`</url></x><request xmlns='urn:xmpp:receipts'/></message>`)
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		f, err := dave.WaitFile(wctx)
		if err != nil {
			t.Fatalf("dave never got the file: %v", err)
		}
		if !strings.EqualFold(f.From, "alice@example.com") || f.Name != "drawing.png" || !bytes.Equal(f.Data, data) {
			t.Errorf("dave got %q from %s, %d bytes", f.Name, f.From, len(f.Data))
		}
		r := user.ExpectWithin(t, 30*time.Second, "a receipt for the file", func(n *xmpptest.Node) bool {
			return n.Child(nsReceipts, "received").Attr("id") == "file1"
		})
		if !r.From(daveJID) {
			t.Errorf("receipt from %s", r.Attr("from"))
		}
	})

	t.Run("a declined file is reported", func(t *testing.T) {
		dave.DeclineFiles(true)
		link := user.Upload(t, uploadJID, "unwanted.bin", "application/octet-stream", []byte("no thanks"))
		user.SendRaw(t, `<message xmlns='jabber:client' type='chat' id='file2' to='`+daveJID+`'><body>`+link+`</body>`+
			`<x xmlns='jabber:x:oob'><url>`+link+`</url></x></message>`)
		e := user.ExpectWithin(t, 30*time.Second, "an error for the declined file", func(n *xmpptest.Node) bool {
			return n.Is("message", "error") && n.Attr("id") == "file2"
		})
		if text := e.Child("", "error").Child("", "text").Text(); !strings.Contains(text, "declined") || !strings.Contains(text, "unwanted.bin") {
			t.Errorf("error text %q", text)
		}
	})

	t.Run("the user's XMPP avatar becomes their display picture", func(t *testing.T) {
		// Not square: the core makes it the 96×96 PNG MSN clients expect.
		picture := testPNG(t, 64, 32)
		sum := sha1.Sum(picture)
		hash := hex.EncodeToString(sum[:])
		r := user.IQ(t, "set", "", `<vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>`+
			base64.StdEncoding.EncodeToString(picture)+`</BINVAL></PHOTO></vCard>`)
		if r.Attr("type") != "result" {
			t.Fatalf("vCard set: %s", r.Condition())
		}
		user.SendRaw(t, `<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo>`+hash+`</photo></x></presence>`)
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		obj, err := dave.WaitMSNObject(wctx, "alice@example.com", "")
		if err != nil {
			t.Fatalf("alice never advertised a display picture: %v", err)
		}
		data, err := dave.FetchDisplayPicture(wctx, "alice@example.com", obj)
		if err != nil {
			t.Fatalf("dave fetching alice's picture: %v", err)
		}
		img, format, err := image.Decode(bytes.NewReader(data))
		if err != nil || format != "png" || img.Bounds() != image.Rect(0, 0, 96, 96) {
			t.Fatalf("alice's picture: %s %v %v", format, img.Bounds(), err)
		}

		// No avatar any more: the picture is cleared on MSN too (the
		// vCard without PHOTO drops Prosody's PEP avatar as well).
		if r := user.IQ(t, "set", "", `<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>`); r.Attr("type") != "result" {
			t.Fatalf("vCard set: %s", r.Condition())
		}
		user.SendRaw(t, `<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo/></x></presence>`)
		gone, err := dave.WaitMSNObject(wctx, "alice@example.com", obj.SHA1D)
		if err != nil || gone.SHA1D != "" {
			t.Fatalf("alice still advertises %+v (%v) after removing her avatar", gone, err)
		}
	})
}
