//go:build integration && relaybench

package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/matrix/matrixtest"
	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
	"github.com/msnbridge/msnbridge/xmpp/xmpptest"
)

// TestRelayBench measures messages per second and per-message latency of
// four paths in one run, so that the bridged paths are compared with the
// direct ones under the same load: XMPP client to client through Prosody,
// msnptest client to an XMPP user through the bridge, Matrix user to user
// through Dendrite, msnptest client to a Matrix user through the bridge.
// scripts/bench-relay.sh starts the servers and runs it (make bench-relay).
//
// RELAY_N messages are sent per path for throughput (at most RELAY_WINDOW
// sent and not yet received), and RELAY_LAT_N one at a time for latency
// (from just before the send call to the receiver seeing the message).
func TestRelayBench(t *testing.T) {
	n := relayEnvInt("RELAY_N", 500)
	latN := relayEnvInt("RELAY_LAT_N", 200)
	window := relayEnvInt("RELAY_WINDOW", 16)
	var results, concurrent []relayResult

	t.Run("xmpp", func(t *testing.T) {
		xe := xmpptest.EnvFromOS(t)
		suffix := xmpptest.NewID()[:8]
		a := xe.Dial(t, "benchA"+suffix)
		b := xe.Dial(t, "benchB"+suffix)

		// (a) direct: a → b through Prosody.
		direct := relayPath{
			name: "XMPP direct (client → Prosody → client)",
			send: func(ctx context.Context, body string) error {
				a.Message(t, b.Bare(), body)
				return nil
			},
			arrivals: xmppArrivals(t, b, a.Bare()),
		}
		results = append(results, measure(t, direct, n, latN, window))

		// (b) MSN → XMPP through the bridge.
		srv := msnptest.NewServer()
		defer srv.Close()
		srv.SetVersions(12)
		srv.AddAccount("alice@example.com", "pw-alice@example.com", "Alice")
		srv.AddAccount("bob@example.com", "pw-bob@example.com", "Bob")
		srv.AddContact("alice@example.com", "bob@example.com")
		srv.AddAccount("carol@example.com", "pw-carol@example.com", "Carol")
		srv.AddContact("carol@example.com", "bob@example.com")
		cfg := e2eXMPPConfig(t, srv, xe)
		user := xe.Dial(t, "benchU"+suffix)
		br := startXMPPBridge(t, cfg, e2eLogger(t), user)
		defer br.stop(t)
		gw := xe.JID
		r := user.IQ(t, "set", gw, `<query xmlns='`+nsRegister+`'><x xmlns='`+nsData+`' type='submit'>
			<field var='FORM_TYPE'><value>`+nsRegister+`</value></field>
			<field var='passport'><value>alice@example.com</value></field>
			<field var='password'><value>pw-alice@example.com</value></field></x></query>`)
		if r.Attr("type") != "result" {
			t.Fatalf("registration refused: %s", r.Condition())
		}
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer wcancel()
		if err := srv.WaitOnline(wctx, "alice@example.com"); err != nil {
			t.Fatalf("alice is not online on MSN: %v", err)
		}
		user.Expect(t, "the gateway asking for the user's presence", func(n *xmpptest.Node) bool {
			return n.Is("presence", "subscribe") && n.From(gw)
		})
		user.Presence(t, "subscribed", gw)
		user.Presence(t, "subscribe", gw)
		user.Expect(t, "the gateway available", func(n *xmpptest.Node) bool {
			return n.Is("presence", "") && n.From(gw)
		})
		bob := newMSNPeer(t, srv, "bob@example.com", "pw-bob@example.com")

		// MSN direct: bob → carol through msnptest's switchboard, no
		// bridge: the MSN part of the bridged paths, alone.
		carolArrivals := msnArrivals(t, srv, "carol@example.com", "bob@example.com")
		toCarol := bob.Chat("carol@example.com")
		results = append(results, measure(t, relayPath{
			name: "MSN direct (msnptest client → msnptest SB → msnptest client)",
			send: func(ctx context.Context, body string) error {
				return toCarol.SendText(ctx, body, msnp.DefaultTextFormat())
			},
			arrivals: carolArrivals,
		}, n, latN, window))

		bobJID := mustContactJID(t, gw, "bob@example.com")
		chat := bob.Chat("alice@example.com")
		bridged := relayPath{
			name: "MSN → XMPP (msnptest client → msnptest SB → bridge → Prosody → client)",
			send: func(ctx context.Context, body string) error {
				return chat.SendText(ctx, body, msnp.DefaultTextFormat())
			},
			arrivals: xmppArrivals(t, user, bobJID),
		}
		results = append(results, measure(t, bridged, n, latN, window))
		bridged.name = strings.Replace(bridged.name, " (", ", %d concurrent sends (", 1)
		bridged.name = fmt.Sprintf(bridged.name, window)
		bridged.concurrent = true
		concurrent = append(concurrent, measure(t, bridged, n, 20, window))
	})

	t.Run("matrix", func(t *testing.T) {
		srv := msnptest.NewServer()
		defer srv.Close()
		srv.SetVersions(12)
		srv.AddAccount("alice@example.com", "pw-alice@example.com", "Alice")
		srv.AddAccount("bob@example.com", "pw-bob@example.com", "Bob")
		srv.AddContact("alice@example.com", "bob@example.com")
		cfg := e2eMatrixConfig(t, srv)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		hs, secret := cfg.Matrix.HomeserverURL, mustEnv(t, "MSNBRIDGE_TEST_SHARED_SECRET")

		// (c) direct: a → b in a room through Dendrite.
		a := matrixtest.Register(t, ctx, hs, secret, matrixtest.RandomName("bencha"))
		b := matrixtest.Register(t, ctx, hs, secret, matrixtest.RandomName("benchb"))
		room, err := a.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{b.UserID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.JoinRoomByID(ctx, room.RoomID); err != nil {
			t.Fatal(err)
		}
		direct := relayPath{
			name: "Matrix direct (client → Dendrite → client)",
			send: func(ctx context.Context, body string) error {
				_, err := a.SendText(ctx, room.RoomID, body)
				return err
			},
			arrivals: matrixArrivals(t, ctx, b.Client, room.RoomID, a.UserID),
		}
		results = append(results, measure(t, direct, n, latN, window))

		// (d) MSN → Matrix through the bridge.
		br := startBridge(t, cfg)
		defer br.stop(t)
		user, _ := loginThroughBot(t, ctx, cfg, "benchu", "alice@example.com", "pw-alice@example.com")
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if err := srv.WaitOnline(wctx, "alice@example.com"); err != nil {
			t.Fatalf("alice is not online on MSN: %v", err)
		}
		bob := newMSNPeer(t, srv, "bob@example.com", "pw-bob@example.com")
		bobGhost := ghostOf(t, cfg.Matrix, "bob@example.com")
		chat := bob.Chat("alice@example.com")
		// The first message creates the portal; the user joins it.
		if err := chat.SendText(ctx, "hello", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		var portal id.RoomID
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
		user.WaitFor(t, "bob's first message", matrixtest.MessageFrom(bobGhost, portal, "hello"))
		bridged := relayPath{
			name: "MSN → Matrix (msnptest client → msnptest SB → bridge → Dendrite → client)",
			send: func(ctx context.Context, body string) error {
				return chat.SendText(ctx, body, msnp.DefaultTextFormat())
			},
			arrivals: matrixArrivals(t, ctx, user.Client, portal, bobGhost),
		}
		results = append(results, measure(t, bridged, n, latN, window))
		bridged.name = strings.Replace(bridged.name, " (", ", %d concurrent sends (", 1)
		bridged.name = fmt.Sprintf(bridged.name, window)
		bridged.concurrent = true
		concurrent = append(concurrent, measure(t, bridged, n, 20, window))
	})

	fmt.Printf("relay: N=%d (throughput, window %d), %d one at a time (latency)\n", n, window, latN)
	fmt.Printf("relay: | %-80s | %9s | %8s | %8s | %8s | %9s |\n", "path", "msg/s", "p50", "p99", "max", "reordered")
	for _, r := range results {
		fmt.Printf("relay: | %-80s | %9.1f | %8s | %8s | %8s | %9d |\n", r.name, r.rate, fmtDur(r.p50), fmtDur(r.p99), fmtDur(r.max), r.reordered)
	}
	for _, r := range concurrent {
		fmt.Printf("relay: | %-80s | %9.1f | %8s | %8s | %8s | %9s |\n", r.name, r.rate, "", "", "", "")
	}
	if len(results) == 5 {
		for _, pair := range [][2]int{{0, 2}, {3, 4}} {
			d, br := results[pair[0]], results[pair[1]]
			fmt.Printf("relay: %s vs direct: throughput %.1f%% of direct (target ≥ 90%%), p50 added %s (target < 1ms)\n",
				strings.SplitN(br.name, " (", 2)[0], 100*br.rate/d.rate, fmtDur(br.p50-d.p50))
		}
	}
}

// relayPath is one way a message can go: send puts a message with body on
// it, and arrivals yields each message the receiving end sees.
type relayPath struct {
	name     string
	send     func(ctx context.Context, body string) error
	arrivals <-chan arrival
	// concurrent: throughput sends run in their own goroutines (up to the
	// window), for a sender that blocks until its message is acknowledged.
	concurrent bool
}

type arrival struct {
	body string
	at   time.Time
}

type relayResult struct {
	name          string
	rate          float64
	p50, p99, max time.Duration
	reordered     int // throughput messages that arrived out of sending order
}

// benchPrefix marks the messages of the measurements, so that the
// receivers ignore anything else.
const benchPrefix = "relaybench "

// measure runs the latency then the throughput phase on p. Every message
// must arrive, once and in order; a loss fails the test rather than
// flattering the numbers.
func measure(t *testing.T, p relayPath, n, latN, window int) relayResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	next := func(want string) time.Time {
		select {
		case a := <-p.arrivals:
			if a.body != want {
				t.Fatalf("%s: received %q, want %q", p.name, a.body, want)
			}
			return a.at
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: %q never arrived", p.name, want)
		}
		return time.Time{}
	}
	run := xmpptest.NewID()[:6]

	// A few unmeasured messages first: the MSN paths open their
	// switchboard with the first one.
	for i := range 5 {
		body := fmt.Sprintf("%swarm %s %d", benchPrefix, run, i)
		if err := p.send(ctx, body); err != nil {
			t.Fatalf("%s: send: %v", p.name, err)
		}
		next(body)
	}

	lat := make([]time.Duration, 0, latN)
	for i := range latN {
		body := fmt.Sprintf("%slat %s %d", benchPrefix, run, i)
		start := time.Now()
		if err := p.send(ctx, body); err != nil {
			t.Fatalf("%s: send: %v", p.name, err)
		}
		lat = append(lat, next(body).Sub(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })

	// Throughput: the sender keeps at most window messages in flight; the
	// receiver frees a slot per arrival.
	slots := make(chan struct{}, window)
	var last time.Time
	var recvErr error
	reordered := 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A receiver that gives up stops the sender waiting for a slot.
		defer func() {
			if recvErr != nil {
				cancel()
			}
		}()
		// Every message must arrive once; order is counted, not
		// required (a reordered message is a finding, not a loss).
		seen := make([]bool, n)
		tp := fmt.Sprintf("%stp %s ", benchPrefix, run)
		for i := range n {
			select {
			case a := <-p.arrivals:
				k, err := strconv.Atoi(strings.TrimPrefix(a.body, tp))
				if !strings.HasPrefix(a.body, tp) || err != nil || k < 0 || k >= n || seen[k] {
					recvErr = fmt.Errorf("received %q (unknown or duplicate) as message %d", a.body, i)
					return
				}
				seen[k] = true
				if k != i {
					reordered++
				}
				last = a.at
				<-slots
			case <-time.After(20 * time.Second):
				recvErr = fmt.Errorf("only %d of %d messages arrived", i, n)
				return
			}
		}
	}()
	start := time.Now()
	for i := range n {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			t.Fatalf("%s: %v (receiver: %v)", p.name, ctx.Err(), recvErr)
		}
		body := fmt.Sprintf("%stp %s %d", benchPrefix, run, i)
		if p.concurrent {
			// The slot bounds the sends in flight; their order is the
			// scheduler's, so "out of order" means little here.
			go func() {
				if err := p.send(ctx, body); err != nil && ctx.Err() == nil {
					t.Errorf("%s: send: %v", p.name, err)
					cancel()
				}
			}()
			continue
		}
		if err := p.send(ctx, body); err != nil {
			wg.Wait()
			t.Fatalf("%s: send: %v (receiver: %v)", p.name, err, recvErr)
		}
	}
	wg.Wait()
	if recvErr != nil {
		t.Fatalf("%s: %v", p.name, recvErr)
	}
	r := relayResult{
		name:      p.name,
		rate:      float64(n) / last.Sub(start).Seconds(),
		p50:       lat[len(lat)/2],
		p99:       lat[min(len(lat)-1, len(lat)*99/100)],
		max:       lat[len(lat)-1],
		reordered: reordered,
	}
	t.Logf("%s: %.1f msg/s, p50 %s, p99 %s, max %s, %d of %d out of order", r.name, r.rate, fmtDur(r.p50), fmtDur(r.p99), fmtDur(r.max), r.reordered, n)
	return r
}

// xmppArrivals hands on, in order, the bench messages c receives from the
// bare JID from, stamped when the client's reader kept them (Await wakes
// on each arrival).
func xmppArrivals(t *testing.T, c *xmpptest.Client, from string) <-chan arrival {
	out := make(chan arrival, 1<<14)
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			n := c.Await(time.Second, func(n *xmpptest.Node) bool {
				return n.Is("message", "chat") && n.From(from) && strings.HasPrefix(n.Body(), benchPrefix)
			})
			if n != nil {
				out <- arrival{body: n.Body(), at: time.Now()}
			}
		}
	}()
	return out
}

// matrixArrivals runs its own sync loop for cli (beside matrixtest's,
// which keeps every event and is not stamped) and hands on, in order, the
// bench messages sender sends to room, stamped when the sync returned.
func matrixArrivals(t *testing.T, ctx context.Context, cli *mautrix.Client, room id.RoomID, sender id.UserID) <-chan arrival {
	out := make(chan arrival, 1<<14)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	// Start from now: earlier messages are not this measurement's.
	resp, err := cli.FullSyncRequest(ctx, mautrix.ReqSync{Timeout: 0})
	if err != nil {
		t.Fatalf("first sync: %v", err)
	}
	since := resp.NextBatch
	go func() {
		for ctx.Err() == nil {
			// An inline filter with a high timeline limit: with the
			// default (Dendrite: 20) a burst comes back "limited", with
			// a gap, and the bench would count messages as lost.
			resp, err := cli.FullSyncRequest(ctx, mautrix.ReqSync{Timeout: 30000, Since: since, FilterID: `{"room":{"timeline":{"limit":1000}}}`})
			if err != nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			at := time.Now()
			since = resp.NextBatch
			joined := resp.Rooms.Join[room]
			if joined == nil {
				continue
			}
			if joined.Timeline.Limited {
				// Dendrite sometimes says limited with far fewer events than
				// the limit; the count of arrivals is what catches a loss.
				t.Logf("sync for %s returned a limited timeline", room)
			}
			for _, evt := range joined.Timeline.Events {
				if evt.Type != event.EventMessage || evt.Sender != sender {
					continue
				}
				_ = evt.Content.ParseRaw(evt.Type)
				if c, ok := evt.Content.Parsed.(*event.MessageEventContent); ok && strings.HasPrefix(c.Body, benchPrefix) {
					out <- arrival{body: c.Body, at: at}
				}
			}
		}
	}()
	return out
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
}

// relayEnvInt is the integer in the environment variable name, or def.
func relayEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// msnArrivals logs passport in with its own msnp client and hands on, in
// order, the bench messages it receives from from, stamped in the event
// handler.
func msnArrivals(t *testing.T, srv *msnptest.Server, passport, from string) <-chan arrival {
	t.Helper()
	out := make(chan arrival, 1<<14)
	c, err := msnp.New(msnp.Config{Server: srv.NSAddr(), LoginURL: srv.LoginURL(), Protocols: []msnp.Protocol{msnp.MSNP12}},
		passport, "pw-"+passport, func(ev msnp.Event) {
			if m, ok := ev.(msnp.ConversationMessage); ok && strings.EqualFold(m.From, from) && strings.HasPrefix(m.Text, benchPrefix) {
				out <- arrival{body: m.Text, at: time.Now()}
			}
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
	t.Cleanup(func() { c.Close() })
	return out
}
