package msnptest_test

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

func TestVERPrefersRealVersions(t *testing.T) {
	s := newServer(t)
	s.SetVersions(8, 12, 18, 21)
	c := dialNS(t, s, "v")
	c.send("VER", "MSNP21", "MSNP18", "CVR0")
	c.expect("VER 1 MSNP18") // as in misc.txt
	c = dialNS(t, s, "v")
	c.send("VER", "MSNP21", "CVR0")
	c.expect("VER 1 MSNP21")
}

func TestStateErrors(t *testing.T) {
	s := newServer(t)
	a := login(t, s, alice, pwd, 11)
	tr := a.send("GCF", "Shields.xml")
	a.expect("715 " + tr)
	tr = a.send("REA", alice, "x")
	a.expect("502 " + tr)
	tr = a.send("XFR", "NS")
	a.expect("201 " + tr)
	tr = a.send("BLP", "AL")
	a.expect("BLP " + tr + " AL")
	tr = a.send("BLP", "AL")
	a.expect("218 " + tr)
	tr = a.send("GTC", "N")
	a.expect("GTC " + tr + " N")
	tr = a.send("USR", "TWN", "I", alice)
	a.expect("205 " + tr)
	tr = a.send("SYN", "0", "0")
	a.expectPrefix("SYN " + tr + " ")
	for i := 0; i < 4; i++ { // GTC BLP PRP LST
		a.read()
	}
	tr = a.send("GCF", "Shields.xml")
	gcf := a.expectPrefix("GCF " + tr + " Shields.xml ")
	if !strings.Contains(string(gcf.Payload), "<shield>") {
		t.Fatalf("GCF payload %q", gcf.Payload)
	}
	// Unknown commands get no reply, as on Escargot; the next reply
	// proves the connection is still in step.
	a.sendLine("ZZZ 99 what")
	a.send("PNG")
	a.expect("QNG 60")

	b := login(t, s, bob, pwd, 8)
	tr = b.send("PRP", "MFN", "Bob")
	b.expect("715 " + tr)
}

func TestCommandsBeforeLoginGetNoReply(t *testing.T) {
	s := newServer(t)
	c := dialNS(t, s, alice)
	c.send("VER", "MSNP12", "CVR0")
	c.expect("VER 1 MSNP12")
	c.send("SYN", "0", "0")
	c.send("CHG", "NLN", "0")
	c.send("CVR", "0x0409", "winnt", "5.1", "i386", "MSNMSGR", "7.5.0324", "msmsgs", alice)
	c.expect("CVR 4 7.5.0324 7.5.0324 7.5.0324 https://escargot.log1p.xyz https://escargot.log1p.xyz")
	// MD5 on MSNP8+ closes the connection without a word.
	c.send("USR", "MD5", "I", alice)
	c.expectClosed()
}

func TestFriendlyNameMSNP12(t *testing.T) {
	s := newServer(t)
	b := login(t, s, bob, pwd, 12)
	b.send("CHG", "NLN", "0")
	b.expectPrefix("CHG")
	b.expectPrefix("MSG Hotmail")
	a := login(t, s, alice, pwd, 12)
	a.send("CHG", "NLN", "0")
	a.expectPrefix("CHG")
	a.expectPrefix("ILN")
	a.expectPrefix("UBX")
	a.expectPrefix("MSG Hotmail")
	b.expectPrefix("NLN NLN alice@example.com alice@example.com 0")
	tr := a.send("PRP", "MFN", "Alice%20%C3%A9%25")
	a.expect("PRP " + tr + " MFN Alice%20\u00e9%25")
	if got := s.FriendlyName(alice); got != "Alice \u00e9%" {
		t.Fatalf("name %q", got)
	}
	b.expect("NLN NLN alice@example.com Alice%20\u00e9%25 0 %3Cmsnobj%2F%3E")
}

// TestBlockHidesPresence: blocking a contact makes it see FLN, unblocking
// shows the presence again.
func TestBlockHidesPresence(t *testing.T) {
	s := newServer(t)
	a := login(t, s, alice, pwd, 12)
	a.send("CHG", "NLN", "0")
	a.expectPrefix("CHG")
	a.expectPrefix("MSG Hotmail")
	b := login(t, s, bob, pwd, 12)
	b.send("CHG", "NLN", "0")
	b.expectPrefix("CHG")
	b.expectPrefix("ILN")
	b.expectPrefix("UBX")
	b.expectPrefix("MSG Hotmail")
	a.expectPrefix("NLN NLN bob@example.com")

	tr := a.send("REM", "AL", bob)
	a.expect("REM " + tr + " AL bob@example.com")
	tr = a.send("ADC", "BL", "N="+bob)
	a.expect("ADC " + tr + " BL N=bob@example.com")
	b.expect("FLN alice@example.com")
	tr = b.send("XFR", "SB")
	b.expectPrefix("XFR " + tr + " SB ")

	tr = a.send("REM", "BL", bob)
	a.expect("REM " + tr + " BL bob@example.com")
	b.expect("NLN NLN alice@example.com alice@example.com 0 %3Cmsnobj%2F%3E")
	b.expect("UBX alice@example.com 53")
}

func TestNotRST(t *testing.T) {
	s := newServer(t)
	req, _ := newPost(s, "/NotRST.srf")
	req.Header.Set("X-User", alice)
	req.Header.Set("X-Password", pwd)
	resp := do(t, req)
	tok := resp.Header.Get("X-Token")
	if resp.StatusCode != 200 || len(tok) != 20 {
		t.Fatalf("NotRST: %d %q", resp.StatusCode, tok)
	}
	c := dialNS(t, s, alice)
	c.send("VER", "MSNP12", "CVR0")
	c.expect("VER 1 MSNP12")
	c.send("USR", "TWN", "I", alice)
	c.expectPrefix("USR 2 TWN S")
	c.send("USR", "TWN", "S", tok)
	c.expect("USR 3 OK alice@example.com 1 0")
}

func TestCloseWaitsAndRefusesNewConnections(t *testing.T) {
	s := msnptest.NewServer()
	s.AddAccount(alice, pwd, "")
	c := login(t, s, alice, pwd, 12)
	addr := s.NSAddr()
	s.Close()
	c.expectClosed()
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatal("the NS still accepts connections after Close")
	}
	s.Close() // idempotent
}

func FuzzNSInput(f *testing.F) {
	for _, seed := range []string{
		"SYN 5 0 0\r\n",
		"CHG 6 NLN 0\r\nUUX 7 20\r\n<Data><PSM>x</PSM>\r\n",
		"ADC 8 FL N=bob@example.com F=Bob\r\nREM 9 FL zz\r\n",
		"ADD 8 RL bob@example.com bob@example.com\r\n",
		"UUX 7 5\r\n<Data\r\nXFR 9 SB\r\nQRY 10 PROD0090YUAUV{2B 32\r\n00000000000000000000000000000000",
		"VER 99 MSNP8\r\nPRP 3 MFN %\r\nREA 4 alice@example.com %zz\r\nBLP 5 XX\r\nGTC 6 A\r\n",
	} {
		f.Add(true, []byte(seed))
		f.Add(false, []byte(seed))
	}
	s := msnptest.NewServer()
	f.Cleanup(s.Close)
	s.AddAccount(alice, pwd, "")
	s.AddAccount(bob, pwd, "")
	s.AddContact(alice, bob)
	s.SetChallenge(true)
	f.Fuzz(func(t *testing.T, loggedIn bool, input []byte) {
		var c *testClient
		if loggedIn {
			c = login(t, s, alice, pwd, 8+len(input)%5)
		} else {
			c = dialNS(t, s, "fuzz")
			c.sendLine("VER 1 MSNP" + strconv.Itoa(8+len(input)%5) + " CVR0")
		}
		c.conn.Write(input)
		c.conn.Close()
		// The server must survive: a fresh login still works.
		d := login(t, s, bob, pwd, 12)
		d.conn.Close()
	})
}

func TestAnnounceMaintenance(t *testing.T) {
	s := newServer(t)
	a := login(t, s, alice, pwd, 11)
	if n := s.AnnounceMaintenance(5); n != 1 {
		t.Fatalf("told %d sessions", n)
	}
	msg := a.expectPrefix("MSG Hotmail Hotmail ")
	if want := "Content-Type: application/x-msmsgssystemmessage\r\n\r\nType: 1\r\nArg1: 5\r\n"; !strings.HasSuffix(string(msg.Payload), want) {
		t.Fatalf("payload %q", msg.Payload)
	}
	s.Kick(alice, "SSD")
	a.expect("OUT SSD")
	a.expectClosed()
}

// TestEmptyFriendlyNameRefused: a friendly name cannot be empty (USR OK,
// ILN and LST carry it as an argument, which an empty one would drop):
// REA and PRP MFN without one get 209, and the name stays (found by
// FuzzNSInput: a later MSNP8 login's USR OK came out one field short).
func TestEmptyFriendlyNameRefused(t *testing.T) {
	s := newServer(t)
	s.AddAccount(alice, pwd, "Alice")
	a := login(t, s, alice, pwd, 8)
	a.sendLine("REA 20 alice@example.com ")
	a.expect("209 20")
	b := login(t, s, alice, pwd, 12)
	b.sendLine("PRP 21 MFN")
	b.expect("209 21")
	if got := s.FriendlyName(alice); got != "Alice" {
		t.Fatalf("name %q after empty changes, want Alice", got)
	}
	login(t, s, alice, pwd, 8) // checks USR OK's shape
}
