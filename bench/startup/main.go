// Command startup measures a bridge restart: N stored logins in a fresh
// SQLite store are resumed by bridge.Start against an in-process msnptest
// server, and the time until every one of them is reported connected to
// its frontend is printed, with the pacing used.
//
//	go run ./bench/startup -logins 1000
//	go run ./bench/startup -logins 1000 -interval 10ms
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
	"github.com/msnbridge/msnbridge/store"
)

func main() {
	var (
		logins   = flag.Int("logins", 1000, "stored logins to resume")
		contacts = flag.Int("contacts", 10, "contacts per account (even, below -logins)")
		interval = flag.Duration("interval", 0, "bridge ResumeInterval (0: bridge.DefaultResumeInterval; negative: no pacing)")
		timeout  = flag.Duration("timeout", 15*time.Minute, "give up after this long")
	)
	flag.Parse()
	if *contacts%2 != 0 || *contacts >= *logins {
		fmt.Fprintln(os.Stderr, "startup: -contacts must be even and below -logins")
		os.Exit(2)
	}
	if err := run(*logins, *contacts, *interval, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "startup:", err)
		os.Exit(1)
	}
}

func passport(i int) string { return "user" + strconv.Itoa(i) + "@example.com" }

// frontend records when each user is first reported connected.
type frontend struct {
	mu        sync.Mutex
	start     time.Time
	connected map[string]time.Duration
	want      int
	all       chan struct{}
	events    int
}

func (f *frontend) Kind() string { return "matrix" }

func (f *frontend) Deliver(ctx context.Context, user bridge.UserID, ev bridge.Event) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events++
	if sc, ok := ev.(bridge.LoginStateChange); ok && sc.State == bridge.LoginConnected {
		if _, seen := f.connected[user.ID]; !seen {
			f.connected[user.ID] = time.Since(f.start)
			if len(f.connected) == f.want {
				close(f.all)
			}
		}
	}
	return "", nil
}

func run(n, contacts int, interval, timeout time.Duration) error {
	ctx := context.Background()
	srv := msnptest.NewServer()
	defer srv.Close()
	srv.SetVersions(12)
	for i := 0; i < n; i++ {
		srv.AddAccount(passport(i), "pw", "User "+strconv.Itoa(i))
	}
	for i := 0; i < n; i++ {
		for k := 1; k <= contacts/2; k++ {
			srv.AddContact(passport(i), passport((i+k)%n))
		}
	}

	dir, err := os.MkdirTemp("", "msnbridge-startup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	key := store.GenerateKey()
	sealer, err := store.NewSealerBase64(key)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, "sqlite3", "file:"+filepath.Join(dir, "bridge.db"), zerolog.Nop(), store.WithSealer(sealer))
	if err != nil {
		return err
	}
	defer st.Close()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		user := store.UserID{Frontend: "matrix", ID: "@u" + strconv.Itoa(i) + ":example.org"}
		if _, err := st.Logins.Put(ctx, store.Login{User: user, Passport: passport(i), Protocol: "MSNP12"}, "pw"); err != nil {
			return err
		}
	}
	fmt.Printf("stored %d logins (%d contacts each) in %v\n", n, contacts, time.Since(t0).Round(time.Millisecond))

	fe := &frontend{connected: map[string]time.Duration{}, want: n, all: make(chan struct{})}
	b, err := bridge.New(bridge.Options{
		MSN:            config.MSN{Server: srv.NSAddr(), LoginURL: srv.LoginURL(), Protocols: []string{"MSNP12"}},
		Bridge:         config.Bridge{Permissions: map[string]string{"example.org": "user"}},
		Store:          st,
		Log:            zerolog.Nop(),
		ResumeInterval: interval,
	})
	if err != nil {
		return err
	}
	b.AddFrontend(fe)
	pacing := interval
	if pacing == 0 {
		pacing = bridge.DefaultResumeInterval
	}
	fe.mu.Lock()
	fe.start = time.Now()
	fe.mu.Unlock()
	if err := b.Start(ctx); err != nil {
		return err
	}
	defer b.Stop()
	select {
	case <-fe.all:
	case <-time.After(timeout):
		fe.mu.Lock()
		k := len(fe.connected)
		fe.mu.Unlock()
		return fmt.Errorf("only %d of %d logins connected after %v", k, n, timeout)
	}
	fe.mu.Lock()
	times := make([]time.Duration, 0, n)
	for _, d := range fe.connected {
		times = append(times, d)
	}
	events := fe.events
	fe.mu.Unlock()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	q := func(p float64) time.Duration { return times[int(p*float64(len(times)-1))].Round(time.Millisecond) }
	if interval < 0 {
		fmt.Println("pacing: none (all logins started at once)")
	} else {
		fmt.Printf("pacing: one login per %v on average, each jittered within its slot (%.1f logins/s); paced span %v\n",
			pacing, float64(time.Second)/float64(pacing), time.Duration(n)*pacing)
	}
	fmt.Printf("all %d connected after %v (first %v, median %v, p90 %v); %d events delivered to the frontend\n",
		n, q(1), q(0), q(0.5), q(0.9), events)
	return nil
}
