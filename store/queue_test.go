package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// pushers is a workload for the group-commit tests: senders goroutines per
// user, each pushing n payloads "<user>/<sender>/<i>" one after another.
type pushers struct {
	users   []UserID
	senders int
	n       int
}

func (p pushers) payload(u, s, i int) string { return fmt.Sprintf("%d/%d/%d", u, s, i) }

// run pushes concurrently and returns, per user, the payloads whose Push
// returned nil, keyed by sender, in pushing order. stop, when closed, makes
// the senders stop early.
func (p pushers) run(t *testing.T, q *Queue, stop <-chan struct{}) [][][]string {
	t.Helper()
	ok := make([][][]string, len(p.users))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for u := range p.users {
		ok[u] = make([][]string, p.senders)
		for s := range p.senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range p.n {
					select {
					case <-stop:
						return
					default:
					}
					payload := p.payload(u, s, i)
					if _, err := q.Push(context.Background(), p.users[u], []byte(payload)); err != nil {
						continue // not promised: need not be there
					}
					mu.Lock()
					ok[u][s] = append(ok[u][s], payload)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return ok
}

// checkQueued fails unless each user's queue holds exactly the payloads in
// want (per sender), each sender's in its order, ids increasing.
func checkQueued(t *testing.T, s *Store, p pushers, want [][][]string) {
	t.Helper()
	ctx := context.Background()
	for u, user := range p.users {
		evs, err := s.Queue.Peek(ctx, user, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		got := make([][]string, p.senders)
		var last int64
		for _, ev := range evs {
			if ev.ID <= last {
				t.Fatalf("%s: id %d after %d", user, ev.ID, last)
			}
			last = ev.ID
			var pu, ps, pi int
			if _, err := fmt.Sscanf(string(ev.Payload), "%d/%d/%d", &pu, &ps, &pi); err != nil || pu != u {
				t.Fatalf("%s holds %q", user, ev.Payload)
			}
			got[ps] = append(got[ps], string(ev.Payload))
		}
		for sdr := range p.senders {
			if fmt.Sprint(got[sdr]) != fmt.Sprint(want[u][sdr]) {
				t.Fatalf("%s, sender %d: queued %v, want %v", user, sdr, got[sdr], want[u][sdr])
			}
		}
	}
}

// Many concurrent pushes for several users share transactions; none is
// lost, none is duplicated, and each sender's stay in its order.
func TestQueueGroupCommitKeepsOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t, WithQueueLimit(10000))
		p := pushers{users: []UserID{alice, bob, {Frontend: "xmpp", ID: "carol@example.org"}}, senders: 4, n: 60}
		ok := p.run(t, s.Queue, nil)
		for u := range p.users {
			for sdr := range p.senders {
				if len(ok[u][sdr]) != p.n {
					t.Fatalf("user %d sender %d: %d of %d pushes succeeded", u, sdr, len(ok[u][sdr]), p.n)
				}
			}
		}
		checkQueued(t, s, p, ok)
	})
}

// A store closed in the middle of a stream of pushes (a crash, as far as
// the queue can tell) and opened again holds exactly the events whose Push
// returned nil, in order.
func TestQueueCrashMidStreamKeepsWhatPushReturned(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		uri := b.newDB(t)
		s := b.openAt(t, uri, WithQueueLimit(100000))
		p := pushers{users: []UserID{alice, bob}, senders: 3, n: 100000}
		stop := make(chan struct{})
		go func() {
			// Close once the stream is well under way.
			for {
				n, err := s.Queue.Len(context.Background(), alice)
				if err != nil || n >= 150 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			_ = s.Close()
			time.Sleep(20 * time.Millisecond) // let the senders see the closed store
			close(stop)
		}()
		ok := p.run(t, s.Queue, stop)
		total := 0
		for u := range ok {
			for _, sent := range ok[u] {
				total += len(sent)
			}
		}
		if total < 150 || total >= len(p.users)*p.senders*p.n {
			t.Fatalf("%d pushes returned nil: the store was not closed mid-stream", total)
		}
		s = b.openAt(t, uri, WithQueueLimit(100000))
		checkQueued(t, s, p, ok)
	})
}

// The limit holds inside one batch, for each user on its own.
func TestQueuePushAllLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t, WithQueueLimit(3))
		ctx := context.Background()
		if _, err := s.Queue.Push(ctx, alice, []byte("a0")); err != nil {
			t.Fatal(err)
		}
		var evs []*Pushed
		for i := range 4 {
			evs = append(evs, &Pushed{User: alice, Payload: fmt.Appendf(nil, "a%d", i+1)},
				&Pushed{User: bob, Payload: fmt.Appendf(nil, "b%d", i)})
		}
		evs = append(evs, &Pushed{User: UserID{Frontend: "xmpp"}, Payload: []byte("nobody")})
		s.Queue.PushAll(ctx, evs)
		var full, queued []string
		for _, ev := range evs[:8] {
			switch {
			case errors.Is(ev.Err, ErrQueueFull):
				full = append(full, string(ev.Payload))
			case ev.Err == nil && ev.ID > 0:
				queued = append(queued, string(ev.Payload))
			default:
				t.Fatalf("%s: id %d, %v", ev.Payload, ev.ID, ev.Err)
			}
		}
		for i, ev := range evs[2:8] {
			if ev.Err == nil && evs[i].Err == nil && ev.ID <= evs[i].ID {
				t.Fatalf("%s has id %d after %s's %d", ev.Payload, ev.ID, evs[i].Payload, evs[i].ID)
			}
		}
		if fmt.Sprint(queued) != "[a1 b0 a2 b1 b2]" || fmt.Sprint(full) != "[a3 a4 b3]" {
			t.Fatalf("queued %v, full %v", queued, full)
		}
		if evs[8].Err == nil || errors.Is(evs[8].Err, ErrQueueFull) {
			t.Fatalf("an event for a user without an id: %v", evs[8].Err)
		}
		if n, _ := s.Queue.Len(ctx, bob); n != 3 {
			t.Fatalf("bob's queue holds %d", n)
		}
	})
}

// Delivered removes a user's events up to an id, and records mappings,
// skipping duplicates and portals that no longer exist.
func TestQueueDelivered(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		l, err := s.Logins.Put(ctx, Login{User: alice, Passport: "alice@hotmail.com"}, "")
		if err != nil {
			t.Fatal(err)
		}
		portal, _, err := s.Portals.GetOrCreateDirect(ctx, l.ID, "bob@hotmail.com")
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for i := range 5 {
			id, err := s.Queue.Push(ctx, alice, fmt.Appendf(nil, "%d", i))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		bobID, err := s.Queue.Push(ctx, bob, []byte("bob's"))
		if err != nil {
			t.Fatal(err)
		}
		m := MessageMapping{PortalID: portal.ID, MSNID: "m1", FrontendID: "$e1", Direction: FromMSN, Time: time.UnixMilli(1000)}
		gone := MessageMapping{PortalID: "no-such-portal", MSNID: "m2", FrontendID: "$e2", Direction: FromMSN}
		if err := s.Queue.Delivered(ctx, alice, ids[2], m, gone); err != nil {
			t.Fatal(err)
		}
		evs, err := s.Queue.Peek(ctx, alice, 10)
		if err != nil || len(evs) != 2 || evs[0].ID != ids[3] {
			t.Fatalf("alice's queue after Delivered through %d: %+v, %v", ids[2], evs, err)
		}
		if evs, _ := s.Queue.Peek(ctx, bob, 10); len(evs) != 1 || evs[0].ID != bobID {
			t.Fatalf("bob's queue: %+v", evs)
		}
		if got, err := s.Messages.ByMSNID(ctx, portal.ID, "m1"); err != nil || got.FrontendID != "$e1" {
			t.Fatalf("mapping: %+v, %v", got, err)
		}
		// Again: the mapping is a duplicate, nothing is left to remove.
		if err := s.Queue.Delivered(ctx, alice, ids[1], m); err != nil {
			t.Fatal(err)
		}
		if err := s.Queue.Delivered(ctx, alice, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Queue.Delivered(ctx, alice, ids[4], MessageMapping{PortalID: portal.ID, MSNID: "m3"}); err == nil {
			t.Fatal("a mapping without a frontend id was accepted")
		}
		if n, _ := s.Queue.Len(ctx, alice); n != 2 {
			t.Fatalf("a refused Delivered removed events: %d left", n)
		}
	})
}

// When a batch's transaction fails, each op is committed on its own: one
// caller's expired context fails only that caller.
func TestQueueBatchFailureIsolated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		q := s.Queue
		live := context.Background()
		dead, cancel := context.WithCancel(live)
		cancel()
		a := &queueOp{ctx: dead, pushes: []*Pushed{{User: alice, Payload: []byte("dead")}}, wake: make(chan bool, 1)}
		c := &queueOp{ctx: live, pushes: []*Pushed{{User: bob, Payload: []byte("live")}}, wake: make(chan bool, 1)}
		q.commit(dead, []*queueOp{a, c})
		if a.err == nil || c.err != nil {
			t.Fatalf("expired op: %v; live op: %v", a.err, c.err)
		}
		if <-c.wake {
			t.Fatal("the committed op was told to lead")
		}
		if n, _ := q.Len(live, alice); n != 0 {
			t.Fatalf("the expired op's event was queued (%d)", n)
		}
		if evs, _ := q.Peek(live, bob, 10); len(evs) != 1 || evs[0].ID != c.pushes[0].ID {
			t.Fatalf("bob's queue %+v, id returned %d", evs, c.pushes[0].ID)
		}
	})
}

// BenchmarkQueuePushDelivered is the store's share of relaying one message
// from MSN when nothing else is queued: its Push, then its mapping and its
// removal (the outbox's Delivered), each a transaction of its own.
func BenchmarkQueuePushDelivered(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite3", filepath.Join(b.TempDir(), "bench.db")+os.Getenv("BENCH_DSN_EXTRA"), zerolog.Nop(), WithSealer(testSealer(&testing.T{}, 1)))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l, err := s.Logins.Put(ctx, Login{User: alice, Passport: "alice@hotmail.com"}, "")
	if err != nil {
		b.Fatal(err)
	}
	portal, _, err := s.Portals.GetOrCreateDirect(ctx, l.ID, "bob@hotmail.com")
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"type":"message","data":{"Portal":"x","Sender":"bob@hotmail.com","Text":{"Body":"hello"}}}`)
	b.ResetTimer()
	for i := range b.N {
		id, err := s.Queue.Push(ctx, alice, payload)
		if err != nil {
			b.Fatal(err)
		}
		m := MessageMapping{PortalID: portal.ID, MSNID: fmt.Sprint(i), FrontendID: fmt.Sprint("$", i), Direction: FromMSN}
		if err := s.Queue.Delivered(ctx, alice, id, m); err != nil {
			b.Fatal(err)
		}
	}
}

// The queue remembers which users exist; a user deleted meanwhile is
// created again rather than failing the push.
func TestQueuePushAfterUserDeleted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		if _, err := s.Queue.Push(ctx, alice, []byte("1")); err != nil {
			t.Fatal(err)
		}
		if err := s.Users.Delete(ctx, alice); err != nil {
			t.Fatal(err)
		}
		for _, payload := range []string{"2", "3"} {
			if _, err := s.Queue.Push(ctx, alice, []byte(payload)); err != nil {
				t.Fatalf("push after the user was deleted: %v", err)
			}
		}
		evs, err := s.Queue.Peek(ctx, alice, 10)
		if err != nil || len(evs) != 2 || string(evs[0].Payload) != "2" {
			t.Fatalf("queue %+v, %v", evs, err)
		}
	})
}

// SQLite connections leave checkpoints to the store's background
// checkpointer until the WAL is large, and Close stops it.
func TestSQLiteCheckpointSettings(t *testing.T) {
	s := sqliteBackend.openTest(t)
	var pages int
	if err := s.db.QueryRow(context.Background(), "PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if pages != checkpointPages {
		t.Fatalf("wal_autocheckpoint = %d, want %d", pages, checkpointPages)
	}
	if s.stopCheckpoints == nil {
		t.Fatal("no background checkpointer")
	}
}
