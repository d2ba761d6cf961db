package demo_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/internal/demo"
	"github.com/msnbridge/msnbridge/msnp"
)

// inbox collects what the demo user's client receives.
type inbox struct {
	mu     sync.Mutex
	texts  map[string][]string // by sender
	nudges map[string]int
	wake   chan struct{}
}

func (b *inbox) handle(ev msnp.Event) {
	b.mu.Lock()
	switch e := ev.(type) {
	case msnp.ConversationMessage:
		if !e.Self {
			b.texts[e.From] = append(b.texts[e.From], e.Text)
		}
	case msnp.ConversationNudge:
		b.nudges[e.From]++
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *inbox) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		b.mu.Lock()
		ok := cond()
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-b.wake:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; got %v, nudges %v", what, b.texts, b.nudges)
		}
	}
}

// TestFriendsAnswer signs in as the demo user, as the bridge would, and
// checks that every seeded friend is online and answers, and that a nudge
// is returned.
func TestFriendsAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := demo.Start(ctx, demo.Options{ReplyDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	for _, u := range demo.Users {
		t.Run(u, func(t *testing.T) { talk(t, ctx, d, u) })
	}
}

func talk(t *testing.T, ctx context.Context, d *demo.Server, user string) {
	box := &inbox{texts: map[string][]string{}, nudges: map[string]int{}, wake: make(chan struct{}, 1)}
	you, err := msnp.New(d.Config(), user, demo.Password, box.handle)
	if err != nil {
		t.Fatal(err)
	}
	if err := you.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer you.Close()
	if err := you.SetStatus(ctx, msnp.StatusOnline); err != nil {
		t.Fatal(err)
	}
	for _, f := range demo.Friends {
		c, ok := you.Contact(f.Passport)
		if !ok {
			t.Fatalf("%s is not on the demo user's list", f.Passport)
		}
		if c.FriendlyName != f.Name {
			t.Errorf("%s is called %q, want %q", f.Passport, c.FriendlyName, f.Name)
		}
		if err := d.MSN.WaitStatus(ctx, f.Passport, string(f.Status)); err != nil {
			t.Errorf("%s not %s: %v", f.Passport, f.Status, err)
		}
		if err := you.Chat(f.Passport).SendText(ctx, "hello there", msnp.DefaultTextFormat()); err != nil {
			t.Fatalf("writing to %s: %v", f.Passport, err)
		}
	}
	box.wait(t, "every friend's answer", func() bool {
		for _, f := range demo.Friends {
			if len(box.texts[f.Passport]) == 0 {
				return false
			}
		}
		return true
	})
	if got := box.texts["alice@demo.msn"][0]; got != "You said: hello there" {
		t.Errorf("alice answered %q", got)
	}
	if got := box.texts["carol@demo.msn"][0]; !strings.HasPrefix(got, "Message #1, 11 characters") {
		t.Errorf("carol answered %q", got)
	}

	if err := you.Chat("carol@demo.msn").SendNudge(ctx); err != nil {
		t.Fatal(err)
	}
	box.wait(t, "carol's nudge back", func() bool { return box.nudges["carol@demo.msn"] == 1 })
}
