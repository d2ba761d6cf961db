package msnp_test

import (
	"bytes"
	"context"
	"encoding/base64"
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

// readHook calls hook once n bytes were read from r.
type readHook struct {
	r    io.Reader
	n    int
	hook func()
}

func (h *readHook) Read(p []byte) (int, error) {
	k, err := h.r.Read(p)
	h.n -= k
	if h.n <= 0 && h.hook != nil {
		h.hook()
		h.hook = nil
	}
	return k, err
}

// TestP2PFileDoesNotStarveText: text sent during a big transfer reaches the
// contact between two data packets, long before the file's end.
func TestP2PFileDoesNotStarveText(t *testing.T) {
	s, cs, evs := chatSetup(t, msnp.MSNP12, alice, bob)
	a := cs[0]
	data := testData(300<<10, 21)
	go func() {
		o := nextOffer(t, evs[1])
		o.Transfer.Accept(ctxT(t), io.Discard)
	}()
	textErr := make(chan error, 1)
	src := &readHook{r: bytes.NewReader(data), n: 30 << 10, hook: func() {
		go func() { textErr <- a.Chat(bob).SendText(ctxT(t), "still here", msnp.DefaultTextFormat()) }()
	}}
	if err := a.SendFile(ctxT(t), bob, msnp.OutgoingFile{Name: "big", Size: int64(len(data)), Data: src}); err != nil {
		t.Fatalf("SendFile: %v", err)
	}
	if err := <-textErr; err != nil {
		t.Fatalf("SendText during the transfer: %v", err)
	}
	textAt, lastData := -1, -1
	for i, d := range s.Delivered(bob) {
		m, err := msnp.ParseMessage(d.Payload)
		if err != nil {
			t.Fatal(err)
		}
		switch m.ContentType() {
		case msnp.ContentTypeText:
			textAt = i
		case msnp.ContentTypeP2P:
			if h, _, _, err := msnp.ParseP2P(m.Body); err == nil && h.Flags == msnp.P2PFlagFileData {
				lastData = i
			}
		}
	}
	// 30 KB of 300 were read when the text was sent: about 225 data
	// packets were still to go.
	if textAt < 0 || lastData-textAt < 100 {
		t.Fatalf("text relayed at %d, the last data packet at %d: the text waited for the file", textAt, lastData)
	}
}

// TestP2PDisplayPictureInCHG: the object rides on every CHG, also after a
// reconnect of the same Client, and clearing it reaches contacts.
func TestP2PDisplayPictureInCHG(t *testing.T) {
	forVersions(t, p2pVersions, func(t *testing.T, p msnp.Protocol) {
		_, cs, evs := chatSetup(t, p, alice, bob)
		a := cs[0]
		obj, err := a.SetDisplayPicture(ctxT(t), testData(300, 31))
		if err != nil {
			t.Fatal(err)
		}
		if got := contactObject(t, evs[1], alice); got.SHA1D != obj.SHA1D || got.SHA1C != obj.SHA1C || got.Friendly != "" || got.Location != "0" {
			t.Fatalf("bob sees %+v, want %+v", got, obj)
		}
		if err := a.SetStatus(ctxT(t), msnp.StatusBusy); err != nil {
			t.Fatal(err)
		}
		busy := evs[1].next(t, "alice busy", func(e msnp.Event) bool {
			cp, ok := e.(msnp.ContactPresence)
			return ok && cp.Passport == alice && cp.Status == msnp.StatusBusy
		}).(msnp.ContactPresence)
		if o, _ := msnp.ParseMSNObject(busy.MSNObject); o.SHA1D != obj.SHA1D {
			t.Fatalf("CHG BSY lost the object: %q", busy.MSNObject)
		}
		a.Close()
		evs[1].next(t, "alice offline", func(e msnp.Event) bool {
			o, ok := e.(msnp.ContactOffline)
			return ok && o.Passport == alice
		})
		if err := a.Connect(ctxT(t)); err != nil {
			t.Fatalf("reconnect: %v", err)
		}
		if err := a.SetStatus(ctxT(t), msnp.StatusOnline); err != nil {
			t.Fatal(err)
		}
		if got := contactObject(t, evs[1], alice); got.SHA1D != obj.SHA1D {
			t.Fatalf("after the reconnect bob sees %+v", got)
		}
		if _, err := a.SetDisplayPicture(ctxT(t), nil); err != nil {
			t.Fatal(err)
		}
		evs[1].next(t, "alice without a picture", func(e msnp.Event) bool {
			cp, ok := e.(msnp.ContactPresence)
			return ok && cp.Passport == alice && cp.MSNObject == ""
		})
		if _, ok := a.DisplayPicture(); ok {
			t.Fatal("DisplayPicture still set after clearing it")
		}
	})
}

func invite(from, to, euf, app, ctxt string) *msnp.SLPMessage {
	return &msnp.SLPMessage{Method: "INVITE", Target: to, To: to, From: from,
		Branch: "{11111111-2222-3333-4444-555555555555}", CallID: "{66666666-7777-8888-9999-000000000000}",
		ContentType: msnp.SLPSessionRequest, Body: []msnp.MIMEHeader{
			{Name: "EUF-GUID", Value: euf}, {Name: "SessionID", Value: "4242"},
			{Name: "AppID", Value: app}, {Name: "Context", Value: ctxt}}}
}

// TestP2PUnsupportedAndChunkedSLP: an application we do not speak
// (webcam) is declined and reported; an INVITE spanning several packets
// (a file context with a preview) is reassembled.
func TestP2PUnsupportedAndChunkedSLP(t *testing.T) {
	_, cs, evs := chatSetup(t, msnp.MSNP18, alice, bob)
	b := cs[1]
	msnp.SendSLP(b, alice, invite(bob, alice, "{4BD96FC0-AB17-4425-A14A-439185962DC8}", "4", "e30="))
	u := evs[0].next(t, "ConversationUnsupported", is[msnp.ConversationUnsupported]).(msnp.ConversationUnsupported)
	if u.From != bob || u.ContentType != msnp.ContentTypeP2P {
		t.Fatalf("unsupported %+v", u)
	}
	// 574 bytes of context and a 2 KB preview: about 3.5 KB of base64,
	// three packets.
	ctx := append(msnp.FileContext("pic.png", 1234), testData(2000, 41)...)
	m := invite(bob, alice, msnp.EUFGUIDFile, "2", base64.StdEncoding.EncodeToString(ctx))
	if len(m.Bytes()) <= 2*1202 {
		t.Fatalf("the INVITE is only %d bytes", len(m.Bytes()))
	}
	msnp.SendSLP(b, alice, m)
	o := nextOffer(t, evs[0])
	if o.Name != "pic.png" || o.Size != 1234 || o.From != bob {
		t.Fatalf("offer %+v", o)
	}
	o.Transfer.Decline()
}
