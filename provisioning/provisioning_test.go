package provisioning_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/internal/bridgetest"
	"github.com/msnbridge/msnbridge/provisioning"
)

const secret = "s3cret-s3cret-s3cret"

type client struct {
	t   *testing.T
	url string
}

func newAPI(t *testing.T) (*bridgetest.Env, *client, *bytes.Buffer) {
	t.Helper()
	env := bridgetest.New(t, nil)
	var logs bytes.Buffer
	api, err := provisioning.New(provisioning.Options{Core: env.Core, Secret: secret,
		Frontends: []string{"matrix"}, Log: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return env, &client{t: t, url: srv.URL + provisioning.Prefix}, &logs
}

// do sends a request with token (none when "") and decodes the JSON answer.
func (c *client) do(method, path, token, body string) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Fatalf("%s %s: Content-Type %q, want JSON", method, path, ct)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		c.t.Fatalf("%s %s: answer is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, out
}

const alice = "matrix:@alice:example.org"

func TestAuthorization(t *testing.T) {
	_, c, _ := newAPI(t)
	for _, token := range []string{"", "wrong", secret + "x", secret[:len(secret)-1]} {
		code, body := c.do("GET", "status?user="+alice, token, "")
		if code != http.StatusUnauthorized || body["errcode"] != "M_UNKNOWN_TOKEN" {
			t.Errorf("token %q: %d %v, want 401 M_UNKNOWN_TOKEN", token, code, body)
		}
	}
	// Not even the endpoint list is shown without the secret.
	if code, _ := c.do("GET", "nonexistent", "", ""); code != http.StatusUnauthorized {
		t.Errorf("unknown endpoint without a token: %d, want 401", code)
	}
	if code, body := c.do("GET", "nonexistent", secret, ""); code != http.StatusNotFound || body["errcode"] != "M_NOT_FOUND" {
		t.Errorf("unknown endpoint: %d %v", code, body)
	}
	if code, _ := c.do("GET", "login", secret, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET login: %d, want 405", code)
	}
	if _, err := provisioning.New(provisioning.Options{Core: bridgetest.New(t, nil).Core}); err == nil {
		t.Error("New accepted an empty secret")
	}
}

func TestLoginStatusContactsLogout(t *testing.T) {
	env, c, logs := newAPI(t)
	code, body := c.do("GET", "status?user="+alice, secret, "")
	if code != 200 || body["logged_in"] != false || body["state"] != "logged_out" {
		t.Fatalf("status before login: %d %v", code, body)
	}
	if code, body := c.do("GET", "contacts?user="+alice, secret, ""); code != 404 || body["errcode"] != "NOT_LOGGED_IN" {
		t.Fatalf("contacts before login: %d %v", code, body)
	}

	code, body = c.do("POST", "login", secret,
		`{"user":"`+alice+`","passport":"`+bridgetest.Alice+`","password":"`+bridgetest.AlicePassword+`"}`)
	if code != http.StatusAccepted || body["logged_in"] != true || body["passport"] != bridgetest.Alice ||
		(body["state"] != "connecting" && body["state"] != "connected") {
		t.Fatalf("login: %d %v", code, body)
	}
	env.Frontend.WaitFor(t, "connected", bridgetest.LoginState(bridge.LoginConnected))
	code, body = c.do("GET", "status?user="+alice, secret, "")
	if code != 200 || body["state"] != "connected" || body["status"] != "online" || body["protocol"] != "MSNP12" {
		t.Fatalf("status after login: %d %v", code, body)
	}
	code, body = c.do("GET", "contacts?user="+alice, secret, "")
	if code != 200 {
		t.Fatalf("contacts: %d %v", code, body)
	}
	cs, _ := body["contacts"].([]any)
	if len(cs) != 1 || cs[0].(map[string]any)["passport"] != bridgetest.Bob || cs[0].(map[string]any)["on_contact_list"] != true {
		t.Fatalf("contacts = %v, want bob on the forward list", body["contacts"])
	}
	if strings.Contains(logs.String(), bridgetest.AlicePassword) {
		t.Fatalf("the password was logged: %s", logs.String())
	}

	if code, body := c.do("POST", "login", secret,
		`{"user":"`+alice+`","passport":"`+bridgetest.Bob+`","password":"x"}`); code != http.StatusConflict {
		t.Errorf("second account: %d %v, want 409", code, body)
	}

	code, body = c.do("POST", "logout", secret, `{"user":"`+alice+`"}`)
	if code != 200 || body["state"] != "logged_out" {
		t.Fatalf("logout: %d %v", code, body)
	}
	ctx := t.Context()
	if err := env.Server.WaitOffline(ctx, bridgetest.Alice); err != nil {
		t.Fatalf("alice still signed in to MSN after logout: %v", err)
	}
	if code, body := c.do("POST", "logout", secret, `{"user":"`+alice+`"}`); code != 404 {
		t.Errorf("second logout: %d %v, want 404", code, body)
	}
}

func TestBadRequests(t *testing.T) {
	_, c, _ := newAPI(t)
	cases := []struct {
		method, path, body string
		code               int
		errcode            string
	}{
		{"GET", "status?user=matrix:@mallory:evil.example", "", 403, "M_FORBIDDEN"},
		{"GET", "status?user=@alice:example.org", "", 400, "M_INVALID_PARAM"},
		{"GET", "status", "", 400, "M_INVALID_PARAM"},
		{"GET", "status?user=xmpp:alice@example.org", "", 400, "M_INVALID_PARAM"}, // frontend not running
		{"POST", "login", `{"user":"matrix:@mallory:evil.example","passport":"a@b.c","password":"x"}`, 403, "M_FORBIDDEN"},
		{"POST", "login", `{"user":"` + alice + `","passport":"","password":"x"}`, 400, "M_BAD_JSON"},
		{"POST", "login", `{"user":"` + alice + `","passport":"not a passport","password":"x"}`, 400, "M_UNKNOWN"},
		{"POST", "login", `{"user":"` + alice + `","passport":"a@b.c","password":"x","admin":true}`, 400, "M_BAD_JSON"},
		{"POST", "login", `{"user":`, 400, "M_BAD_JSON"},
		{"POST", "login", `{"user":"` + alice + `"} {}`, 400, "M_BAD_JSON"},
		{"POST", "login", `{"user":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "M_TOO_LARGE"},
	}
	for _, tc := range cases {
		code, body := c.do(tc.method, tc.path, secret, tc.body)
		if code != tc.code || body["errcode"] != tc.errcode {
			b := tc.body
			if len(b) > 80 {
				b = b[:80] + "..."
			}
			t.Errorf("%s %s %s: %d %v, want %d %s", tc.method, tc.path, b, code, body, tc.code, tc.errcode)
		}
	}
}

// TestWrongPassword: the login is accepted at once, and status then tells
// the panel that MSN refused the password.
func TestWrongPassword(t *testing.T) {
	env, c, logs := newAPI(t)
	code, body := c.do("POST", "login", secret,
		`{"user":"`+alice+`","passport":"`+bridgetest.Alice+`","password":"not-her-password"}`)
	if code != http.StatusAccepted {
		t.Fatalf("login: %d %v", code, body)
	}
	env.Frontend.WaitFor(t, "bad credentials", bridgetest.LoginState(bridge.LoginBadCredentials))
	code, body = c.do("GET", "status?user="+alice, secret, "")
	if code != 200 || body["state"] != "bad_credentials" || body["logged_in"] != true {
		t.Fatalf("status: %d %v", code, body)
	}
	if strings.Contains(logs.String(), "not-her-password") {
		t.Fatalf("the password was logged: %s", logs.String())
	}
}
