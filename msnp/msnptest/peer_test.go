package msnptest_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
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
