package bridge_test

import (
	"context"
	"image/color"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
	"github.com/msnbridge/msnbridge/store"
)

// restartSignedOut stops the bridge with the user's login signed out on
// purpose and starts a new one on the same database, with a new frontend:
// the login is kept but does not connect, so nothing from MSN (no presence)
// reaches the new core until the test signs it in again.
func (e *env) restartSignedOut(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := e.b.SetStatus(ctx, e.user, bridge.StatusOffline); err != nil {
		t.Fatal(err)
	}
	// A delivered event leaves the queue just after the frontend took it;
	// one still there would be delivered again after the restart, and
	// look like news to the new frontend.
	eventually(t, "the queue delivered", func() bool {
		n, err := e.st.Queue.Len(ctx, store.UserID{Frontend: e.user.Frontend, ID: e.user.ID})
		return err == nil && n == 0
	})
	e.stop()
	e.fe = newFake("matrix")
	e.start(t)
}

// signIn signs the kept login back in and waits until it is connected.
func (e *env) signIn(t *testing.T) {
	t.Helper()
	if err := e.b.SetStatus(context.Background(), e.user, bridge.StatusOnline); err != nil {
		t.Fatal(err)
	}
	e.fe.waitFor(t, "connected", loginState(bridge.LoginConnected))
}

// contactAvatar is what Contacts says of one contact's picture.
func (e *env) contactAvatar(t *testing.T, passport string) string {
	t.Helper()
	cs, err := e.b.Contacts(context.Background(), e.user)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Passport == passport {
			return c.Avatar
		}
	}
	t.Fatalf("Contacts = %+v: no %s", cs, passport)
	return ""
}

// waitAfter is waitFor for the events after the first mark.
func (f *fakeFrontend) waitAfter(t *testing.T, mark int, what string, match func(bridge.Event) bool) bridge.Event {
	t.Helper()
	n := 0
	return f.waitFor(t, what, func(ev bridge.Event) bool {
		n++
		return n > mark && match(ev)
	})
}

// closePeer signs a peer out once it has finished serving its picture.
func closePeer(t *testing.T, p *msnptest.Peer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// noPresenceOf fails if the frontend was told anything of passport's
// presence.
func (e *env) noPresenceOf(t *testing.T, passport string) {
	t.Helper()
	for _, ev := range e.fe.events() {
		if p, ok := ev.(bridge.Presence); ok && p.Contact.Passport == passport {
			t.Fatalf("a presence of %s reached the restarted core: %+v", passport, p)
		}
	}
}

// A contact's picture is stored with the contact: a core restarted on the
// same database reports it in Contacts before any presence of theirs (and
// without fetching it again), and a picture the contact took away stays
// away after a restart.
func TestContactPictureSurvivesRestart(t *testing.T) {
	e := newMediaEnv(t, 1<<20)
	e.login(t)
	ctx := context.Background()
	const bobID = "bob@example.com"
	bob := newPeer(t, e, bobID, "bobpw")
	pic := testPNG(t, 40, 40, color.NRGBA{B: 200, A: 255})
	hash := sha1hex(pic)
	bob.SetDisplayPicture(pic)
	e.fe.waitFor(t, "bob's picture", withAvatar(bobID, hash))
	// Offline, bob is still shown with his last picture.
	closePeer(t, bob)
	off := e.fe.waitFor(t, "bob offline", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Passport == bobID && p.Contact.Status == bridge.StatusOffline
	}).(bridge.Presence)
	if off.Contact.Avatar != hash {
		t.Errorf("bob offline has Avatar %q, want his last picture %s", off.Contact.Avatar, hash)
	}

	e.restartSignedOut(t)
	// From the store: the login is not connected.
	if got := e.contactAvatar(t, bobID); got != hash {
		t.Fatalf("after a restart, not connected: bob's Avatar = %q, want %s", got, hash)
	}
	// Connected, bob offline: MSN says nothing of him.
	e.signIn(t)
	if got := e.contactAvatar(t, bobID); got != hash {
		t.Fatalf("after a restart, connected: bob's Avatar = %q, want %s", got, hash)
	}
	e.noPresenceOf(t, bobID)
	if data, _, err := e.b.Avatar(ctx, hash); err != nil || len(data) != len(pic) {
		t.Fatalf("Avatar(%s) after a restart = %d bytes, %v", hash, len(data), err)
	}

	// Bob comes back with the same picture (cached: no fetch), then takes
	// it away.
	bob = newPeer(t, e, bobID, "bobpw")
	bob.SetDisplayPicture(pic)
	e.fe.waitFor(t, "bob back with his picture", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Passport == bobID && p.Contact.Status == bridge.StatusOnline && p.Contact.Avatar == hash
	})
	if n := e.b.AvatarFetches(); n != 0 {
		t.Errorf("the restarted core fetched %d pictures; bob's was cached", n)
	}
	// His sign-in (before he showed the picture) was a presence without
	// one too: only what comes after counts.
	mark := len(e.fe.events())
	bob.SetDisplayPicture(nil)
	e.fe.waitAfter(t, mark, "bob without a picture", func(ev bridge.Event) bool {
		p, ok := ev.(bridge.Presence)
		return ok && p.Contact.Passport == bobID && p.Contact.Status == bridge.StatusOnline && p.Contact.Avatar == ""
	})
	if got := e.contactAvatar(t, bobID); got != "" {
		t.Fatalf("bob took his picture away, Contacts says %q", got)
	}

	e.restartSignedOut(t)
	if got := e.contactAvatar(t, bobID); got != "" {
		t.Fatalf("after a restart, not connected: bob's cleared picture is back (%q)", got)
	}
	// Bob is still online without a picture: his presence, the first
	// thing the new session hears of him, says so too.
	e.signIn(t)
	if got := e.contactAvatar(t, bobID); got != "" {
		t.Fatalf("after a restart, connected: bob's cleared picture is back (%q)", got)
	}
}

// A contact who signs in showing a picture the bridge has not fetched yet
// has no Avatar until it is fetched, not an older picture; once fetched,
// a restart reports the new one.
func TestNewContactPictureReplacesTheStoredOne(t *testing.T) {
	e := newMediaEnv(t, 1<<20)
	e.login(t)
	const bobID = "bob@example.com"
	bob := newPeer(t, e, bobID, "bobpw")
	old := testPNG(t, 40, 40, color.NRGBA{R: 200, A: 255})
	bob.SetDisplayPicture(old)
	e.fe.waitFor(t, "bob's first picture", withAvatar(bobID, sha1hex(old)))
	closePeer(t, bob)
	e.restartSignedOut(t)
	e.signIn(t)

	bob = newPeer(t, e, bobID, "bobpw")
	pic := testPNG(t, 40, 40, color.NRGBA{G: 200, A: 255})
	bob.SetDisplayPicture(pic)
	e.fe.waitFor(t, "bob's new picture", withAvatar(bobID, sha1hex(pic)))
	for _, ev := range e.fe.events() {
		if p, ok := ev.(bridge.Presence); ok && p.Contact.Passport == bobID && p.Contact.Avatar == sha1hex(old) &&
			p.Contact.Status != bridge.StatusOffline {
			t.Fatalf("bob online with a new picture was announced with the old one: %+v", p)
		}
	}
	closePeer(t, bob)
	e.restartSignedOut(t)
	if got := e.contactAvatar(t, bobID); got != sha1hex(pic) {
		t.Fatalf("after a restart bob's Avatar = %q, want the new picture %s", got, sha1hex(pic))
	}
}
