package msnp_test

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/msnbridge/msnbridge/msnp"
)

// TestSSOLoginShape checks the login against the transcripts
// (sso_msnp15.txt, sso_msnp18.txt): USR SSO I, USR SSO S with the proof
// (and the machine GUID on 18), BLP, then the initial ADL naming the
// address book's contacts; and what the switchboard code should call
// itself.
func TestSSOLoginShape(t *testing.T) {
	forVersions(t, []msnp.Protocol{msnp.MSNP15, msnp.MSNP16, msnp.MSNP18}, func(t *testing.T, p msnp.Protocol) {
		s := newServer(t)
		s.AddAccount("alice@example.com", "pw", "Alice")
		s.AddAccount("bob@example.com", "pw", "Bob")
		s.AddContact("alice@example.com", "bob@example.com")
		cfg := config(s, p)
		cfg.MachineGUID = "f52973b6-c926-4bad-9ba8-7c1e840e4ab0"
		c, _ := connect(t, cfg, "alice@example.com", "pw")
		if c.Protocol() != p || c.FriendlyName() != "Alice" {
			t.Fatalf("Protocol %v, name %q", c.Protocol(), c.FriendlyName())
		}
		const guid = "{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}"
		if c.MachineGUID() != guid {
			t.Fatalf("MachineGUID() = %q", c.MachineGUID())
		}
		var names []string
		var usrS, adl *msnp.Command
		for _, cmd := range s.Received("alice@example.com") {
			names = append(names, cmd.Name)
			cmd := cmd
			switch {
			case cmd.Name == "USR" && cmd.Arg(2) == "S":
				usrS = &cmd
			case cmd.Name == "ADL":
				adl = &cmd
			}
		}
		if got := strings.Join(names, " "); got != "VER CVR USR USR BLP ADL" {
			t.Fatalf("commands %q", got)
		}
		wantArgs := 5
		if p >= msnp.MSNP16 {
			wantArgs = 6
			if usrS.Arg(5) != guid {
				t.Errorf("USR S GUID %q", usrS.Arg(5))
			}
		}
		if len(usrS.Args) != wantArgs || !strings.HasPrefix(usrS.Arg(3), "t=") || !strings.HasPrefix(usrS.Arg(4), "HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAA") {
			t.Fatalf("USR S %q", usrS.Args)
		}
		if got := string(adl.Payload); got != `<ml l="1"><d n="example.com"><c n="bob" l="3" t="1"></c></d></ml>` {
			t.Errorf("ADL %s", got)
		}
		want := "alice@example.com"
		if p >= msnp.MSNP16 {
			want += ";" + guid
		}
		if c.EndpointID() != want {
			t.Errorf("EndpointID() = %q, want %q", c.EndpointID(), want)
		}
	})
}

// TestAddressBookChangesPersist: edits made over SOAP are what the next
// login's address-book sync finds.
func TestAddressBookChangesPersist(t *testing.T) {
	forVersions(t, []msnp.Protocol{msnp.MSNP13, msnp.MSNP14, msnp.MSNP15, msnp.MSNP18}, func(t *testing.T, p msnp.Protocol) {
		s := newServer(t)
		for _, who := range []string{"alice", "bob", "carol", "dave"} {
			s.AddAccount(who+"@example.com", "pw", strings.ToUpper(who[:1])+who[1:])
		}
		s.AddContact("alice@example.com", "bob@example.com")
		c, _ := connect(t, config(s, p), "alice@example.com", "pw")
		ctx := ctxT(t)
		if err := c.AddContact(ctx, "carol@example.com"); err != nil {
			t.Fatal(err)
		}
		if err := c.Block(ctx, "bob@example.com"); err != nil {
			t.Fatal(err)
		}
		if err := c.AddContact(ctx, "dave@example.com"); err != nil {
			t.Fatal(err)
		}
		if err := c.RemoveContact(ctx, "dave@example.com"); err != nil {
			t.Fatal(err)
		}
		if err := c.AddContact(ctx, "nobody@example.com"); err == nil {
			t.Error("adding an unknown account succeeded")
		}
		c.Close()
		c2, _ := connect(t, config(s, p), "alice@example.com", "pw")
		got := map[string]msnp.List{}
		for _, ct := range c2.Contacts() {
			got[ct.Passport] = ct.Lists
		}
		if got["carol@example.com"]&(msnp.FL|msnp.AL) != msnp.FL|msnp.AL {
			t.Errorf("carol: %v", got)
		}
		if l := got["bob@example.com"]; l&msnp.BL == 0 || l&msnp.AL != 0 || l&msnp.FL == 0 {
			t.Errorf("bob: %v", got)
		}
		if got["dave@example.com"]&msnp.FL != 0 {
			t.Errorf("dave: %v", got)
		}
		if l := s.Lists("carol@example.com", "alice@example.com"); l&8 == 0 {
			t.Errorf("carol's reverse list lacks alice: %d", l)
		}
	})
}

// TestTwoEndpointsSideBySide: the bridge on MSNP18 signs in beside the
// user's own MSNP18 client (another machine GUID); neither is kicked,
// both see contacts, and neither reports its sibling as a contact.
func TestTwoEndpointsSideBySide(t *testing.T) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "Alice")
	s.AddAccount("bob@example.com", "pw", "Bob")
	s.AddContact("alice@example.com", "bob@example.com")
	own, ownEv := connect(t, config(s, msnp.MSNP18), "alice@example.com", "pw")
	online(t, own, ownEv)
	bridge, bridgeEv := connect(t, config(s, msnp.MSNP18), "alice@example.com", "pw")
	online(t, bridge, bridgeEv)
	if own.MachineGUID() == bridge.MachineGUID() {
		t.Fatal("two clients share a GUID")
	}
	b, bev := connect(t, config(s, msnp.MSNP18), "bob@example.com", "pw")
	online(t, b, bev)
	for _, ev := range []*events{ownEv, bridgeEv} {
		ev.next(t, "bob online", func(e msnp.Event) bool {
			cp, ok := e.(msnp.ContactPresence)
			return ok && cp.Passport == "bob@example.com"
		})
	}
	// A status change of one endpoint reaches the other as its own
	// account's NLN; it must not turn up as a contact.
	if err := own.SetStatus(ctxT(t), msnp.StatusBusy); err != nil {
		t.Fatal(err)
	}
	bev.next(t, "alice busy", func(e msnp.Event) bool {
		cp, ok := e.(msnp.ContactPresence)
		return ok && cp.Passport == "alice@example.com" && cp.Status == msnp.StatusBusy
	})
	if err := b.SetPersonalMessage(ctxT(t), "sync point"); err != nil {
		t.Fatal(err)
	}
	bridgeEv.next(t, "bob's PSM", func(e msnp.Event) bool {
		pm, ok := e.(msnp.PersonalMessage)
		return ok && pm.Text == "sync point"
	})
	for _, e := range append(bridgeEv.all(), ownEv.all()...) {
		switch e := e.(type) {
		case msnp.Disconnected:
			t.Fatalf("an endpoint was signed out: %+v", e)
		case msnp.ContactPresence:
			if e.Passport == "alice@example.com" {
				t.Fatalf("own endpoint reported as a contact: %+v", e)
			}
		case msnp.PersonalMessage:
			if e.Passport == "alice@example.com" {
				t.Fatalf("own endpoint's UBX reported as a contact's: %+v", e)
			}
		}
	}
	if _, ok := bridge.Contact("alice@example.com"); ok {
		t.Error("own account in the contact list")
	}
}

// TestFallbackFrom18To12: by default the client offers 18, 15 and the
// Tweener versions, and takes 12 from a server without SSO.
func TestFallbackFrom18To12(t *testing.T) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "")
	cfg := config(s, 0)
	cfg.Protocols = nil
	if got := msnp.SupportedProtocols(); got[0] != msnp.MSNP18 || got[1] != msnp.MSNP15 || got[2] != msnp.MSNP12 {
		t.Fatalf("SupportedProtocols() = %v", got)
	}
	c, _ := connect(t, cfg, "alice@example.com", "pw")
	if c.Protocol() != msnp.MSNP18 {
		t.Fatalf("Escargot-like server: %v", c.Protocol())
	}
	c.Close()
	s.SetVersions(8, 9, 10, 11, 12)
	c, _ = connect(t, cfg, "alice@example.com", "pw")
	if c.Protocol() != msnp.MSNP12 {
		t.Fatalf("Tweener-only server: %v", c.Protocol())
	}
	ver := s.Received("alice@example.com")[0]
	if ver.Name != "VER" || strings.Join(ver.Args[1:], " ") != "MSNP18 MSNP15 MSNP12 MSNP11 MSNP10 MSNP9 MSNP8 CVR0" {
		t.Fatalf("offered %v", ver.Args)
	}
	// Without an RSTURL the SSO versions are not offered; asking for one
	// is a configuration error.
	cfg.RSTURL = ""
	c, _ = connect(t, cfg, "alice@example.com", "pw")
	if c.Protocol() != msnp.MSNP12 {
		t.Fatalf("no RSTURL: %v", c.Protocol())
	}
	cfg.Protocols = []msnp.Protocol{msnp.MSNP18}
	if _, err := msnp.New(cfg, "alice@example.com", "pw", nil); err == nil {
		t.Fatal("MSNP18 without RSTURL accepted")
	}
	cfg.Protocols, cfg.RSTURL, cfg.OnlyEndpoint = nil, s.RSTURL(), true
	if _, err := msnp.New(cfg, "alice@example.com", "pw", nil); !errors.Is(err, msnp.ErrUnsupported) {
		t.Fatalf("OnlyEndpoint: %v", err)
	}
}

// TestOfflineMessagesBothWays: alice leaves bob two messages while he is
// away (Store2 with the lockkey retry); at login bob gets them in order,
// and they are deleted from the server. One left while he is online is
// announced and delivered at once.
func TestOfflineMessagesBothWays(t *testing.T) {
	forVersions(t, []msnp.Protocol{msnp.MSNP13, msnp.MSNP14, msnp.MSNP15, msnp.MSNP18}, func(t *testing.T, p msnp.Protocol) {
		s := newServer(t)
		s.AddAccount("alice@example.com", "pw", "Alice Ä")
		s.AddAccount("bob@example.com", "pw", "Bob")
		s.AddContact("alice@example.com", "bob@example.com")
		a, aev := connect(t, config(s, p), "alice@example.com", "pw")
		online(t, a, aev)
		if err := a.SendOfflineMessage(ctxT(t), "bob@example.com", "first ✓"); err != nil {
			t.Fatal(err)
		}
		if err := a.SendOfflineMessage(ctxT(t), "bob@example.com", strings.Repeat("second ", 40)); err != nil {
			t.Fatal(err)
		}
		if n := s.OIMCount("bob@example.com"); n != 2 {
			t.Fatalf("%d OIMs stored", n)
		}
		if err := a.SendOfflineMessage(ctxT(t), "nobody@example.com", "x"); err == nil {
			t.Error("OIM to an unknown account accepted")
		}
		b, bev := connect(t, config(s, p), "bob@example.com", "pw")
		online(t, b, bev)
		for _, want := range []string{"first ✓", strings.Repeat("second ", 40)} {
			m := bev.next(t, "OfflineMessage", is[msnp.OfflineMessage]).(msnp.OfflineMessage)
			if m.From != "alice@example.com" || m.FromName != "Alice Ä" || m.Text != want || m.Time.IsZero() {
				t.Fatalf("OfflineMessage = %+v, want %q", m, want)
			}
		}
		if err := s.WaitOIMCount(ctxT(t), "bob@example.com", 0); err != nil {
			t.Fatalf("OIMs not deleted: %v", err)
		}
		s.StoreOIM("alice@example.com", "bob@example.com", "while you were here")
		m := bev.next(t, "live OfflineMessage", is[msnp.OfflineMessage]).(msnp.OfflineMessage)
		if m.Text != "while you were here" {
			t.Fatalf("OfflineMessage = %+v", m)
		}
		if err := s.WaitOIMCount(ctxT(t), "bob@example.com", 0); err != nil {
			t.Fatalf("OIMs not deleted: %v", err)
		}
		if err := b.SendOfflineMessage(ctxT(t), "alice@example.com", ""); err == nil {
			t.Error("empty OIM accepted")
		}
	})
}

// TestStaleSSOTokensRetried: tokens cached from the last login that the
// server no longer knows (it restarted) cost one retry with fresh tokens,
// not an authentication failure; a wrong password is still one.
func TestStaleSSOTokensRetried(t *testing.T) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "")
	c, _ := connect(t, config(s, msnp.MSNP18), "alice@example.com", "pw")
	c.Close()
	s.RevokeTokens()
	if err := c.Connect(ctxT(t)); err != nil {
		t.Fatalf("reconnect with revoked tokens: %v", err)
	}
	c.Close()
	bad, err := msnp.New(config(s, msnp.MSNP18), "alice@example.com", "wrong", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Connect(ctxT(t)); !errors.Is(err, msnp.ErrAuthentication) {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestSSOServicesUnreachable: a token service or address book that cannot
// be reached is a network failure (retry later), not a wrong password.
func TestSSOServicesUnreachable(t *testing.T) {
	s := newServer(t)
	s.AddAccount("alice@example.com", "pw", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	for _, cfg := range []msnp.Config{
		{Server: s.NSAddr(), RSTURL: dead + "/RST.srf", Protocols: []msnp.Protocol{msnp.MSNP18}},
		{Server: s.NSAddr(), RSTURL: s.RSTURL(), SOAPBaseURL: dead, Protocols: []msnp.Protocol{msnp.MSNP18}},
	} {
		c, err := msnp.New(cfg, "alice@example.com", "pw", nil)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Connect(ctxT(t))
		if !errors.Is(err, msnp.ErrNetwork) || errors.Is(err, msnp.ErrAuthentication) {
			t.Errorf("RST %s, SOAP %q: Connect = %v, want ErrNetwork", cfg.RSTURL, cfg.SOAPBaseURL, err)
		}
	}
}
