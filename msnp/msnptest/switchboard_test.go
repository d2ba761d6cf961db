package msnptest_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

// until reads lines until one starts with prefix, skipping presence and
// other notification-server chatter.
func (c *testClient) until(prefix string) string {
	c.t.Helper()
	for i := 0; i < 64; i++ {
		c.read()
		if strings.HasPrefix(c.last, prefix) {
			return c.last
		}
	}
	c.t.Fatalf("%s: no line starting %q", c.name, prefix)
	return ""
}

// sbGUIDs are the machine GUIDs the scripted clients sign in with on
// MSNP16+.
var sbGUIDs = map[string]string{
	alice: "{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}",
	bob:   "{0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D}",
}

// sbName is what email's scripted client calls itself in USR and ANS at
// ver: "email;{guid}" on MSNP16+ (sso_msnp18.txt), the email before.
func sbName(email string, ver int) string {
	if ver >= 16 {
		return email + ";" + sbGUIDs[email]
	}
	return email
}

// loginAt logs email in at MSNP ver: Tweener below 15, SSO from 15 (with
// the machine GUID from 16).
func loginAt(t *testing.T, s *msnptest.Server, email, password string, ver int) *testClient {
	t.Helper()
	if ver < 15 {
		return login(t, s, email, password, ver)
	}
	tokens, err := ssoTokens(t, s, email, password)
	if err != nil {
		t.Fatal(err)
	}
	c, nonce := ssoLogin(t, s, email, ver)
	ticket, mbi, err := msnp.SSOLoginArgs(tokens, nonce)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"SSO", "S", ticket, mbi}
	if ver >= 16 {
		args = append(args, sbGUIDs[email])
	}
	tr := c.send("USR", args...)
	c.expect("USR " + tr + " OK " + email + " 1 0")
	return c
}

// sbWorld logs alice and bob (contacts, named Alice and Bob) in at ver and
// sets them online; carol exists but stays offline.
func sbWorld(t *testing.T, ver int) (*msnptest.Server, *testClient, *testClient) {
	t.Helper()
	s := msnptest.NewServer()
	t.Cleanup(s.Close)
	s.AddAccount(alice, "pw", "Alice A")
	s.AddAccount(bob, "pw", "Bob")
	s.AddAccount(carol, "pw", "")
	s.AddContact(alice, bob)
	s.AddContact(alice, carol)
	a := loginAt(t, s, alice, "pw", ver)
	b := loginAt(t, s, bob, "pw", ver)
	for _, c := range []*testClient{a, b} {
		tr := c.send("CHG", "NLN", "0")
		c.until("CHG " + tr + " NLN ")
	}
	return s, a, b
}

// openSB asks for a switchboard over ns and logs in to it.
func openSB(t *testing.T, s *msnptest.Server, ns *testClient, email string) *testClient {
	t.Helper()
	tr := ns.send("XFR", "SB")
	f := strings.Fields(ns.until("XFR " + tr + " SB "))
	if len(f) < 6 || f[3] != s.SBAddr() || f[4] != "CKI" {
		t.Fatalf("XFR reply %q", ns.last)
	}
	sb := dialAddr(t, s.SBAddr(), email+"/SB")
	sb.send("USR", email, f[5])
	return sb
}

// ring CALs who from sb and answers on their NS and a new switchboard
// connection, as the endpoint name ans; it returns the invitee's
// switchboard connection.
func ring(t *testing.T, s *msnptest.Server, sb, whoNS *testClient, who string, ans ...string) *testClient {
	t.Helper()
	tr := sb.send("CAL", who)
	f := strings.Fields(sb.until("CAL " + tr + " RINGING "))
	session := f[3]
	r := strings.Fields(whoNS.until("RNG "))
	if len(r) < 7 || r[1] != session || r[2] != s.SBAddr() || r[3] != "CKI" {
		t.Fatalf("RNG %q for session %q", whoNS.last, session)
	}
	in := dialAddr(t, s.SBAddr(), who+"/SB")
	name := who
	if len(ans) > 0 {
		name = ans[0]
	}
	in.send("ANS", name, r[4], session)
	return in
}

func TestSwitchboardSession(t *testing.T) {
	for _, ver := range []int{8, 12, 15, 18} {
		t.Run("MSNP"+strconv.Itoa(ver), func(t *testing.T) {
			s, a, b := sbWorld(t, ver)
			caps := ""
			switch {
			case ver >= 16:
				caps = " 0:0"
			case ver >= 12:
				caps = " 0"
			}
			// On MSNP16+ an endpoint is "email;{guid}", lower-cased by
			// the server in IRO, JOI and BYE, and the account follows as
			// the bare email (sso_msnp18.txt).
			ep := func(email string) string {
				if ver < 16 {
					return ""
				}
				return email + ";" + strings.ToLower(sbGUIDs[email])
			}
			asb := openSB(t, s, a, sbName(alice, ver))
			asb.expect("USR 1 OK " + sbName(alice, ver) + " Alice%20A")
			asb.send("CAL", "nobody")
			asb.expect("208 2")
			asb.send("CAL", carol)
			asb.expect("217 3")
			asb.send("CAL", "ghost@example.com")
			asb.expect("217 4")

			bsb := ring(t, s, asb, b, bob, sbName(bob, ver))
			if f := strings.Fields(b.last); f[5] != alice || f[6] != "Alice%20A" {
				t.Fatalf("RNG %q does not name the inviter", b.last)
			}
			if ver >= 16 {
				bsb.expect("IRO 1 1 2 " + ep(alice) + " Alice%20A" + caps)
				bsb.expect("IRO 1 2 2 alice@example.com Alice%20A" + caps)
				bsb.expect("ANS 1 OK")
				bsb.expect("JOI bob@example.com Bob" + caps)
				asb.expect("JOI " + ep(bob) + " Bob" + caps)
			} else {
				bsb.expect("IRO 1 1 1 alice@example.com Alice%20A" + caps)
				bsb.expect("ANS 1 OK")
			}
			asb.expect("JOI bob@example.com Bob" + caps)
			tr := asb.send("CAL", bob)
			asb.expect("215 " + tr)

			p := []byte("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhi")
			asb.sendPayload("MSG", p, "U")
			tr = asb.sendPayload("MSG", p, "A")
			for i := 0; i < 2; i++ {
				// The sender is the bare account, even on MSNP16+.
				m := bsb.expect("MSG alice@example.com Alice%20A " + strconv.Itoa(len(p)))
				if string(m.Payload) != string(p) {
					t.Fatalf("payload %q", m.Payload)
				}
			}
			asb.expect("ACK " + tr) // and none for the U before it
			if d := s.Delivered(bob); len(d) != 2 || d[0].From != alice {
				t.Fatalf("Delivered = %+v", d)
			}

			s.NAKNext(alice)
			tr = asb.sendPayload("MSG", p, "A")
			asb.expect("NAK " + tr)

			bsb.sendLine("OUT")
			bsb.expectClosed()
			if ver >= 16 {
				asb.expect("BYE " + ep(bob))
			}
			asb.expect("BYE bob@example.com")
			// Alone, a message is still ACKed: ACK is not delivery.
			tr = asb.sendPayload("MSG", p, "A")
			asb.expect("ACK " + tr)
			asb.sendPayload("MSG", make([]byte, 1665), "N")
			asb.expectClosed()
			if err := s.WaitSBSessions(ctx(t), alice, 0); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSwitchboardRefusals(t *testing.T) {
	for _, ver := range []int{8, 12, 15, 18} {
		t.Run("MSNP"+strconv.Itoa(ver), func(t *testing.T) {
			s, a, b := sbWorld(t, ver)
			// A wrong cookie, and a cookie used twice.
			bad := dialAddr(t, s.SBAddr(), "bad")
			bad.send("USR", alice, "0123456789abcdef0123")
			bad.expect("911 1")
			bad.expectClosed()
			tr := a.send("XFR", "SB")
			f := strings.Fields(a.until("XFR " + tr + " SB "))
			first := dialAddr(t, s.SBAddr(), "first")
			first.send("USR", sbName(alice, ver), f[5])
			first.expectPrefix("USR 1 OK ")
			again := dialAddr(t, s.SBAddr(), "again")
			again.send("USR", sbName(alice, ver), f[5])
			again.expect("911 1")
			// Someone else's cookie.
			other := dialAddr(t, s.SBAddr(), "other")
			tr = a.send("XFR", "SB")
			f = strings.Fields(a.until("XFR " + tr + " SB "))
			other.send("USR", bob, f[5])
			other.expect("911 1")

			s.RefuseCAL(280)
			tr = first.send("CAL", bob)
			first.expect("280 " + tr)
			s.RefuseCAL(0)
			bsb := ring(t, s, first, b, bob, sbName(bob, ver))
			bsb.until("ANS 1 OK")
			first.until("JOI " + bob + " ")

			// P2P needs ack D; an unknown ack type closes too.
			p2p := []byte("MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: bob@example.com\r\n\r\n")
			first.sendPayload("MSG", p2p, "A")
			first.expectClosed()
			byeAlice(t, bsb, ver, "")
			x := openSB(t, s, a, sbName(alice, ver))
			x.expectPrefix("USR 1 OK")
			x.sendPayload("MSG", []byte("MIME-Version: 1.0\r\n\r\n"), "Z")
			x.expectClosed()
		})
	}
}

func TestSwitchboardFaults(t *testing.T) {
	for _, ver := range []int{8, 12, 15, 18} {
		t.Run("MSNP"+strconv.Itoa(ver), func(t *testing.T) {
			s, a, b := sbWorld(t, ver)
			asb := openSB(t, s, a, sbName(alice, ver))
			asb.expectPrefix("USR 1 OK")
			bsb := ring(t, s, asb, b, bob, sbName(bob, ver))
			bsb.until("ANS 1 OK")
			asb.until("JOI " + bob + " ")
			if got := s.SBParticipants(alice); len(got) != 1 || strings.Join(got[0], ",") != alice+","+bob {
				t.Fatalf("SBParticipants = %q", got)
			}

			// The connection dies right after the server read the MSG: nothing
			// is relayed, the others see the sender leave.
			s.DropNextMessage(alice)
			asb.sendPayload("MSG", []byte("MIME-Version: 1.0\r\n\r\nlost"), "A")
			asb.expectClosed()
			byeAlice(t, bsb, ver, "")
			if d := s.Delivered(bob); len(d) != 0 {
				t.Fatalf("relayed %+v", d)
			}

			// DropSwitchboards is a network failure.
			bsb.sendLine("OUT")
			asb = openSB(t, s, a, sbName(alice, ver))
			asb.expectPrefix("USR 1 OK")
			bsb = ring(t, s, asb, b, bob, sbName(bob, ver))
			bsb.until("ANS 1 OK")
			asb.until("JOI " + bob + " ")
			if n := s.DropSwitchboards(bob); n != 1 {
				t.Fatalf("dropped %d", n)
			}
			bye(t, asb, bob, ver, "")

			// Idle timeout: everyone is told "BYE other 1" and disconnected.
			bsb = ring(t, s, asb, b, bob, sbName(bob, ver))
			bsb.until("ANS 1 OK")
			asb.until("JOI " + bob + " ")
			s.SetSBIdleTimeout(50 * time.Millisecond)
			bye(t, asb, bob, ver, " 1")
			asb.expectClosed()
			byeAlice(t, bsb, ver, " 1")
			bsb.expectClosed()
			if n := s.SwitchboardsOpened(); n != 2 {
				t.Fatalf("SwitchboardsOpened = %d", n)
			}
		})
	}
}

// bye expects who's leaving as c sees it at ver: on MSNP16+ the
// endpoint's BYE, then the account's (sso_msnp18.txt); suffix is " 1" for
// an idle timeout.
func bye(t *testing.T, c *testClient, who string, ver int, suffix string) {
	t.Helper()
	if ver >= 16 {
		// After the roster an MSNP16+ endpoint may still have its own
		// account's JOI to read.
		if got := c.until("BYE "); got != "BYE "+who+";"+strings.ToLower(sbGUIDs[who])+suffix {
			t.Fatalf("%s: got %q, want %s's endpoint leaving", c.name, got, who)
		}
		c.expect("BYE " + who + suffix)
		return
	}
	c.expect("BYE " + who + suffix)
}

func byeAlice(t *testing.T, c *testClient, ver int, suffix string) {
	t.Helper()
	bye(t, c, alice, ver, suffix)
}

func FuzzSBInput(f *testing.F) {
	for _, seed := range []string{
		"CAL 2 bob@example.com\r\nMSG 3 A 5\r\nhello",
		"MSG 2 Z 0\r\n",
		"MSG 2 D 60\r\nMIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\n\r\n",
		"ANS 1 bob@example.com x y\r\nCAL 2 %\r\nCAL 3 nobody\r\nOUT\r\n",
		"USR 5 alice@example.com 0\r\nMSG 9 N 99999\r\n",
	} {
		f.Add(true, []byte(seed))
		f.Add(false, []byte(seed))
	}
	s := msnptest.NewServer()
	f.Cleanup(s.Close)
	s.AddAccount(alice, pwd, "")
	s.AddAccount(bob, pwd, "")
	s.AddContact(alice, bob)
	f.Fuzz(func(t *testing.T, authenticated bool, input []byte) {
		a := login(t, s, alice, pwd, 8+len(input)%5)
		tr := a.send("CHG", "NLN", "0")
		a.until("CHG " + tr + " NLN 0")
		sb := dialAddr(t, s.SBAddr(), "fuzz")
		if authenticated {
			tr := a.send("XFR", "SB")
			sb.send("USR", alice, strings.Fields(a.until("XFR " + tr + " SB "))[5])
		}
		sb.conn.Write(input)
		sb.conn.Close()
		// The switchboard must survive: a fresh session still opens.
		x := openSB(t, s, a, alice)
		x.expectPrefix("USR 1 OK ")
		x.conn.Close()
		a.conn.Close()
	})
}

// login18 signs email in on MSNP18 as the endpoint guid and sets it online.
func login18(t *testing.T, s *msnptest.Server, email, guid string) *testClient {
	t.Helper()
	tokens, err := ssoTokens(t, s, email, pwd)
	if err != nil {
		t.Fatal(err)
	}
	c, nonce := ssoLogin(t, s, email, 18)
	ticket, mbi, err := msnp.SSOLoginArgs(tokens, nonce)
	if err != nil {
		t.Fatal(err)
	}
	tr := c.send("USR", "SSO", "S", ticket, mbi, guid)
	c.expect("USR " + tr + " OK " + email + " 1 0")
	tr = c.send("CHG", "NLN", "2788999212:48", "0")
	c.until("CHG " + tr + " NLN ")
	return c
}

// TestSwitchboardEndpoints: on MSNP16+ the switchboard deals in endpoints
// (FACTS.md §6, sso_msnp18.txt): every endpoint of the invitee is rung,
// IRO and JOI list "email;{guid}" and the bare account, and the bare BYE
// comes only when the account's last endpoint leaves.
func TestSwitchboardEndpoints(t *testing.T) {
	const (
		ga  = "{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}"
		gb1 = "{0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D}"
		gb2 = "{22222222-2222-4222-8222-222222222222}"
	)
	lower := func(g string) string { return strings.ToLower(g) }
	s := newServer(t)
	a := login18(t, s, alice, ga)
	b1 := login18(t, s, bob, gb1)
	b2 := login18(t, s, bob, gb2)

	tr := a.send("XFR", "SB")
	f := strings.Fields(a.until("XFR " + tr + " SB "))
	bad := dialAddr(t, s.SBAddr(), "bad")
	bad.send("USR", alice+";{not-a-guid}", f[5])
	bad.expect("911 1")
	bad.expectClosed()
	tr = a.send("XFR", "SB")
	f = strings.Fields(a.until("XFR " + tr + " SB "))
	asb := dialAddr(t, s.SBAddr(), alice+"/SB")
	asb.send("USR", alice+";"+ga, f[5])
	asb.expect("USR 1 OK " + alice + ";" + ga + " " + alice)

	tr = asb.send("CAL", bob)
	session := strings.Fields(asb.expectPrefix("CAL " + tr + " RINGING ").String())[3]
	const caps = "2788999212:48"
	var sbs []*testClient
	for i, ep := range []struct {
		ns   *testClient
		guid string
	}{{b1, gb1}, {b2, gb2}} {
		r := strings.Fields(ep.ns.until("RNG "))
		if len(r) != 10 || r[1] != session || r[7] != "U" || r[8] != "messenger.hotmail.com" || r[9] != "1" {
			t.Fatalf("endpoint %d: RNG %q", i+1, ep.ns.last)
		}
		in := dialAddr(t, s.SBAddr(), bob+"/SB"+strconv.Itoa(i+1))
		in.send("ANS", bob+";"+ep.guid, r[4], session)
		sbs = append(sbs, in)
		if i > 0 {
			continue
		}
		// The first endpoint (in before the second answers, so the
		// rosters are deterministic): alice's endpoint and account, then
		// its own account's JOI; alice hears of the endpoint and the
		// account.
		in.expect("IRO 1 1 2 " + alice + ";" + lower(ga) + " " + alice + " " + caps)
		in.expect("IRO 1 2 2 " + alice + " " + alice + " " + caps)
		in.expect("ANS 1 OK")
		in.expect("JOI " + bob + " " + bob + " " + caps)
		asb.expect("JOI " + bob + ";" + lower(gb1) + " " + bob + " " + caps)
		asb.expect("JOI " + bob + " " + bob + " " + caps)
	}
	b1sb := sbs[0]
	// The second: bob's account is already there; only the endpoint joins.
	b2sb := sbs[1]
	b2sb.expect("IRO 1 1 4 " + alice + ";" + lower(ga) + " " + alice + " " + caps)
	b2sb.expect("IRO 1 2 4 " + alice + " " + alice + " " + caps)
	b2sb.expect("IRO 1 3 4 " + bob + ";" + lower(gb1) + " " + bob + " " + caps)
	b2sb.expect("IRO 1 4 4 " + bob + " " + bob + " " + caps)
	b2sb.expect("ANS 1 OK")
	asb.expect("JOI " + bob + ";" + lower(gb2) + " " + bob + " " + caps)
	b1sb.expect("JOI " + bob + ";" + lower(gb2) + " " + bob + " " + caps)

	// One of bob's endpoints leaves: only it goes. The last one takes the
	// account with it.
	b1sb.send("OUT")
	b1sb.expectClosed()
	asb.expect("BYE " + bob + ";" + lower(gb1))
	b2sb.expect("BYE " + bob + ";" + lower(gb1))
	b2sb.send("OUT")
	b2sb.expectClosed()
	asb.expect("BYE " + bob + ";" + lower(gb2))
	asb.expect("BYE " + bob)
}

// TestSwitchboardGUIDBelow16: "email;{guid}" is an MSNP16+ form; an older
// dialect's USR with it is refused.
func TestSwitchboardGUIDBelow16(t *testing.T) {
	s, a, _ := sbWorld(t, 12)
	tr := a.send("XFR", "SB")
	f := strings.Fields(a.until("XFR " + tr + " SB "))
	sb := dialAddr(t, s.SBAddr(), "old")
	sb.send("USR", alice+";{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}", f[5])
	sb.expect("911 1")
	sb.expectClosed()
}

// TestSwitchboardCALSelf: an account may CAL itself to ring its other
// endpoints into the session, as WLM 2009 does on opening a switchboard
// (Escargot's ChatSession.invite rings the invitee's endpoints not yet
// in); with none left to ring, MSNP18 gets a faked RINGING and its own
// JOI, older dialects 215.
func TestSwitchboardCALSelf(t *testing.T) {
	const (
		g1 = "{A1A1A1A1-0000-4000-8000-000000000001}"
		g2 = "{A2A2A2A2-0000-4000-8000-000000000002}"
	)
	lower := func(g string) string { return strings.ToLower(g) }
	const caps = "2788999212:48"
	s := newServer(t)
	a1 := login18(t, s, alice, g1)
	a2 := login18(t, s, alice, g2)
	tr := a2.send("XFR", "SB")
	f := strings.Fields(a2.until("XFR " + tr + " SB "))
	own := dialAddr(t, s.SBAddr(), alice+"/SB2")
	own.send("USR", alice+";"+g2, f[5])
	own.expectPrefix("USR 1 OK ")

	tr = own.send("CAL", alice)
	session := strings.Fields(own.expectPrefix("CAL " + tr + " RINGING ").String())[3]
	own.expect("JOI " + alice + ";" + lower(g2) + " " + alice + " " + caps)
	own.expect("JOI " + alice + " " + alice + " " + caps)
	r := strings.Fields(a1.until("RNG "))
	if len(r) != 10 || r[1] != session || r[5] != alice {
		t.Fatalf("RNG %q", a1.last)
	}
	bridge := dialAddr(t, s.SBAddr(), alice+"/SB1")
	bridge.send("ANS", alice+";"+g1, r[4], session)
	bridge.expect("IRO 1 1 2 " + alice + ";" + lower(g2) + " " + alice + " " + caps)
	bridge.expect("IRO 1 2 2 " + alice + " " + alice + " " + caps)
	bridge.expect("ANS 1 OK")
	own.expect("JOI " + alice + ";" + lower(g1) + " " + alice + " " + caps)

	// Both endpoints are in: nothing to ring, the MSNP18 fake again.
	tr = own.send("CAL", alice)
	own.expectPrefix("CAL " + tr + " RINGING " + session)
	own.expect("JOI " + alice + ";" + lower(g2) + " " + alice + " " + caps)
	own.expect("JOI " + alice + " " + alice + " " + caps)
	// A contact with all endpoints in is still 215.
	b := login18(t, s, bob, "{0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D}")
	tr = own.send("CAL", bob)
	own.expectPrefix("CAL " + tr + " RINGING ")
	r = strings.Fields(b.until("RNG "))
	bsb := dialAddr(t, s.SBAddr(), bob+"/SB")
	bsb.send("ANS", bob+";{0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D}", r[4], session)
	bsb.until("ANS 1 OK")
	own.until("JOI " + bob + " ")
	tr = own.send("CAL", bob)
	own.expect("215 " + tr)

	// Below 18 an account alone with itself gets 215.
	s12, a12, _ := sbWorld(t, 12)
	sb12 := openSB(t, s12, a12, alice)
	sb12.expectPrefix("USR 1 OK ")
	tr = sb12.send("CAL", alice)
	sb12.expect("215 " + tr)
}
