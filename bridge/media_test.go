package bridge_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/store"
)

// Issue 11 against msnp's own P2P on the MSN side.

// waitForUser is waitFor for the events of one user.
func (f *fakeFrontend) waitForUser(t *testing.T, user bridge.UserID, what string, match func(bridge.Event) bool) bridge.Event {
	t.Helper()
	deadline := time.After(15 * time.Second)
	seen := 0
	for {
		f.mu.Lock()
		evs, who := append([]bridge.Event(nil), f.evs...), append([]bridge.UserID(nil), f.who...)
		f.mu.Unlock()
		for i := seen; i < len(evs); i++ {
			if who[i] == user && match(evs[i]) {
				return evs[i]
			}
		}
		seen = len(evs)
		select {
		case <-f.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; delivered: %+v", what, evs)
		}
	}
}

// newMediaEnv is newEnv with files (up to maxFile bytes) and display
// pictures on.
func newMediaEnv(t *testing.T, maxFile int64) *env {
	t.Helper()
	srv := newEnv(t)
	srv.stop()
	srv.files = config.Files{Dir: filepath.Join(t.TempDir(), "media"), MaxSize: config.ByteSize(maxFile), Retention: time.Hour}
	srv.pictures = config.DisplayPictures{Enabled: true, MaxSize: 256 << 10}
	srv.start(t)
	return srv
}

func testPNG(t *testing.T, w, h int, c color.Color) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sha1hex(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }

func withAvatar(passport, hash string) func(bridge.Event) bool {
	return func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Passport == passport && p.Contact.Avatar == hash
	}
}

// A contact's display picture is fetched once for two logins that both
// have the contact, reaches both as Contact.Avatar, and Core.Avatar
// serves it.
func TestContactDisplayPictureFetchedOnce(t *testing.T) {
	e := newMediaEnv(t, 1<<20)
	e.srv.AddAccount("carol@example.com", "carolpw", "Carol")
	e.srv.AddContact("carol@example.com", "bob@example.com")
	carol := bridge.UserID{Frontend: "matrix", ID: "@carol:example.org"}
	e.login(t)
	ctx := context.Background()
	if err := e.b.Login(ctx, carol, "carol@example.com", "carolpw"); err != nil {
		t.Fatal(err)
	}
	e.fe.waitForUser(t, carol, "carol connected", loginState(bridge.LoginConnected))

	pic := testPNG(t, 96, 96, color.NRGBA{R: 10, G: 200, B: 10, A: 255})
	hash := sha1hex(pic)
	bob, err := msnp.New(e.peerConfig(), "bob@example.com", "bobpw", func(msnp.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	if _, err := bob.SetDisplayPicture(ctx, pic); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := bob.Connect(cctx); err != nil {
		t.Fatal(err)
	}
	if err := bob.SetStatus(cctx, msnp.StatusOnline); err != nil {
		t.Fatal(err)
	}
	e.fe.waitForUser(t, e.user, "bob's picture for alice", withAvatar("bob@example.com", hash))
	e.fe.waitForUser(t, carol, "bob's picture for carol", withAvatar("bob@example.com", hash))
	if n := e.b.AvatarFetches(); n != 1 {
		t.Errorf("the picture was fetched %d times for two logins, want once", n)
	}
	data, mime, err := e.b.Avatar(ctx, hash)
	if err != nil || !bytes.Equal(data, pic) || mime != "image/png" {
		t.Fatalf("Avatar = %d bytes, %q, %v", len(data), mime, err)
	}
	if _, _, err := e.b.Avatar(ctx, sha1hex([]byte("nothing"))); !errors.Is(err, bridge.ErrNoSuchMedia) {
		t.Fatalf("Avatar of an unknown hash: %v", err)
	}
	cs, err := e.b.Contacts(ctx, e.user)
	if err != nil || len(cs) != 1 || cs[0].Avatar != hash {
		t.Fatalf("Contacts = %+v, %v", cs, err)
	}

	// A status change shows the cached picture at once, without a fetch.
	if err := bob.SetStatus(ctx, msnp.StatusBusy); err != nil {
		t.Fatal(err)
	}
	e.fe.waitForUser(t, e.user, "bob busy with his picture", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Status == bridge.StatusBusy && p.Contact.Avatar == hash
	})
	if n := e.b.AvatarFetches(); n != 1 {
		t.Errorf("%d fetches after a status change, want still 1", n)
	}

	// A new picture replaces it.
	pic2 := testPNG(t, 50, 50, color.NRGBA{B: 255, A: 255})
	if _, err := bob.SetDisplayPicture(ctx, pic2); err != nil {
		t.Fatal(err)
	}
	e.fe.waitForUser(t, e.user, "bob's new picture", withAvatar("bob@example.com", sha1hex(pic2)))
}

// fileReceiver is an MSN client that accepts (or declines) every file
// offered to it.
type fileReceiver struct {
	decline bool
	mu      sync.Mutex
	got     map[string][]byte
	err     error
	done    chan struct{}
}

func (r *fileReceiver) handle(ev msnp.Event) {
	o, ok := ev.(msnp.FileOffer)
	if !ok {
		return
	}
	if r.decline {
		_ = o.Transfer.Decline()
		return
	}
	go func() {
		var b bytes.Buffer
		err := o.Transfer.Accept(context.Background(), &b)
		r.mu.Lock()
		if r.got == nil {
			r.got = map[string][]byte{}
		}
		r.got[o.Name], r.err = b.Bytes(), err
		r.mu.Unlock()
		r.done <- struct{}{}
	}()
}

func TestFileFromMSN(t *testing.T) {
	e := newMediaEnv(t, 64<<10)
	e.login(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bob := e.bob(t, nil)
	if err := bob.SetStatus(ctx, msnp.StatusOnline); err != nil {
		t.Fatal(err)
	}
	data := testPNG(t, 120, 80, color.NRGBA{R: 255, A: 255})
	data = append(data, bytes.Repeat([]byte{0}, 5000)...) // several chunks
	if err := bob.SendFile(ctx, "alice@example.com", msnp.OutgoingFile{Name: "red.png", Size: int64(len(data)), Data: bytes.NewReader(data)}); err != nil {
		t.Fatalf("bob's SendFile: %v", err)
	}
	f := e.fe.waitFor(t, "the file", func(ev bridge.Event) bool { _, ok := ev.(bridge.File); return ok }).(bridge.File)
	if f.Sender != "bob@example.com" || f.Name != "red.png" || f.Size != int64(len(data)) || f.MIME != "image/png" || f.MSNID == "" {
		t.Fatalf("File = %+v", f)
	}
	p, err := e.b.Portal(ctx, e.user, f.Portal)
	if err != nil || p.Contact != "bob@example.com" {
		t.Fatalf("the file's portal = %+v, %v", p, err)
	}
	m, err := e.b.OpenMedia(ctx, f.Media)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, err := io.ReadAll(m)
	if err != nil || !bytes.Equal(got, data) || m.Size != int64(len(data)) || m.Name != "red.png" || m.MIME != "image/png" {
		t.Fatalf("OpenMedia: %d bytes (%v), %+v", len(got), err, m)
	}
}

func TestOversizedFileFromMSNDeclined(t *testing.T) {
	e := newMediaEnv(t, 1024)
	e.login(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bob := e.bob(t, nil)
	if err := bob.SetStatus(ctx, msnp.StatusOnline); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 4096)
	err := bob.SendFile(ctx, "alice@example.com", msnp.OutgoingFile{Name: "big.bin", Size: int64(len(data)), Data: bytes.NewReader(data)})
	if !errors.Is(err, msnp.ErrP2PDeclined) {
		t.Fatalf("bob's SendFile of an oversized file: %v, want declined", err)
	}
	n := e.fe.waitFor(t, "a notice", func(ev bridge.Event) bool { _, ok := ev.(bridge.Notice); return ok }).(bridge.Notice)
	for _, want := range []string{"Bob", "bob@example.com", "big.bin", "4.0 KiB", "1.0 KiB", "declined"} {
		if !strings.Contains(n.Text, want) {
			t.Errorf("notice %q does not say %q", n.Text, want)
		}
	}
	if n.Portal == "" {
		t.Error("the notice is not in bob's portal")
	}
	for _, ev := range e.fe.events() {
		if _, ok := ev.(bridge.File); ok {
			t.Fatal("an oversized file was delivered")
		}
	}
}

func TestSendFileToMSN(t *testing.T) {
	e := newMediaEnv(t, 64<<10)
	e.login(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rcv := &fileReceiver{done: make(chan struct{}, 4)}
	bob := e.bob(t, rcv.handle)
	if err := bob.SetStatus(ctx, msnp.StatusOnline); err != nil {
		t.Fatal(err)
	}
	e.fe.waitFor(t, "bob online", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Status == bridge.StatusOnline
	})
	p, err := e.b.DirectPortal(ctx, e.user, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 700) // 11200 bytes: ten chunks
	err = e.b.SendFile(ctx, e.user, p.ID, bridge.OutgoingFile{FrontendID: "$file1", Name: "notes.txt", Size: int64(len(data)), Data: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	d := e.fe.waitFor(t, "the delivery result", func(ev bridge.Event) bool {
		d, ok := ev.(bridge.DeliveryResult)
		return ok && d.FrontendID == "$file1"
	}).(bridge.DeliveryResult)
	if d.Err != nil {
		t.Fatalf("DeliveryResult: %v", d.Err)
	}
	select {
	case <-rcv.done:
	case <-ctx.Done():
		t.Fatal("bob never finished receiving")
	}
	rcv.mu.Lock()
	got, rerr := rcv.got["notes.txt"], rcv.err
	rcv.mu.Unlock()
	if rerr != nil || !bytes.Equal(got, data) {
		t.Fatalf("bob received %d bytes (%v), want %d", len(got), rerr, len(data))
	}

	// A retried transaction is not sent again.
	if err := e.b.SendFile(ctx, e.user, p.ID, bridge.OutgoingFile{FrontendID: "$file1", Name: "notes.txt", Size: int64(len(data)), Data: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}

	// A declining contact.
	rcv.decline = true
	if err := e.b.SendFile(ctx, e.user, p.ID, bridge.OutgoingFile{FrontendID: "$file2", Name: "no.txt", Size: 3, Data: strings.NewReader("abc")}); err != nil {
		t.Fatal(err)
	}
	d = e.fe.waitFor(t, "the declined result", func(ev bridge.Event) bool {
		d, ok := ev.(bridge.DeliveryResult)
		return ok && d.FrontendID == "$file2"
	}).(bridge.DeliveryResult)
	if !errors.Is(d.Err, bridge.ErrFileDeclined) {
		t.Fatalf("declined file: DeliveryResult %v, want ErrFileDeclined", d.Err)
	}
	for _, ev := range e.fe.events() {
		if d, ok := ev.(bridge.DeliveryResult); ok && d.FrontendID == "$file1" && d != (bridge.DeliveryResult{Portal: p.ID, FrontendID: "$file1"}) {
			t.Fatalf("unexpected result %+v", d)
		}
	}
}

func TestSendFileRefusals(t *testing.T) {
	e := newMediaEnv(t, 1024)
	e.login(t)
	ctx := context.Background()
	p, err := e.b.DirectPortal(ctx, e.user, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	big := bridge.OutgoingFile{Name: "big.bin", Size: 2048, Data: bytes.NewReader(make([]byte, 2048))}
	if err := e.b.SendFile(ctx, e.user, p.ID, big); err == nil || !strings.Contains(err.Error(), "1.0 KiB") {
		t.Fatalf("oversized file: %v", err)
	}
	lying := bridge.OutgoingFile{Name: "a", Size: 10, Data: bytes.NewReader(make([]byte, 20))}
	if err := e.b.SendFile(ctx, e.user, p.ID, lying); err == nil {
		t.Fatal("a file longer than its Size was accepted")
	}
	short := bridge.OutgoingFile{Name: "a", Size: 10, Data: bytes.NewReader(make([]byte, 5))}
	if err := e.b.SendFile(ctx, e.user, p.ID, short); err == nil {
		t.Fatal("a file shorter than its Size was accepted")
	}
	unknown := bridge.OutgoingFile{Name: "a", Data: bytes.NewReader(make([]byte, 2000))}
	if err := e.b.SendFile(ctx, e.user, p.ID, unknown); err == nil || !strings.Contains(err.Error(), "larger than the 1.0 KiB") {
		t.Fatalf("a file of unknown size over the limit: %v", err)
	}
	// MSN transfers are one-to-one: a group portal refuses files.
	rec, err := e.st.Logins.GetByUser(ctx, store.UserID{Frontend: e.user.Frontend, ID: e.user.ID})
	if err != nil {
		t.Fatal(err)
	}
	group, err := e.st.Portals.CreateGroup(ctx, rec.ID, "", []string{"bob@example.com", "carol@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	ok := bridge.OutgoingFile{Name: "a", Size: 3, Data: strings.NewReader("abc")}
	if err := e.b.SendFile(ctx, e.user, bridge.PortalID(group.ID), ok); err == nil || !strings.Contains(err.Error(), "one contact") {
		t.Fatalf("a file to a group portal: %v", err)
	}
	if err := e.b.SendFile(ctx, bridge.UserID{Frontend: "matrix", ID: "@mallory:evil.example"}, p.ID, short); err == nil {
		t.Fatal("a user without permission sent a file")
	}
}

// The user's picture becomes a 96×96 PNG display picture that contacts
// can fetch, applied at once and again at every sign-in.
func TestSetDisplayPicture(t *testing.T) {
	e := newMediaEnv(t, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Before the login: kept and applied at sign-in.
	var src bytes.Buffer
	img := image.NewNRGBA(image.Rect(0, 0, 400, 200))
	for i := range img.Pix {
		img.Pix[i] = 0xc0
	}
	if err := jpeg.Encode(&src, img, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.b.SetDisplayPicture(ctx, e.user, src.Bytes()); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	bob := e.bob(t, rec.handle)
	if err := bob.SetStatus(ctx, msnp.StatusOnline); err != nil {
		t.Fatal(err)
	}
	e.login(t)
	aliceObj := func() msnp.MSNObject {
		var obj msnp.MSNObject
		eventually(t, "alice's msnobj", func() bool {
			c, ok := bob.Contact("alice@example.com")
			if !ok || c.MSNObject == "" {
				return false
			}
			o, err := msnp.ParseMSNObject(c.MSNObject)
			obj = o
			return err == nil && o.Type == msnp.MSNObjectDisplayPicture
		})
		return obj
	}
	fetch := func(obj msnp.MSNObject) image.Image {
		var b bytes.Buffer
		if err := bob.FetchMSNObject(ctx, "alice@example.com", obj, &b, 1<<20); err != nil {
			t.Fatalf("fetching alice's picture: %v", err)
		}
		got, format, err := image.Decode(&b)
		if err != nil || format != "png" || got.Bounds() != image.Rect(0, 0, 96, 96) {
			t.Fatalf("alice's picture: %v %v %v", format, got.Bounds(), err)
		}
		return got
	}
	first := aliceObj()
	got := fetch(first)
	if _, _, _, a := got.At(48, 10).RGBA(); a != 0 {
		t.Error("a 2:1 picture's top margin is not transparent")
	}
	if _, _, _, a := got.At(48, 48).RGBA(); a != 0xffff {
		t.Error("the picture's centre is not opaque")
	}

	// While connected: applied at once.
	if err := e.b.SetDisplayPicture(ctx, e.user, testPNG(t, 30, 30, color.NRGBA{G: 255, A: 255})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice's new msnobj", func() bool { o := aliceObj(); return o.SHA1D != first.SHA1D })
	fetch(aliceObj())

	if err := e.b.SetDisplayPicture(ctx, e.user, []byte("not an image")); err == nil {
		t.Fatal("garbage accepted as a display picture")
	}
}

func TestFrontendValues(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if v, err := e.b.FrontendValue(ctx, "matrix", "avatar/abc"); err != nil || v != "" {
		t.Fatalf("unset value = %q, %v", v, err)
	}
	if err := e.b.SetFrontendValue(ctx, "matrix", "avatar/abc", "mxc://x/y"); err != nil {
		t.Fatal(err)
	}
	if v, err := e.b.FrontendValue(ctx, "matrix", "avatar/abc"); err != nil || v != "mxc://x/y" {
		t.Fatalf("value = %q, %v", v, err)
	}
	// Namespaced by frontend.
	if v, err := e.b.FrontendValue(ctx, "xmpp", "avatar/abc"); err != nil || v != "" {
		t.Fatalf("another frontend's value = %q, %v", v, err)
	}
	if err := e.b.SetFrontendValue(ctx, "matrix", "avatar/abc", ""); err != nil {
		t.Fatal(err)
	}
	if v, err := e.b.FrontendValue(ctx, "matrix", "avatar/abc"); err != nil || v != "" {
		t.Fatalf("deleted value = %q, %v", v, err)
	}
	// Across a restart.
	if err := e.b.SetFrontendValue(ctx, "xmpp", "k", "v"); err != nil {
		t.Fatal(err)
	}
	e.stop()
	e.start(t)
	if v, err := e.b.FrontendValue(ctx, "xmpp", "k"); err != nil || v != "v" {
		t.Fatalf("after a restart = %q, %v", v, err)
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{5: "5 bytes", 2048: "2.0 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := bridge.HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q", n, got)
		}
	}
}
