package xmpp

import (
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
)

var testDomain = jid.MustParse("msn.localhost")

func TestContactJIDRoundTrip(t *testing.T) {
	cases := []struct{ passport, jid, back string }{
		{"alice@hotmail.com", `alice\40hotmail.com@msn.localhost`, "alice@hotmail.com"},
		{"Alice@Hotmail.COM", `alice\40hotmail.com@msn.localhost`, "alice@hotmail.com"},
		{"john smith@example.org", `john\20smith\40example.org@msn.localhost`, "john smith@example.org"},
		{`back\slash@x.y`, `back\5cslash\40x.y@msn.localhost`, `back\slash@x.y`},
		{`lit\40eral@x.y`, `lit\5c40eral\40x.y@msn.localhost`, `lit\40eral@x.y`},
		{"o'brien&co@x.y", `o\27brien\26co\40x.y@msn.localhost`, "o'brien&co@x.y"},
		{`"<a/b:c>"@x.y`, `\22\3ca\2fb\3ac\3e\22\40x.y@msn.localhost`, `"<a/b:c>"@x.y`},
	}
	for _, c := range cases {
		j, err := ContactJID(testDomain, c.passport)
		if err != nil {
			t.Fatalf("ContactJID(%q): %v", c.passport, err)
		}
		if j.String() != c.jid {
			t.Errorf("ContactJID(%q) = %s, want %s", c.passport, j, c.jid)
		}
		back, err := PassportOf(testDomain, j)
		if err != nil || back != c.back {
			t.Errorf("PassportOf(%s) = %q, %v; want %q", j, back, err, c.back)
		}
		// A resource does not change whom the JID stands for.
		full, _ := j.WithResource("phone")
		if back, err := PassportOf(testDomain, full); err != nil || back != c.back {
			t.Errorf("PassportOf(%s) = %q, %v", full, back, err)
		}
	}
}

func TestContactJIDRejects(t *testing.T) {
	for _, p := range []string{"", "a\x00b@x", "tab\there@x", "\xff@x", strings.Repeat("a", 400)} {
		if j, err := ContactJID(testDomain, p); !errors.Is(err, errBadPassport) {
			t.Errorf("ContactJID(%q) = %s, %v; want errBadPassport", p, j, err)
		}
	}
	for _, s := range []string{
		"msn.localhost",                     // the gateway itself
		`alice\40hotmail.com@other.example`, // another domain
		`alice\5chotmail@msn.localhost`,     // fine, canonical: must pass (checked below)
		`alice\hotmail@msn.localhost`,       // non-canonical spelling of alice\5chotmail
	} {
		j := jid.MustParse(s)
		_, err := PassportOf(testDomain, j)
		switch s {
		case `alice\5chotmail@msn.localhost`:
			if err != nil {
				t.Errorf("PassportOf(%s): %v", s, err)
			}
		default:
			if err == nil {
				t.Errorf("PassportOf(%s) accepted a JID that is not a canonical contact JID", s)
			}
		}
	}
}

// FuzzPassportJID checks that every passport the gateway accepts maps to a
// JID that leads back to it, and that the JID's text parses to the same JID.
func FuzzPassportJID(f *testing.F) {
	for _, s := range []string{"alice@hotmail.com", `a\20b`, `\5c`, "Ünïcode@x", "ＡＢ@x", "a b'c&d", `\`, "\u0130@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, passport string) {
		j, err := ContactJID(testDomain, passport)
		if err != nil {
			return
		}
		back, err := PassportOf(testDomain, j)
		if err != nil {
			t.Fatalf("PassportOf(ContactJID(%q) = %s): %v", passport, j, err)
		}
		if back != NormalizePassport(passport) {
			t.Fatalf("round trip of %q gave %q", passport, back)
		}
		reparsed, err := jid.Parse(j.String())
		if err != nil || !reparsed.Equal(j) {
			t.Fatalf("JID %s does not reparse: %v", j, err)
		}
	})
}
