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
	"runtime"
	"runtime/pprof"
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
		memprof  = flag.String("memprofile", "", "write a heap profile here once all are connected (msnptest runs in this process and is included)")
	)
	flag.Parse()
	if *contacts%2 != 0 || *contacts >= *logins {
		fmt.Fprintln(os.Stderr, "startup: -contacts must be even and below -logins")
		os.Exit(2)
	}
	if err := run(*logins, *contacts, *interval, *timeout, *memprof); err != nil {
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
	states    map[bridge.LoginState]int // every state change reported, by state
	lastErr   string                    // the message of the last state change that was not connected/connecting
}

func (f *frontend) Kind() string { return "matrix" }

func (f *frontend) Deliver(ctx context.Context, user bridge.UserID, ev bridge.Event) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events++
	if sc, ok := ev.(bridge.LoginStateChange); ok {
		f.states[sc.State]++
		if sc.State != bridge.LoginConnected && sc.State != bridge.LoginConnecting {
			f.lastErr = sc.Message
		}
	}
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

func run(n, contacts int, interval, timeout time.Duration, memprofile string) error {
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

	fe := &frontend{connected: map[string]time.Duration{}, want: n, all: make(chan struct{}), states: map[bridge.LoginState]int{}}
	b, err := bridge.New(bridge.Options{
		MSN:            config.MSN{Server: srv.NSAddr(), LoginURL: srv.LoginURL(), Protocols: []string{"MSNP12"}},
		Bridge:         config.Bridge{Permissions: map[string]string{"example.org": "user"}},
		Store:          st,
		Log:            zerolog.New(os.Stderr).Level(zerolog.WarnLevel),
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
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	deadline := time.After(timeout)
wait:
	for {
		select {
		case <-fe.all:
			break wait
		case <-progress.C:
			fe.mu.Lock()
			fmt.Printf("  %v: %d connected; state changes %v\n", time.Since(fe.start).Round(time.Second), len(fe.connected), fe.states)
			fe.mu.Unlock()
		case <-deadline:
			fe.mu.Lock()
			defer fe.mu.Unlock()
			// Say what the ones never reported connected are doing.
			why := map[string]int{}
			for i := 0; i < n; i++ {
				id := "@u" + strconv.Itoa(i) + ":example.org"
				if _, ok := fe.connected[id]; ok {
					continue
				}
				ls, err := b.Status(ctx, bridge.UserID{Frontend: "matrix", ID: id})
				why[fmt.Sprintf("bridge state %q (err %v), server online %v", ls.State, err, srv.Online(passport(i)))]++
			}
			for w, k := range why {
				fmt.Printf("  not reported connected: %d with %s\n", k, w)
			}
			return fmt.Errorf("only %d of %d logins connected after %v; state changes %v; last problem %q", len(fe.connected), n, timeout, fe.states, fe.lastErr)
		}
	}
	fe.mu.Lock()
	times := make([]time.Duration, 0, n)
	for _, d := range fe.connected {
		times = append(times, d)
	}
	events, states := fe.events, fe.states
	fe.mu.Unlock()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	q := func(p float64) time.Duration { return times[int(p*float64(len(times)-1))].Round(time.Millisecond) }
	if interval < 0 {
		fmt.Println("pacing: none (all logins started at once)")
	} else {
		fmt.Printf("pacing: one login per %v on average, each jittered within its slot (%.1f logins/s); paced span %v\n",
			pacing, float64(time.Second)/float64(pacing), time.Duration(n)*pacing)
	}
	if memprofile != "" {
		runtime.GC()
		f, err := os.Create(memprofile)
		if err != nil {
			return err
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
		f.Close()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Printf("heap in use %.1f MiB, %d goroutines; profile in %s\n", float64(m.HeapInuse)/(1<<20), runtime.NumGoroutine(), memprofile)
	}
	fmt.Printf("all %d connected after %v (first %v, median %v, p90 %v); %d events delivered to the frontend; login state changes %v\n",
		n, q(1), q(0), q(0.5), q(0.9), events, states)
	return nil
}
