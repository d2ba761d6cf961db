package msnptest_test

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

func ssoTokens(t *testing.T, s *msnptest.Server, email, password string) (*msnp.SSOTokens, error) {
	t.Helper()
	return msnp.RequestSSOTokens(ctx(t), msnp.SSORequest{URL: s.RSTURL(), Username: email, Password: password})
}

// TestRSTWrongPasswordIsFaultWith200: Escargot answers a wrong password
// with HTTP 200 and an S:Fault, not a 401.
func TestRSTWrongPasswordIsFaultWith200(t *testing.T) {
	s := newServer(t)
	for _, path := range []string{"/RST.srf", "/RST2.srf"} {
		body := `<Envelope><Header><Security><UsernameToken><Username>alice@example.com</Username><Password>wrong</Password></UsernameToken></Security></Header><Body><RequestSecurityToken><AppliesTo><EndpointReference><Address>messengerclear.live.com</Address></EndpointReference></AppliesTo></RequestSecurityToken></Body></Envelope>`
		resp, err := http.Post(s.SOAPBaseURL()+path, "text/xml", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), "wsse:FailedAuthentication") || strings.Contains(string(raw), "BinarySecurityToken") {
			t.Fatalf("%s: HTTP %d\n%s", path, resp.StatusCode, raw)
		}
	}
	if _, err := ssoTokens(t, s, alice, "wrong"); !errors.Is(err, msnp.ErrAuthentication) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := ssoTokens(t, s, "nobody@example.com", pwd); !errors.Is(err, msnp.ErrAuthentication) {
		t.Fatalf("unknown account: %v", err)
	}
}

// TestRSTBinarySecretOnlyForMessengerClear: one token for every address
// but Passport.NET/tb, and a proof key only for messengerclear.
func TestRSTBinarySecretOnlyForMessengerClear(t *testing.T) {
	s := newServer(t)
	tokens, err := ssoTokens(t, s, alice, pwd)
	if err != nil {
		t.Fatal(err)
	}
	mc, ok1 := tokens.Get(msnp.SSOAddressMessengerClear)
	ct, ok2 := tokens.Get(msnp.SSOAddressContacts)
	if !ok1 || !ok2 || mc.BinarySecret == "" || ct.BinarySecret != "" || mc.Ticket != ct.Ticket || !strings.HasPrefix(mc.Ticket, "t=") {
		t.Fatalf("tokens: %v", tokens)
	}
	if _, ok := tokens.Get(msnp.SSOAddressPassport); ok {
		t.Fatal("a compact token for Passport.NET/tb")
	}
}

// ssoLogin runs VER, CVR and USR SSO I up to the nonce, as the
// transcripts show: GCF 0 with the policies comes before USR S.
func ssoLogin(t *testing.T, s *msnptest.Server, email string, ver int) (*testClient, string) {
	t.Helper()
	c := dialNS(t, s, email)
	v := "MSNP" + strconv.Itoa(ver)
	tr := c.send("VER", v, "CVR0")
	c.expect("VER " + tr + " " + v)
	tr = c.send("CVR", "0x0409", "winnt", "6.0", "i386", "MSNMSGR", "14.0.8117.0416", "msmsgs", email)
	c.expect("CVR " + tr + " 14.0.8117.0416 14.0.8117.0416 14.0.8117.0416 https://escargot.log1p.xyz https://escargot.log1p.xyz")
	tr = c.send("USR", "SSO", "I", email)
	gcf := c.expectPrefix("GCF 0 ")
	if !strings.HasPrefix(string(gcf.Payload), "<Policies>") {
		t.Fatalf("GCF payload %q", gcf.Payload)
	}
	usr := c.expectPrefix("USR " + tr + " SSO S MBI_KEY_OLD ")
	if n := usr.Arg(4); len(n) != 64 {
		t.Fatalf("nonce %q", n)
	}
	return c, usr.Arg(4)
}

func TestUSRSSOChecksMBIAndGUID(t *testing.T) {
	s := newServer(t)
	const guid = "{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}"
	tokens, err := ssoTokens(t, s, alice, pwd)
	if err != nil {
		t.Fatal(err)
	}
	proof := func(nonce string) (string, string) {
		ticket, mbi, err := msnp.SSOLoginArgs(tokens, nonce)
		if err != nil {
			t.Fatal(err)
		}
		return ticket, mbi
	}
	// MSNP15 accepts a ticket without the proof (the patched-client path).
	c, nonce := ssoLogin(t, s, alice, 15)
	ticket, _ := proof(nonce)
	tr := c.send("USR", "SSO", "S", ticket)
	c.expect("USR " + tr + " OK alice@example.com 1 0")
	c.expect("SBS 0 null")
	c.expectPrefix("MSG Hotmail Hotmail ")
	c.send("OUT")
	c.expectClosed()

	for _, tc := range []struct {
		name string
		args func(nonce string) []string
		ok   bool
	}{
		{"no proof", func(n string) []string { tk, _ := proof(n); return []string{tk} }, false},
		{"proof for another nonce", func(n string) []string {
			tk, _ := proof(n)
			_, mbi := proof(strings.Repeat("A", 64))
			return []string{tk, mbi, guid}
		}, false},
		{"bad GUID", func(n string) []string { tk, mbi := proof(n); return []string{tk, mbi, "{nope}"} }, false},
		{"no GUID", func(n string) []string { tk, mbi := proof(n); return []string{tk, mbi} }, false},
		{"right", func(n string) []string { tk, mbi := proof(n); return []string{tk, mbi, guid} }, true},
	} {
		c, nonce := ssoLogin(t, s, alice, 18)
		tr := c.send("USR", append([]string{"SSO", "S"}, tc.args(nonce)...)...)
		if !tc.ok {
			c.expect("911 " + tr)
			c.expectClosed()
			continue
		}
		c.expect("USR " + tr + " OK alice@example.com 1 0")
		c.expect("SBS 0 null")
		c.expectPrefix("MSG Hotmail Hotmail ")
		c.expect("UBX 1:alice@example.com 0")
	}
}

// TestMPOPSideBySide: MSNP16+ endpoints with distinct GUIDs coexist; the
// same GUID, or a session below 16, is the same place signing in again.
func TestMPOPSideBySide(t *testing.T) {
	s := newServer(t)
	signIn := func(ver int, guid string) *testClient {
		tokens, err := ssoTokens(t, s, alice, pwd)
		if err != nil {
			t.Fatal(err)
		}
		c, nonce := ssoLogin(t, s, alice, ver)
		ticket, mbi, err := msnp.SSOLoginArgs(tokens, nonce)
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"SSO", "S", ticket, mbi}
		if ver >= 16 {
			args = append(args, guid)
		}
		tr := c.send("USR", args...)
		c.expect("USR " + tr + " OK alice@example.com 1 0")
		return c
	}
	a := signIn(18, "{11111111-1111-4111-8111-111111111111}")
	b := signIn(18, "{22222222-2222-4222-8222-222222222222}")
	// a is not kicked: it still answers a ping.
	a.send("PNG")
	for {
		if cmd := a.read(); cmd.Name == "QNG" {
			break
		} else if cmd.Name == "OUT" {
			t.Fatal("first endpoint kicked by the second")
		}
	}
	// The same GUID again boots every endpoint, as on Escargot.
	c := signIn(18, "{22222222-2222-4222-8222-222222222222}")
	expectOTH(t, a)
	expectOTH(t, b)
	// An MSNP15 session has no GUID: it boots the others, and a later
	// 16+ login boots it in turn.
	d := signIn(15, "")
	expectOTH(t, c)
	signIn(18, "{33333333-3333-4333-8333-333333333333}")
	expectOTH(t, d)
}

// expectOTH reads until OUT and checks it is OUT OTH.
func expectOTH(t *testing.T, c *testClient) {
	t.Helper()
	for {
		if cmd := c.read(); cmd.Name == "OUT" {
			if cmd.Arg(0) != "OTH" {
				t.Fatalf("%s: OUT %v", c.name, cmd.Args)
			}
			return
		}
	}
}

// TestUUMToOfflineContactIsStored: on MSNP18 a text UUM to an offline
// contact becomes an OIM (no reply, as on Escargot); to an online one it
// is not stored.
func TestUUMToOfflineContactIsStored(t *testing.T) {
	s := newServer(t)
	tokens, err := ssoTokens(t, s, alice, pwd)
	if err != nil {
		t.Fatal(err)
	}
	c, nonce := ssoLogin(t, s, alice, 18)
	ticket, mbi, err := msnp.SSOLoginArgs(tokens, nonce)
	if err != nil {
		t.Fatal(err)
	}
	tr := c.send("USR", "SSO", "S", ticket, mbi, "{11111111-1111-4111-8111-111111111111}")
	c.expect("USR " + tr + " OK alice@example.com 1 0")
	msg := []byte("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nDest-Agent: client\r\n\r\nhello offline bob")
	c.sendPayload("UUM", msg, bob, "1", "1")
	if err := s.WaitOIMCount(ctx(t), bob, 1); err != nil {
		t.Fatalf("UUM not stored: %v", err)
	}
	login(t, s, bob, pwd, 12)
	c.sendPayload("UUM", msg, bob, "1", "1")
	// A PNG after it: once QNG is back, the UUM has been handled.
	c.send("PNG")
	for c.read().Name != "QNG" {
	}
	if n := s.OIMCount(bob); n != 1 {
		t.Fatalf("%d OIMs for an online recipient", n)
	}
}

// TestEndpointNameReachesOwnEndpoints: a client with an EndpointName
// (the bridge) shows up, named, in the UBX its account's other MSNP18
// endpoint (the user's own Messenger) receives.
func TestEndpointNameReachesOwnEndpoints(t *testing.T) {
	s := newServer(t)
	tokens, err := ssoTokens(t, s, alice, pwd)
	if err != nil {
		t.Fatal(err)
	}
	own, nonce := ssoLogin(t, s, alice, 18)
	ticket, mbi, err := msnp.SSOLoginArgs(tokens, nonce)
	if err != nil {
		t.Fatal(err)
	}
	tr := own.send("USR", "SSO", "S", ticket, mbi, "{11111111-1111-4111-8111-111111111111}")
	own.expect("USR " + tr + " OK alice@example.com 1 0")
	own.send("CHG", "NLN", "2788999212:48", "0")
	cfg := msnp.Config{Server: s.NSAddr(), RSTURL: s.RSTURL(), Protocols: []msnp.Protocol{msnp.MSNP18},
		MachineGUID: "{22222222-2222-4222-8222-222222222222}", EndpointName: "msnbridge"}
	bridge, err := msnp.New(cfg, alice, pwd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bridge.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	defer bridge.Close()
	if err := bridge.SetStatus(ctx(t), msnp.StatusOnline); err != nil {
		t.Fatal(err)
	}
	for {
		cmd := own.read()
		if cmd.Name == "OUT" {
			t.Fatal("the user's own endpoint was signed out")
		}
		if cmd.Name != "UBX" || cmd.Arg(0) != "1:alice@example.com" {
			continue
		}
		d, err := msnp.ParseUBXData(cmd.Payload)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range d.Private {
			if p.EpName == "msnbridge" && strings.EqualFold(p.ID, "{22222222-2222-4222-8222-222222222222}") {
				return
			}
		}
	}
}
