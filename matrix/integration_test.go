//go:build integration

package matrix

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/matrix/matrixtest"
)

// This test runs the frontend against a real Dendrite started by
// scripts/dendrite.sh (see scripts/test.sh), with a fake core: the core
// does not exist yet, the homeserver is real.

func env(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run this test through scripts/test.sh", name)
	}
	return v
}

func TestDendriteIntegration(t *testing.T) {
	hsURL := env(t, "MSNBRIDGE_TEST_DENDRITE_URL")
	regPath := env(t, "MSNBRIDGE_TEST_REGISTRATION")
	secret := env(t, "MSNBRIDGE_TEST_SHARED_SECRET")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	fileReg, err := appservice.LoadRegistration(regPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Matrix{
		Enabled:        true,
		HomeserverURL:  hsURL,
		Domain:         "localhost",
		Listen:         "127.0.0.1:18009",
		PublicURL:      fileReg.URL,
		ID:             fileReg.ID,
		BotLocalpart:   fileReg.SenderLocalpart,
		BotDisplayname: "MSN bridge bot",
		ASToken:        fileReg.AppToken,
		HSToken:        fileReg.ServerToken,
		SyncEphemeral:  true,
	}
	// The registration Dendrite runs with is the one the -g flag would write.
	if got := NewRegistration(cfg); !reflect.DeepEqual(got, fileReg) {
		t.Fatalf("registration file differs from NewRegistration:\nfile %+v\nours %+v", fileReg, got)
	}

	core := newFakeCore()
	core.contacts = []bridge.Contact{{Passport: "bob@example.com", FriendlyName: "Bob <i>the</i> Builder\x07", Status: bridge.StatusBusy, OnContactList: true}}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	f, err := New(cfg, core, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()

	t.Run("wrong hs_token is refused", func(t *testing.T) {
		body := `{"events":[{"type":"m.room.message","room_id":"!r:localhost","sender":"@x:localhost","event_id":"$e","origin_server_ts":1,"content":{"msgtype":"m.text","body":"hi"}}]}`
		if code := sendTransaction(t, cfg.PublicURL, "not-the-hs-token", "forged-1", body); code != http.StatusUnauthorized && code != http.StatusForbidden {
			t.Fatalf("status %d, want 401 or 403", code)
		}
	})

	user := matrixtest.Register(t, ctx, hsURL, secret, matrixtest.RandomName("tester"))
	bridgeUser := bridge.UserID{Frontend: "matrix", ID: user.UserID.String()}

	// The user opens a DM with the bot: it becomes the management room.
	dm, err := user.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{f.BotID()},
	})
	if err != nil {
		t.Fatal(err)
	}
	mgmt := dm.RoomID
	user.WaitFor(t, "the bot's greeting", matrixtest.MessageFrom(f.BotID(), mgmt, "Hello"))
	if got, _ := core.ManagementRoom(ctx, bridgeUser); got != mgmt.String() {
		t.Fatalf("management room recorded as %q, want %q", got, mgmt)
	}

	t.Run("help", func(t *testing.T) {
		if _, err := user.SendText(ctx, mgmt, "help"); err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "the help reply", matrixtest.MessageFrom(f.BotID(), mgmt, "login PASSPORT"))
	})

	t.Run("login takes the password and redacts it", func(t *testing.T) {
		if _, err := user.SendText(ctx, mgmt, "login alice@example.com"); err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "the password prompt", matrixtest.MessageFrom(f.BotID(), mgmt, "password"))
		pw, err := user.SendText(ctx, mgmt, "hunter2 secret")
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "Login at the core", 20*time.Second, func() bool {
			core.mu.Lock()
			defer core.mu.Unlock()
			return len(core.logins) == 1
		})
		core.mu.Lock()
		got := core.logins[0]
		core.mu.Unlock()
		if got != (fakeLogin{user.UserID.String(), "alice@example.com", "hunter2 secret"}) {
			t.Fatalf("core got login %+v", got)
		}
		user.WaitFor(t, "the redaction of the password", func(e *event.Event) bool {
			return e.Type == event.EventRedaction && e.Sender == f.BotID() && e.Redacts == pw.EventID
		})
		redacted, err := user.GetEvent(ctx, mgmt, pw.EventID)
		if err != nil {
			t.Fatal(err)
		}
		if len(redacted.Content.Raw) != 0 || strings.Contains(string(redacted.Content.VeryRaw), "hunter2") {
			t.Fatalf("password event still has content: %s", redacted.Content.VeryRaw)
		}
		user.WaitFor(t, "the signing-in reply", matrixtest.MessageFrom(f.BotID(), mgmt, "Signing in"))
	})

	var portalRoom id.RoomID
	var portal bridge.Portal
	ghost := f.GhostID("bob@example.com")
	t.Run("Deliver creates a DM portal with the message", func(t *testing.T) {
		portal, err = core.DirectPortal(ctx, bridgeUser, "bob@example.com")
		if err != nil {
			t.Fatal(err)
		}
		sentAt := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
		evID, err := f.Deliver(ctx, bridgeUser, bridge.Message{
			Portal: portal.ID, Sender: "bob@example.com", MSNID: "1",
			Text: bridge.Text{Body: "hi <script>alert(1)</script> & bye", Bold: true, Color: "#00ff00"},
			Time: sentAt,
		})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := core.Portal(ctx, bridgeUser, portal.ID)
		if p.Room == "" {
			t.Fatal("portal room not recorded with SetPortalRoom")
		}
		portalRoom = id.RoomID(p.Room)
		eventually(t, "the invite to the portal", 20*time.Second, func() bool {
			for _, e := range user.Invites(portalRoom) {
				if mc, ok := e.Content.Parsed.(*event.MemberEventContent); ok && e.Type == event.StateMember &&
					e.GetStateKey() == user.UserID.String() && mc.Membership == event.MembershipInvite {
					return mc.IsDirect && e.Sender == ghost
				}
			}
			return false
		})
		if _, err := user.JoinRoomByID(ctx, portalRoom); err != nil {
			t.Fatal(err)
		}
		// Dendrite's sync API catches up with the join asynchronously.
		var got *event.Event
		eventually(t, "the message readable by the user", 20*time.Second, func() bool {
			got, err = user.GetEvent(ctx, portalRoom, id.EventID(evID))
			return err == nil
		})
		_ = got.Content.ParseRaw(got.Type)
		mc := got.Content.AsMessage()
		wantHTML := `<font color="#00ff00" data-mx-color="#00ff00"><b>hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; bye</b></font>`
		if got.Sender != ghost || mc.MsgType != event.MsgText || mc.Body != "hi <script>alert(1)</script> & bye" ||
			mc.Format != event.FormatHTML || mc.FormattedBody != wantHTML {
			t.Fatalf("message in portal: sender %s content %+v", got.Sender, mc)
		}
		if got.Timestamp != sentAt.UnixMilli() {
			t.Errorf("timestamp %d, want %d", got.Timestamp, sentAt.UnixMilli())
		}
		name, err := user.GetDisplayName(ctx, ghost)
		if err != nil {
			t.Fatal(err)
		}
		if name.DisplayName != "Bob the Builder" {
			t.Errorf("ghost display name %q", name.DisplayName)
		}
		// A second message reuses the room.
		if _, err := f.Deliver(ctx, bridgeUser, bridge.Message{Portal: portal.ID, Sender: "bob@example.com", Text: bridge.Text{Body: "again"}}); err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "the second message", matrixtest.MessageFrom(ghost, portalRoom, "again"))
		if p, _ := core.Portal(ctx, bridgeUser, portal.ID); p.Room != portalRoom.String() {
			t.Fatalf("portal room changed to %s", p.Room)
		}
	})

	t.Run("user messages reach the core", func(t *testing.T) {
		if portalRoom == "" {
			t.Fatal("no portal room")
		}
		sent, err := user.SendMessageEvent(ctx, portalRoom, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgText, Body: "hello **bob**", Format: event.FormatHTML, FormattedBody: "hello <b>bob</b>",
		})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "SendMessage at the core", 20*time.Second, func() bool {
			core.mu.Lock()
			defer core.mu.Unlock()
			return len(core.sent) >= 1
		})
		core.mu.Lock()
		got := core.sent[0]
		core.mu.Unlock()
		if got.Portal != portal.ID || got.User != user.UserID.String() || got.Msg.Text.Body != "hello **bob**" ||
			got.Msg.FrontendID != sent.EventID.String() {
			t.Fatalf("core got %+v", got)
		}
		if _, err := user.SendText(ctx, portalRoom, "!nudge"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "SendNudge at the core", 20*time.Second, func() bool {
			core.mu.Lock()
			defer core.mu.Unlock()
			return len(core.nudges) == 1 && core.nudges[0] == portal.ID
		})
	})

	t.Run("typing reaches the core through the bot's sync", func(t *testing.T) {
		if _, err := user.UserTyping(ctx, portalRoom, true, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		eventually(t, "SendTyping at the core", 20*time.Second, func() bool {
			core.mu.Lock()
			defer core.mu.Unlock()
			return len(core.typing) > 0 && core.typing[0] == fakeTyping{portal.ID, true}
		})
	})

	t.Run("nudge and chat command", func(t *testing.T) {
		evID, err := f.Deliver(ctx, bridgeUser, bridge.Nudge{Portal: portal.ID, Sender: "bob@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "the nudge emote", func(e *event.Event) bool {
			c, ok := e.Content.Parsed.(*event.MessageEventContent)
			return ok && e.ID == id.EventID(evID) && e.Sender == ghost && c.MsgType == event.MsgEmote && c.Body == "sent a nudge"
		})
		if _, err := user.SendText(ctx, mgmt, "chat carol@example.com"); err != nil {
			t.Fatal(err)
		}
		reply := user.WaitFor(t, "the chat reply", matrixtest.MessageFrom(f.BotID(), mgmt, "Chat with carol@example.com"))
		p, err := core.DirectPortal(ctx, bridgeUser, "carol@example.com")
		if err != nil || p.Room == "" || !strings.Contains(reply.Content.AsMessage().Body, p.Room) {
			t.Fatalf("chat portal %+v (%v), reply %q", p, err, reply.Content.AsMessage().Body)
		}
		eventually(t, "the invite to carol's room", 20*time.Second, func() bool {
			return len(user.Invites(id.RoomID(p.Room))) > 0
		})
	})

	t.Run("group portal with two ghosts", func(t *testing.T) {
		gid := bridge.PortalID("group-1")
		core.mu.Lock()
		core.portals[gid] = bridge.Portal{ID: gid, Kind: bridge.PortalGroup, Members: []string{"bob@example.com", "dave@example.com"}}
		core.mu.Unlock()
		if _, err := f.Deliver(ctx, bridgeUser, bridge.Message{Portal: gid, Sender: "dave@example.com", Text: bridge.Text{Body: "hi all"}}); err != nil {
			t.Fatal(err)
		}
		p, _ := core.Portal(ctx, bridgeUser, gid)
		if p.Room == "" {
			t.Fatal("group room not recorded")
		}
		room := id.RoomID(p.Room)
		eventually(t, "the invite to the group", 20*time.Second, func() bool {
			return len(user.Invites(room)) > 0
		})
		if _, err := user.JoinRoomByID(ctx, room); err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "dave's message", matrixtest.MessageFrom(f.GhostID("dave@example.com"), room, "hi all"))
		members, err := user.JoinedMembers(ctx, room)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []id.UserID{ghost, f.GhostID("dave@example.com"), f.BotID(), user.UserID} {
			if _, ok := members.Joined[m]; !ok {
				t.Errorf("%s is not in the group room", m)
			}
		}
		if _, err := f.Deliver(ctx, bridgeUser, bridge.Membership{Portal: gid, Passport: "dave@example.com", Joined: false}); err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "dave leaving", func(e *event.Event) bool {
			c, ok := e.Content.Parsed.(*event.MemberEventContent)
			return ok && e.RoomID == room && e.GetStateKey() == f.GhostID("dave@example.com").String() && c.Membership == event.MembershipLeave
		})
	})

	t.Run("users without permission are refused", func(t *testing.T) {
		eve := matrixtest.Register(t, ctx, hsURL, secret, matrixtest.RandomName("eve"))
		core.mu.Lock()
		core.perms[eve.UserID.String()] = bridge.PermissionNone
		core.mu.Unlock()
		dm, err := eve.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{f.BotID()}})
		if err != nil {
			t.Fatal(err)
		}
		eve.WaitFor(t, "the refusal", matrixtest.MessageFrom(f.BotID(), dm.RoomID, "not allowed"))
		if got, _ := core.ManagementRoom(ctx, bridge.UserID{Frontend: "matrix", ID: eve.UserID.String()}); got != "" {
			t.Fatalf("refused user got a management room %s", got)
		}
	})

	t.Run("notices reach the management room", func(t *testing.T) {
		if _, err := f.Deliver(ctx, bridgeUser, bridge.LoginStateChange{State: bridge.LoginBadCredentials, Message: "try again"}); err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "the login state notice", matrixtest.MessageFrom(f.BotID(), mgmt, "password is wrong"))
		if _, err := f.Deliver(ctx, bridgeUser, bridge.DeliveryResult{Portal: portal.ID, FrontendID: "$x", Err: fmt.Errorf("switchboard closed")}); err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "the delivery failure in the portal", matrixtest.MessageFrom(f.BotID(), portalRoom, "switchboard closed"))
	})

	t.Run("media", func(t *testing.T) {
		p, _ := core.Portal(ctx, bridgeUser, portal.ID)
		g, _ := core.Portal(ctx, bridgeUser, "group-1")
		if p.Room == "" || g.Room == "" {
			t.Fatal("the portals of the earlier subtests have no rooms")
		}
		mediaIntegration(t, ctx, f, core, user, bridgeUser, mgmt, p, g)
	})
}
