package matrix

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

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
