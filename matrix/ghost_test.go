package matrix

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"maunium.net/go/mautrix/id"
)

func TestGhostIDOddPassports(t *testing.T) {
	g, err := newGhostNamer("", "example.org")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]id.UserID{
		"alice@example.com":     "@msn_alice=40example.com:example.org",
		"Bob.Smith@Hotmail.com": "@msn__bob._smith=40_hotmail.com:example.org",
		"a+tag@x.com":           "@msn_a=2btag=40x.com:example.org",
		"under_score@x.com":     "@msn_under__score=40x.com:example.org",
		"eq=ual@x.com":          "@msn_eq=3dual=40x.com:example.org",
		"zoë@x.com":             "@msn_zo=c3=ab=40x.com:example.org",
		"sp ace@x.com":          "@msn_sp=20ace=40x.com:example.org",
	}
	for passport, want := range cases {
		got := g.GhostID(passport)
		if got != want {
			t.Errorf("GhostID(%q) = %q, want %q", passport, got, want)
		}
		local, _, _ := got.Parse()
		for i := 0; i < len(local); i++ {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyz0123456789._=-/", rune(local[i])) {
				t.Errorf("GhostID(%q) has %q outside a-z0-9._=-/", passport, local[i])
			}
		}
		back, err := g.PassportFromGhost(got)
		if err != nil || back != passport {
			t.Errorf("PassportFromGhost(%q) = %q, %v; want %q", got, back, err, passport)
		}
	}
}

func TestPassportFromGhostRejects(t *testing.T) {
	g, _ := newGhostNamer("msn_{{.}}", "example.org")
	for _, mxid := range []id.UserID{
		"@alice:example.org",           // a person, no prefix
		"@msn_alice=40x.com:other.org", // another server
		"@msn_:example.org",            // empty passport
		"@msn_alice=4:example.org",     // truncated escape
		"@msn_alice=4G:example.org",    // not hex
		"@msn_alice=4A:example.org",    // upper-case hex is not canonical
		"@msn_=61lice:example.org",     // 'a' needlessly escaped
		"@msn_=5f:example.org",         // '_' escaped instead of "__"
		"@msn_alice_:example.org",      // dangling '_'
		"@msn_al_1ce:example.org",      // '_' before a digit
		"@msnbot:example.org",          // the bot
		"not an mxid",                  // garbage
		"@msn_" + id.UserID(strings.Repeat("a", 200)) + ":example.org", // too long
	} {
		if p, err := g.PassportFromGhost(mxid); !errors.Is(err, ErrNotGhost) {
			t.Errorf("PassportFromGhost(%q) = %q, %v; want ErrNotGhost", mxid, p, err)
		}
	}
}

func TestGhostTemplateSuffixAndErrors(t *testing.T) {
	g, err := newGhostNamer("{{.}}_msn", "hs.test")
	if err != nil {
		t.Fatal(err)
	}
	mxid := g.GhostID("Carol@x.com")
	if mxid != "@_carol=40x.com_msn:hs.test" {
		t.Fatalf("got %q", mxid)
	}
	if p, err := g.PassportFromGhost(mxid); err != nil || p != "Carol@x.com" {
		t.Fatalf("round trip: %q, %v", p, err)
	}
	for _, bad := range []string{"{{.}}", "msn_", "msn_{{.}}_{{.}}", "MSN_{{.}}", "msn {{.}}"} {
		if _, err := newGhostNamer(bad, "hs.test"); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
}

func TestSanitizeDisplayName(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Alice", "Alice"},
		{"  Al\x00ice\u200b \n\t Smith ", "Alice Smith"},
		{"<b>bold</b> <3", "bold <3"},
		{`<script src="x">alert</script>`, "alert"},
		{"[b]Bob[/b] [c=4]red[/c] [a=#ff0000]x[/a]", "Bob red x"},
		{"·$4Bob·$#00ff00,12 ·#Smith·0", "Bob Smith"},
		{"a [not code] b", "a [not code] b"},
		{"\x01\x02", "fallback@x.com"},
		{"", "fallback@x.com"},
		{"bad\xffutf8", "badutf8"},
	}
	for _, c := range cases {
		if got := SanitizeDisplayName(c.in, "fallback@x.com"); got != c.want {
			t.Errorf("SanitizeDisplayName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := SanitizeDisplayName(strings.Repeat("é", 1000), "")
	if n := utf8.RuneCountInString(long); n != maxDisplayNameRunes {
		t.Errorf("long name kept %d runes, want %d", n, maxDisplayNameRunes)
	}
}

func FuzzGhostEscape(f *testing.F) {
	for _, s := range []string{"alice@example.com", "A_b=c+d@x", "zoë@x.com", "", "\x00\xff", "__", "=40"} {
		f.Add(s)
	}
	g, _ := newGhostNamer("msn_{{.}}", "example.org")
	f.Fuzz(func(t *testing.T, s string) {
		esc := EscapePassport(s)
		back, err := UnescapePassport(esc)
		if err != nil || back != s {
			t.Fatalf("round trip of %q via %q gave %q, %v", s, esc, back, err)
		}
		// Unescaping is canonical: whatever it accepts escapes back to
		// itself, so no two ghost IDs share a passport.
		if p, err := UnescapePassport(s); err == nil && EscapePassport(p) != s {
			t.Fatalf("%q unescapes to %q which escapes to %q", s, p, EscapePassport(p))
		}
		if len(s) > 0 && len(s) <= maxPassportLen {
			if p, err := g.PassportFromGhost(g.GhostID(s)); err != nil || p != s {
				t.Fatalf("ghost round trip of %q: %q, %v", s, p, err)
			}
		}
	})
}
