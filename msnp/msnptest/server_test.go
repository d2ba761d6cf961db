package msnptest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
	carol = "carol@example.com"
	pwd   = "p,w=d%1"
)

func newServer(t *testing.T) *msnptest.Server {
	t.Helper()
	s := msnptest.NewServer()
	t.Cleanup(s.Close)
	s.AddAccount(alice, pwd, "")
	s.AddAccount(bob, pwd, "")
	s.AddAccount(carol, pwd, "Carol C")
	s.AddContact(alice, bob)
	return s
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestLoginOK(t *testing.T) {
	s := newServer(t)
	for _, ver := range []int{8, 9, 10, 11, 12} {
		c := login(t, s, alice, pwd, ver)
		if !s.Online(alice) {
			t.Fatalf("MSNP%d: not online after USR OK", ver)
		}
		c.send("OUT")
		c.expectClosed()
		if err := s.WaitOffline(ctx(t), alice); err != nil {
			t.Fatalf("MSNP%d: still online after OUT: %v", ver, err)
		}
	}
}

func TestLoginWrongPasswordAndUnknownAccount(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct{ email, pwd string }{{alice, "wrong"}, {"nobody@example.com", pwd}} {
		tok, resp := tweener(t, s, tc.email, tc.pwd)
		if tok != "" || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s/%s: token %q status %d, want 401", tc.email, tc.pwd, tok, resp.StatusCode)
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != "Passport1.4 da-status=failed" {
			t.Fatalf("WWW-Authenticate = %q", got)
		}
	}
}

func TestWrongToken(t *testing.T) {
	s := newServer(t)
	c := dialNS(t, s, alice)
	c.send("VER", "MSNP12", "CVR0")
	c.expect("VER 1 MSNP12")
	c.send("USR", "TWN", "I", alice)
	c.expectPrefix("USR 2 TWN S ")
	// Bob's valid token is not Alice's.
	tok, _ := tweener(t, s, bob, pwd)
	c.send("USR", "TWN", "S", tok)
	c.expect("911 3")
	c.expectClosed()
	if s.Online(alice) || s.Online(bob) {
		t.Fatal("a session exists after 911")
	}
}

func TestTokenExpiry(t *testing.T) {
	s := newServer(t)
	s.SetTokenLifetime(0)
	c := dialNS(t, s, alice)
	c.send("VER", "MSNP8", "CVR0")
	c.expect("VER 1 MSNP8")
	c.send("USR", "TWN", "I", alice)
	c.expectPrefix("USR 2 TWN S ")
	tok, _ := tweener(t, s, alice, pwd)
	c.send("USR", "TWN", "S", tok)
	c.expect("911 3")
	c.expectClosed()
}

func TestTokenWithTPrefix(t *testing.T) {
	s := newServer(t)
	c := dialNS(t, s, alice)
	c.send("VER", "MSNP11", "CVR0")
	c.expect("VER 1 MSNP11")
	c.send("USR", "TWN", "I", alice)
	c.expectPrefix("USR 2 TWN S ")
	tok, _ := tweener(t, s, alice, pwd)
	c.send("USR", "TWN", "S", "t="+tok+"&p=xyz")
	c.expect("USR 3 OK alice@example.com 1 0")
}

func TestVERNegotiation(t *testing.T) {
	s := newServer(t)
	c := dialNS(t, s, "v")
	c.send("VER", "MSNP19", "MSNP18", "MSNP12", "CVR0")
	c.expect("VER 1 MSNP18") // Escargot ranks 18 above the nominal 19
	c = dialNS(t, s, "v")
	s.SetVersions(8, 9, 10, 11, 12)
	c.send("VER", "MSNP15", "MSNP12", "MSNP8", "CVR0")
	c.expect("VER 1 MSNP12")
	c.send("VER", "MSNP12", "CVR0")
	c.expect("715 2")
	c.expectClosed()

	c = dialNS(t, s, "v")
	c.send("VER", "MSNP22", "CVR0")
	c.expect("VER 1 0")
	c.expectClosed()

	s.SetVersions(8)
	c = dialNS(t, s, "v")
	c.send("VER", "MSNP12", "MSNP8", "CVR0")
	c.expect("VER 1 MSNP8")
}

func TestRefuseLogins(t *testing.T) {
	s := newServer(t)
	s.RefuseLogins(600)
	c := dialNS(t, s, alice)
	c.send("VER", "MSNP12", "CVR0")
	c.expect("VER 1 MSNP12")
	c.send("USR", "TWN", "I", alice)
	c.expect("600 2")
	c.expectClosed()
}

func TestOTHKick(t *testing.T) {
	s := newServer(t)
	first := login(t, s, alice, pwd, 12)
	second := login(t, s, alice, pwd, 12)
	first.expect("OUT OTH")
	first.expectClosed()
	if !s.Online(alice) {
		t.Fatal("the second session is not online")
	}
	tr := second.send("PNG")
	_ = tr
	second.expect("QNG 60")
}

func TestPing(t *testing.T) {
	s := newServer(t)
	c := login(t, s, alice, pwd, 8)
	c.sendLine("PNG")
	c.expect("QNG")
	// PNG before login closes the connection.
	d := dialNS(t, s, "x")
	d.sendLine("PNG")
	d.expectClosed()
}

// TestCHGDumpOrdering checks the initial presence burst after the first
// CHG on MSNP11: echo, ILN per online contact, UBX, then the mail-data MSG.
func TestCHGDumpOrdering(t *testing.T) {
	s := newServer(t)
	b := login(t, s, bob, pwd, 11)
	b.sendLine("CHG 1 BSY 1073741824")
	b.expect("CHG 1 BSY 1073741824")

	a := login(t, s, alice, pwd, 11)
	tr := a.send("XFR", "SB")
	a.expect("913 " + tr)
	tr = a.send("CHG", "NLN", "0")
	a.expect("CHG " + tr + " NLN 0")
	a.expect("ILN " + tr + " BSY bob@example.com bob@example.com 1073741824 %3Cmsnobj%2F%3E")
	ubx := a.expect("UBX bob@example.com 53")
	if string(ubx.Payload) != "<Data><PSM></PSM><CurrentMedia></CurrentMedia></Data>" {
		t.Fatalf("UBX payload %q", ubx.Payload)
	}
	msg := a.expect("MSG Hotmail Hotmail 195")
	if !strings.Contains(string(msg.Payload), "text/x-msmsgsinitialmdatanotification") {
		t.Fatalf("mail data %q", msg.Payload)
	}
	// The second CHG does not dump again.
	tr = a.send("CHG", "AWY", "0")
	a.expect("CHG " + tr + " AWY 0")
	tr = a.send("XFR", "SB")
	a.expectPrefix("XFR " + tr + " SB 127.0.0.1:")
}

func TestCHGWithoutClientIDIsDropped(t *testing.T) {
	s := newServer(t)
	a := login(t, s, alice, pwd, 8)
	a.sendLine("CHG 1 NLN")
	tr := a.send("CHG", "FLN", "0")
	a.expect("201 " + tr)
	tr = a.send("CHG", "NLN", "0")
	a.expect("CHG " + tr + " NLN 0")
}

// TestFanOut checks presence, PSM and logout fan-out to a watcher.
func TestFanOut(t *testing.T) {
	s := newServer(t)
	a := login(t, s, alice, pwd, 12)
	tr := a.send("CHG", "NLN", "0")
	a.expect("CHG " + tr + " NLN 0")
	a.expect("MSG Hotmail Hotmail 195")

	b := login(t, s, bob, pwd, 8)
	tr = b.send("CHG", "NLN", "268435456")
	b.expect("CHG " + tr + " NLN 268435456")
	b.expect("ILN " + tr + " NLN alice@example.com alice@example.com 0")
	a.expect("NLN NLN bob@example.com bob@example.com 268435456 %3Cmsnobj%2F%3E")

	tr = b.send("REA", bob, "Bob%20B")
	b.expect("REA " + tr + " 1 bob@example.com Bob%20B")
	a.expect("NLN NLN bob@example.com Bob%20B 268435456 %3Cmsnobj%2F%3E")

	tr = a.sendPayload("UUX", []byte("<Data><PSM>hi &amp; bye</PSM><CurrentMedia></CurrentMedia></Data>"))
	a.expect("UUX " + tr + " 0")
	if got := s.PSM(alice); got != "hi & bye" {
		t.Fatalf("PSM = %q", got)
	}
	// Bob speaks MSNP8: the PSM change reaches him as an NLN without UBX.
	b.expect("NLN NLN alice@example.com alice@example.com 0")
	// The same status again is no news; hiding shows FLN.
	tr = a.send("CHG", "NLN", "0")
	a.expect("CHG " + tr + " NLN 0")
	tr = a.send("CHG", "HDN", "0")
	a.expect("CHG " + tr + " HDN 0")
	b.expect("FLN alice@example.com")
	tr = a.send("CHG", "NLN", "0")
	a.expect("CHG " + tr + " NLN 0")
	b.expect("NLN NLN alice@example.com alice@example.com 0")

	b.sendLine("OUT")
	b.expectClosed()
	a.expect("FLN bob@example.com")
}

func TestUBXFanOut(t *testing.T) {
	s := newServer(t)
	a := login(t, s, alice, pwd, 11)
	a.send("CHG", "NLN", "0")
	a.expectPrefix("CHG")
	a.expectPrefix("MSG Hotmail")
	b := login(t, s, bob, pwd, 11)
	b.send("CHG", "NLN", "0")
	b.expectPrefix("CHG")
	a.expectPrefix("NLN NLN bob@example.com")
	tr := b.sendPayload("UUX", []byte("<Data><PSM>a&lt;b</PSM><CurrentMedia></CurrentMedia></Data>"))
	a.expect("NLN NLN bob@example.com bob@example.com 0 %3Cmsnobj%2F%3E")
	ubx := a.expect("UBX bob@example.com 59")
	if string(ubx.Payload) != "<Data><PSM>a&lt;b</PSM><CurrentMedia></CurrentMedia></Data>" {
		t.Fatalf("UBX %q", ubx.Payload)
	}
	// Bob's echo arrives after the fan-out, as on Escargot; read past
	// his initial burst first.
	for {
		if cmd := b.read(); cmd.Name == "UUX" {
			if cmd.String() != "UUX "+tr+" 0" {
				t.Fatalf("UUX reply %q", cmd.String())
			}
			break
		}
	}
}

func TestDropAndKickAndSendRaw(t *testing.T) {
	s := newServer(t)
	a := login(t, s, alice, pwd, 12)
	if !s.SendRaw(alice, []byte("QNG 42\r\n")) {
		t.Fatal("SendRaw: no session")
	}
	a.expect("QNG 42")
	s.Kick(alice, "SSD")
	a.expect("OUT SSD")
	a.expectClosed()

	a = login(t, s, alice, pwd, 12)
	s.Drop(alice)
	a.expectClosed()
	if s.Online(alice) {
		t.Fatal("online after Drop")
	}
}

func TestReceived(t *testing.T) {
	s := newServer(t)
	a := login(t, s, alice, pwd, 12)
	a.send("CHG", "NLN", "0")
	cmd, err := s.WaitReceived(ctx(t), alice, "CHG", 0)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Arg(1) != "NLN" {
		t.Fatalf("CHG args %v", cmd.Args)
	}
	got := s.Received(alice)
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
	}
	if strings.Join(names, " ") != "VER CVR USR USR CHG" {
		t.Fatalf("received %v", names)
	}
}

func TestAddRemoveContactMSNP12(t *testing.T) {
	s := newServer(t)
	a := login(t, s, alice, pwd, 12)
	c := login(t, s, carol, pwd, 12)
	tr := a.send("ADC", "FL", "N="+carol, "F=Carol")
	adc := a.expectPrefix("ADC " + tr + " FL N=carol@example.com F=Carol%20C C=")
	guid := strings.TrimPrefix(adc.Arg(4), "C=")
	c.expect("ADC 0 RL N=alice@example.com F=alice@example.com")
	not := c.expectPrefix("NOT ")
	if !strings.Contains(string(not.Payload), `name="carol@example.com"`) {
		t.Fatalf("NOT payload %q", not.Payload)
	}
	if got := s.Lists(carol, alice); got != 8|16 {
		t.Fatalf("carol's lists for alice = %d, want RL|PL", got)
	}
	tr = a.send("ADC", "AL", "N="+carol)
	a.expect("ADC " + tr + " AL N=carol@example.com")
	// Escargot does not refuse a second add (no 215).
	tr = a.send("ADC", "AL", "N="+carol)
	a.expect("ADC " + tr + " AL N=carol@example.com")
	tr = a.send("ADC", "FL", "N=nobody@example.com")
	a.expect("208 " + tr)
	tr = a.send("REM", "FL", carol)
	a.expect("403 " + tr)
	tr = a.send("REM", "FL", guid)
	a.expect("REM " + tr + " FL " + guid)
	c.expect("REM 0 RL alice@example.com")
	c.expectPrefix("NOT ")
	if got := s.Lists(alice, carol); got != 2 {
		t.Fatalf("alice's lists for carol = %d, want AL", got)
	}
	if got := s.Lists(carol, alice); got != 0 {
		t.Fatalf("carol's lists for alice = %d, want none", got)
	}
	// Not on BL: still a success; no entry at all: 208.
	tr = a.send("REM", "BL", carol)
	a.expect("REM " + tr + " BL carol@example.com")
	tr = a.send("REM", "AL", carol)
	a.expect("REM " + tr + " AL carol@example.com")
	tr = a.send("REM", "AL", carol)
	a.expect("208 " + tr)
	tr = a.send("REM", "AL", "nobody@example.com")
	a.expect("205 " + tr)
}

// TestAcceptPendingContact: accepting someone who added us (FL add of an
// RL-only entry) brings the BPR lines and their presence, on MSNP8.
func TestAcceptPendingContact(t *testing.T) {
	s := newServer(t)
	s.AddContactOneWay(carol, alice)
	c := login(t, s, carol, pwd, 12)
	c.send("CHG", "NLN", "0")
	c.expectPrefix("CHG")
	c.expectPrefix("MSG Hotmail")
	a := login(t, s, alice, pwd, 8)
	tr := a.send("SYN", "0")
	a.expect("SYN " + tr + " 1 2 1")
	a.expect("GTC A")
	a.expect("BLP AL")
	a.expect("LSG 0 Other%20Contacts 0")
	a.expect("LST bob@example.com bob@example.com 11 0")
	a.expect("LST carol@example.com Carol%20C 8 0")
	tr = a.send("CHG", "NLN", "0")
	a.expect("CHG " + tr + " NLN 0")
	tr = a.send("ADD", "AL", carol, carol)
	a.expect("ADD " + tr + " AL 2 carol@example.com carol@example.com")
	tr = a.send("ADD", "FL", carol, carol, "0")
	a.expect("ADD " + tr + " FL 3 carol@example.com carol@example.com 0")
	a.expect("BPR 3 carol@example.com PHH")
	a.expect("BPR 3 carol@example.com PHW")
	a.expect("BPR 3 carol@example.com PHM")
	a.expect("BPR 3 carol@example.com MOB N")
	a.expect("ILN " + tr + " NLN carol@example.com Carol%20C 0")
	// Carol added Alice, so she saw her come online.
	c.expect("NLN NLN alice@example.com alice@example.com 0 %3Cmsnobj%2F%3E")
	c.expect("ADC 0 RL N=alice@example.com F=alice@example.com")
	c.expectPrefix("NOT ")
	if got := s.Lists(alice, carol); got != 1|2|8 {
		t.Fatalf("alice's lists for carol = %d, want FL|AL|RL", got)
	}
}

func TestAddContactMSNP8(t *testing.T) {
	s := newServer(t)
	a := login(t, s, alice, pwd, 8)
	c := login(t, s, carol, pwd, 8)
	tr := a.send("SYN", "0")
	a.expect("SYN " + tr + " 1 1 1")
	for i := 0; i < 4; i++ {
		a.read()
	}
	tr = a.send("ADD", "FL", carol, carol, "0")
	a.expect("ADD " + tr + " FL 2 carol@example.com carol@example.com 0")
	c.expect("ADD 0 RL 1 alice@example.com alice@example.com")
	c.expectPrefix("NOT ")
	tr = c.send("SYN", "0")
	c.expect("SYN " + tr + " 1 1 1")
	c.expect("GTC A")
	c.expect("BLP AL")
	c.expect("LSG 0 Other%20Contacts 0")
	c.expect("LST alice@example.com alice@example.com 8 0")
}

func TestSYNPendingMSNP11(t *testing.T) {
	s := newServer(t)
	s.AddContactOneWay(carol, alice)
	a := login(t, s, alice, pwd, 11)
	tr := a.send("SYN", "0", "0")
	a.expect("SYN " + tr + " 2000-01-01T00:00:00.0-00:00 2000-01-01T00:00:00.0-00:00 2 0")
	a.expect("GTC A")
	a.expect("BLP AL")
	a.expect("PRP MFN alice@example.com")
	a.expectPrefix("LST N=bob@example.com F=bob@example.com C=")
	a.expect("LST N=carol@example.com F=Carol%20C 16 ")
}

func TestChallenge(t *testing.T) {
	s := newServer(t)
	s.SetChallenge(true)
	a := login(t, s, alice, pwd, 11)
	chl := a.expectPrefix("CHL 0 ")
	ans := msnptest.ChallengeAnswer(11, chl.Arg(1), "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL")
	tr := a.sendPayload("QRY", []byte(ans), "PROD0090YUAUV{2B")
	a.expect("QRY " + tr)

	b := login(t, s, bob, pwd, 8)
	b.expectPrefix("CHL 0 ")
	tr = b.sendPayload("QRY", []byte("00000000000000000000000000000000"), "msmsgs@msnmsgr.com")
	b.expect("540 " + tr)
	b.expectClosed()
}

func TestChallengeVectors(t *testing.T) {
	for _, v := range []struct{ chl, id, key, want string }{
		{"22210219642164014968", "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL", "85ecb0db8f32113df79ce0892b9a102c"},
		{"13038318816579321232", "PROD0118R6%2WYOS", "YIXPX@5I2P0UT*LK", "c1f8fb8a2625af1774b0e003451691e5"},
		{"1663122458434562624782678054", "PROD0120PW!CCV9@", "C1BX{V4W}Q3*10SM", "f379e91748f9722568da550eccefec47"},
	} {
		if got := msnptest.ChallengeAnswer(11, v.chl, v.id, v.key); got != v.want {
			t.Errorf("challenge %s: got %s, want %s", v.chl, got, v.want)
		}
	}
}
