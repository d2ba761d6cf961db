package xmpp

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/msnbridge/msnbridge/bridge"
)

func TestRoomJIDRoundTrip(t *testing.T) {
	domain := jid.MustParse("msn.example.org")
	cases := map[bridge.PortalID]string{
		"3f2a9c":         `group-3f2a9c@msn.example.org`,
		"a.b_c-d":        `group-a.b_c-d@msn.example.org`,
		"Mixed":          `groupx-4d69786564@msn.example.org`, // JIDs fold case, ids need not
		"has space/@\\x": `groupx-6861732073706163652f405c78@msn.example.org`,
		"ünï":            `groupx-c3bc6ec3af@msn.example.org`,
	}
	for id, want := range cases {
		j, err := RoomJID(domain, id)
		if err != nil {
			t.Fatalf("RoomJID(%q): %v", id, err)
		}
		if j.String() != want {
			t.Errorf("RoomJID(%q) = %s, want %s", id, j, want)
		}
		back, err := PortalOfRoom(domain, j)
		if err != nil || back != id {
			t.Errorf("PortalOfRoom(%s) = %q, %v; want %q", j, back, err, id)
		}
		// With a nick, the room is the same.
		withNick, _ := j.WithResource("Bob")
		if back, err := PortalOfRoom(domain, withNick); err != nil || back != id {
			t.Errorf("PortalOfRoom(%s) = %q, %v", withNick, back, err)
		}
	}
	if _, err := RoomJID(domain, ""); err == nil {
		t.Error("empty portal id got a room")
	}
	if _, err := RoomJID(domain, bridge.PortalID(strings.Repeat("a", maxPortalIDLen+1))); err == nil {
		t.Error("over-long portal id got a room")
	}
}

func TestPortalOfRoomRejects(t *testing.T) {
	domain := jid.MustParse("msn.example.org")
	for _, s := range []string{
		`alice\40hotmail.com@msn.example.org`, // a contact, never a room
		`group-@msn.example.org`,
		`groupx-@msn.example.org`,
		`groupx-zz@msn.example.org`,     // not hex
		`groupx-616263@msn.example.org`, // "abc" is safe: only group-abc names it
		`group-abc@other.example.org`,
		`msn.example.org`,
		`room@msn.example.org`,
	} {
		if id, err := PortalOfRoom(domain, jid.MustParse(s)); err == nil {
			t.Errorf("PortalOfRoom(%s) = %q, want an error", s, id)
		}
	}
	// Contact JIDs and room JIDs never meet.
	for _, passport := range []string{"group-x@hotmail.com", "groupx-61@x.org"} {
		c, err := ContactJID(domain, passport)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := PortalOfRoom(domain, c); err == nil {
			t.Errorf("contact JID %s taken for a room", c)
		}
	}
}

func TestOccupantNicks(t *testing.T) {
	domain := jid.MustParse("msn.example.org")
	members := []string{"Bob@Hotmail.com", "carol@hotmail.com", "dave@hotmail.com", "erin@hotmail.com", "frank@hotmail.com", "bob@hotmail.com"}
	names := map[string]string{
		"bob@hotmail.com":   "Bob",
		"carol@hotmail.com": "Sam",
		"dave@hotmail.com":  "Sam",
		"erin@hotmail.com":  "",         // no name: the passport
		"frank@hotmail.com": "me\x00ow", // not a valid nick: the passport
	}
	got := occupantNicks(domain, members, names, map[string]bool{"Bob": true})
	want := map[string]string{
		"bob@hotmail.com":   "Bob (bob@hotmail.com)", // the user holds "Bob"
		"carol@hotmail.com": "Sam (carol@hotmail.com)",
		"dave@hotmail.com":  "Sam (dave@hotmail.com)",
		"erin@hotmail.com":  "erin@hotmail.com",
		"frank@hotmail.com": "frank@hotmail.com",
	}
	if len(got) != len(want) {
		t.Fatalf("nicks %v, want %v", got, want)
	}
	for p, n := range want {
		if got[p] != n {
			t.Errorf("nick of %s = %q, want %q", p, got[p], n)
		}
	}
	seen := make(map[string]bool)
	for _, n := range got {
		if seen[n] {
			t.Errorf("nick %q given twice", n)
		}
		seen[n] = true
	}
}

func TestMUCStanzaShapes(t *testing.T) {
	room := jid.MustParse("group-abc@msn.example.org")
	g := &Gateway{domain: jid.MustParse("msn.example.org")}
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if err := enc.Encode(g.occupantPresence(room, "bob@hotmail.com", "Bob <b>", "u@x/r", "")); err != nil {
		t.Fatal(err)
	}
	if err := enc.Encode(selfPresence(room, "me", "u@x/r", "unavailable", "110", "210")); err != nil {
		t.Fatal(err)
	}
	if err := enc.Encode(outMessage{From: "msn.example.org", To: "u@x", Extra: []any{directInvite{JID: room.String()}}}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`<presence from="group-abc@msn.example.org/Bob &lt;b&gt;" to="u@x/r"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant" jid="bob\40hotmail.com@msn.example.org"></item></x></presence>`,
		`<presence type="unavailable" from="group-abc@msn.example.org/me" to="u@x/r"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="none" jid="u@x/r"></item><status code="110"></status><status code="210"></status></x></presence>`,
		`<x xmlns="jabber:x:conference" jid="group-abc@msn.example.org"></x>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s\nin %s", want, out)
		}
	}
}

func FuzzPortalOfRoom(f *testing.F) {
	domain := jid.MustParse("msn.example.org")
	for _, s := range []string{"group-abc", "groupx-4d69786564", "groupx-616263", "group-", `alice\40x.org`, "groupx-zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Any portal id either has no room or a room that leads back to it.
		if j, err := RoomJID(domain, bridge.PortalID(s)); err == nil {
			if back, err := PortalOfRoom(domain, j); err != nil || string(back) != s {
				t.Fatalf("RoomJID(%q) = %s leads back to %q, %v", s, j, back, err)
			}
		}
		// Any localpart is either no room or the one canonical room of its id.
		j, err := jid.New(s, domain.Domainpart(), "")
		if err != nil {
			return
		}
		id, err := PortalOfRoom(domain, j)
		if err != nil {
			return
		}
		canonical, err := RoomJID(domain, id)
		if err != nil || !canonical.Equal(j) {
			t.Fatalf("%s names portal %q, whose room is %s (%v)", j, id, canonical, err)
		}
	})
}

func TestAddOccupantKeepsShownNicks(t *testing.T) {
	g := &Gateway{domain: jid.MustParse("msn.example.org")}
	g.state.init()
	user := bridge.UserID{Frontend: Kind, ID: "u@example.org"}
	g.state.setContact(user.ID, bridge.Contact{Passport: "sam1@hotmail.com", FriendlyName: "Sam"})
	g.state.setContact(user.ID, bridge.Contact{Passport: "sam2@hotmail.com", FriendlyName: "Sam"})
	r := &mucRoom{names: map[string]string{"me2@hotmail.com": "Me"}, joined: map[string]string{"u@example.org/pc": "Me"}}
	r.occupants = occupantNicks(g.domain, []string{"sam1@hotmail.com"}, g.memberNames(user, r, []string{"sam1@hotmail.com"}), r.userNicks())
	if r.occupants["sam1@hotmail.com"] != "Sam" {
		t.Fatalf("first Sam is %q", r.occupants["sam1@hotmail.com"])
	}
	// A second Sam joins: the first keeps the nick the user already sees.
	if n, isNew := g.addOccupant(user, r, "Sam2@Hotmail.com"); !isNew || n != "Sam (sam2@hotmail.com)" {
		t.Errorf("second Sam: %q, new %v", n, isNew)
	}
	if r.occupants["sam1@hotmail.com"] != "Sam" {
		t.Errorf("first Sam renamed to %q", r.occupants["sam1@hotmail.com"])
	}
	// Someone named like the user does not take the user's nick.
	if n, _ := g.addOccupant(user, r, "me2@hotmail.com"); n != "Me (me2@hotmail.com)" {
		t.Errorf("namesake of the user: %q", n)
	}
	// Known participants are not new.
	if n, isNew := g.addOccupant(user, r, "sam1@hotmail.com"); isNew || n != "Sam" {
		t.Errorf("known participant: %q, new %v", n, isNew)
	}
}

func TestCloseUserRoomsForgetsOnlyTheirs(t *testing.T) {
	g := &Gateway{domain: jid.MustParse("msn.example.org")}
	mk := func(id string) func() (*mucRoom, error) {
		return func() (*mucRoom, error) {
			return &mucRoom{portal: bridge.PortalID(id), joined: map[string]string{"x@y/z": "me"}}, nil
		}
	}
	a, _ := g.muc.room("a@x", "p1", mk("p1"))
	b, _ := g.muc.room("ab@x", "p2", mk("p2")) // a longer name with the same start
	g.closeUserRooms("a@x")
	if r, _ := g.muc.room("a@x", "p1", nil); r != nil || !a.gone || len(a.joined) != 0 {
		t.Errorf("a@x's room still there (gone %v, joined %v)", a.gone, a.joined)
	}
	if r, _ := g.muc.room("ab@x", "p2", nil); r != b || b.gone {
		t.Error("another user's room was dropped")
	}
	g.closeRooms()
	if r, _ := g.muc.room("ab@x", "p2", nil); r != nil || !b.gone {
		t.Error("closeRooms left a room")
	}
}
