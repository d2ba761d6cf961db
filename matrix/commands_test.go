package matrix

import (
	"errors"
	"strings"
	"testing"

	"github.com/msnbridge/msnbridge/bridge"
)

func TestParseCommand(t *testing.T) {
	cases := []struct {
		in   string
		want Command
	}{
		{"help", Command{Name: "help"}},
		{"  HELP  ", Command{Name: "help"}},
		{"!help", Command{Name: "help"}},
		{"login alice@example.com", Command{Name: "login", Passport: "alice@example.com"}},
		{"logout", Command{Name: "logout"}},
		{"relogin", Command{Name: "relogin"}},
		{"ping", Command{Name: "status"}},
		{"status", Command{Name: "status"}},
		{"contacts", Command{Name: "contacts"}},
		{"add bob@x.com", Command{Name: "add", Passport: "bob@x.com"}},
		{"remove bob@x.com", Command{Name: "remove", Passport: "bob@x.com"}},
		{"block bob@x.com", Command{Name: "block", Passport: "bob@x.com"}},
		{"unblock bob@x.com", Command{Name: "unblock", Passport: "bob@x.com"}},
		{"presence Busy", Command{Name: "presence", Status: bridge.StatusBusy}},
		{"presence invisible", Command{Name: "presence", Status: bridge.StatusInvisible}},
		{"psm  listening to music ", Command{Name: "psm", Text: "listening to music"}},
		{"psm", Command{Name: "psm"}},
		{"name Alice <3", Command{Name: "name", Text: "Alice <3"}},
		{"chat bob@x.com", Command{Name: "chat", Passport: "bob@x.com"}},
		{"invite carol@x.com", Command{Name: "invite", Passport: "carol@x.com"}},
		{"cancel", Command{Name: "cancel"}},
	}
	for _, c := range cases {
		got, err := ParseCommand(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestParseCommandErrors(t *testing.T) {
	cases := map[string]string{
		"":                    "empty",
		"frobnicate":          "unknown command",
		"login":               "needs a passport",
		"login alice":         "not an e-mail",
		"login a@b":           "not an e-mail",
		"add a@b.com c@d.com": "spaces",
		"add " + strings.Repeat("a", 130) + "@x.com": "longer",
		"presence":                         "online, busy",
		"presence sleepy":                  "online, busy",
		"name":                             "needs the new",
		"help me":                          "no arguments",
		"psm " + strings.Repeat("x", 2000): "too long",
	}
	for in, want := range cases {
		_, err := ParseCommand(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCommand(%q) error = %v, want one containing %q", in, err, want)
		}
	}
	if _, err := ParseCommand("xyzzy"); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("unknown word: %v", err)
	}
}

func TestParsePortalCommand(t *testing.T) {
	if cmd, ok, err := ParsePortalCommand("!nudge"); !ok || err != nil || cmd.Name != "nudge" {
		t.Errorf("!nudge: %+v %v %v", cmd, ok, err)
	}
	if cmd, ok, err := ParsePortalCommand("!invite bob@x.com"); !ok || err != nil || cmd.Passport != "bob@x.com" {
		t.Errorf("!invite: %+v %v %v", cmd, ok, err)
	}
	if _, ok, err := ParsePortalCommand("!invite"); !ok || err == nil {
		t.Errorf("!invite without passport: ok=%v err=%v", ok, err)
	}
	for _, text := range []string{"nudge", "hello", "!help", "! nudge me", "!wow"} {
		if _, ok, _ := ParsePortalCommand(text); ok {
			t.Errorf("%q taken as a portal command", text)
		}
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	h := helpText()
	for _, w := range []string{"login", "logout", "relogin", "status", "contacts", "add", "remove", "block", "unblock", "presence", "psm", "name", "chat", "!invite", "!nudge"} {
		if !strings.Contains(h, w) {
			t.Errorf("help lacks %q", w)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"help", "login a@b.com", "presence busy", "psm hi", "!invite x@y.z", "", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := ParseCommand(line)
		if err != nil {
			return
		}
		if cmd.Passport != "" {
			if _, err := parsePassport(cmd.Passport); err != nil {
				t.Fatalf("accepted passport %q: %v", cmd.Passport, err)
			}
		}
		if len(cmd.Text) > maxTextArg {
			t.Fatalf("text of %d bytes accepted", len(cmd.Text))
		}
	})
}
