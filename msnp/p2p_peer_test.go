package msnp_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

const peerAddr = "peer@example.com"

// peerSetup signs alice (an msnp.Client speaking p) and a msnptest.Peer,
// an independent P2P implementation, in as mutual contacts.
func peerSetup(t *testing.T, p msnp.Protocol) (*msnp.Client, *events, *msnptest.Peer) {
	t.Helper()
	s := newServer(t)
	s.AddAccount(alice, "pw", "Alice")
	s.AddAccount(peerAddr, "pw", "Peer")
	s.AddContact(alice, peerAddr)
	c, ev := connect(t, config(s, p), alice, "pw")
	online(t, c, ev)
	pe, err := s.NewPeer(ctxT(t), peerAddr, "pw")
	if err != nil {
		t.Fatalf("NewPeer: %v", err)
	}
	t.Cleanup(func() { pe.Close() })
	ev.next(t, "the peer online", func(e msnp.Event) bool {
		cp, ok := e.(msnp.ContactPresence)
		return ok && cp.Passport == peerAddr
	})
	return c, ev, pe
}

// checkPeer fails the test with what the Peer found wrong in our side.
func checkPeer(t *testing.T, pe *msnptest.Peer) {
	t.Helper()
	if err := pe.WaitIdle(ctxT(t)); err != nil {
		t.Errorf("peer not idle: %v", err)
	}
	for _, v := range pe.Violations() {
		t.Errorf("peer saw a violation: %s", v)
	}
}

func TestP2PAgainstPeer(t *testing.T) {
	forVersions(t, p2pVersions, func(t *testing.T, p msnp.Protocol) {
		c, ev, pe := peerSetup(t, p)

		// We fetch the peer's display picture.
		pic := testData(7000, 11)
		pobj := pe.SetDisplayPicture(pic)
		got := contactObject(t, ev, peerAddr)
		if got.SHA1D != pobj.SHA1D {
			t.Fatalf("we see %+v, the peer set %+v", got, pobj)
		}
		var buf bytes.Buffer
		if err := c.FetchMSNObject(ctxT(t), peerAddr, got, &buf, 0); err != nil {
			t.Fatalf("FetchMSNObject from the peer: %v", err)
		}
		if !bytes.Equal(buf.Bytes(), pic) {
			t.Fatalf("fetched %d bytes, want the peer's %d", buf.Len(), len(pic))
		}
		checkPeer(t, pe)

		// The peer fetches ours.
		own := testData(4321, 12)
		obj, err := c.SetDisplayPicture(ctxT(t), own)
		if err != nil {
			t.Fatal(err)
		}
		seen, err := pe.WaitMSNObject(ctxT(t), alice, "")
		if err != nil || seen.SHA1D != obj.SHA1D {
			t.Fatalf("the peer sees %+v (%v), want %+v", seen, err, obj)
		}
		data, err := pe.FetchDisplayPicture(ctxT(t), alice, seen)
		if err != nil || !bytes.Equal(data, own) {
			t.Fatalf("the peer fetched %d bytes (%v), want our %d", len(data), err, len(own))
		}
		checkPeer(t, pe)

		// The peer sends us a file.
		file := testData(100<<10+3, 13)
		errc := make(chan error, 1)
		go func() { errc <- pe.SendFile(ctxT(t), alice, "from peer.bin", file) }()
		o := nextOffer(t, ev)
		if o.From != peerAddr || o.Name != "from peer.bin" || o.Size != int64(len(file)) {
			t.Fatalf("offer %+v", o)
		}
		var in bytes.Buffer
		if err := o.Transfer.Accept(ctxT(t), &in); err != nil {
			t.Fatalf("Accept: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("peer SendFile: %v", err)
		}
		if !bytes.Equal(in.Bytes(), file) {
			t.Fatalf("received %d bytes, want the peer's %d", in.Len(), len(file))
		}
		checkPeer(t, pe)

		// We send the peer a file.
		out := testData(200<<10+5, 14)
		if err := c.SendFile(ctxT(t), peerAddr, msnp.OutgoingFile{Name: "to peer.bin", Size: int64(len(out)), Data: bytes.NewReader(out)}); err != nil {
			t.Fatalf("SendFile to the peer: %v", err)
		}
		rf, err := pe.WaitFile(ctxT(t))
		if err != nil || rf.From != alice || rf.Name != "to peer.bin" || !bytes.Equal(rf.Data, out) {
			t.Fatalf("the peer got %q from %q, %d bytes (%v)", rf.Name, rf.From, len(rf.Data), err)
		}
		checkPeer(t, pe)

		// The peer declines.
		pe.DeclineFiles(true)
		err = c.SendFile(ctxT(t), peerAddr, msnp.OutgoingFile{Name: "no.bin", Size: 10, Data: bytes.NewReader(make([]byte, 10))})
		if !errors.Is(err, msnp.ErrP2PDeclined) {
			t.Fatalf("SendFile to a declining peer: %v, want ErrP2PDeclined", err)
		}
		checkPeer(t, pe)

		// We decline the peer's file.
		go func() { errc <- pe.SendFile(ctxT(t), alice, "unwanted.bin", file) }()
		nextOffer(t, ev).Transfer.Decline()
		if err := <-errc; !errors.Is(err, msnptest.ErrDeclined) {
			t.Fatalf("peer SendFile we declined: %v, want msnptest.ErrDeclined", err)
		}
		checkPeer(t, pe)
	})
}

// TestP2PCloseRightAfterTransfer: a program that closes the Client as soon
// as FetchMSNObject or SendFile returned still sends the ack and BYE (or
// the ack of the 603, or of the receiver's BYE) that finish the transfer
// for the peer.
func TestP2PCloseRightAfterTransfer(t *testing.T) {
	t.Run("fetch", func(t *testing.T) {
		c, ev, pe := peerSetup(t, msnp.MSNP12)
		pobj := pe.SetDisplayPicture(testData(4000, 3))
		got := contactObject(t, ev, peerAddr)
		if got.SHA1D != pobj.SHA1D {
			t.Fatalf("we see %+v, the peer set %+v", got, pobj)
		}
		var buf bytes.Buffer
		if err := c.FetchMSNObject(ctxT(t), peerAddr, got, &buf, 0); err != nil {
			t.Fatal(err)
		}
		c.Close()
		checkPeer(t, pe)
	})
	t.Run("sent file", func(t *testing.T) {
		// The peer acks the data, then says BYE: Close acknowledges
		// that BYE, however soon after SendFile it comes.
		c, _, pe := peerSetup(t, msnp.MSNP12)
		data := testData(30000, 7)
		if err := c.SendFile(ctxT(t), peerAddr, msnp.OutgoingFile{Name: "b.bin", Size: int64(len(data)), Data: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
		c.Close()
		f, err := pe.WaitFile(ctxT(t))
		if err != nil || !bytes.Equal(f.Data, data) {
			t.Fatalf("the peer got %d bytes, %v", len(f.Data), err)
		}
		checkPeer(t, pe)
	})
	t.Run("declined file", func(t *testing.T) {
		c, _, pe := peerSetup(t, msnp.MSNP12)
		pe.DeclineFiles(true)
		data := testData(3000, 5)
		err := c.SendFile(ctxT(t), peerAddr, msnp.OutgoingFile{Name: "a.bin", Size: int64(len(data)), Data: bytes.NewReader(data)})
		if !errors.Is(err, msnp.ErrP2PDeclined) {
			t.Fatalf("SendFile: %v, want ErrP2PDeclined", err)
		}
		c.Close()
		checkPeer(t, pe)
	})
}
