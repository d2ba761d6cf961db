package bridge

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/store"
)

// countingFrontend takes every event and counts the messages, as cheaply as
// a frontend can, so that the outbox's own cost is what is measured.
type countingFrontend struct {
	kind string
	n    atomic.Int64
	want int64
	done chan struct{}
	once sync.Once
}

func (f *countingFrontend) Kind() string { return f.kind }

func (f *countingFrontend) Deliver(ctx context.Context, user UserID, ev Event) (string, error) {
	if _, ok := ev.(Message); ok {
		if f.n.Add(1) == f.want {
			f.once.Do(func() { close(f.done) })
		}
	}
	return "", nil
}

// outboxBench is a bridge with a store and a frontend, and users each with
// a login and a direct portal (message mappings need the portal).
type outboxBench struct {
	path    string
	st      *store.Store
	b       *Bridge
	users   []UserID
	portals []PortalID
}

func newOutboxBench(tb testing.TB, fe Frontend, users int) *outboxBench {
	tb.Helper()
	ctx := context.Background()
	path := filepath.Join(tb.TempDir(), "bench.db")
	st, err := store.Open(ctx, "sqlite3", path, zerolog.Nop(),
		store.WithQueueLimit(1<<20)) // the pushes may run ahead of delivery
	if err != nil {
		tb.Fatal(err)
	}
	b, err := New(Options{Store: st, Log: zerolog.Nop(), DeliveryRetry: 20 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	b.AddFrontend(fe)
	ob := &outboxBench{st: st, b: b, path: path}
	tb.Cleanup(func() {
		b.Stop()
		_ = st.Close()
	})
	for i := range users {
		u := UserID{Frontend: fe.Kind(), ID: fmt.Sprintf("user%d@example.org", i)}
		l, err := st.Logins.Put(ctx, store.Login{User: u.storeID(), Passport: fmt.Sprintf("user%d@example.com", i)}, "")
		if err != nil {
			tb.Fatal(err)
		}
		p, _, err := st.Portals.GetOrCreateDirect(ctx, l.ID, "bob@example.com")
		if err != nil {
			tb.Fatal(err)
		}
		ob.users = append(ob.users, u)
		ob.portals = append(ob.portals, PortalID(p.ID))
	}
	return ob
}

// BenchmarkOutboxPushDeliver is the durable outbox's share of the MSN →
// frontend relay: b.N messages emitted (queued in the store), delivered to
// a frontend that does nothing, their mappings recorded and their queue
// rows removed. senders goroutines emit at once, spread over users; each
// emits its share one after another, as one MSN conversation does.
func BenchmarkOutboxPushDeliver(b *testing.B) {
	for _, c := range []struct{ users, senders int }{{1, 1}, {1, 16}, {4, 4}} {
		b.Run(fmt.Sprintf("users=%d/senders=%d", c.users, c.senders), func(b *testing.B) {
			fe := &countingFrontend{kind: "xmpp", done: make(chan struct{})}
			ob := newOutboxBench(b, fe, c.users)
			fe.want = int64(b.N)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for s := range c.senders {
				n := b.N / c.senders
				if s < b.N%c.senders {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					u := s % c.users
					for i := range n {
						ob.b.emit(ob.users[u], Message{Portal: ob.portals[u], Sender: "bob@example.com",
							MSNID: newMSNID(), Text: Text{Body: fmt.Sprintf("message %d", i)}, Time: time.Now()})
					}
				}()
			}
			wg.Wait()
			select {
			case <-fe.done:
			case <-time.After(time.Minute):
				b.Fatalf("delivered %d of %d", fe.n.Load(), b.N)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
		})
	}
}
