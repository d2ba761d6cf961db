package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/internal/bridgetest"
	"github.com/msnbridge/msnbridge/metrics"
	"github.com/msnbridge/msnbridge/msnp"
)

// scrape fetches /metrics and returns each sample line's value by its name
// and labels as written, e.g. `msnbridge_logins{state="connected"}`.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsFollowTheCore(t *testing.T) {
	m := metrics.New()
	env := bridgetest.New(t, m)
	m.Watch(env.Core.Stats)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	url := srv.URL + "/metrics"
	ctx := context.Background()

	before := scrape(t, url)
	for _, name := range []string{`msnbridge_logins{state="connected"}`, `msnbridge_switchboards_open`,
		`msnbridge_queued_events`, `msnbridge_errors_total{kind="send"}`, `msnbridge_msn_round_trip_seconds_count`} {
		if v, ok := before[name]; !ok || v != 0 {
			t.Errorf("before anything: %s = %v (present %v), want 0", name, v, ok)
		}
	}
	if before["msnbridge_stats_up"] != 1 {
		t.Errorf("msnbridge_stats_up = %v, want 1", before["msnbridge_stats_up"])
	}

	if err := env.Core.Login(ctx, bridgetest.User, bridgetest.Alice, bridgetest.AlicePassword); err != nil {
		t.Fatal(err)
	}
	env.Frontend.WaitFor(t, "connected", bridgetest.LoginState(bridge.LoginConnected))
	got := scrape(t, url)
	if got[`msnbridge_logins{state="connected"}`] != 1 || got[`msnbridge_logins{state="connecting"}`] != 0 {
		t.Errorf("after login: connected=%v connecting=%v", got[`msnbridge_logins{state="connected"}`], got[`msnbridge_logins{state="connecting"}`])
	}
	// The presence-sync ping right after sign-in is the first round trip.
	bridgetest.Eventually(t, "a round trip", func() bool {
		return scrape(t, url)["msnbridge_msn_round_trip_seconds_count"] >= 1
	})

	// Bob writes: one message from MSN, delivered to the matrix frontend.
	bob, err := msnp.New(msnp.Config{Server: env.Server.NSAddr(), LoginURL: env.Server.LoginURL(), Protocols: []msnp.Protocol{msnp.MSNP12}},
		bridgetest.Bob, bridgetest.BobPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := bob.Connect(cctx); err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if err := bob.SetStatus(cctx, msnp.StatusOnline); err != nil {
		t.Fatal(err)
	}
	if err := bob.Chat(bridgetest.Alice).SendText(cctx, "hello", msnp.DefaultTextFormat()); err != nil {
		t.Fatal(err)
	}
	env.Frontend.WaitFor(t, "bob's message", func(ev bridge.Event) bool { _, ok := ev.(bridge.Message); return ok })
	bridgetest.Eventually(t, "from_msn counted", func() bool {
		return scrape(t, url)[`msnbridge_messages_bridged_total{direction="from_msn",frontend="matrix"}`] == 1
	})
	if v := scrape(t, url)[`msnbridge_switchboards_open`]; v != 1 {
		t.Errorf("switchboards open after bob's message = %v, want 1 (the answered one)", v)
	}

	// Alice answers through the core: one message to MSN.
	portal, err := env.Core.DirectPortal(ctx, bridgetest.User, bridgetest.Bob)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Core.SendMessage(ctx, bridgetest.User, portal.ID, bridge.OutgoingMessage{FrontendID: "$out1", Text: bridge.Text{Body: "hi bob"}}); err != nil {
		t.Fatal(err)
	}
	env.Frontend.WaitFor(t, "delivery result", func(ev bridge.Event) bool {
		r, ok := ev.(bridge.DeliveryResult)
		return ok && r.FrontendID == "$out1" && r.Err == nil
	})
	got = scrape(t, url)
	if v := got[`msnbridge_messages_bridged_total{direction="to_msn",frontend="matrix"}`]; v != 1 {
		t.Errorf("to_msn = %v, want 1", v)
	}

	// The frontend goes down: events queue up and delivery errors count.
	env.Frontend.SetDown(true)
	if err := bob.Chat(bridgetest.Alice).SendText(cctx, "are you there?", msnp.DefaultTextFormat()); err != nil {
		t.Fatal(err)
	}
	bridgetest.Eventually(t, "a queued event and a delivery error", func() bool {
		s := scrape(t, url)
		return s[`msnbridge_queued_events`] >= 1 && s[`msnbridge_errors_total{kind="delivery"}`] >= 1
	})
	env.Frontend.SetDown(false)
	bridgetest.Eventually(t, "the queue drained", func() bool {
		s := scrape(t, url)
		return s[`msnbridge_queued_events`] == 0 &&
			s[`msnbridge_messages_bridged_total{direction="from_msn",frontend="matrix"}`] == 2
	})

	if err := env.Core.Logout(ctx, bridgetest.User); err != nil {
		t.Fatal(err)
	}
	if v := scrape(t, url)[`msnbridge_logins{state="connected"}`]; v != 0 {
		t.Errorf("after logout: connected = %v, want 0", v)
	}
}

// TestMetricsWithoutStore: when the core's state cannot be read, the
// scrape still answers and says so.
func TestMetricsWithoutStore(t *testing.T) {
	m := metrics.New()
	m.Watch(func(context.Context) (bridge.Stats, error) { return bridge.Stats{}, errors.New("database is locked") })
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	got := scrape(t, srv.URL)
	if got["msnbridge_stats_up"] != 0 {
		t.Errorf("msnbridge_stats_up = %v, want 0", got["msnbridge_stats_up"])
	}
	if _, ok := got["msnbridge_queued_events"]; ok {
		t.Error("queued_events reported although the store did not answer")
	}
}

func TestHealthAndReady(t *testing.T) {
	env := bridgetest.New(t, nil)
	var started atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/health", metrics.Health())
	mux.Handle("/ready", metrics.Ready(map[string]metrics.Check{
		"store": env.Core.Ping,
		"frontends": func(context.Context) error {
			if !started.Load() {
				return errors.New("frontends not started yet")
			}
			return nil
		},
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/health"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/health = %d %s", code, body)
	}
	if code, body := get("/ready"); code != 503 || !strings.Contains(body, "frontends not started") {
		t.Errorf("/ready before start = %d %s", code, body)
	}
	started.Store(true)
	if code, body := get("/ready"); code != 200 || !strings.Contains(body, `"ready"`) {
		t.Errorf("/ready = %d %s", code, body)
	}
	env.Store.Close() // the database goes away
	if code, body := get("/ready"); code != 503 || !strings.Contains(body, `"store"`) {
		t.Errorf("/ready without a store = %d %s", code, body)
	}
	if code, _ := get("/health"); code != 200 {
		t.Errorf("/health without a store = %d; liveness must not depend on the database", code)
	}
}

// TestMetricsCountRefusedLogins: a wrong password is an auth error and a
// login in state bad_credentials.
func TestMetricsCountRefusedLogins(t *testing.T) {
	m := metrics.New()
	env := bridgetest.New(t, m)
	m.Watch(env.Core.Stats)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	if err := env.Core.Login(context.Background(), bridgetest.User, bridgetest.Alice, "wrong"); err != nil {
		t.Fatal(err)
	}
	env.Frontend.WaitFor(t, "bad credentials", bridgetest.LoginState(bridge.LoginBadCredentials))
	got := scrape(t, srv.URL)
	if got[`msnbridge_errors_total{kind="auth"}`] != 1 || got[`msnbridge_logins{state="bad_credentials"}`] != 1 {
		t.Errorf("auth errors = %v, bad_credentials logins = %v; want 1 and 1",
			got[`msnbridge_errors_total{kind="auth"}`], got[`msnbridge_logins{state="bad_credentials"}`])
	}
}
