// Command scale measures what idle MSN logins cost the bridge's side: it
// logs N msnp clients, each with C contacts, into an msnptest server, waits
// for them to go idle and reports resident memory, Go heap, goroutines and
// timers per account.
//
// The server runs in a child process (this binary re-executed with -serve)
// so that its memory is not counted: every number is the client side's.
//
//	go run ./bench/scale -accounts 1000
//	go run ./bench/scale -accounts 10000 -memprofile heap.pprof
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

func main() {
	var (
		serve       = flag.Bool("serve", false, "run the msnptest server (the child process) and print its addresses")
		accounts    = flag.Int("accounts", 1000, "MSN accounts to log in")
		contacts    = flag.Int("contacts", 100, "contacts per account (even, below -accounts)")
		concurrency = flag.Int("concurrency", 32, "logins in flight at once")
		rate        = flag.Float64("rate", 500, "logins started per second at most (0: no limit)")
		idle        = flag.Duration("idle", 5*time.Second, "how long to let the logged-in clients sit before measuring")
		memprofile  = flag.String("memprofile", "", "write a heap profile of the client side here")
	)
	flag.Parse()
	if *contacts%2 != 0 || *contacts >= *accounts {
		fmt.Fprintln(os.Stderr, "scale: -contacts must be even and below -accounts")
		os.Exit(2)
	}
	if *serve {
		runServer(*accounts, *contacts)
		return
	}
	if err := run(*accounts, *contacts, *concurrency, *rate, *idle, *memprofile); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func passport(i int) string { return "user" + strconv.Itoa(i) + "@example.com" }

// runServer builds the accounts: account i is a mutual contact of the
// contacts/2 accounts after it and so of the contacts/2 before it (mod n),
// which gives each exactly `contacts` contacts. It prints the addresses and
// serves until stdin closes (the parent exiting).
func runServer(n, contacts int) {
	s := msnptest.NewServer()
	for i := 0; i < n; i++ {
		s.AddAccount(passport(i), "pw", "User "+strconv.Itoa(i))
	}
	for i := 0; i < n; i++ {
		for k := 1; k <= contacts/2; k++ {
			s.AddContact(passport(i), passport((i+k)%n))
		}
	}
	fmt.Printf("READY %s %s\n", s.NSAddr(), s.LoginURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.Close()
}

type sample struct {
	rss, heapInuse, stackInuse, sys uint64
	goroutines                      int
}

func measure() sample {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return sample{rss: rssBytes(), heapInuse: m.HeapInuse, stackInuse: m.StackInuse, sys: m.Sys, goroutines: runtime.NumGoroutine()}
}

// rssBytes is the process's resident set (VmRSS) from /proc.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func run(n, contacts, concurrency int, rate float64, idle time.Duration, memprofile string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, "-serve", "-accounts", strconv.Itoa(n), "-contacts", strconv.Itoa(contacts))
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); _ = child.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("server child: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "READY" {
		return fmt.Errorf("server child said %q", line)
	}
	fmt.Printf("server (child pid %d): %d accounts x %d contacts ready in %v\n", child.Process.Pid, n, contacts, time.Since(t0).Round(time.Millisecond))

	cfg := msnp.Config{
		Server: f[1], LoginURL: f[2], Protocols: []msnp.Protocol{msnp.MSNP12},
		// One HTTP client for all logins, as the bridge has: a client
		// per login would keep an idle keep-alive connection each.
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
	}
	before := measure()
	fmt.Printf("before: rss %s, heap %s, goroutines %d\n", mib(before.rss), mib(before.heapInuse), before.goroutines)

	clients := make([]*msnp.Client, n)
	var events, disconnects atomic.Int64
	var presence sync.WaitGroup
	presence.Add(n)
	var mu sync.Mutex
	var firstErr error
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	sem := make(chan struct{}, concurrency)
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		tick = t.C
	}
	var wg sync.WaitGroup
	t1 := time.Now()
	for i := 0; i < n; i++ {
		if tick != nil {
			<-tick
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			var once sync.Once
			c, err := msnp.New(cfg, passport(i), "pw", func(ev msnp.Event) {
				events.Add(1)
				switch ev.(type) {
				case msnp.PresenceSynced:
					once.Do(presence.Done)
				case msnp.Disconnected:
					disconnects.Add(1)
				}
			})
			if err == nil {
				err = c.Connect(ctx)
			}
			if err == nil {
				err = c.SetStatus(ctx, msnp.StatusOnline)
			}
			if err == nil && len(c.Contacts()) != contacts {
				err = fmt.Errorf("%d contacts, want %d", len(c.Contacts()), contacts)
			}
			if err != nil {
				once.Do(presence.Done)
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", passport(i), err)
				}
				mu.Unlock()
				return
			}
			clients[i] = c
		}(i)
	}
	wg.Wait()
	loginTime := time.Since(t1)
	if firstErr != nil {
		return firstErr
	}
	presence.Wait()
	fmt.Printf("logged in %d accounts in %v (%.0f logins/s; concurrency %d, rate limit %g/s), presence synced after %v\n",
		n, loginTime.Round(time.Millisecond), float64(n)/loginTime.Seconds(), concurrency, rate, time.Since(t1).Round(time.Millisecond))

	time.Sleep(idle) // the point: measure clients that have nothing to do
	after := measure()
	if d := disconnects.Load(); d != 0 {
		return fmt.Errorf("%d clients disconnected while idle", d)
	}
	per := func(a, b uint64) string {
		return fmt.Sprintf("%s total, %.1f KiB/account", mib(b-a), float64(int64(b)-int64(a))/float64(n)/1024)
	}
	fmt.Printf("after %v idle (%d events handled):\n", idle, events.Load())
	fmt.Printf("  rss (VmRSS)        %s -> %s: %s\n", mib(before.rss), mib(after.rss), per(before.rss, after.rss))
	fmt.Printf("  go heap in use     %s\n", per(before.heapInuse, after.heapInuse))
	fmt.Printf("  goroutine stacks   %s\n", per(before.stackInuse, after.stackInuse))
	fmt.Printf("  runtime Sys        %s\n", per(before.sys, after.sys))
	fmt.Printf("  goroutines         %d -> %d: %.2f per account (%d contacts each)\n",
		before.goroutines, after.goroutines, float64(after.goroutines-before.goroutines)/float64(n), contacts)
	fmt.Println("  goroutines by function (msnbridge frames):")
	for _, g := range goroutinesByFunction() {
		fmt.Printf("    %7d  %s\n", g.count, g.fn)
	}
	if memprofile != "" {
		fh, err := os.Create(memprofile)
		if err != nil {
			return err
		}
		if err := pprof.WriteHeapProfile(fh); err != nil {
			return err
		}
		fh.Close()
		fmt.Println("heap profile written to", memprofile)
	}
	for _, c := range clients {
		c.Close()
	}
	return nil
}

type funcCount struct {
	fn    string
	count int
}

// goroutinesByFunction groups live goroutines by the innermost frame in
// this module, which shows what each goroutine a client keeps is for.
func goroutinesByFunction() []funcCount {
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		return nil
	}
	counts := map[string]int{}
	fn, k := "", 0
	flush := func() {
		if k > 0 {
			counts[fn] += k
		}
	}
	// Records are "count @ pcs" then "#\tpc\tfunc+off\tfile:line" frames.
	for _, l := range strings.Split(b.String(), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && f[1] == "@":
			flush()
			k, _ = strconv.Atoi(f[0])
			fn = "(other)"
		case len(f) >= 3 && f[0] == "#" && fn == "(other)" && strings.Contains(f[2], "msnbridge/"):
			fn = f[2]
			if i := strings.LastIndex(fn, "+0x"); i >= 0 {
				fn = fn[:i]
			}
		}
	}
	flush()
	out := make([]funcCount, 0, len(counts))
	for fn, k := range counts {
		out = append(out, funcCount{fn, k})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].count > out[j].count })
	return out
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
