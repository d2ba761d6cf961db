//go:build integration

package matrix

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/matrix/matrixtest"
)

// mediaIntegration runs inside TestDendriteIntegration (one appservice per
// Dendrite: a second one on the same port could meet Dendrite's backoff).
// portal is bob's direct portal, already joined by user; group a group
// portal user joined.
func mediaIntegration(t *testing.T, ctx context.Context, f *Frontend, core *fakeCore, user *matrixtest.User,
	bridgeUser bridge.UserID, mgmt id.RoomID, portal bridge.Portal, group bridge.Portal) {
	portalRoom := id.RoomID(portal.Room)
	ghost := f.GhostID("bob@example.com")
	picture := testPNG(t, 40, 30)
	download := func(t *testing.T, uri id.ContentURIString) []byte {
		t.Helper()
		mxc, err := uri.Parse()
		if err != nil {
			t.Fatalf("bad mxc %q: %v", uri, err)
		}
		data, err := user.DownloadBytes(ctx, mxc)
		if err != nil {
			t.Fatalf("download %s: %v", mxc, err)
		}
		return data
	}

	t.Run("a display picture becomes the ghost's avatar, uploaded once", func(t *testing.T) {
		core.mu.Lock()
		core.avatars["hash1"] = fakeMedia{MIME: "image/png", Data: picture}
		core.mu.Unlock()
		bob := bridge.Contact{Passport: "bob@example.com", FriendlyName: "Bob", Status: bridge.StatusOnline, Avatar: "hash1"}
		if _, err := f.Deliver(ctx, bridgeUser, bridge.Presence{Contact: bob}); err != nil {
			t.Fatal(err)
		}
		avatar, err := user.GetAvatarURL(ctx, ghost)
		if err != nil || avatar.IsEmpty() {
			t.Fatalf("ghost avatar %v (%v)", avatar, err)
		}
		if got := download(t, avatar.CUString()); !bytes.Equal(got, picture) {
			t.Fatalf("ghost avatar holds %d bytes, not the picture", len(got))
		}
		stored, _ := core.FrontendValue(ctx, Kind, "avatar/hash1")
		if stored != avatar.String() {
			t.Fatalf("stored mxc %q, ghost has %s", stored, avatar)
		}
		// The same picture again (another presence, another contact) is
		// neither read nor uploaded again.
		bob.Status = bridge.StatusAway
		if _, err := f.Deliver(ctx, bridgeUser, bridge.Presence{Contact: bob}); err != nil {
			t.Fatal(err)
		}
		core.mu.Lock()
		core.contacts = append(core.contacts, bridge.Contact{Passport: "erin@example.com", FriendlyName: "Erin", Status: bridge.StatusOnline, OnContactList: true, Avatar: "hash1"})
		core.mu.Unlock()
		erinPortal, err := core.DirectPortal(ctx, bridgeUser, "erin@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Deliver(ctx, bridgeUser, bridge.Message{Portal: erinPortal.ID, Sender: "erin@example.com", Text: bridge.Text{Body: "hi from erin"}}); err != nil {
			t.Fatal(err)
		}
		erinAvatar, err := user.GetAvatarURL(ctx, f.GhostID("erin@example.com"))
		if err != nil || erinAvatar != avatar {
			t.Fatalf("erin's ghost (set up from the contact list) has avatar %v (%v), want %v", erinAvatar, err, avatar)
		}
		if n := core.count("Avatar hash1"); n != 1 {
			t.Fatalf("the picture was read from the cache %d times, want once", n)
		}
		// No picture any more: the avatar goes.
		bob.Avatar = ""
		if _, err := f.Deliver(ctx, bridgeUser, bridge.Presence{Contact: bob}); err != nil {
			t.Fatal(err)
		}
		if avatar, err := user.GetAvatarURL(ctx, ghost); err != nil || !avatar.IsEmpty() {
			t.Fatalf("ghost avatar after the picture went: %v (%v)", avatar, err)
		}
	})

	t.Run("an MSN file arrives as m.image with its bytes", func(t *testing.T) {
		core.mu.Lock()
		core.media["media-1"] = fakeMedia{Name: "pic.png", MIME: "image/png", Data: picture}
		core.media["media-2"] = fakeMedia{Name: "notes.txt", MIME: "text/plain", Data: []byte("some notes\n")}
		core.mu.Unlock()
		sentAt := time.Date(2024, 5, 1, 9, 30, 0, 0, time.UTC)
		evID, err := f.Deliver(ctx, bridgeUser, bridge.File{Portal: portal.ID, Sender: "bob@example.com", MSNID: "file-1",
			Name: "pic.png", Size: int64(len(picture)), MIME: "image/png", Media: "media-1", Time: sentAt})
		if err != nil {
			t.Fatal(err)
		}
		got := user.WaitFor(t, "the image", func(e *event.Event) bool { return e.ID == id.EventID(evID) })
		c := got.Content.AsMessage()
		if got.Sender != ghost || c.MsgType != event.MsgImage || c.Body != "pic.png" || c.Info == nil ||
			c.Info.MimeType != "image/png" || c.Info.Size != len(picture) || c.Info.Width != 40 || c.Info.Height != 30 {
			t.Fatalf("image event from %s: %+v info %+v", got.Sender, c, c.Info)
		}
		if got.Timestamp != sentAt.UnixMilli() {
			t.Errorf("timestamp %d, want %d", got.Timestamp, sentAt.UnixMilli())
		}
		if data := download(t, c.URL); !bytes.Equal(data, picture) {
			t.Fatalf("the image downloads as %d bytes, not the picture", len(data))
		}
		// Delivered again (the core retrying after a crash): the same event.
		again, err := f.Deliver(ctx, bridgeUser, bridge.File{Portal: portal.ID, Sender: "bob@example.com", MSNID: "file-1",
			Name: "pic.png", Size: int64(len(picture)), MIME: "image/png", Media: "media-1", Time: sentAt})
		if err != nil || again != evID {
			t.Fatalf("redelivery made %s (%v), want %s", again, err, evID)
		}

		evID, err = f.Deliver(ctx, bridgeUser, bridge.File{Portal: portal.ID, Sender: "bob@example.com", MSNID: "file-2",
			Name: "notes.txt", Size: 11, MIME: "text/plain", Media: "media-2"})
		if err != nil {
			t.Fatal(err)
		}
		got = user.WaitFor(t, "the file", func(e *event.Event) bool { return e.ID == id.EventID(evID) })
		c = got.Content.AsMessage()
		if c.MsgType != event.MsgFile || c.Body != "notes.txt" || c.Info == nil || c.Info.MimeType != "text/plain" || c.Info.Size != 11 {
			t.Fatalf("file event: %+v info %+v", c, c.Info)
		}
		if data := download(t, c.URL); string(data) != "some notes\n" {
			t.Fatalf("the file downloads as %q", data)
		}
		// The user's own file from another MSN client comes from the bot.
		evID, err = f.Deliver(ctx, bridgeUser, bridge.File{Portal: portal.ID, FromSelf: true, MSNID: "file-self",
			Name: "mine.txt", Size: 11, MIME: "text/plain", Media: "media-2"})
		if err != nil {
			t.Fatal(err)
		}
		got = user.WaitFor(t, "the user's own file", func(e *event.Event) bool { return e.ID == id.EventID(evID) })
		if c := got.Content.AsMessage(); got.Sender != f.BotID() || c.MsgType != event.MsgFile || c.FileName != "mine.txt" ||
			!strings.HasPrefix(c.Body, "You (from another MSN client)") {
			t.Fatalf("own file from %s: %+v", got.Sender, c)
		}
		// An expired file is a notice, not a retry loop.
		evID, err = f.Deliver(ctx, bridgeUser, bridge.File{Portal: portal.ID, Sender: "bob@example.com", MSNID: "file-3",
			Name: "gone.zip", Size: 5, Media: "no-such-media"})
		if err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "the expired-file notice", func(e *event.Event) bool {
			return e.ID == id.EventID(evID) && strings.Contains(e.Content.AsMessage().Body, "gone.zip")
		})
	})

	t.Run("an m.file from the user reaches Core.SendFile", func(t *testing.T) {
		payload := bytes.Repeat([]byte("MSN file transfer payload\n"), 2000)
		up, err := user.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: payload, ContentType: "application/pdf", FileName: "report.pdf"})
		if err != nil {
			t.Fatal(err)
		}
		sent, err := user.SendMessageEvent(ctx, portalRoom, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgFile, Body: "report.pdf", URL: up.ContentURI.CUString(),
			Info: &event.FileInfo{MimeType: "application/pdf", Size: len(payload)},
		})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "SendFile at the core", 30*time.Second, func() bool { return core.count("SendFile") == 1 })
		core.mu.Lock()
		got := core.files[0]
		core.mu.Unlock()
		if got.User != bridgeUser.ID || got.Portal != portal.ID || got.File.FrontendID != sent.EventID.String() ||
			got.File.Name != "report.pdf" || got.File.MIME != "application/pdf" || got.File.Size != int64(len(payload)) ||
			!bytes.Equal(got.Data, payload) {
			t.Fatalf("core got %+v with %d bytes", got.File, len(got.Data))
		}
		// The contact declines: the user hears it in the portal.
		if _, err := f.Deliver(ctx, bridgeUser, bridge.DeliveryResult{Portal: portal.ID, FrontendID: sent.EventID.String(), Err: bridge.ErrFileDeclined}); err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "the declined notice", matrixtest.MessageFrom(f.BotID(), portalRoom, "did not accept your file report.pdf"))

		// An image with a caption: the file, then the caption as text.
		up, err = user.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: picture, ContentType: "image/png"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := user.SendMessageEvent(ctx, portalRoom, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgImage, Body: "look at this", FileName: "cat.png", URL: up.ContentURI.CUString(),
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the image at the core", 30*time.Second, func() bool { return core.count("SendFile") == 2 })
		core.mu.Lock()
		img := core.files[1]
		var caption string
		if n := len(core.sent); n > 0 {
			caption = core.sent[n-1].Msg.Text.Body
		}
		core.mu.Unlock()
		if img.File.Name != "cat.png" || !bytes.Equal(img.Data, picture) || img.File.MIME != "image/png" {
			t.Fatalf("image at the core: %+v (%d bytes)", img.File, len(img.Data))
		}
		if caption != "look at this" {
			t.Fatalf("caption sent as %q", caption)
		}
	})

	t.Run("files the bridge will not send are refused with a notice", func(t *testing.T) {
		before := core.count("SendFile")
		f.SetMaxFileSize(1000)
		defer f.SetMaxFileSize(0)
		big := bytes.Repeat([]byte{'x'}, 5000)
		up, err := user.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: big, ContentType: "application/octet-stream"})
		if err != nil {
			t.Fatal(err)
		}
		// No size in the info: the download's length decides.
		if _, err := user.SendMessageEvent(ctx, portalRoom, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgFile, Body: "big.bin", URL: up.ContentURI.CUString(),
		}); err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "the too-large notice", matrixtest.MessageFrom(f.BotID(), portalRoom, "big.bin was not sent to MSN: it is 4.9 KiB"))
		if _, err := user.SendMessageEvent(ctx, id.RoomID(group.Room), event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgImage, Body: "group.png", URL: up.ContentURI.CUString(),
		}); err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "the group refusal", matrixtest.MessageFrom(f.BotID(), id.RoomID(group.Room), "one-to-one"))
		if n := core.count("SendFile"); n != before {
			t.Fatalf("refused files reached the core: %d SendFile calls, want %d", n, before)
		}
	})

	t.Run("the user's avatar becomes their display picture", func(t *testing.T) {
		face := testPNG(t, 64, 64)
		up, err := user.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: face, ContentType: "image/png"})
		if err != nil {
			t.Fatal(err)
		}
		before := core.count("SetDisplayPicture")
		if err := user.SetAvatarURL(ctx, up.ContentURI); err != nil {
			t.Fatal(err)
		}
		// The profile change reaches every joined room as a member event;
		// the picture is applied once.
		eventually(t, "SetDisplayPicture", 30*time.Second, func() bool { return core.count("SetDisplayPicture") > before })
		core.mu.Lock()
		last := core.pictures[len(core.pictures)-1]
		core.mu.Unlock()
		if last.User != bridgeUser.ID || !bytes.Equal(last.Image, face) {
			t.Fatalf("display picture for %s: %d bytes, want the avatar's %d", last.User, len(last.Image), len(face))
		}
		// Sign-in: the profile avatar is applied when it is not yet (here
		// the stored state is forgotten, as after a new login).
		if err := core.SetFrontendValue(ctx, Kind, userDPKeyPrefix+bridgeUser.ID, ""); err != nil {
			t.Fatal(err)
		}
		n := core.count("SetDisplayPicture")
		if _, err := f.Deliver(ctx, bridgeUser, bridge.LoginStateChange{State: bridge.LoginConnected}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "SetDisplayPicture after sign-in", 30*time.Second, func() bool { return core.count("SetDisplayPicture") > n })
		// Another sign-in with the same avatar changes nothing (waiting for
		// the background work shows it is done).
		if _, err := f.Deliver(ctx, bridgeUser, bridge.LoginStateChange{State: bridge.LoginConnected}); err != nil {
			t.Fatal(err)
		}
		f.bg.Wait()
		if got := core.count("SetDisplayPicture"); got != n+1 {
			t.Fatalf("%d SetDisplayPicture calls, want %d", got, n+1)
		}

		// A picture the core cannot use is reported once, not at every
		// member event or sign-in.
		core.mu.Lock()
		core.picErr = errors.New("the picture is not a PNG, JPEG or GIF image the bridge can read")
		core.mu.Unlock()
		defer func() {
			core.mu.Lock()
			core.picErr = nil
			core.mu.Unlock()
		}()
		up, err = user.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: []byte("<svg/>"), ContentType: "image/svg+xml"})
		if err != nil {
			t.Fatal(err)
		}
		if err := user.SetAvatarURL(ctx, up.ContentURI); err != nil {
			t.Fatal(err)
		}
		refusal := matrixtest.MessageFrom(f.BotID(), mgmt, "could not become your MSN display picture: the picture is not a PNG")
		user.WaitFor(t, "the refusal of the picture", refusal)
		if _, err := f.Deliver(ctx, bridgeUser, bridge.LoginStateChange{State: bridge.LoginConnected}); err != nil {
			t.Fatal(err)
		}
		f.bg.Wait()
		helpReply := matrixtest.MessageFrom(f.BotID(), mgmt, "login PASSPORT")
		helps := user.Count(helpReply)
		if _, err := user.SendText(ctx, mgmt, "help"); err != nil {
			t.Fatal(err)
		}
		// The help reply comes after anything the sign-in could have said.
		matrixtest.Eventually(t, "the help reply", 20*time.Second, func() bool { return user.Count(helpReply) > helps })
		if n := user.Count(refusal); n != 1 {
			t.Fatalf("the refusal was said %d times", n)
		}
	})
}
