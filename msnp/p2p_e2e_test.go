package msnp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
)

var p2pVersions = []msnp.Protocol{msnp.MSNP12, msnp.MSNP18}

func testData(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// contactObject waits for passport's presence with a display picture.
func contactObject(t *testing.T, ev *events, passport string) msnp.MSNObject {
	t.Helper()
	p := ev.next(t, "ContactPresence with an msnobj", func(e msnp.Event) bool {
		cp, ok := e.(msnp.ContactPresence)
		return ok && cp.Passport == passport && cp.MSNObject != ""
	}).(msnp.ContactPresence)
	obj, err := msnp.ParseMSNObject(p.MSNObject)
	if err != nil {
		t.Fatalf("ParseMSNObject(%q): %v", p.MSNObject, err)
	}
	return obj
}

func nextOffer(t *testing.T, ev *events) msnp.FileOffer {
	t.Helper()
	return ev.next(t, "FileOffer", is[msnp.FileOffer]).(msnp.FileOffer)
}

func TestP2PDisplayPicture(t *testing.T) {
	forVersions(t, p2pVersions, func(t *testing.T, p msnp.Protocol) {
		_, cs, evs := chatSetup(t, p, alice, bob)
		a, b := cs[0], cs[1]
		pic := testData(5000, 1) // several chunks
		obj, err := a.SetDisplayPicture(ctxT(t), pic)
		if err != nil {
			t.Fatalf("SetDisplayPicture: %v", err)
		}
		if obj.Type != msnp.MSNObjectDisplayPicture || obj.Size != int64(len(pic)) || obj.Creator != alice || obj.SHA1C != obj.ComputeSHA1C() {
			t.Fatalf("object %+v", obj)
		}
		got := contactObject(t, evs[1], alice)
		if got.SHA1D != obj.SHA1D || got.Size != obj.Size {
			t.Fatalf("bob sees %+v, want %+v", got, obj)
		}
		var buf bytes.Buffer
		if err := b.FetchMSNObject(ctxT(t), alice, got, &buf, 1<<20); err != nil {
			t.Fatalf("FetchMSNObject: %v", err)
		}
		if !bytes.Equal(buf.Bytes(), pic) {
			t.Fatalf("fetched %d bytes, want the %d of the picture", buf.Len(), len(pic))
		}
		// Over the caller's limit: refused before anything is asked.
		if err := b.FetchMSNObject(ctxT(t), alice, got, io.Discard, 100); !errors.Is(err, msnp.ErrP2PTooLarge) {
			t.Fatalf("FetchMSNObject over the limit: %v, want ErrP2PTooLarge", err)
		}
		// An object that lies about its size: the data is cut off at the
		// limit, not written past it.
		liar := got
		liar.Size = 1000
		var cut bytes.Buffer
		if err := b.FetchMSNObject(ctxT(t), alice, liar, &cut, 1000); !errors.Is(err, msnp.ErrP2PTooLarge) {
			t.Fatalf("FetchMSNObject of a lying object: %v, want ErrP2PTooLarge", err)
		}
		if cut.Len() != 0 {
			t.Fatalf("%d bytes written past the limit", cut.Len())
		}
		// A wrong SHA1D: alice has no such object and declines.
		other := got
		other.SHA1D = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
		if err := b.FetchMSNObject(ctxT(t), alice, other, io.Discard, 0); !errors.Is(err, msnp.ErrP2PDeclined) {
			t.Fatalf("FetchMSNObject of an unknown object: %v, want ErrP2PDeclined", err)
		}
		// Text still flows in the same conversation afterwards.
		if err := b.Chat(alice).SendText(ctxT(t), "nice picture", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		if m := nextMessage(t, evs[0]); m.Text != "nice picture" {
			t.Fatalf("alice got %q", m.Text)
		}
	})
}

// acceptInto accepts the next offer into a buffer, returning its result.
func acceptNext(t *testing.T, ev *events, ctx context.Context) (msnp.FileOffer, []byte, error) {
	t.Helper()
	o := nextOffer(t, ev)
	var buf bytes.Buffer
	err := o.Transfer.Accept(ctx, &buf)
	return o, buf.Bytes(), err
}

func TestP2PFileBothWays(t *testing.T) {
	forVersions(t, p2pVersions, func(t *testing.T, p msnp.Protocol) {
		_, cs, evs := chatSetup(t, p, alice, bob)
		a, b := cs[0], cs[1]
		for _, tc := range []struct {
			name     string
			from, to *msnp.Client
			toEv     *events
			fromAddr string
			toAddr   string
			size     int
		}{
			{"small", a, b, evs[1], alice, bob, 10},
			{"one chunk exactly", b, a, evs[0], bob, alice, 1202},
			{"300 KB", a, b, evs[1], alice, bob, 300 << 10},
			{"300 KB back", b, a, evs[0], bob, alice, 300<<10 + 7},
		} {
			data := testData(tc.size, int64(tc.size))
			var wg sync.WaitGroup
			var offer msnp.FileOffer
			var got []byte
			var aerr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				offer, got, aerr = acceptNext(t, tc.toEv, ctxT(t))
			}()
			err := tc.from.SendFile(ctxT(t), tc.toAddr, msnp.OutgoingFile{Name: "dir/ph\u00f6to " + tc.name + ".bin", Size: int64(len(data)), Data: bytes.NewReader(data)})
			wg.Wait()
			if err != nil || aerr != nil {
				t.Fatalf("%s: SendFile: %v; Accept: %v", tc.name, err, aerr)
			}
			if offer.From != tc.fromAddr || offer.Name != "ph\u00f6to "+tc.name+".bin" || offer.Size != int64(len(data)) || offer.Conversation.ID != tc.fromAddr {
				t.Fatalf("%s: offer %+v", tc.name, offer)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s: received %d bytes, want %d equal ones", tc.name, len(got), len(data))
			}
		}
	})
}

func TestP2PFileDecline(t *testing.T) {
	_, cs, evs := chatSetup(t, msnp.MSNP18, alice, bob)
	a := cs[0]
	go func() {
		o := nextOffer(t, evs[1])
		o.Transfer.Decline()
	}()
	data := testData(5000, 3)
	err := a.SendFile(ctxT(t), bob, msnp.OutgoingFile{Name: "x.txt", Size: int64(len(data)), Data: bytes.NewReader(data)})
	if !errors.Is(err, msnp.ErrP2PDeclined) {
		t.Fatalf("SendFile: %v, want ErrP2PDeclined", err)
	}
}

// cancelAfter cancels once n bytes were read from r.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n -= k
	if c.n <= 0 && c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	return k, err
}

func TestP2PFileCancelMidTransfer(t *testing.T) {
	_, cs, evs := chatSetup(t, msnp.MSNP12, alice, bob)
	a, b := cs[0], cs[1]
	data := testData(300<<10, 4)

	// The sender cancels: the receiver hears it as ErrP2PCancelled.
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	var got bytes.Buffer
	go func() {
		o := nextOffer(t, evs[1])
		done <- o.Transfer.Accept(ctxT(t), &got)
	}()
	err := a.SendFile(ctx, bob, msnp.OutgoingFile{Name: "big.bin", Size: int64(len(data)), Data: &cancelAfter{r: bytes.NewReader(data), n: 50 << 10, cancel: cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("SendFile: %v, want context.Canceled", err)
	}
	if err := <-done; !errors.Is(err, msnp.ErrP2PCancelled) {
		t.Fatalf("Accept: %v, want ErrP2PCancelled", err)
	}
	if got.Len() >= len(data) || !bytes.Equal(got.Bytes(), data[:got.Len()]) {
		t.Fatalf("received %d bytes (a wrong prefix or all of it)", got.Len())
	}

	// The receiver cancels: the sender hears it.
	rctx, rcancel := context.WithCancel(ctxT(t))
	go func() {
		o := nextOffer(t, evs[0])
		o.Transfer.Accept(rctx, writerFunc(func(p []byte) (int, error) {
			rcancel()
			return len(p), nil
		}))
	}()
	err = b.SendFile(ctxT(t), alice, msnp.OutgoingFile{Name: "big.bin", Size: int64(len(data)), Data: bytes.NewReader(data)})
	if !errors.Is(err, msnp.ErrP2PCancelled) {
		t.Fatalf("SendFile to a receiver who cancels: %v, want ErrP2PCancelled", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestP2PTimeouts(t *testing.T) {
	_, cs, evs := chatSetup(t, msnp.MSNP18, alice, bob)
	a, b := cs[0], cs[1]
	// Bob's user never decides; alice gives up first.
	msnp.SetP2PTimeouts(a, 300*time.Millisecond, 300*time.Millisecond)
	data := testData(2000, 5)
	err := a.SendFile(ctxT(t), bob, msnp.OutgoingFile{Name: "x", Size: int64(len(data)), Data: bytes.NewReader(data)})
	if !errors.Is(err, msnp.ErrP2PTimeout) {
		t.Fatalf("SendFile to a peer who never answers: %v, want ErrP2PTimeout", err)
	}
	// The undecided offer is declined by bob's client after its timeout.
	o := nextOffer(t, evs[1])
	msnp.SetP2PTimeouts(b, 300*time.Millisecond, 300*time.Millisecond)
	msnp.SetP2PTimeouts(a, time.Minute, time.Minute)
	go func() {
		nextOffer(t, evs[1]) // left alone
	}()
	err = a.SendFile(ctxT(t), bob, msnp.OutgoingFile{Name: "y", Size: int64(len(data)), Data: bytes.NewReader(data)})
	if !errors.Is(err, msnp.ErrP2PDeclined) {
		t.Fatalf("SendFile of an offer left alone: %v, want ErrP2PDeclined", err)
	}
	// The first offer is over: accepting it now fails.
	if err := o.Transfer.Accept(ctxT(t), io.Discard); err == nil {
		t.Fatal("accepting an offer that timed out succeeded")
	}
}
