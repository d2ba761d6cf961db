package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/store"
)

// recordingFrontend records, per user, the text of every message and
// notice delivered, and can refuse everything for a while.
type recordingFrontend struct {
	mu   sync.Mutex
	got  map[UserID][]string
	down bool
	n    int
	wake chan struct{}
}

func newRecordingFrontend() *recordingFrontend {
	return &recordingFrontend{got: map[UserID][]string{}, wake: make(chan struct{}, 1)}
}

func (f *recordingFrontend) Kind() string { return "xmpp" }

func (f *recordingFrontend) Deliver(ctx context.Context, user UserID, ev Event) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return "", errors.New("server unreachable")
	}
	switch e := ev.(type) {
	case Message:
		f.got[user] = append(f.got[user], e.Text.Body)
	case Notice:
		f.got[user] = append(f.got[user], e.Text)
	}
	f.n++
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return "", nil
}

func (f *recordingFrontend) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *recordingFrontend) delivered() (int, map[UserID][]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	got := map[UserID][]string{}
	for u, texts := range f.got {
		got[u] = append([]string(nil), texts...)
	}
	return f.n, got
}

// waitUntil polls cond, waking on every delivery, for up to 20 s.
func (f *recordingFrontend) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-f.wake:
		case <-time.After(10 * time.Millisecond): // cond may depend on the store too
		case <-deadline:
			n, _ := f.delivered()
			t.Fatalf("timed out waiting for %s (%d events delivered)", what, n)
		}
	}
}

// emitters is the concurrent workload of the outbox tests: per user,
// senders goroutines each emitting n events "<user>/<sender>/<i>", every
// fifth a notice (removed from the queue at once) and the rest messages
// (removed in batches).
type emitters struct {
	users, senders, n int
}

func (w emitters) text(u, s, i int) string { return fmt.Sprintf("%d/%d/%d", u, s, i) }

// run emits everything and returns when all is emitted.
func (w emitters) run(b *Bridge, ob *outboxBench) {
	var wg sync.WaitGroup
	for u := range w.users {
		for s := range w.senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range w.n {
					text := w.text(u, s, i)
					if i%5 == 4 {
						b.emit(ob.users[u], Notice{Portal: ob.portals[u], Text: text})
						continue
					}
					b.emit(ob.users[u], Message{Portal: ob.portals[u], Sender: "bob@example.com",
						MSNID: newMSNID(), Text: Text{Body: text}, Time: time.Now()})
				}
			}()
		}
	}
	wg.Wait()
}

// check fails unless each sender's events arrived as a prefix of what it
// emitted (all of it when complete), in order, each once.
func (w emitters) check(t *testing.T, ob *outboxBench, got map[UserID][]string, complete bool) {
	t.Helper()
	for u, user := range ob.users {
		next := make([]int, w.senders)
		for _, text := range got[user] {
			var gu, gs, gi int
			if _, err := fmt.Sscanf(text, "%d/%d/%d", &gu, &gs, &gi); err != nil || gu != u || gs >= w.senders {
				t.Fatalf("%s got %q", user, text)
			}
			if gi != next[gs] {
				t.Fatalf("%s: sender %d's event %d arrived where %d was due", user, gs, gi, next[gs])
			}
			next[gs]++
		}
		for s := range w.senders {
			if complete && next[s] != w.n {
				t.Fatalf("%s: %d of sender %d's %d events arrived", user, next[s], s, w.n)
			}
		}
	}
}

func queueLen(t *testing.T, st *store.Store, users []UserID) int {
	t.Helper()
	total := 0
	for _, u := range users {
		n, err := st.Queue.Len(context.Background(), u.storeID())
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// Many events emitted at once for several users, from several goroutines
// each, are all delivered, each once and in its sender's order, and leave
// the queue empty (the batched removals done).
func TestOutboxConcurrentEmitsKeepOrder(t *testing.T) {
	fe := newRecordingFrontend()
	ob := newOutboxBench(t, fe, 3)
	w := emitters{users: 3, senders: 4, n: 150}
	fe.setDown(true) // a backlog first, then delivery while emitting
	done := make(chan struct{})
	go func() {
		w.run(ob.b, ob)
		close(done)
	}()
	fe.waitUntil(t, "a backlog", func() bool { return queueLen(t, ob.st, ob.users) >= 300 })
	fe.setDown(false)
	<-done
	total := w.users * w.senders * w.n
	fe.waitUntil(t, "every event", func() bool { n, _ := fe.delivered(); return n >= total })
	fe.waitUntil(t, "an empty queue", func() bool { return queueLen(t, ob.st, ob.users) == 0 })
	n, got := fe.delivered()
	if n != total {
		t.Fatalf("%d events delivered, want %d", n, total)
	}
	w.check(t, ob, got, true)
}

// A crash in the middle of a stream (the store closed under the bridge,
// which then cannot commit or remove anything) and a restart deliver every
// event that was committed, in order and without a gap, and repeat at most
// the one event per user whose delivery was not yet recorded.
func TestOutboxCrashMidStreamRedeliversInOrder(t *testing.T) {
	fe := newRecordingFrontend()
	ob := newOutboxBench(t, fe, 3)
	w := emitters{users: 3, senders: 4, n: 400}
	fe.setDown(true)
	done := make(chan struct{})
	go func() {
		w.run(ob.b, ob)
		close(done)
	}()
	fe.waitUntil(t, "a backlog", func() bool { return queueLen(t, ob.st, ob.users) >= 600 })
	fe.setDown(false)
	fe.waitUntil(t, "some deliveries", func() bool { n, _ := fe.delivered(); return n >= 200 })
	_ = ob.st.Close() // the crash
	<-done
	ob.b.Stop()
	_, before := fe.delivered()

	st, err := store.Open(context.Background(), "sqlite3", ob.path, zerolog.Nop(), store.WithQueueLimit(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	// What was committed and not yet removed at the crash; what was
	// removed had been delivered.
	queued := map[UserID][]string{}
	for _, u := range ob.users {
		evs, err := st.Queue.Peek(context.Background(), u.storeID(), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range evs {
			ev, err := decodeEvent(q.Payload)
			if err != nil {
				t.Fatal(err)
			}
			switch e := ev.(type) {
			case Message:
				queued[u] = append(queued[u], e.Text.Body)
			case Notice:
				queued[u] = append(queued[u], e.Text)
			}
		}
	}
	if len(queued) == 0 {
		t.Fatal("nothing was left queued at the crash: the test did not crash mid-stream")
	}
	b, err := New(Options{Store: st, Log: zerolog.Nop(), DeliveryRetry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.AddFrontend(fe)
	t.Cleanup(b.Stop)
	if err := b.redeliverQueued(context.Background()); err != nil {
		t.Fatal(err)
	}
	fe.waitUntil(t, "the queue redelivered", func() bool { return queueLen(t, st, ob.users) == 0 })
	_, after := fe.delivered()
	repeated := 0
	for _, u := range ob.users {
		pre, all := before[u], after[u]
		if len(pre) > 0 && len(all) > len(pre) && all[len(pre)] == pre[len(pre)-1] {
			// Delivered, not yet recorded at the crash: repeated once.
			all = append(all[:len(pre)], all[len(pre)+1:]...)
			after[u] = all
			repeated++
		}
	}
	if repeated > len(ob.users) {
		t.Fatalf("%d repeats", repeated)
	}
	w.check(t, ob, after, false)
	for _, u := range ob.users {
		seen := map[string]bool{}
		for _, text := range after[u] {
			seen[text] = true
		}
		for _, text := range queued[u] {
			if !seen[text] {
				t.Fatalf("%s: %q was queued at the crash and never delivered", u, text)
			}
		}
	}
	if n, _ := fe.delivered(); n <= len(before[ob.users[0]])+len(before[ob.users[1]])+len(before[ob.users[2]]) {
		t.Fatal("nothing was delivered after the restart")
	}
}

// Emitting does not wait for the commit, but Stop does: everything emitted
// before Stop is in the store after it.
func TestOutboxStopCommitsEverythingEmitted(t *testing.T) {
	fe := newRecordingFrontend()
	fe.setDown(true)
	ob := newOutboxBench(t, fe, 2)
	w := emitters{users: 2, senders: 3, n: 200}
	w.run(ob.b, ob)
	ob.b.Stop()
	if n := queueLen(t, ob.st, ob.users); n != w.users*w.senders*w.n {
		t.Fatalf("%d events queued after Stop, %d emitted", n, w.users*w.senders*w.n)
	}
}
