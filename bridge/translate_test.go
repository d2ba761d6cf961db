package bridge

import (
	"reflect"
	"testing"

	"github.com/msnbridge/msnbridge/msnp"
)

func TestStatusTable(t *testing.T) {
	for st, ms := range statusToMSN {
		if got := statusFromMSN(ms); got != st {
			t.Errorf("statusFromMSN(%s) = %s, want %s", ms, got, st)
		}
		if p, ok := ParseStatus(string(st)); !ok || p != st {
			t.Errorf("ParseStatus(%q) = %q, %v", st, p, ok)
		}
	}
	if statusFromMSN(msnp.StatusOffline) != StatusOffline || statusFromMSN("XYZ") != StatusOffline {
		t.Error("offline and unknown codes must read as offline")
	}
	if _, ok := ParseStatus("offline"); ok {
		t.Error("offline is not a status one can set")
	}
	if p, ok := ParseStatus(" Hidden "); !ok || p != StatusInvisible {
		t.Errorf("ParseStatus(hidden) = %q, %v", p, ok)
	}
}

func TestCleanText(t *testing.T) {
	for in, want := range map[string]string{
		"Bob\x07 the\tBuilder":         "Bob the Builder",
		"evil\u202Egnp.exe":            "evilgnp.exe",
		"bad \xff utf8":                "bad \uFFFD utf8",
		"  spaced  ":                   "spaced",
		"<b>markup stays for escaping": "<b>markup stays for escaping",
	} {
		if got := cleanText(in, 100); got != want {
			t.Errorf("cleanText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := cleanText("ééééé", 3); got != "ééé" {
		t.Errorf("cleanText cut to %q, want 3 runes", got)
	}
	if got := cleanBody("line1\r\nline2\x00\x1b[31m"); got != "line1\nline2[31m" {
		t.Errorf("cleanBody = %q", got)
	}
}

func TestTextFormatBothWays(t *testing.T) {
	f := msnp.DefaultTextFormat()
	f.Font, f.Bold, f.Strike = "Comic Sans MS", true, true
	f.Color = msnp.RGB{R: 0x12, G: 0x34, B: 0x56}
	txt := textFromMSN("hi", f)
	if txt.Color != "#123456" || !txt.Bold || !txt.Strike || txt.Italic || txt.Font != "Comic Sans MS" {
		t.Fatalf("textFromMSN = %+v", txt)
	}
	back := formatToMSN(txt)
	if back.Color != f.Color || back.Font != f.Font || !back.Bold || !back.Strike || back.Italic {
		t.Fatalf("formatToMSN = %+v", back)
	}
	// Black is MSN's default colour: it is not worth a colour in HTML.
	if c := textFromMSN("x", msnp.DefaultTextFormat()).Color; c != "" {
		t.Errorf("default colour became %q", c)
	}
	for _, bad := range []string{"red", "#12345", "#gggggg", "123456#"} {
		if _, ok := parseHTMLColor(bad); ok {
			t.Errorf("parseHTMLColor(%q) accepted", bad)
		}
	}
}

func TestContactFromMSN(t *testing.T) {
	c := contactFromMSN(msnp.Contact{Passport: "bob@example.com", FriendlyName: "Bob\x00", Lists: msnp.FL | msnp.BL | msnp.PL,
		Status: msnp.StatusAway, PersonalMessage: "hi"})
	if c.FriendlyName != "Bob" || !c.OnContactList || !c.Blocked || !c.Pending || c.Status != StatusAway || c.PersonalMessage != "hi" {
		t.Fatalf("contactFromMSN = %+v", c)
	}
}

func TestNormalizePassport(t *testing.T) {
	if p, err := normalizePassport(" Bob@Example.COM "); err != nil || p != "bob@example.com" {
		t.Fatalf("normalizePassport = %q, %v", p, err)
	}
	for _, bad := range []string{"", "bob", "@example.com", "bob@", "bo b@example.com", "bob@example.com\x00"} {
		if _, err := normalizePassport(bad); err == nil {
			t.Errorf("normalizePassport(%q) accepted", bad)
		}
	}
}

func TestEventQueueEncoding(t *testing.T) {
	for _, ev := range []Event{
		Message{Portal: "p", Sender: "bob@example.com", MSNID: "m1", Text: Text{Body: "hi", Bold: true}},
		Typing{Portal: "p", Sender: "b", Active: true}, Nudge{Portal: "p", Sender: "b"},
		Presence{Contact: Contact{Passport: "b", Status: StatusBusy}},
		ContactChange{Kind: ContactAddedYou, Contact: Contact{Passport: "b"}},
		Membership{Portal: "p", Passport: "b", Joined: true},
		LoginStateChange{State: LoginConnected, Message: "ok"}, Notice{Text: "n"},
	} {
		b, err := encodeEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeEvent(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Errorf("round trip %#v -> %#v", ev, got)
		}
	}
	b, err := encodeEvent(DeliveryResult{Portal: "p", FrontendID: "$e", Err: ErrNotConnected})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := got.(DeliveryResult); d.Err == nil || d.Err.Error() != ErrNotConnected.Error() || d.FrontendID != "$e" {
		t.Errorf("delivery result round trip: %+v", d)
	}
	if _, err := decodeEvent([]byte(`{"type":"bogus"}`)); err == nil {
		t.Error("unknown event type decoded")
	}
}
