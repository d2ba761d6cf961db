package msnp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

var sbVersions = []msnp.Protocol{msnp.MSNP8, msnp.MSNP12, msnp.MSNP15, msnp.MSNP18}

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
	carol = "carol@example.com"
)

// chatSetup makes the accounts mutual contacts, logs them in and sets them
// online.
func chatSetup(t *testing.T, p msnp.Protocol, names ...string) (*msnptest.Server, []*msnp.Client, []*events) {
	t.Helper()
	s := newServer(t)
	for _, n := range names {
		s.AddAccount(n, "pw", strings.ToUpper(n[:1])+n[1:strings.Index(n, "@")])
	}
	for i, a := range names {
		for _, b := range names[i+1:] {
			s.AddContact(a, b)
		}
	}
	var cs []*msnp.Client
	var evs []*events
	for _, n := range names {
		c, ev := connect(t, config(s, p), n, "pw")
		online(t, c, ev)
		cs = append(cs, c)
		evs = append(evs, ev)
	}
	return s, cs, evs
}

// nextMessage waits for the next ConversationMessage.
func nextMessage(t *testing.T, ev *events) msnp.ConversationMessage {
	t.Helper()
	return ev.next(t, "ConversationMessage", is[msnp.ConversationMessage]).(msnp.ConversationMessage)
}

func texts(t *testing.T, ev *events, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		out = append(out, nextMessage(t, ev).Text)
	}
	return out
}

// deliveredTexts is what the switchboard relayed to passport, as text.
func deliveredTexts(t *testing.T, s *msnptest.Server, passport string) []string {
	t.Helper()
	var out []string
	for _, d := range s.Delivered(passport) {
		m, err := msnp.ParseMessage(d.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if m.ContentType() == msnp.ContentTypeText {
			out = append(out, string(m.Body))
		}
	}
	return out
}

func TestConversationChatBothWays(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cs, evs := chatSetup(t, p, alice, bob)
		a, b := cs[0], cs[1]
		f := msnp.TextFormat{Font: "Comic Sans MS", Bold: true, Italic: true, Color: msnp.RGB{R: 0xff}, PitchFamily: 0x22}
		if err := a.Chat("Bob@Example.com").SendText(ctxT(t), "hello bob", f); err != nil {
			t.Fatalf("SendText: %v", err)
		}
		// Bob never asked for the conversation: the RNG was answered.
		evs[1].next(t, "SwitchboardInvite", is[msnp.SwitchboardInvite])
		m := nextMessage(t, evs[1])
		want := msnp.ConversationInfo{ID: alice, Participants: []string{alice}}
		if m.Text != "hello bob" || m.From != alice || m.FromName != "Alice" || m.Self || m.Format != f ||
			fmt.Sprint(m.Conversation) != fmt.Sprint(want) {
			t.Fatalf("bob got %+v", m)
		}
		if got := a.Chat(bob).Info(); got.ID != bob || got.Group || len(got.Participants) != 1 || got.Participants[0] != bob {
			t.Fatalf("Info = %+v", got)
		}
		// Bob answers in the same switchboard.
		if err := b.Chat(alice).SendText(ctxT(t), "hi alice", msnp.DefaultTextFormat()); err != nil {
			t.Fatalf("bob SendText: %v", err)
		}
		m = nextMessage(t, evs[0])
		if m.Text != "hi alice" || m.From != bob || m.Conversation.ID != bob || m.Format != msnp.DefaultTextFormat() {
			t.Fatalf("alice got %+v", m)
		}
		// Typing and nudges.
		if err := a.Chat(bob).SendTyping(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		ty := evs[1].next(t, "ConversationTyping", is[msnp.ConversationTyping]).(msnp.ConversationTyping)
		if ty.From != alice || ty.Conversation.ID != alice {
			t.Fatalf("typing = %+v", ty)
		}
		if err := b.Chat(alice).SendNudge(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		n := evs[0].next(t, "ConversationNudge", is[msnp.ConversationNudge]).(msnp.ConversationNudge)
		if n.From != bob || n.Conversation.ID != bob {
			t.Fatalf("nudge = %+v", n)
		}
		if got := s.SwitchboardsOpened(); got != 1 {
			t.Fatalf("%d switchboards opened, want the one reused", got)
		}
	})
}

func TestConversationTypingNeverOpensSwitchboard(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cs, _ := chatSetup(t, p, alice, bob)
		if err := cs[0].Chat(bob).SendTyping(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if n := s.SwitchboardsOpened(); n != 0 {
			t.Fatalf("typing opened %d switchboards", n)
		}
		if cmds := s.Received(alice); len(cmds) > 0 && cmds[len(cmds)-1].Name == "XFR" {
			t.Fatalf("typing asked for a switchboard")
		}
	})
}

func TestConversationLongMessageSplit(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cs, evs := chatSetup(t, p, alice, bob)
		var b strings.Builder
		for i := 0; b.Len() < 5000; i++ {
			fmt.Fprintf(&b, "word%d é ", i)
		}
		text := b.String()[:5000]
		f := msnp.TextFormat{Font: "Arial", Underline: true, Color: msnp.RGB{B: 0xff}}
		if err := cs[0].Chat(bob).SendText(ctxT(t), text, f); err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		for got.Len() < len(text) {
			m := nextMessage(t, evs[1])
			if m.Format != f {
				t.Fatalf("part lost its format: %+v", m.Format)
			}
			got.WriteString(m.Text)
		}
		if got.String() != text {
			t.Fatalf("reassembled text differs")
		}
		msgs := 0
		for _, c := range s.SBReceived(alice) {
			if c.Name == "MSG" {
				msgs++
				if len(c.Payload) > msnp.SwitchboardMaxMessage {
					t.Fatalf("MSG of %d bytes", len(c.Payload))
				}
			}
		}
		if msgs < 4 {
			t.Fatalf("%d MSGs for 5000 bytes", msgs)
		}
	})
}

func TestConversationIdleTimeoutResends(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cs, evs := chatSetup(t, p, alice, bob)
		s.SetSBIdleTimeout(100 * time.Millisecond)
		cv := cs[0].Chat(bob)
		var want []string
		for round := 0; round < 3; round++ {
			msg := fmt.Sprintf("round %d", round)
			want = append(want, msg)
			if err := cv.SendText(ctxT(t), msg, msnp.DefaultTextFormat()); err != nil {
				t.Fatalf("%s: %v", msg, err)
			}
			// The server ends the session for idleness.
			if err := s.WaitSBSessions(ctxT(t), alice, 0); err != nil {
				t.Fatal(err)
			}
		}
		// Now several goroutines send at once while the switchboard is
		// being reopened: each one's messages keep their order.
		const senders, each = 3, 5
		var wg sync.WaitGroup
		errs := make(chan error, senders*each)
		for g := 0; g < senders; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if err := cv.SendText(ctxT(t), fmt.Sprintf("g%d-%d", g, i), msnp.DefaultTextFormat()); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// The order is the server's: what the switchboards relayed, one
		// after the other. Bob reads each switchboard on a goroutine of
		// its own, so across switchboards his events are a set.
		got := texts(t, evs[1], len(want)+senders*each)
		d := deliveredTexts(t, s, bob)
		if len(d) != len(got) || strings.Join(d[:3], "|") != strings.Join(want, "|") {
			t.Fatalf("relayed %q", d)
		}
		checkPerSenderOrder(t, d[3:], senders, each)
		sameMessages(t, got, d)
		if s.SwitchboardsOpened() < 4 {
			t.Fatalf("only %d switchboards opened", s.SwitchboardsOpened())
		}
	})
}

// sameMessages checks that bob's events hold what the server relayed,
// each once (in any order: see TestConversationIdleTimeoutResends).
func sameMessages(t *testing.T, got, relayed []string) {
	t.Helper()
	count := map[string]int{}
	for _, m := range relayed {
		count[m]++
	}
	for _, m := range got {
		count[m]--
	}
	for m, n := range count {
		if n != 0 {
			t.Fatalf("%q: relayed and received counts differ by %d (got %q, relayed %q)", m, n, got, relayed)
		}
	}
}

// checkPerSenderOrder checks that got holds each "g%d-%d" exactly once and
// every sender's messages in order.
func checkPerSenderOrder(t *testing.T, got []string, senders, each int) {
	t.Helper()
	next := make([]int, senders)
	for _, m := range got {
		var g, i int
		if _, err := fmt.Sscanf(m, "g%d-%d", &g, &i); err != nil || g < 0 || g >= senders {
			t.Fatalf("unexpected message %q in %q", m, got)
		}
		if i != next[g] {
			t.Fatalf("sender %d: got message %d, want %d (all: %q)", g, i, next[g], got)
		}
		next[g]++
	}
	for g, n := range next {
		if n != each {
			t.Fatalf("sender %d: %d of %d messages arrived: %q", g, n, each, got)
		}
	}
}

func TestConversationConcurrentSendsKeepOrder(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cs, evs := chatSetup(t, p, alice, bob)
		cv := cs[0].Chat(bob)
		const senders, each = 4, 10
		var wg sync.WaitGroup
		errs := make(chan error, senders*each)
		for g := 0; g < senders; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if err := cv.SendText(ctxT(t), fmt.Sprintf("g%d-%d", g, i), msnp.DefaultTextFormat()); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		checkPerSenderOrder(t, texts(t, evs[1], senders*each), senders, each)
		if n := s.SwitchboardsOpened(); n != 1 {
			t.Fatalf("%d switchboards for one conversation", n)
		}
	})
}

func TestConversationDropMidMessage(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cs, evs := chatSetup(t, p, alice, bob)
		cv := cs[0].Chat(bob)
		if err := cv.SendText(ctxT(t), "first", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		// The server reads the next MSG and dies before relaying it.
		s.DropNextMessage(alice)
		for _, m := range []string{"second", "third"} {
			if err := cv.SendText(ctxT(t), m, msnp.DefaultTextFormat()); err != nil {
				t.Fatalf("%s: %v", m, err)
			}
		}
		d := deliveredTexts(t, s, bob)
		if strings.Join(d, "|") != "first|second|third" {
			t.Fatalf("server relayed %q", d)
		}
		sameMessages(t, texts(t, evs[1], 3), d)
		if s.SwitchboardsOpened() < 2 {
			t.Fatal("the resend did not open a new switchboard")
		}
	})
}

func TestConversationDroppedSwitchboardBetweenMessages(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cs, evs := chatSetup(t, p, alice, bob)
		cv := cs[0].Chat(bob)
		if err := cv.SendText(ctxT(t), "one", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		nextMessage(t, evs[1])
		// Bob's side of the switchboard dies: alice is left alone in it, and
		// Escargot would ACK into the void. Alice must notice and re-CAL.
		if s.DropSwitchboards(bob) != 1 {
			t.Fatal("nothing dropped")
		}
		if err := cv.WaitPeerGone(ctxT(t), bob); err != nil {
			t.Fatal(err)
		}
		if err := cv.SendText(ctxT(t), "two", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		if m := nextMessage(t, evs[1]); m.Text != "two" {
			t.Fatalf("bob got %+v", m)
		}
		// The switchboard alice was left alone in was closed, not kept.
		if err := s.WaitSBSessions(ctxT(t), alice, 1); err != nil {
			t.Fatal(err)
		}
		// Bob's answer to the new invitation replaced his dead switchboard:
		// his reply goes through it, opening nothing.
		if err := cs[1].Chat(alice).SendText(ctxT(t), "three", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		if m := nextMessage(t, evs[0]); m.Text != "three" || m.Conversation.ID != bob {
			t.Fatalf("alice got %+v", m)
		}
		if n := s.SwitchboardsOpened(); n != 2 {
			t.Fatalf("%d switchboards opened, want 2", n)
		}
	})
}

func TestConversationNAK(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cs, evs := chatSetup(t, p, alice, bob)
		cv := cs[0].Chat(bob)
		s.NAKNext(alice)
		if err := cv.SendText(ctxT(t), "refused once", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		if err := cv.SendText(ctxT(t), "after", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		if got := texts(t, evs[1], 2); strings.Join(got, "|") != "refused once|after" {
			t.Fatalf("bob got %q", got)
		}
		if d := deliveredTexts(t, s, bob); len(d) != 2 {
			t.Fatalf("relayed %q", d)
		}
	})
}

func TestConversationOfflineContact(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s := newServer(t)
		s.AddAccount(alice, "pw", "")
		s.AddAccount(bob, "pw", "")
		s.AddContact(alice, bob)
		a, aev := connect(t, config(s, p), alice, "pw")
		online(t, a, aev)
		start := time.Now()
		err := a.Chat(bob).SendText(ctxT(t), "anyone?", msnp.DefaultTextFormat())
		if msnp.CodeOf(err) != msnp.ErrUserNotOnline {
			t.Fatalf("SendText to an offline contact = %v, want 217", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("took %v", time.Since(start))
		}
		// A nudge fails the same way; typing quietly does nothing.
		if err := a.Chat(bob).SendNudge(ctxT(t)); msnp.CodeOf(err) != msnp.ErrUserNotOnline {
			t.Fatalf("nudge = %v", err)
		}
		if err := a.Chat(bob).SendTyping(ctxT(t)); err != nil {
			t.Fatalf("typing = %v", err)
		}
	})
}

func TestConversationRefusedCALs(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cs, _ := chatSetup(t, p, alice, bob)
		s.RefuseCAL(280)
		err := cs[0].Chat(bob).SendText(ctxT(t), "x", msnp.DefaultTextFormat())
		if !errors.Is(err, msnp.ErrSendFailed) || msnp.CodeOf(err) != msnp.ErrSwitchboardFailed {
			t.Fatalf("SendText = %v, want ErrSendFailed wrapping 280", err)
		}
		s.RefuseCAL(0)
		if err := cs[0].Chat(bob).SendText(ctxT(t), "y", msnp.DefaultTextFormat()); err != nil {
			t.Fatalf("after the refusals: %v", err)
		}
	})
}

// silentBob logs bob in with a client that never answers invitations, so
// that alice's CALs ring and nobody joins.
func silentBob(t *testing.T, p msnp.Protocol) (*msnptest.Server, msnp.Config) {
	t.Helper()
	s := newServer(t)
	s.AddAccount(alice, "pw", "")
	s.AddAccount(bob, "pw", "")
	s.AddContact(alice, bob)
	cfg := config(s, p)
	cfg.ManualSwitchboards = true
	b, bev := connect(t, cfg, bob, "pw")
	online(t, b, bev)
	return s, config(s, p)
}

func TestConversationSendTimesOut(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cfg := silentBob(t, p)
		cfg.SwitchboardTimeout = 100 * time.Millisecond
		a, aev := connect(t, cfg, alice, "pw")
		online(t, a, aev)
		start := time.Now()
		err := a.Chat(bob).SendText(ctxT(t), "into the void", msnp.DefaultTextFormat())
		if !errors.Is(err, msnp.ErrSendFailed) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SendText = %v, want ErrSendFailed after timeouts", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
		if n := s.SwitchboardsOpened(); n != 3 {
			t.Fatalf("%d switchboards opened, want one per attempt", n)
		}
		if d := s.Delivered(bob); len(d) != 0 {
			t.Fatalf("delivered %+v", d)
		}
	})
}

func TestConversationSendCancelled(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cfg := silentBob(t, p)
		a, aev := connect(t, cfg, alice, "pw")
		online(t, a, aev)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := a.Chat(bob).SendText(ctx, "never", msnp.DefaultTextFormat()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SendText = %v, want the caller's deadline", err)
		}
		// The abandoned message is not sent later either: closing the
		// client ends the attempt in progress, and the server relayed nothing.
		a.Close()
		if err := s.WaitSBSessions(ctxT(t), alice, 0); err != nil {
			t.Fatal(err)
		}
		if d := s.Delivered(bob); len(d) != 0 {
			t.Fatalf("delivered %+v", d)
		}
	})
}

func TestConversationUnsupportedContent(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		_, cs, evs := chatSetup(t, p, alice, bob)
		if err := cs[0].Chat(bob).SendText(ctxT(t), "hi", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		nextMessage(t, evs[1])
		// Bob's client sends a wink and ink through the same switchboard.
		addr, cookie, err := cs[1].RequestSwitchboard(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		joined := make(chan struct{}, 1)
		sb, err := msnp.DialSwitchboard(ctxT(t), addr, cs[1].EndpointID(), cookie, &msnp.SwitchboardOptions{Handler: func(ev msnp.SwitchboardEvent) {
			if j, ok := ev.(msnp.SBJoined); ok && j.Participant.Passport == alice {
				joined <- struct{}{}
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer sb.Close()
		if _, err := sb.Call(ctxT(t), alice); err != nil {
			t.Fatal(err)
		}
		select {
		case <-joined:
		case <-ctxT(t).Done():
			t.Fatal("alice never joined")
		}
		wink := msnp.NewDatacastMessage(msnp.DatacastWink, "<msnobj/>").Bytes()
		ink := []byte("MIME-Version: 1.0\r\nContent-Type: image/gif\r\n\r\nGIF89a")
		caps := []byte("MIME-Version: 1.0\r\nContent-Type: text/x-clientcaps\r\n\r\nClient-Name: X\r\n")
		for _, pl := range [][]byte{wink, caps, ink} {
			if _, err := sb.SendMessage(ctxT(t), msnp.AckAlways, pl); err != nil {
				t.Fatal(err)
			}
		}
		u1 := evs[0].next(t, "unsupported", is[msnp.ConversationUnsupported]).(msnp.ConversationUnsupported)
		u2 := evs[0].next(t, "unsupported", is[msnp.ConversationUnsupported]).(msnp.ConversationUnsupported)
		if u1.ContentType != msnp.ContentTypeDatacast || u2.ContentType != "image/gif" || u1.From != bob || u1.Conversation.ID != bob {
			t.Fatalf("got %+v %+v", u1, u2)
		}
	})
}

// find returns the first event ever received that accept takes, waiting
// for it; unlike next it neither needs nor moves the read position, for
// events whose order is not defined.
func (e *events) find(t *testing.T, what string, scan func([]msnp.Event) (msnp.Event, bool)) msnp.Event {
	t.Helper()
	timer := time.AfterFunc(wait, func() {
		e.mu.Lock()
		e.cond.Broadcast()
		e.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(wait)
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		if ev, ok := scan(e.evs); ok {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event within %v; got %s", what, wait, fmtEvents(e.evs))
		}
		e.cond.Wait()
	}
}

// joinedIn finds the first ConversationJoined of who, in whatever order
// the joins came.
func joinedIn(t *testing.T, ev *events, who string) msnp.ConversationJoined {
	t.Helper()
	return joinedNth(t, ev, who, 1)
}

// joinedNth finds the nth (from 1) ConversationJoined of who.
func joinedNth(t *testing.T, ev *events, who string, nth int) msnp.ConversationJoined {
	t.Helper()
	return ev.find(t, fmt.Sprintf("ConversationJoined #%d of %s", nth, who), func(evs []msnp.Event) (msnp.Event, bool) {
		n := 0
		for _, e := range evs {
			if j, ok := e.(msnp.ConversationJoined); ok && j.Passport == who {
				if n++; n == nth {
					return e, true
				}
			}
		}
		return nil, false
	}).(msnp.ConversationJoined)
}

func messageWith(t *testing.T, ev *events, text string) msnp.ConversationMessage {
	t.Helper()
	return ev.next(t, "message "+text, func(e msnp.Event) bool {
		m, ok := e.(msnp.ConversationMessage)
		return ok && m.Text == text
	}).(msnp.ConversationMessage)
}

func sameSet(a []string, b ...string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range b {
		found := false
		for _, y := range a {
			found = found || x == y
		}
		if !found {
			return false
		}
	}
	return true
}

func TestConversationGroup(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cs, evs := chatSetup(t, p, alice, bob, carol)
		a, b, c := cs[0], cs[1], cs[2]
		direct := a.Chat(bob)
		if err := direct.Invite(ctxT(t), carol); err != nil {
			t.Fatalf("Invite: %v", err)
		}
		// Alice's new group: both members announced under one new ID.
		jb, jc := joinedIn(t, evs[0], bob), joinedIn(t, evs[0], carol)
		g := jb.Conversation.ID
		if !jb.Conversation.Group || jc.Conversation.ID != g || g == bob || jb.Name != "Bob" {
			t.Fatalf("joined: %+v %+v", jb, jc)
		}
		if info := direct.Info(); info.Group || info.ID != bob {
			t.Fatalf("the direct conversation changed: %+v", info)
		}
		// Bob and Carol each see a group of the other two.
		gb := joinedIn(t, evs[1], carol).Conversation.ID
		gc := joinedIn(t, evs[2], bob).Conversation.ID
		if gb == alice || gc == alice {
			t.Fatalf("invitees put the group in a direct conversation: %q %q", gb, gc)
		}

		if err := a.Group(g, nil).SendText(ctxT(t), "hello all", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		mb, mc := messageWith(t, evs[1], "hello all"), messageWith(t, evs[2], "hello all")
		if mb.Conversation.ID != gb || !mb.Conversation.Group || !sameSet(mb.Conversation.Participants, alice, carol) {
			t.Fatalf("bob: %+v", mb)
		}
		if mc.Conversation.ID != gc || !sameSet(mc.Conversation.Participants, alice, bob) {
			t.Fatalf("carol: %+v", mc)
		}
		if err := b.Group(gb, nil).SendText(ctxT(t), "hi from bob", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		if m := messageWith(t, evs[0], "hi from bob"); m.Conversation.ID != g || m.From != bob {
			t.Fatalf("alice: %+v", m)
		}
		if m := messageWith(t, evs[2], "hi from bob"); m.Conversation.ID != gc {
			t.Fatalf("carol: %+v", m)
		}

		// Carol leaves; the group keeps its ID.
		if err := c.Group(gc, nil).Leave(); err != nil {
			t.Fatal(err)
		}
		l := evs[0].next(t, "ConversationLeft", is[msnp.ConversationLeft]).(msnp.ConversationLeft)
		if l.Passport != carol || l.Conversation.ID != g || !sameSet(l.Conversation.Participants, bob) {
			t.Fatalf("left: %+v", l)
		}
		if l := evs[1].next(t, "ConversationLeft", is[msnp.ConversationLeft]).(msnp.ConversationLeft); l.Conversation.ID != gb || l.Passport != carol {
			t.Fatalf("bob's left: %+v", l)
		}
		before := len(deliveredTexts(t, s, carol))
		if err := a.Group(g, nil).SendText(ctxT(t), "after carol", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		if m := messageWith(t, evs[1], "after carol"); m.Conversation.ID != gb {
			t.Fatalf("bob: %+v", m)
		}
		// And Carol comes back by invitation, into the same group.
		if err := a.Group(g, nil).Invite(ctxT(t), carol); err != nil {
			t.Fatal(err)
		}
		if j := joinedNth(t, evs[0], carol, 2); j.Conversation.ID != g {
			t.Fatalf("rejoin: %+v", j)
		}
		if j := joinedNth(t, evs[1], carol, 2); j.Conversation.ID != gb {
			t.Fatalf("bob saw the rejoin in %+v", j)
		}
		if got := deliveredTexts(t, s, carol); len(got) != before {
			t.Fatalf("carol got messages after leaving: %q", got[before:])
		}

		// The direct conversation is still there, on its own switchboard.
		if err := direct.SendText(ctxT(t), "just us", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		if m := messageWith(t, evs[1], "just us"); m.Conversation.ID != alice || m.Conversation.Group {
			t.Fatalf("bob: %+v", m)
		}
	})
}

func TestConversationThirdJoinMakesGroup(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		_, cs, evs := chatSetup(t, p, alice, bob, carol)
		a, b := cs[0], cs[1]
		if err := a.Chat(bob).SendText(ctxT(t), "one to one", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		messageWith(t, evs[1], "one to one")
		// Bob invites Carol into the switchboard he shares with Alice, as an
		// MSN client does: Alice's side becomes a group conversation.
		if err := b.Chat(alice).Invite(ctxT(t), carol); err != nil {
			t.Fatal(err)
		}
		// Bob's Invite made a new group (and switchboard) of its own...
		jb := joinedIn(t, evs[1], carol)
		// ...which reached Alice as an invitation with two others: a group.
		ja := joinedIn(t, evs[0], carol)
		if !ja.Conversation.Group || ja.Conversation.ID == bob || !jb.Conversation.Group {
			t.Fatalf("%+v %+v", ja, jb)
		}
		// The direct conversations are intact.
		if err := a.Chat(bob).SendText(ctxT(t), "still direct", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		if m := messageWith(t, evs[1], "still direct"); m.Conversation.ID != alice {
			t.Fatalf("%+v", m)
		}
	})
}

func TestConversationGroupAfterRestart(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		_, cs, evs := chatSetup(t, p, alice, bob, carol)
		g := cs[0].Group("saved-group-id", []string{"Bob@example.com", carol, alice})
		if info := g.Info(); info.ID != "saved-group-id" || !info.Group || !sameSet(info.Participants, bob, carol) {
			t.Fatalf("Info = %+v", info)
		}
		if err := g.SendText(ctxT(t), "restored", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs[1:] {
			if m := messageWith(t, ev, "restored"); !m.Conversation.Group {
				t.Fatalf("%+v", m)
			}
		}
		if j := joinedIn(t, evs[0], carol); j.Conversation.ID != "saved-group-id" {
			t.Fatalf("%+v", j)
		}
	})
}

func TestConversationLeaveAndClose(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cs, evs := chatSetup(t, p, alice, bob, carol)
		a := cs[0]
		cv := a.Chat(bob)
		if err := cv.SendText(ctxT(t), "one", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		// Bob reads each switchboard on its own goroutine: what came through
		// the first is not ordered against the second, so wait for it.
		if m := nextMessage(t, evs[1]); m.Text != "one" {
			t.Fatalf("bob got %+v", m)
		}
		if err := cv.Leave(); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitSBSessions(ctxT(t), alice, 0); err != nil {
			t.Fatalf("Leave left the switchboard open: %v", err)
		}
		// A direct conversation can be used again.
		if err := cv.SendText(ctxT(t), "two", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		if m := nextMessage(t, evs[1]); m.Text != "two" {
			t.Fatalf("bob got %+v", m)
		}
		// A group left is gone.
		g := a.Group("team", []string{bob, carol})
		if err := g.SendText(ctxT(t), "team", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		g.Leave()
		if err := g.SendText(ctxT(t), "again", msnp.DefaultTextFormat()); !errors.Is(err, msnp.ErrConversationLeft) {
			t.Fatalf("send after Leave = %v", err)
		}
		if a.Group("team", nil) == g {
			t.Fatal("Group returned the left conversation")
		}
		// Close ends every switchboard.
		a.Close()
		if err := s.WaitSBSessions(ctxT(t), alice, 0); err != nil {
			t.Fatalf("Close left switchboards open: %v", err)
		}
	})
}

func TestConversationInviteOffline(t *testing.T) {
	forVersions(t, sbVersions, func(t *testing.T, p msnp.Protocol) {
		s, cs, _ := chatSetup(t, p, alice, bob)
		s.AddAccount(carol, "pw", "")
		err := cs[0].Chat(bob).Invite(ctxT(t), carol)
		if msnp.CodeOf(err) != msnp.ErrUserNotOnline {
			t.Fatalf("Invite of an offline user = %v, want 217", err)
		}
		if err := cs[0].Chat(bob).Invite(ctxT(t), "not a passport"); err == nil {
			t.Fatal("Invite accepted a bad passport")
		}
		// The half-made group was left again.
		if err := s.WaitSBSessions(ctxT(t), alice, 0); err != nil {
			t.Fatal(err)
		}
	})
}
