//go:build integration && soak

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/matrix/matrixtest"
	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

// TestSoak (make soak) has SOAK_USERS Matrix users chat with their MSN
// contacts through the bridge for SOAK_DURATION while faults are injected:
// the bridge's MSN connection dropped, its switchboards dropped, the bridge
// restarted. It counts what each side sent and received and fails on any
// loss. Duplicates are reported, not failed: MSN has no message ids, so a
// sender that resends after a switchboard died unacknowledged can make
// one, and msnp prefers that to a loss. Loopback only; bounded in users
// and time.
func TestSoak(t *testing.T) {
	users := envInt("SOAK_USERS", 3)
	duration := envDuration("SOAK_DURATION", time.Minute)
	if users < 1 || users > 50 || duration > 30*time.Minute {
		t.Fatalf("SOAK_USERS=%d SOAK_DURATION=%s: keep it within 1..50 users and 30 minutes", users, duration)
	}
	srv := msnptest.NewServer()
	defer srv.Close()
	srv.SetVersions(12)
	for i := 0; i < users; i++ {
		srv.AddAccount(userPassport(i), "pw", fmt.Sprintf("User %d", i))
		srv.AddAccount(contactPassport(i), "pw", fmt.Sprintf("Contact %d", i))
		srv.AddContact(userPassport(i), contactPassport(i))
	}
	cfg := e2eMatrixConfig(t, srv)
	br := startBridge(t, cfg)
	var brMu sync.Mutex
	defer func() {
		brMu.Lock()
		br.stop(t)
		brMu.Unlock()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), duration+5*time.Minute)
	defer cancel()
	type pair struct {
		user    *matrixtest.User
		contact *msnPeer
		ghost   id.UserID
		portal  id.RoomID
	}
	pairs := make([]*pair, users)
	for i := range pairs {
		u, _ := loginThroughBot(t, ctx, cfg, fmt.Sprintf("soak%d-", i), userPassport(i), "pw")
		p := &pair{user: u, contact: newMSNPeer(t, srv, contactPassport(i), "pw"), ghost: ghostOf(t, cfg.Matrix, contactPassport(i))}
		matrixtest.Eventually(t, "the user online for the contact", 20*time.Second, func() bool {
			c, ok := p.contact.Contact(userPassport(i))
			return ok && c.Status == msnp.StatusOnline
		})
		if err := p.contact.Chat(userPassport(i)).SendText(ctx, "hello", msnp.DefaultTextFormat()); err != nil {
			t.Fatal(err)
		}
		matrixtest.Eventually(t, "the portal invite", 20*time.Second, func() bool {
			for _, r := range u.InvitedRooms() {
				for _, e := range u.Invites(r) {
					if e.Sender == p.ghost {
						p.portal = r
						return true
					}
				}
			}
			return false
		})
		if _, err := u.JoinRoomByID(ctx, p.portal); err != nil {
			t.Fatal(err)
		}
		pairs[i] = p
	}

	var (
		mu      sync.Mutex
		sentM2X = map[string]bool{} // MSN to Matrix
		sentX2M = map[string]bool{} // Matrix to MSN
		faults  = map[string]int{}
	)
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for i, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; time.Now().Before(deadline); k++ {
				m := fmt.Sprintf("m2x-%d-%d", i, k)
				sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
				if err := p.contact.Chat(userPassport(i)).SendText(sctx, m, msnp.DefaultTextFormat()); err == nil {
					mu.Lock()
					sentM2X[m] = true
					mu.Unlock()
				}
				scancel()
				x := fmt.Sprintf("x2m-%d-%d", i, k)
				if _, err := p.user.SendText(ctx, p.portal, x); err == nil {
					mu.Lock()
					sentX2M[x] = true
					mu.Unlock()
				}
				time.Sleep(300 * time.Millisecond)
			}
		}()
	}
	// Faults, in turn, until the deadline.
	for n := 0; time.Now().Add(10 * time.Second).Before(deadline); n++ {
		time.Sleep(7 * time.Second)
		victim := userPassport(n % users)
		switch n % 3 {
		case 0:
			srv.Drop(victim)
			faults["notification server drop"]++
		case 1:
			srv.DropSwitchboards(victim)
			faults["switchboard drop"]++
		case 2:
			brMu.Lock()
			br.stop(t)
			br = startBridge(t, cfg)
			brMu.Unlock()
			faults["bridge restart"]++
		}
	}
	wg.Wait()

	// Let everything in flight arrive, then count.
	count := func() (gotM2X, gotX2M map[string]int) {
		gotM2X, gotX2M = map[string]int{}, map[string]int{}
		for _, p := range pairs {
			ghost := p.ghost
			p.user.Count(func(e *event.Event) bool {
				if c, ok := e.Content.Parsed.(*event.MessageEventContent); ok && e.Sender == ghost && strings.HasPrefix(c.Body, "m2x-") {
					gotM2X[c.Body]++
				}
				return false
			})
			for _, m := range p.contact.messages() {
				if strings.HasPrefix(m, "x2m-") {
					gotX2M[m]++
				}
			}
		}
		return
	}
	lost := func(sent map[string]bool, got map[string]int) (l, d int) {
		for m := range sent {
			if got[m] == 0 {
				l++
			}
		}
		for _, n := range got {
			if n > 1 {
				d += n - 1
			}
		}
		return
	}
	var gotM2X, gotX2M map[string]int
	for end := time.Now().Add(90 * time.Second); ; {
		gotM2X, gotX2M = count()
		l1, _ := lost(sentM2X, gotM2X)
		l2, _ := lost(sentX2M, gotX2M)
		if l1+l2 == 0 || time.Now().After(end) {
			break
		}
		time.Sleep(time.Second)
	}
	// A message the server acknowledged but relayed to nobody (the bridge
	// had just left the switchboard: "ACK into the void", FACTS.md §6)
	// never reached the bridge; count those apart from the bridge's own.
	relayed := map[string]bool{}
	for i := range pairs {
		for _, d := range srv.Delivered(userPassport(i)) {
			if k := bytes.LastIndex(d.Payload, []byte("\r\n\r\n")); k >= 0 {
				relayed[string(d.Payload[k+4:])] = true
			}
		}
	}
	void := 0
	for m := range sentM2X {
		if gotM2X[m] == 0 && !relayed[m] {
			void++
			delete(sentM2X, m)
		}
	}
	l1, d1 := lost(sentM2X, gotM2X)
	l2, d2 := lost(sentX2M, gotX2M)
	t.Logf("soak: %d users, %s, faults %v", users, duration, faults)
	t.Logf("MSN to Matrix: sent %d, received %d, lost %d, duplicated %d; acknowledged by the server into the void %d", len(sentM2X), len(gotM2X), l1, d1, void)
	t.Logf("Matrix to MSN: sent %d, received %d, lost %d, duplicated %d", len(sentX2M), len(gotX2M), l2, d2)
	fmt.Printf("soak: %d users, %s, faults %v\nMSN to Matrix: sent %d, received %d, lost %d, duplicated %d, into the void %d\nMatrix to MSN: sent %d, received %d, lost %d, duplicated %d\n",
		users, duration, faults, len(sentM2X), len(gotM2X), l1, d1, void, len(sentX2M), len(gotX2M), l2, d2)
	if l1+l2 > 0 {
		for m := range sentM2X {
			if gotM2X[m] == 0 {
				t.Logf("lost MSN to Matrix: %s", m)
			}
		}
		for m := range sentX2M {
			if gotX2M[m] == 0 {
				t.Logf("lost Matrix to MSN: %s", m)
			}
		}
		t.Fatal("messages were lost")
	}
}

func userPassport(i int) string    { return fmt.Sprintf("user%d@soak.test", i) }
func contactPassport(i int) string { return fmt.Sprintf("contact%d@soak.test", i) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
