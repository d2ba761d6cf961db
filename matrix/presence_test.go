package matrix

import (
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/bridge"
)

func TestPresenceToMSN(t *testing.T) {
	core := newFakeCore()
	cfg := testConfig()
	cfg.PresenceToMSN = true
	f, err := New(cfg, core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	presence := func(sender id.UserID, p event.Presence) {
		f.handlePresence(context.Background(), &event.Event{Sender: sender, Type: event.EphemeralEventPresence,
			Content: event.Content{Parsed: &event.PresenceEventContent{Presence: p}}})
	}
	statusCalls := func() []string {
		core.mu.Lock()
		defer core.mu.Unlock()
		var out []string
		for _, c := range core.calls {
			if strings.HasPrefix(c, "SetStatus") {
				out = append(out, c)
			}
		}
		return out
	}
	alice := id.UserID("@alice:example.org")
	presence(alice, event.PresenceUnavailable)
	presence(alice, event.PresenceUnavailable) // no change: not passed on
	presence(alice, event.PresenceOffline)     // offline: MSN stays as it is
	presence(alice, event.PresenceOnline)
	presence(f.bot, event.PresenceOnline) // the bridge's own users are ignored
	core.mu.Lock()
	core.perms["@eve:example.org"] = bridge.PermissionNone
	core.mu.Unlock()
	presence("@eve:example.org", event.PresenceOnline)
	if got := statusCalls(); strings.Join(got, ",") != "SetStatus away,SetStatus online" {
		t.Fatalf("status changes passed to the core: %q", got)
	}

	cfg.PresenceToMSN = false
	off, err := New(cfg, core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	off.handlePresence(context.Background(), &event.Event{Sender: "@bob:example.org", Type: event.EphemeralEventPresence,
		Content: event.Content{Parsed: &event.PresenceEventContent{Presence: event.PresenceUnavailable}}})
	if got := statusCalls(); len(got) != 2 {
		t.Fatalf("presence passed on with presence_to_msn off: %q", got)
	}
}
