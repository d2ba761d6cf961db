// Package matrixtest drives real Matrix users against a real homeserver in
// tests: registration with the shared secret, a sync loop that records what
// the user sees, and waits with deadlines instead of sleeps.
package matrixtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"maunium.net/go/mautrix/synapseadmin"
)

// User is a registered Matrix user whose sync loop records every timeline
// event of joined rooms and every invite.
type User struct {
	*mautrix.Client
	mu       sync.Mutex
	timeline []*event.Event
	invites  map[id.RoomID][]*event.Event
	presence map[id.UserID]event.PresenceEventContent
	typing   map[id.RoomID][]id.UserID // everyone ever seen typing, per room
}

// Register creates the user name on the homeserver with its shared
// registration secret and starts its sync loop, which ends with ctx.
func Register(t testing.TB, ctx context.Context, hsURL, secret, name string) *User {
	t.Helper()
	anon, err := mautrix.NewClient(hsURL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	admin := synapseadmin.Client{Client: anon}
	resp, err := admin.SharedSecretRegister(ctx, secret, synapseadmin.ReqSharedSecretRegister{Username: name, Password: "pw-" + name})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	cli, err := mautrix.NewClient(hsURL, resp.UserID, resp.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	u := &User{Client: cli, invites: map[id.RoomID][]*event.Event{},
		presence: map[id.UserID]event.PresenceEventContent{}, typing: map[id.RoomID][]id.UserID{}}
	go u.syncLoop(ctx)
	return u
}

func (u *User) syncLoop(ctx context.Context) {
	since := ""
	for ctx.Err() == nil {
		resp, err := u.FullSyncRequest(ctx, mautrix.ReqSync{Timeout: 5000, Since: since})
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		since = resp.NextBatch
		u.mu.Lock()
		for room, joined := range resp.Rooms.Join {
			for _, evt := range joined.Timeline.Events {
				evt.RoomID = room
				_ = evt.Content.ParseRaw(evt.Type)
				u.timeline = append(u.timeline, evt)
			}
			for _, evt := range joined.Ephemeral.Events {
				if evt.Type != event.EphemeralEventTyping {
					continue
				}
				_ = evt.Content.ParseRaw(evt.Type)
				if tc, ok := evt.Content.Parsed.(*event.TypingEventContent); ok {
					u.typing[room] = append(u.typing[room], tc.UserIDs...)
				}
			}
		}
		for _, evt := range resp.Presence.Events {
			_ = evt.Content.ParseRaw(evt.Type)
			if pc, ok := evt.Content.Parsed.(*event.PresenceEventContent); ok {
				u.presence[evt.Sender] = *pc
			}
		}
		for room, invited := range resp.Rooms.Invite {
			for _, evt := range invited.State.Events {
				evt.RoomID = room
				_ = evt.Content.ParseRaw(evt.Type)
				u.invites[room] = append(u.invites[room], evt)
			}
		}
		u.mu.Unlock()
	}
}

// Find returns the first timeline event matching pred, or nil.
func (u *User) Find(pred func(*event.Event) bool) *event.Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, e := range u.timeline {
		if pred(e) {
			return e
		}
	}
	return nil
}

// Count returns how many timeline events match pred.
func (u *User) Count(pred func(*event.Event) bool) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, e := range u.timeline {
		if pred(e) {
			n++
		}
	}
	return n
}

// WaitFor waits up to 20 s for a timeline event matching pred.
func (u *User) WaitFor(t testing.TB, what string, pred func(*event.Event) bool) *event.Event {
	t.Helper()
	var found *event.Event
	Eventually(t, what, 20*time.Second, func() bool {
		found = u.Find(pred)
		return found != nil
	})
	return found
}

// Presence returns the last presence the user saw for who.
func (u *User) Presence(who id.UserID) (event.PresenceEventContent, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	p, ok := u.presence[who]
	return p, ok
}

// SawTyping reports whether who was ever seen typing in room.
func (u *User) SawTyping(room id.RoomID, who id.UserID) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, x := range u.typing[room] {
		if x == who {
			return true
		}
	}
	return false
}

// Invites returns the stripped state events of the invite to room.
func (u *User) Invites(room id.RoomID) []*event.Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*event.Event(nil), u.invites[room]...)
}

// InvitedRooms lists the rooms the user was invited to.
func (u *User) InvitedRooms() []id.RoomID {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]id.RoomID, 0, len(u.invites))
	for r := range u.invites {
		out = append(out, r)
	}
	return out
}

// MessageFrom matches an m.room.message from sender in room whose body
// contains text ("" for any room).
func MessageFrom(sender id.UserID, room id.RoomID, contains string) func(*event.Event) bool {
	return func(e *event.Event) bool {
		c, ok := e.Content.Parsed.(*event.MessageEventContent)
		return ok && e.Sender == sender && (room == "" || e.RoomID == room) && strings.Contains(c.Body, contains)
	}
}

// Eventually polls cond until it holds or timeout passes.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RandomName returns prefix with random hex appended, for unique users.
func RandomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
