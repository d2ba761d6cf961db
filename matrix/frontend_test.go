package matrix

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/bridge"
)

// sendTransaction PUTs an appservice transaction the way a homeserver does.
func sendTransaction(t *testing.T, base, token, txnID, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, base+"/_matrix/app/v1/transactions/"+txnID, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestTransactionsNeedTheHSToken(t *testing.T) {
	core := newFakeCore()
	f, err := New(testConfig(), core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	base := "http://" + f.Addr().String()
	body := `{"events":[{"type":"m.room.message","room_id":"!r:example.org","sender":"@eve:example.org","event_id":"$e","origin_server_ts":1,"content":{"msgtype":"m.text","body":"hi"}}]}`
	for _, token := range []string{"", "wrong", "hs-secret-but-longer"} {
		if code := sendTransaction(t, base, token, "t-"+token, body); code != http.StatusUnauthorized && code != http.StatusForbidden {
			t.Errorf("token %q: status %d, want 401 or 403", token, code)
		}
	}
	if code := sendTransaction(t, base, "hs-secret", "t-good", `{"events":[]}`); code != http.StatusOK {
		t.Errorf("right token: status %d, want 200", code)
	}
	core.mu.Lock()
	defer core.mu.Unlock()
	if len(core.calls) != 0 {
		t.Errorf("refused transactions reached the core: %v", core.calls)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, mutate := range map[string]func(c *testCfg){
		"no domain":    func(c *testCfg) { c.Domain = "" },
		"no hs token":  func(c *testCfg) { c.HSToken = "" },
		"bad template": func(c *testCfg) { c.GhostTemplate = "msn" },
		"no listen":    func(c *testCfg) { c.Listen = "" },
	} {
		cfg := testConfig()
		mutate((*testCfg)(&cfg))
		if _, err := New(cfg, newFakeCore(), zerolog.Nop()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestIsBridgeUser(t *testing.T) {
	f, err := New(testConfig(), newFakeCore(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if !f.isBridgeUser("@msnbot:example.org") || !f.isBridgeUser(f.GhostID("a@b.com")) {
		t.Error("bot or ghost not recognised")
	}
	if f.isBridgeUser("@alice:example.org") || f.isBridgeUser("@msn_a=40b.com:other.org") {
		t.Error("a person taken for the bridge")
	}
	if f.Kind() != "matrix" {
		t.Errorf("Kind = %q", f.Kind())
	}
	if _, err := f.Deliver(context.Background(), bridge.UserID{Frontend: "xmpp", ID: "a@b"}, bridge.Notice{Text: "x"}); err == nil {
		t.Error("delivered to an XMPP user")
	}
}

func TestPresenceStatusMessageKeepsMSNStatus(t *testing.T) {
	got := PresenceStatusMessage(bridge.Contact{Status: bridge.StatusLunch, PersonalMessage: "brb sandwiches"})
	if got != "Lunch — brb sandwiches" {
		t.Errorf("got %q", got)
	}
	if matrixPresence(bridge.StatusBusy) != "unavailable" || matrixPresence(bridge.StatusOnline) != "online" ||
		matrixPresence(bridge.StatusInvisible) != "offline" {
		t.Error("presence mapping")
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startUnitFrontend(t *testing.T, core *fakeCore) (*Frontend, string) {
	t.Helper()
	f, err := New(testConfig(), core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f, "http://" + f.Addr().String()
}

func messageTxn(sender id.UserID, room, eventID, body string) string {
	return fmt.Sprintf(`{"events":[{"type":"m.room.message","room_id":%q,"sender":%q,"event_id":%q,"origin_server_ts":1,"content":{"msgtype":"m.text","body":%q}}]}`,
		room, sender, eventID, body)
}

// The transaction stream carries the bridge's own ghosts' and bot's events
// (Dendrite sends them); they must not go back to MSN. Events are handled
// in order, so once the person's message arrives the earlier ones have
// been dropped, not delayed. (Refused users are tested against Dendrite:
// the refusal talks to the homeserver.)
func TestOwnEventsAreFiltered(t *testing.T) {
	core := newFakeCore()
	f, base := startUnitFrontend(t, core)
	user := bridge.UserID{Frontend: "matrix", ID: "@alice:example.org"}
	p, _ := core.DirectPortal(context.Background(), user, "bob@example.com")
	_ = core.SetPortalRoom(context.Background(), user, p.ID, "!portal:example.org")

	txns := []string{
		messageTxn(f.GhostID("bob@example.com"), "!portal:example.org", "$1", "echo of bob"),
		messageTxn(f.BotID(), "!portal:example.org", "$2", "a bot notice"),
		messageTxn("@alice:example.org", "!portal:example.org", "$4", "hello bob"),
	}
	for i, txn := range txns {
		if code := sendTransaction(t, base, "hs-secret", fmt.Sprint("txn", i), txn); code != http.StatusOK {
			t.Fatalf("transaction %d: status %d", i, code)
		}
	}
	eventually(t, "alice's message at the core", 5*time.Second, func() bool {
		core.mu.Lock()
		defer core.mu.Unlock()
		return len(core.sent) > 0
	})
	core.mu.Lock()
	defer core.mu.Unlock()
	if len(core.sent) != 1 || core.sent[0].Msg.Text.Body != "hello bob" || core.sent[0].Msg.FrontendID != "$4" ||
		core.sent[0].Portal != p.ID {
		t.Fatalf("core got %+v", core.sent)
	}
}

// Homeservers that implement MSC2409 push typing inside transactions.
func TestPushedTypingReachesTheCore(t *testing.T) {
	core := newFakeCore()
	f, base := startUnitFrontend(t, core)
	user := bridge.UserID{Frontend: "matrix", ID: "@alice:example.org"}
	p, _ := core.DirectPortal(context.Background(), user, "bob@example.com")
	_ = core.SetPortalRoom(context.Background(), user, p.ID, "!portal:example.org")
	typing := func(users ...id.UserID) string {
		list := `[]`
		if len(users) > 0 {
			quoted := make([]string, len(users))
			for i, u := range users {
				quoted[i] = fmt.Sprintf("%q", u)
			}
			list = "[" + strings.Join(quoted, ",") + "]"
		}
		return `{"events":[],"de.sorunome.msc2409.ephemeral":[{"type":"m.typing","room_id":"!portal:example.org","content":{"user_ids":` + list + `}}]}`
	}
	steps := []string{
		typing("@alice:example.org", f.GhostID("bob@example.com")), // alice starts; the ghost is ignored
		typing("@alice:example.org"),                               // no change
		typing(),                                                   // alice stops
	}
	for i, txn := range steps {
		if code := sendTransaction(t, base, "hs-secret", fmt.Sprint("typing", i), txn); code != http.StatusOK {
			t.Fatalf("transaction %d: status %d", i, code)
		}
	}
	eventually(t, "typing start and stop", 5*time.Second, func() bool {
		core.mu.Lock()
		defer core.mu.Unlock()
		return len(core.typing) >= 2
	})
	core.mu.Lock()
	defer core.mu.Unlock()
	want := []fakeTyping{{p.ID, true}, {p.ID, false}}
	if len(core.typing) != 2 || core.typing[0] != want[0] || core.typing[1] != want[1] {
		t.Fatalf("typing calls %+v, want %+v", core.typing, want)
	}
}
