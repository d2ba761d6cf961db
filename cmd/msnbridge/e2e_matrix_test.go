//go:build integration

package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/matrix"
	"github.com/msnbridge/msnbridge/matrix/matrixtest"
	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
	"github.com/msnbridge/msnbridge/store"
)

// These tests run the whole bridge (the run function the binary runs) with
// the real core, a real Dendrite and an in-process MSN server, and talk to
// it as a Matrix user and as MSN contacts would.

func mustEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run this test through scripts/test.sh", name)
	}
	return v
}

// msnPeer is an MSN contact logged in with msnp, recording what it gets.
type msnPeer struct {
	*msnp.Client
	mu  sync.Mutex
	evs []msnp.Event
}

func newMSNPeer(t *testing.T, srv *msnptest.Server, passport, password string) *msnPeer {
	t.Helper()
	p := &msnPeer{}
	c, err := msnp.New(msnp.Config{Server: srv.NSAddr(), LoginURL: srv.LoginURL(), Protocols: []msnp.Protocol{msnp.MSNP12}},
		passport, password, func(ev msnp.Event) {
			p.mu.Lock()
			p.evs = append(p.evs, ev)
			p.mu.Unlock()
		})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.SetStatus(ctx, msnp.StatusOnline); err != nil {
		t.Fatal(err)
	}
	p.Client = c
	t.Cleanup(func() { c.Close() })
	return p
}

// messages returns the texts of the conversation messages received.
func (p *msnPeer) messages() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, ev := range p.evs {
		if m, ok := ev.(msnp.ConversationMessage); ok {
			out = append(out, m.Text)
		}
	}
	return out
}

func (p *msnPeer) has(match func(msnp.Event) bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range p.evs {
		if match(ev) {
			return true
		}
	}
	return false
}

// bridgeRun is one run of the bridge that the test can stop and restart.
type bridgeRun struct {
	cancel context.CancelFunc
	done   chan error
}

func startBridge(t *testing.T, cfg *config.Config) *bridgeRun {
	t.Helper()
	// MSNBRIDGE_TEST_LOG names a file to keep the bridge's log in.
	var w io.Writer = io.Discard
	if path := os.Getenv("MSNBRIDGE_TEST_LOG"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		w = f
	}
	log, err := config.NewLogger(config.Logging{Level: "debug", Format: "json"}, w)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &bridgeRun{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx, cfg, log) }()
	// Wait for the appservice listener.
	matrixtest.Eventually(t, "the appservice listener", 20*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", cfg.Matrix.Listen, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return r
}

func (r *bridgeRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("bridge stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("bridge did not stop")
	}
}

func e2eMatrixConfig(t *testing.T, srv *msnptest.Server) *config.Config {
	t.Helper()
	reg, err := appservice.LoadRegistration(mustEnv(t, "MSNBRIDGE_TEST_REGISTRATION"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.MSN.Server = srv.NSAddr()
	cfg.MSN.LoginURL = srv.LoginURL()
	cfg.MSN.Protocols = []string{"MSNP12"}
	cfg.Matrix = config.Matrix{
		Enabled: true, HomeserverURL: mustEnv(t, "MSNBRIDGE_TEST_DENDRITE_URL"), Domain: "localhost",
		Listen: "127.0.0.1:18009", PublicURL: reg.URL, ID: reg.ID,
		BotLocalpart: reg.SenderLocalpart, BotDisplayname: "MSN bridge", ASToken: reg.AppToken, HSToken: reg.ServerToken,
		GhostTemplate: cfg.Matrix.GhostTemplate, SyncEphemeral: true, PresenceToMSN: true,
	}
	cfg.XMPP.Enabled = false
	cfg.Database.URI = "file:" + filepath.Join(t.TempDir(), "bridge.db")
	cfg.Bridge.EncryptionKey = store.GenerateKey()
	cfg.Bridge.Permissions = map[string]string{"localhost": "user"}
	cfg.Bridge.Files.Dir = filepath.Join(t.TempDir(), "media")
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

func ghostOf(t *testing.T, cfg config.Matrix, passport string) id.UserID {
	t.Helper()
	esc := matrix.EscapePassport(passport)
	return id.NewUserID(cfg.GhostLocalpart(esc), cfg.Domain)
}

// loginThroughBot registers a Matrix user (name prefix), opens a DM with the
// bridge's bot and logs passport in through it, as a person would. It
// returns the user and the management room once the bot says signed in.
func loginThroughBot(t *testing.T, ctx context.Context, cfg *config.Config, prefix, passport, password string) (*matrixtest.User, id.RoomID) {
	t.Helper()
	user := matrixtest.Register(t, ctx, cfg.Matrix.HomeserverURL, mustEnv(t, "MSNBRIDGE_TEST_SHARED_SECRET"), matrixtest.RandomName(prefix))
	bot := id.UserID(cfg.Matrix.BotUserID())
	dm, err := user.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{bot}})
	if err != nil {
		t.Fatal(err)
	}
	mgmt := dm.RoomID
	user.WaitFor(t, "the bot's greeting", matrixtest.MessageFrom(bot, mgmt, "Hello"))
	if _, err := user.SendText(ctx, mgmt, "login "+passport); err != nil {
		t.Fatal(err)
	}
	user.WaitFor(t, "the password prompt", matrixtest.MessageFrom(bot, mgmt, "password"))
	if _, err := user.SendText(ctx, mgmt, password); err != nil {
		t.Fatal(err)
	}
	user.WaitFor(t, "signed in", matrixtest.MessageFrom(bot, mgmt, "signed in"))
	return user, mgmt
}

func TestMatrixEndToEnd(t *testing.T) {
	srv := msnptest.NewServer()
	defer srv.Close()
	srv.SetVersions(12)
	for _, a := range [][2]string{{"alice@example.com", "Alice"}, {"bob@example.com", "Bob"}, {"carol@example.com", "Carol"}, {"dave@example.com", "Dave"}} {
		srv.AddAccount(a[0], "pw-"+a[0], a[1])
	}
	srv.AddContact("alice@example.com", "bob@example.com")
	srv.AddContact("alice@example.com", "carol@example.com")
	srv.AddContact("bob@example.com", "carol@example.com")
	srv.AddContact("alice@example.com", "dave@example.com")

	cfg := e2eMatrixConfig(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	br := startBridge(t, cfg)
	defer func() {
		if br != nil {
			br.stop(t)
		}
	}()

	user, mgmt := loginThroughBot(t, ctx, cfg, "alice", "alice@example.com", "pw-alice@example.com")
	bot := id.UserID(cfg.Matrix.BotUserID())
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	if err := srv.WaitOnline(wctx, "alice@example.com"); err != nil {
		t.Fatalf("alice is not online on MSN: %v", err)
	}
	wcancel()

	if _, err := user.SendText(ctx, mgmt, "contacts"); err != nil {
		t.Fatal(err)
	}
	user.WaitFor(t, "the contact list", matrixtest.MessageFrom(bot, mgmt, "bob@example.com"))

	bob := newMSNPeer(t, srv, "bob@example.com", "pw-bob@example.com")
	bobGhost := ghostOf(t, cfg.Matrix, "bob@example.com")

	var portal id.RoomID
	t.Run("MSN to Matrix creates a DM portal", func(t *testing.T) {
		f := msnp.DefaultTextFormat()
		f.Bold = true
		if err := bob.Chat("alice@example.com").SendText(ctx, "Hello <from> MSN", f); err != nil {
			t.Fatal(err)
		}
		matrixtest.Eventually(t, "an invite from bob's ghost", 20*time.Second, func() bool {
			for _, r := range user.InvitedRooms() {
				for _, e := range user.Invites(r) {
					if e.Type == event.StateMember && e.Sender == bobGhost {
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
		var msg *event.Event
		matrixtest.Eventually(t, "bob's message in the portal", 20*time.Second, func() bool {
			resp, err := user.Messages(ctx, portal, "", "", mautrix.DirectionBackward, nil, 50)
			if err != nil {
				return false
			}
			for _, e := range resp.Chunk {
				_ = e.Content.ParseRaw(e.Type)
				if c, ok := e.Content.Parsed.(*event.MessageEventContent); ok && e.Sender == bobGhost && c.Body == "Hello <from> MSN" {
					msg = e
					return true
				}
			}
			return false
		})
		c := msg.Content.AsMessage()
		if !strings.Contains(c.FormattedBody, "<b>Hello &lt;from&gt; MSN</b>") {
			t.Errorf("formatted body %q lacks the bold, escaped text", c.FormattedBody)
		}
	})

	t.Run("presence and typing from MSN", func(t *testing.T) {
		if err := bob.SetPersonalMessage(ctx, "fixing <things>"); err != nil {
			t.Fatal(err)
		}
		if err := bob.SetStatus(ctx, msnp.StatusBusy); err != nil {
			t.Fatal(err)
		}
		matrixtest.Eventually(t, "bob's ghost busy with his personal message", 20*time.Second, func() bool {
			p, ok := user.Presence(bobGhost)
			return ok && p.Presence == event.PresenceUnavailable && p.StatusMessage == "Busy — fixing <things>"
		})
		if err := bob.Chat("alice@example.com").SendTyping(ctx); err != nil {
			t.Fatal(err)
		}
		matrixtest.Eventually(t, "bob's ghost typing in the portal", 20*time.Second, func() bool {
			return user.SawTyping(portal, bobGhost)
		})
	})

	t.Run("Matrix to MSN", func(t *testing.T) {
		sent, err := user.SendText(ctx, portal, "Hi Bob, from Matrix")
		if err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "the message status of the sent message", func(e *event.Event) bool {
			c, ok := e.Content.Parsed.(*event.BeeperMessageStatusEventContent)
			return ok && e.RoomID == portal && c.RelatesTo.EventID == sent.EventID && c.Status == event.MessageStatusSuccess
		})
		matrixtest.Eventually(t, "bob receiving the reply", 20*time.Second, func() bool {
			for _, m := range bob.messages() {
				if m == "Hi Bob, from Matrix" {
					return true
				}
			}
			return false
		})
	})

	t.Run("typing from Matrix", func(t *testing.T) {
		if _, err := user.UserTyping(ctx, portal, true, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		matrixtest.Eventually(t, "bob seeing alice type", 20*time.Second, func() bool {
			return bob.has(func(ev msnp.Event) bool { _, ok := ev.(msnp.ConversationTyping); return ok })
		})
	})

	t.Run("the user's Matrix presence sets the MSN status", func(t *testing.T) {
		if err := user.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceUnavailable}); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		defer wcancel()
		if err := srv.WaitStatus(wctx, "alice@example.com", "AWY"); err != nil {
			t.Fatalf("alice's MSN status did not follow her Matrix presence: %v", err)
		}
		if err := user.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceOnline}); err != nil {
			t.Fatal(err)
		}
		if err := srv.WaitStatus(wctx, "alice@example.com", "NLN"); err != nil {
			t.Fatalf("alice's MSN status did not come back online: %v", err)
		}
	})

	t.Run("nudges both ways", func(t *testing.T) {
		if err := bob.Chat("alice@example.com").SendNudge(ctx); err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "the nudge emote", func(e *event.Event) bool {
			c, ok := e.Content.Parsed.(*event.MessageEventContent)
			return ok && e.RoomID == portal && e.Sender == bobGhost && c.MsgType == event.MsgEmote
		})
		if _, err := user.SendText(ctx, portal, "!nudge"); err != nil {
			t.Fatal(err)
		}
		matrixtest.Eventually(t, "bob receiving a nudge", 20*time.Second, func() bool {
			return bob.has(func(ev msnp.Event) bool { _, ok := ev.(msnp.ConversationNudge); return ok })
		})
	})

	t.Run("a restart keeps the portal and loses nothing", func(t *testing.T) {
		br.stop(t)
		// A message sent while the bridge is down waits on MSN's side of
		// the bridge: alice is offline, so bob's client reports it failed.
		br = startBridge(t, cfg)
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		defer wcancel()
		if err := srv.WaitOnline(wctx, "alice@example.com"); err != nil {
			t.Fatalf("the stored login did not resume: %v", err)
		}
		matrixtest.Eventually(t, "alice back online for bob", 20*time.Second, func() bool {
			c, ok := bob.Contact("alice@example.com")
			return ok && c.Status == msnp.StatusOnline
		})
		if err := bob.Chat("alice@example.com").SendText(ctx, "after the restart", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "the message after the restart, in the same room", matrixtest.MessageFrom(bobGhost, portal, "after the restart"))
		if _, err := user.SendText(ctx, portal, "reply after restart"); err != nil {
			t.Fatal(err)
		}
		matrixtest.Eventually(t, "bob receiving the post-restart reply", 20*time.Second, func() bool {
			n := 0
			for _, m := range bob.messages() {
				if m == "reply after restart" {
					n++
				}
			}
			return n == 1
		})
		// No second portal for bob appeared.
		for _, r := range user.InvitedRooms() {
			if r == portal {
				continue
			}
			for _, e := range user.Invites(r) {
				if e.Sender == bobGhost {
					t.Fatalf("a second room %s was made for bob", r)
				}
			}
		}
	})

	t.Run("three-party switchboard becomes a group room", func(t *testing.T) {
		carol := newMSNPeer(t, srv, "carol@example.com", "pw-carol@example.com")
		carolGhost := ghostOf(t, cfg.Matrix, "carol@example.com")
		if err := bob.Chat("alice@example.com").Invite(ctx, "carol@example.com"); err != nil {
			t.Fatal(err)
		}
		// Bob's client made a group conversation for the three of them.
		var info msnp.ConversationInfo
		matrixtest.Eventually(t, "bob's group conversation", 20*time.Second, func() bool {
			return bob.has(func(ev msnp.Event) bool {
				j, ok := ev.(msnp.ConversationJoined)
				if ok && j.Conversation.Group && len(j.Conversation.Participants) >= 2 {
					info = j.Conversation
				}
				return ok && j.Conversation.Group && len(j.Conversation.Participants) >= 2
			})
		})
		if err := bob.Group(info.ID, info.Participants).SendText(ctx, "hi group", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		var group id.RoomID
		matrixtest.Eventually(t, "an invite to a group room", 30*time.Second, func() bool {
			for _, r := range user.InvitedRooms() {
				if r == portal {
					continue
				}
				for _, e := range user.Invites(r) {
					// Group rooms are created by the bot, which then
					// brings the ghosts in.
					if e.Type == event.StateMember && e.Sender == bot {
						group = r
						return true
					}
				}
			}
			return false
		})
		if _, err := user.JoinRoomByID(ctx, group); err != nil {
			t.Fatal(err)
		}
		user.WaitFor(t, "bob's message in the group room", matrixtest.MessageFrom(bobGhost, group, "hi group"))
		if _, err := user.SendText(ctx, group, "hello both"); err != nil {
			t.Fatal(err)
		}
		matrixtest.Eventually(t, "carol and bob receiving the group reply", 20*time.Second, func() bool {
			in := func(p *msnPeer) bool {
				for _, m := range p.messages() {
					if m == "hello both" {
						return true
					}
				}
				return false
			}
			return in(carol) && in(bob)
		})
		matrixtest.Eventually(t, "both ghosts in the group room", 30*time.Second, func() bool {
			m, err := user.JoinedMembers(ctx, group)
			if err != nil {
				return false
			}
			_, b := m.Joined[bobGhost]
			_, c := m.Joined[carolGhost]
			return b && c
		})
	})

	t.Run("display pictures and files", func(t *testing.T) {
		matrixMediaEndToEnd(t, ctx, srv, cfg, user, bob)
	})

	t.Run("logout", func(t *testing.T) {
		if _, err := user.SendText(ctx, mgmt, "logout"); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		defer wcancel()
		if err := srv.WaitOffline(wctx, "alice@example.com"); err != nil {
			t.Fatal("alice still online on MSN after logout")
		}
	})
}
