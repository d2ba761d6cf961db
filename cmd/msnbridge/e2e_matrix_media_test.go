//go:build integration

package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/matrix/matrixtest"
	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

// testPNG is a w×h PNG with some content, so that two sizes differ.
func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			img.Set(x, y, color.RGBA{R: uint8(x * 7), G: uint8(y * 5), B: 90, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// portalMessage waits for a message event from sender in room, reading the
// room's history (events from before the user joined are not in /sync's
// live timeline).
func portalMessage(t *testing.T, ctx context.Context, user *matrixtest.User, room id.RoomID, what string, match func(*event.Event, *event.MessageEventContent) bool) *event.Event {
	t.Helper()
	var found *event.Event
	matrixtest.Eventually(t, what, 30*time.Second, func() bool {
		resp, err := user.Messages(ctx, room, "", "", mautrix.DirectionBackward, nil, 50)
		if err != nil {
			return false
		}
		for _, e := range resp.Chunk {
			_ = e.Content.ParseRaw(e.Type)
			if c, ok := e.Content.Parsed.(*event.MessageEventContent); ok && match(e, c) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// matrixMediaEndToEnd runs inside TestMatrixEndToEnd, with alice logged in
// as user: an msnptest.Peer (its own MSNP2P implementation) as dave shows
// a display picture and trades files with her; bob (an msnp.Client) fetches
// the display picture the bridge made from her Matrix avatar.
func matrixMediaEndToEnd(t *testing.T, ctx context.Context, srv *msnptest.Server, cfg *config.Config, user *matrixtest.User, bob *msnPeer) {
	dave, err := srv.NewPeer(ctx, "dave@example.com", "pw-dave@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer dave.Close()
	daveGhost := ghostOf(t, cfg.Matrix, "dave@example.com")
	face := testPNG(t, 96, 96)
	download := func(t *testing.T, uri id.ContentURI) []byte {
		t.Helper()
		data, err := user.DownloadBytes(ctx, uri)
		if err != nil {
			t.Fatalf("download %s: %v", uri, err)
		}
		return data
	}

	t.Run("the contact's display picture is their ghost's avatar", func(t *testing.T) {
		dave.SetDisplayPicture(face)
		matrixtest.Eventually(t, "dave's ghost with his picture", 60*time.Second, func() bool {
			avatar, err := user.GetAvatarURL(ctx, daveGhost)
			if err != nil || avatar.IsEmpty() {
				return false
			}
			return bytes.Equal(download(t, avatar), face)
		})
	})

	var portal id.RoomID
	photo := testPNG(t, 120, 80)
	t.Run("a file from MSN arrives as m.image", func(t *testing.T) {
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := dave.SendFile(sctx, "alice@example.com", "holiday.png", photo); err != nil {
			t.Fatalf("dave's file transfer: %v", err)
		}
		matrixtest.Eventually(t, "an invite from dave's ghost", 30*time.Second, func() bool {
			for _, r := range user.InvitedRooms() {
				for _, e := range user.Invites(r) {
					if e.Type == event.StateMember && e.Sender == daveGhost {
						portal = r
						return true
					}
				}
			}
			return false
		})
		if _, err := user.JoinRoomByID(ctx, portal); err != nil {
			t.Fatal(err)
		}
		img := portalMessage(t, ctx, user, portal, "dave's image", func(e *event.Event, c *event.MessageEventContent) bool {
			return e.Sender == daveGhost && c.MsgType == event.MsgImage
		})
		c := img.Content.AsMessage()
		if c.Body != "holiday.png" || c.Info == nil || c.Info.MimeType != "image/png" || c.Info.Size != len(photo) ||
			c.Info.Width != 120 || c.Info.Height != 80 {
			t.Fatalf("image event %+v info %+v", c, c.Info)
		}
		mxc, err := c.URL.Parse()
		if err != nil {
			t.Fatal(err)
		}
		if got := download(t, mxc); !bytes.Equal(got, photo) {
			t.Fatalf("the image downloads as %d bytes, not the %d sent", len(got), len(photo))
		}
	})

	t.Run("an m.file from Matrix reaches the contact", func(t *testing.T) {
		if portal == "" {
			t.Fatal("no portal with dave")
		}
		payload := bytes.Repeat([]byte("a file from Matrix to MSN, in many P2P chunks\n"), 300)
		up, err := user.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: payload, ContentType: "text/plain", FileName: "notes.txt"})
		if err != nil {
			t.Fatal(err)
		}
		sent, err := user.SendMessageEvent(ctx, portal, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgFile, Body: "notes.txt", URL: up.ContentURI.CUString(),
			Info: &event.FileInfo{MimeType: "text/plain", Size: len(payload)},
		})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		got, err := dave.WaitFile(wctx)
		if err != nil {
			t.Fatalf("dave received no file: %v", err)
		}
		if got.From != "alice@example.com" || got.Name != "notes.txt" || !bytes.Equal(got.Data, payload) {
			t.Fatalf("dave got %q from %s, %d bytes (want %d)", got.Name, got.From, len(got.Data), len(payload))
		}
		user.WaitFor(t, "the file's delivery status", func(e *event.Event) bool {
			c, ok := e.Content.Parsed.(*event.BeeperMessageStatusEventContent)
			return ok && e.RoomID == portal && c.RelatesTo.EventID == sent.EventID && c.Status == event.MessageStatusSuccess
		})
	})

	t.Run("a declined file is reported in the portal", func(t *testing.T) {
		if portal == "" {
			t.Fatal("no portal with dave")
		}
		dave.DeclineFiles(true)
		defer dave.DeclineFiles(false)
		up, err := user.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: photo, ContentType: "image/png"})
		if err != nil {
			t.Fatal(err)
		}
		sent, err := user.SendMessageEvent(ctx, portal, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgImage, Body: "unwanted.png", URL: up.ContentURI.CUString(),
		})
		if err != nil {
			t.Fatal(err)
		}
		bot := id.UserID(cfg.Matrix.BotUserID())
		user.WaitFor(t, "the declined notice", matrixtest.MessageFrom(bot, portal, "did not accept your file unwanted.png"))
		user.WaitFor(t, "the failed status", func(e *event.Event) bool {
			c, ok := e.Content.Parsed.(*event.BeeperMessageStatusEventContent)
			return ok && e.RoomID == portal && c.RelatesTo.EventID == sent.EventID && c.Status != event.MessageStatusSuccess
		})
	})

	t.Run("the user's Matrix avatar is their MSN display picture", func(t *testing.T) {
		avatar := testPNG(t, 200, 150)
		up, err := user.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: avatar, ContentType: "image/png"})
		if err != nil {
			t.Fatal(err)
		}
		if err := user.SetAvatarURL(ctx, up.ContentURI); err != nil {
			t.Fatal(err)
		}
		var obj msnp.MSNObject
		matrixtest.Eventually(t, "alice's display picture on bob's contact list", 30*time.Second, func() bool {
			c, ok := bob.Contact("alice@example.com")
			if !ok || c.MSNObject == "" {
				return false
			}
			parsed, err := msnp.ParseMSNObject(c.MSNObject)
			obj = parsed
			return err == nil && parsed.Type == 3
		})
		var buf bytes.Buffer
		fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := bob.FetchMSNObject(fctx, "alice@example.com", obj, &buf, 1<<20); err != nil {
			t.Fatalf("bob could not fetch alice's display picture: %v", err)
		}
		img, format, err := image.Decode(&buf)
		if err != nil || format != "png" || img.Bounds().Dx() != 96 || img.Bounds().Dy() != 96 {
			t.Fatalf("alice's display picture: %s %v (%v), want a 96×96 PNG", format, img.Bounds(), err)
		}
	})
}
