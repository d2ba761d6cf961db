package msnptest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// These tests make one Peer play a broken client (through its tamper
// hook) and check that the other one notices: the Peer is only worth
// something in tests if its checks can fail.

func strictPeers(t *testing.T) (a, b *Peer) {
	t.Helper()
	s := NewServer()
	t.Cleanup(s.Close)
	s.AddAccount("alice@example.com", "pw", "")
	s.AddAccount("bob@example.com", "pw", "")
	s.AddContact("alice@example.com", "bob@example.com")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if a, err = s.NewPeer(ctx, "alice@example.com", "pw"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = s.NewPeer(ctx, "bob@example.com", "pw"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

func tamper(p *Peer, f func(what string, h *p2pHeader, data []byte) []byte) {
	p.mu.Lock()
	p.tamper = f
	p.mu.Unlock()
}

func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantViolation(t *testing.T, p *Peer, substr string) {
	t.Helper()
	for _, v := range p.Violations() {
		if strings.Contains(v, substr) {
			return
		}
	}
	t.Fatalf("%s recorded no violation with %q: %q", p.passport, substr, p.Violations())
}

func TestPeerNoticesCorruptPicture(t *testing.T) {
	a, b := strictPeers(t)
	obj := b.SetDisplayPicture(bytes.Repeat([]byte("picture!"), 300))
	tamper(b, func(what string, h *p2pHeader, data []byte) []byte {
		if what == "display picture data" {
			data = append([]byte(nil), data...)
			data[100] ^= 1
		}
		return data
	})
	if _, err := a.FetchDisplayPicture(shortCtx(t), b.passport, obj); err == nil {
		t.Fatal("a corrupt picture was accepted")
	}
	wantViolation(t, a, "SHA1D")
}

func TestPeerNoticesBadAcks(t *testing.T) {
	a, b := strictPeers(t)
	obj := b.SetDisplayPicture([]byte("tiny"))
	tamper(a, func(what string, h *p2pHeader, data []byte) []byte {
		if what == "ack" {
			h.AckUID++
		}
		return data
	})
	if _, err := a.FetchDisplayPicture(shortCtx(t), b.passport, obj); err != nil {
		t.Fatalf("FetchDisplayPicture: %v", err)
	}
	wantViolation(t, b, "AckUniqueID")
}

func TestPeerNoticesBadFileData(t *testing.T) {
	a, b := strictPeers(t)
	tamper(a, func(what string, h *p2pHeader, data []byte) []byte {
		if what == "file data" {
			h.Flags = p2pFlagObjData
		}
		return data
	})
	if err := a.SendFile(shortCtx(t), b.passport, "f.bin", make([]byte, 3000)); err != nil {
		t.Fatalf("SendFile: %v", err)
	}
	wantViolation(t, b, "flags 0x20, want 0x1000030")
}

func TestPeerNoticesBadDataPreparation(t *testing.T) {
	a, b := strictPeers(t)
	obj := b.SetDisplayPicture([]byte("tiny"))
	tamper(b, func(what string, h *p2pHeader, data []byte) []byte {
		if what == "data preparation" {
			return []byte{1, 0, 0, 0}
		}
		return data
	})
	a.FetchDisplayPicture(shortCtx(t), b.passport, obj)
	wantViolation(t, a, "bad data preparation")
}

func TestPeerNoticesMissingAck(t *testing.T) {
	a, b := strictPeers(t)
	// Alice acks nothing: Bob never gets past his 200 OK, and Alice's
	// fetch times out; both say so.
	tamper(a, func(what string, h *p2pHeader, data []byte) []byte {
		if what == "ack" {
			h.AckID = 1 // acks a message Bob never sent
		}
		return data
	})
	obj := b.SetDisplayPicture([]byte("tiny"))
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if _, err := a.FetchDisplayPicture(ctx, b.passport, obj); err == nil {
		t.Fatal("the fetch succeeded without acks")
	}
	wantViolation(t, b, "ack of unknown message")
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	b.WaitIdle(ctx)
	wantViolation(t, b, "never acked")
}

func TestPeerTexts(t *testing.T) {
	a, b := strictPeers(t)
	if err := a.SendText(shortCtx(t), b.passport, "hello"); err != nil {
		t.Fatal(err)
	}
	m, err := b.WaitText(shortCtx(t))
	if err != nil || m.From != a.passport || m.Text != "hello" {
		t.Fatalf("WaitText = %+v, %v", m, err)
	}
}
