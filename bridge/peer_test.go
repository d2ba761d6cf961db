package bridge_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

// Issue 11 against msnptest.Peer: an MSN user with its own MSNP2P
// implementation, independent of msnp's, so that the core's transfers are
// checked against a second reading of the protocol. Every test ends by
// checking that the peer saw no protocol violation.

func newPeer(t *testing.T, e *env, passport, password string) *msnptest.Peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := e.srv.NewPeer(ctx, passport, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if v := p.Violations(); len(v) > 0 {
			t.Errorf("the peer saw protocol violations: %q", v)
		}
		_ = p.Close()
	})
	return p
}

func TestPeerDisplayPictureFetchedOnceForTwoLogins(t *testing.T) {
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
	bob := newPeer(t, e, "bob@example.com", "bobpw")
	e.fe.waitForUser(t, e.user, "bob online", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Status == bridge.StatusOnline && p.Contact.Avatar == ""
	})

	pic := testPNG(t, 80, 60, color.NRGBA{R: 200, G: 100, A: 255})
	hash := sha1hex(pic)
	bob.SetDisplayPicture(pic)
	e.fe.waitForUser(t, e.user, "bob's picture for alice", withAvatar("bob@example.com", hash))
	e.fe.waitForUser(t, carol, "bob's picture for carol", withAvatar("bob@example.com", hash))
	if n := e.b.AvatarFetches(); n != 1 {
		t.Errorf("fetched %d times for two logins, want once", n)
	}
	data, mime, err := e.b.Avatar(ctx, strings.ToUpper(hash))
	if err != nil || !bytes.Equal(data, pic) || mime != "image/png" {
		t.Fatalf("Avatar = %d bytes, %q, %v", len(data), mime, err)
	}
	for _, u := range []bridge.UserID{e.user, carol} {
		cs, err := e.b.Contacts(ctx, u)
		if err != nil || len(cs) != 1 || cs[0].Avatar != hash {
			t.Fatalf("Contacts of %s = %+v, %v", u, cs, err)
		}
	}
	// Removing the picture clears the avatar.
	bob.SetDisplayPicture(nil)
	e.fe.waitForUser(t, e.user, "bob without a picture", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Passport == "bob@example.com" && p.Contact.Avatar == ""
	})
}

func TestPeerFileToTheBridge(t *testing.T) {
	e := newMediaEnv(t, 64<<10)
	e.login(t)
	bob := newPeer(t, e, "bob@example.com", "bobpw")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	data := append(testPNG(t, 64, 64, color.NRGBA{B: 200, A: 255}), bytes.Repeat([]byte{7}, 9000)...)
	if err := bob.SendFile(ctx, "alice@example.com", "blue.png", data); err != nil {
		t.Fatalf("the peer's SendFile: %v", err)
	}
	f := e.fe.waitFor(t, "the file", func(ev bridge.Event) bool { _, ok := ev.(bridge.File); return ok }).(bridge.File)
	if f.Sender != "bob@example.com" || f.Name != "blue.png" || f.Size != int64(len(data)) || f.MIME != "image/png" {
		t.Fatalf("File = %+v", f)
	}
	m, err := e.b.OpenMedia(ctx, f.Media)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, err := io.ReadAll(m)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("OpenMedia read %d bytes (%v), want the %d sent", len(got), err, len(data))
	}
	if _, err := e.b.OpenMedia(ctx, bridge.MediaID(strings.Repeat("0", 32))); !errors.Is(err, bridge.ErrNoSuchMedia) {
		t.Fatalf("OpenMedia of an unknown id: %v", err)
	}
}

func TestPeerOversizedFileDeclinedWithNotice(t *testing.T) {
	e := newMediaEnv(t, 2048)
	e.login(t)
	bob := newPeer(t, e, "bob@example.com", "bobpw")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := bob.SendFile(ctx, "alice@example.com", "movie.avi", make([]byte, 3<<20))
	if !errors.Is(err, msnptest.ErrDeclined) {
		t.Fatalf("the peer's SendFile of an oversized file: %v, want declined", err)
	}
	n := e.fe.waitFor(t, "the notice", func(ev bridge.Event) bool { _, ok := ev.(bridge.Notice); return ok }).(bridge.Notice)
	for _, want := range []string{"bob@example.com", "movie.avi", "3.0 MiB", "2.0 KiB"} {
		if !strings.Contains(n.Text, want) {
			t.Errorf("notice %q does not say %q", n.Text, want)
		}
	}
	p, err := e.b.Portal(ctx, e.user, n.Portal)
	if err != nil || p.Contact != "bob@example.com" {
		t.Fatalf("the notice's portal = %+v, %v", p, err)
	}
}

func TestPeerReceivesFileFromTheBridge(t *testing.T) {
	e := newMediaEnv(t, 64<<10)
	e.login(t)
	bob := newPeer(t, e, "bob@example.com", "bobpw")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e.fe.waitFor(t, "bob online", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Status == bridge.StatusOnline
	})
	p, err := e.b.DirectPortal(ctx, e.user, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 30000) // 25 chunks
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := e.b.SendFile(ctx, e.user, p.ID, bridge.OutgoingFile{FrontendID: "$a", Name: "data.bin", Size: int64(len(data)), Data: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	rf, err := bob.WaitFile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rf.From != "alice@example.com" || rf.Name != "data.bin" || !bytes.Equal(rf.Data, data) {
		t.Fatalf("the peer received %q from %s, %d bytes (equal: %v)", rf.Name, rf.From, len(rf.Data), bytes.Equal(rf.Data, data))
	}
	d := e.fe.waitFor(t, "the result", func(ev bridge.Event) bool {
		d, ok := ev.(bridge.DeliveryResult)
		return ok && d.FrontendID == "$a"
	}).(bridge.DeliveryResult)
	if d.Err != nil {
		t.Fatalf("DeliveryResult: %v", d.Err)
	}

	bob.DeclineFiles(true)
	if err := e.b.SendFile(ctx, e.user, p.ID, bridge.OutgoingFile{FrontendID: "$b", Name: "no.txt", Size: 5, Data: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	d = e.fe.waitFor(t, "the declined result", func(ev bridge.Event) bool {
		d, ok := ev.(bridge.DeliveryResult)
		return ok && d.FrontendID == "$b"
	}).(bridge.DeliveryResult)
	if !errors.Is(d.Err, bridge.ErrFileDeclined) {
		t.Fatalf("DeliveryResult of a declined file: %v, want ErrFileDeclined", d.Err)
	}
}

func TestPeerFetchesTheUsersDisplayPicture(t *testing.T) {
	e := newMediaEnv(t, 1024)
	e.login(t)
	bob := newPeer(t, e, "bob@example.com", "bobpw")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.b.SetDisplayPicture(ctx, e.user, testPNG(t, 500, 250, color.NRGBA{R: 255, G: 255, A: 255})); err != nil {
		t.Fatal(err)
	}
	obj, err := bob.WaitMSNObject(ctx, "alice@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	data, err := bob.FetchDisplayPicture(ctx, "alice@example.com", obj)
	if err != nil {
		t.Fatal(err)
	}
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil || format != "png" || img.Bounds() != image.Rect(0, 0, 96, 96) {
		t.Fatalf("the user's picture: %s %v %v", format, img.Bounds(), err)
	}
	// 2:1 scaled to 96×48, centred: transparent above and below.
	if _, _, _, a := img.At(48, 5).RGBA(); a != 0 {
		t.Error("the margin above the picture is not transparent")
	}
	if r, g, _, a := img.At(48, 48).RGBA(); a != 0xffff || r>>8 < 250 || g>>8 < 250 {
		t.Error("the picture's centre lost its colour")
	}

	// It survives a reconnect: the next session (a new msnp client)
	// advertises and serves it again.
	before := len(e.fe.events())
	e.srv.Drop("alice@example.com")
	eventually(t, "the reconnect", func() bool {
		for _, ev := range e.fe.events()[before:] {
			if loginState(bridge.LoginConnected)(ev) {
				return true
			}
		}
		return false
	})
	again, err := bob.WaitMSNObject(ctx, "alice@example.com", "")
	if err != nil || again.SHA1D != obj.SHA1D {
		t.Fatalf("after a reconnect alice advertises %+v (%v), want SHA1D %s", again, err, obj.SHA1D)
	}
	data2, err := bob.FetchDisplayPicture(ctx, "alice@example.com", again)
	if err != nil || !bytes.Equal(data2, data) {
		t.Fatalf("fetching the picture after a reconnect: %d bytes, %v", len(data2), err)
	}
}

// A picture that cannot be fetched (the contact declines: it is not the one
// they have) is not asked for again at each presence change: the contact
// is backed off. Another picture is tried at once.
func TestPeerFailedPictureBackedOff(t *testing.T) {
	e := newMediaEnv(t, 1024)
	e.login(t)
	bob := newPeer(t, e, "bob@example.com", "bobpw")
	e.fe.waitFor(t, "bob online", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Status == bridge.StatusOnline
	})
	// The server tells alice bob shows a picture he does not have.
	bogus := msnp.NewMSNObject("bob@example.com", msnp.MSNObjectDisplayPicture, "0", "", []byte("a picture bob never had"))
	nln := func(status string, obj msnp.MSNObject) {
		line := "NLN " + status + " bob@example.com Bob 1342177312 " + strings.ReplaceAll(url.QueryEscape(obj.String()), "+", "%20") + "\r\n"
		if !e.srv.SendRaw("alice@example.com", []byte(line)) {
			t.Fatal("alice has no NS session")
		}
	}
	nln("NLN", bogus)
	eventually(t, "the failed fetch", func() bool { return e.b.AvatarBackoffs() == 1 })
	if n := e.b.AvatarFetches(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
	nln("BSY", bogus)
	e.fe.waitFor(t, "bob busy", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Status == bridge.StatusBusy && p.Contact.Avatar == ""
	})
	if n := e.b.AvatarFetches(); n != 1 {
		t.Fatalf("%d fetches after a presence change, want still 1 (backed off)", n)
	}
	// His real picture is fetched at once.
	pic := testPNG(t, 20, 20, color.NRGBA{G: 90, A: 255})
	bob.SetDisplayPicture(pic)
	e.fe.waitFor(t, "bob's real picture", withAvatar("bob@example.com", sha1hex(pic)))
	if n := e.b.AvatarFetches(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

// A failed fetch is retried after its backoff by itself: a contact who
// does not change status still gets their picture shown.
func TestPeerFailedPictureRetried(t *testing.T) {
	e := newMediaEnv(t, 1024)
	e.b.SetAvatarBackoff(300 * time.Millisecond)
	e.login(t)
	bob := newPeer(t, e, "bob@example.com", "bobpw")
	e.fe.waitFor(t, "bob online", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Status == bridge.StatusOnline
	})
	pic := testPNG(t, 24, 24, color.NRGBA{R: 90, A: 255})
	obj := msnp.NewMSNObject("bob@example.com", msnp.MSNObjectDisplayPicture, "0", "", pic)
	// Alice hears of the picture before bob has it: the fetch fails.
	line := "NLN NLN bob@example.com Bob 1342177312 " + strings.ReplaceAll(url.QueryEscape(obj.String()), "+", "%20") + "\r\n"
	if !e.srv.SendRaw("alice@example.com", []byte(line)) {
		t.Fatal("alice has no NS session")
	}
	eventually(t, "the failed fetch", func() bool { return e.b.AvatarBackoffs() == 1 })
	// Bob takes that picture; his CHG comes while alice backs off, and
	// the retry after the backoff fetches it.
	bob.SetDisplayPicture(pic)
	e.fe.waitFor(t, "bob's picture", withAvatar("bob@example.com", sha1hex(pic)))
	if n := e.b.AvatarFetches(); n != 2 {
		t.Fatalf("%d fetches, want 2 (the failure and the retry)", n)
	}
	if n := e.b.AvatarBackoffs(); n != 0 {
		t.Fatalf("%d contacts still backed off after the picture arrived", n)
	}
}
