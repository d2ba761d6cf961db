package msnptest_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

func peerCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return c
}

func newPeer(t *testing.T, s *msnptest.Server, passport string) *msnptest.Peer {
	t.Helper()
	p, err := s.NewPeer(peerCtx(t), passport, pwd)
	if err != nil {
		t.Fatalf("NewPeer(%s): %v", passport, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// noViolations waits for the peers' sessions to end and fails the test on
// anything they recorded.
func noViolations(t *testing.T, peers ...*msnptest.Peer) {
	t.Helper()
	for _, p := range peers {
		if err := p.WaitIdle(peerCtx(t)); err != nil {
			t.Errorf("%s: WaitIdle: %v", p.Passport(), err)
		}
		for _, v := range p.Violations() {
			t.Errorf("%s saw: %s", p.Passport(), v)
		}
	}
}

func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func TestPeerFetchesDisplayPicture(t *testing.T) {
	s := newServer(t)
	a := newPeer(t, s, alice)
	b := newPeer(t, s, bob)
	pic := randomBytes(5000, 1) // five chunks
	obj := b.SetDisplayPicture(pic)
	if obj.Size != 5000 || obj.Type != msnp.MSNObjectDisplayPicture || obj.Creator != bob {
		t.Fatalf("object = %+v", obj)
	}
	// Alice sees the object in Bob's NLN, as the server relays CHG.
	seen, err := a.WaitMSNObject(peerCtx(t), bob, "")
	if err != nil {
		t.Fatalf("WaitMSNObject: %v", err)
	}
	if seen.SHA1D != obj.SHA1D || seen.SHA1C != obj.SHA1C || seen.Size != obj.Size {
		t.Fatalf("Alice saw %+v, want %+v", seen, obj)
	}
	got, err := a.FetchDisplayPicture(peerCtx(t), bob, seen)
	if err != nil {
		t.Fatalf("FetchDisplayPicture: %v", err)
	}
	if !bytes.Equal(got, pic) {
		t.Fatalf("fetched %d bytes, not the picture", len(got))
	}
	noViolations(t, a, b)

	// A new picture is news to the contacts (a CHG with only a new object).
	pic2 := randomBytes(100, 2)
	obj2 := b.SetDisplayPicture(pic2)
	seen, err = a.WaitMSNObject(peerCtx(t), bob, obj.SHA1D)
	if err != nil || seen.SHA1D != obj2.SHA1D {
		t.Fatalf("after a new picture Alice saw %+v, %v", seen, err)
	}
	// The old object is no longer served: 603 Decline.
	if _, err := a.FetchDisplayPicture(peerCtx(t), bob, obj); !errors.Is(err, msnptest.ErrDeclined) {
		t.Fatalf("fetching the old picture: %v, want ErrDeclined", err)
	}
	got, err = a.FetchDisplayPicture(peerCtx(t), bob, obj2)
	if err != nil || !bytes.Equal(got, pic2) {
		t.Fatalf("fetching the new picture: %d bytes, %v", len(got), err)
	}
	noViolations(t, a, b)

	// No picture: the contacts see <msnobj/> again.
	if o := b.SetDisplayPicture(nil); o != (msnp.MSNObject{}) {
		t.Fatalf("SetDisplayPicture(nil) = %+v", o)
	}
	if o, err := a.WaitMSNObject(peerCtx(t), bob, obj2.SHA1D); err != nil || o != (msnp.MSNObject{}) {
		t.Fatalf("after clearing, Alice sees %+v, %v", o, err)
	}
	if _, err := a.FetchDisplayPicture(peerCtx(t), bob, obj2); !errors.Is(err, msnptest.ErrDeclined) {
		t.Fatalf("fetching a cleared picture: %v, want ErrDeclined", err)
	}
	noViolations(t, a, b)
}

func TestPeerSendsFile(t *testing.T) {
	s := newServer(t)
	a := newPeer(t, s, alice)
	b := newPeer(t, s, bob)
	data := randomBytes(300*1024+17, 3)
	if err := a.SendFile(peerCtx(t), bob, "photo – été.jpg", data); err != nil {
		t.Fatalf("SendFile: %v", err)
	}
	f, err := b.WaitFile(peerCtx(t))
	if err != nil {
		t.Fatalf("WaitFile: %v", err)
	}
	if f.From != alice || f.Name != "photo – été.jpg" || !bytes.Equal(f.Data, data) {
		t.Fatalf("got %q from %s, %d bytes", f.Name, f.From, len(f.Data))
	}
	noViolations(t, a, b)
}

func TestPeerDeclinesFile(t *testing.T) {
	s := newServer(t)
	a := newPeer(t, s, alice)
	b := newPeer(t, s, bob)
	b.DeclineFiles(true)
	if err := a.SendFile(peerCtx(t), bob, "x.txt", []byte("hello")); !errors.Is(err, msnptest.ErrDeclined) {
		t.Fatalf("SendFile: %v, want ErrDeclined", err)
	}
	b.DeclineFiles(false)
	if err := a.SendFile(peerCtx(t), bob, "y.txt", []byte("again")); err != nil {
		t.Fatalf("SendFile after DeclineFiles(false): %v", err)
	}
	f, err := b.WaitFile(peerCtx(t))
	if err != nil || f.Name != "y.txt" || string(f.Data) != "again" {
		t.Fatalf("WaitFile: %+v, %v", f, err)
	}
	noViolations(t, a, b)
}

// TestCHGObjectFanOut checks the notification server's side of display
// pictures with raw lines: the msnobj of a CHG reaches the contacts in
// ILN and NLN as the client sent it, a new object alone is news, the same
// CHG again is not.
func TestCHGObjectFanOut(t *testing.T) {
	s := newServer(t)
	const obj1 = "%3Cmsnobj%20Creator%3D%22bob%40example.com%22%20Size%3D%224%22%20Type%3D%223%22%20Location%3D%220%22%20Friendly%3D%22AAA%3D%22%20SHA1D%3D%22x%22%2F%3E"
	const obj2 = "%3Cmsnobj%20Creator%3D%22bob%40example.com%22%20Size%3D%225%22%20Type%3D%223%22%20Location%3D%220%22%20Friendly%3D%22AAA%3D%22%20SHA1D%3D%22y%22%2F%3E"
	b := login(t, s, bob, pwd, 12)
	tr := b.send("CHG", "NLN", "1342177312", obj1)
	b.expect("CHG " + tr + " NLN 1342177312 " + obj1)
	b.expectPrefix("MSG Hotmail Hotmail")
	a := login(t, s, alice, pwd, 12)
	tr = a.send("CHG", "NLN", "0")
	a.expect("CHG " + tr + " NLN 0")
	a.expect("ILN " + tr + " NLN bob@example.com bob@example.com 1342177312 " + obj1)
	b.expect("NLN NLN alice@example.com alice@example.com 0 %3Cmsnobj%2F%3E")
	tr = b.send("CHG", "NLN", "1342177312", obj2)
	b.expect("CHG " + tr + " NLN 1342177312 " + obj2)
	a.expectPrefix("UBX bob@example.com") // after ILN
	a.expectPrefix("MSG Hotmail Hotmail")
	a.expect("NLN NLN bob@example.com bob@example.com 1342177312 " + obj2)
	// The same again is no news: the next line Alice sees is the FLN.
	tr = b.send("CHG", "NLN", "1342177312", obj2)
	b.expect("CHG " + tr + " NLN 1342177312 " + obj2)
	b.sendLine("OUT")
	a.expect("FLN bob@example.com")
}

// TestSwitchboardRelaysP2P checks what Escargot does with P2P (FACTS.md
// §6, msnp_sb.py _m_msg): a MSG with ack D is relayed byte for byte, binary
// header and all, and ACKed.
func TestSwitchboardRelaysP2P(t *testing.T) {
	for _, ver := range []int{12, 18} {
		s, a, b := sbWorld(t, ver)
		asb := openSB(t, s, a, sbName(alice, ver))
		asb.expectPrefix("USR 1 OK")
		bsb := ring(t, s, asb, b, bob, sbName(bob, ver))
		bsb.until("ANS 1 OK")
		asb.until("JOI " + bob + " ")
		payload := []byte("MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: bob@example.com\r\n\r\n" +
			"\x00\x00\x00\x00Gt\xc4\n\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00wn\xc5\n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
			"\r\n\x00\xff\x00\x00\x00\x01")
		tr := asb.sendPayload("MSG", payload, "D")
		asb.expect("ACK " + tr)
		got := bsb.read()
		for strings.HasPrefix(bsb.last, "JOI ") { // MSNP18: its own JOI first
			got = bsb.read()
		}
		if !strings.HasPrefix(bsb.last, "MSG "+alice+" ") || !bytes.Equal(got.Payload, payload) {
			t.Fatalf("MSNP%d: relayed %q, want %q", ver, got.Payload, payload)
		}
	}
}
