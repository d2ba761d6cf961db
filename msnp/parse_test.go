package msnp

import (
	"bytes"
	"strings"
	"testing"
)

func cmdOf(t *testing.T, line string) *Command {
	t.Helper()
	c, err := NewReader(strings.NewReader(line)).ReadCommand()
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return c
}

func TestParseLST(t *testing.T) {
	for _, tc := range []struct {
		p    Protocol
		line string
		want Contact
	}{
		{MSNP8, "LST bob@example.com Bob%20Smith 11 0\r\n", Contact{Passport: "bob@example.com", FriendlyName: "Bob Smith", Lists: 11, Groups: []string{"0"}, Network: 1}},
		{MSNP9, "LST bob@example.com bob@example.com 10\r\n", Contact{Passport: "bob@example.com", FriendlyName: "bob@example.com", Lists: 10, Network: 1}},
		{MSNP11, "LST N=bob@example.com F=bob@example.com C=fe264928-45f7-4051-a212-f7c2f2fd477e 11 \r\n",
			Contact{Passport: "bob@example.com", FriendlyName: "bob@example.com", GUID: "fe264928-45f7-4051-a212-f7c2f2fd477e", Lists: 11, Network: 1}},
		{MSNP12, "LST N=bob@example.com F=B%C3%B6b C=fe26 11 1 \r\n", Contact{Passport: "bob@example.com", FriendlyName: "Böb", GUID: "fe26", Lists: 11, Network: 1}},
		{MSNP12, "LST N=bob@example.com F=Bob C=fe26 3 1 g1,g2\r\n", Contact{Passport: "bob@example.com", FriendlyName: "Bob", GUID: "fe26", Lists: 3, Network: 1, Groups: []string{"g1", "g2"}}},
		{MSNP12, "LST N=carol@example.com 24 1\r\n", Contact{Passport: "carol@example.com", FriendlyName: "carol@example.com", Lists: 24, Network: 1}},
		{MSNP10, "LST N=bob@example.com F=Bob C=fe26 11 a-b\r\n", Contact{Passport: "bob@example.com", FriendlyName: "Bob", GUID: "fe26", Lists: 11, Network: 1, Groups: []string{"a-b"}}},
	} {
		got, err := dialectFor(tc.p).parseLST(cmdOf(t, tc.line))
		if err != nil {
			t.Errorf("%s %q: %v", tc.p, tc.line, err)
			continue
		}
		if got.Passport != tc.want.Passport || got.FriendlyName != tc.want.FriendlyName || got.GUID != tc.want.GUID ||
			got.Lists != tc.want.Lists || got.Network != tc.want.Network || strings.Join(got.Groups, ",") != strings.Join(tc.want.Groups, ",") {
			t.Errorf("%s %q = %+v, want %+v", tc.p, tc.line, got, tc.want)
		}
	}
	for _, bad := range []string{"LST\r\n", "LST bob@x\r\n", "LST bob@x Bob x\r\n", "LST nobody Bob 1\r\n"} {
		if _, err := dialectFor(MSNP8).parseLST(cmdOf(t, bad)); err == nil {
			t.Errorf("MSNP8 %q parsed", bad)
		}
	}
	for _, bad := range []string{"LST F=x 11\r\n", "LST N=bob@x\r\n", "LST N=bob@x F=x y\r\n"} {
		if _, err := dialectFor(MSNP12).parseLST(cmdOf(t, bad)); err == nil {
			t.Errorf("MSNP12 %q parsed", bad)
		}
	}
}

func TestParsePresence(t *testing.T) {
	p, ok := parsePresence(cmdOf(t, "ILN 6 NLN alice@example.com Alice%20A 1073741824 %3Cmsnobj%2F%3E\r\n"))
	if !ok || !p.Initial || p.Status != StatusOnline || p.Passport != "alice@example.com" || p.FriendlyName != "Alice A" || p.ClientID != 1073741824 || p.MSNObject != "" {
		t.Errorf("ILN = %+v %v", p, ok)
	}
	p, ok = parsePresence(cmdOf(t, "NLN BSY bob@example.com bob 0\r\n"))
	if !ok || p.Initial || p.Status != StatusBusy || p.Passport != "bob@example.com" {
		t.Errorf("NLN = %+v %v", p, ok)
	}
	p, ok = parsePresence(cmdOf(t, "NLN AWY bob@example.com bob 2788999212:48 %3Cmsnobj%20Creator%3D%22x%22%2F%3E\r\n"))
	if !ok || p.ClientID != 2788999212 || p.ClientIDExt != 48 || p.MSNObject != `<msnobj Creator="x"/>` {
		t.Errorf("NLN with object = %+v %v", p, ok)
	}
	for _, bad := range []string{"NLN NLN\r\n", "ILN 6\r\n", "NLN NLN nobody x 0\r\n"} {
		if _, ok := parsePresence(cmdOf(t, bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseUBX(t *testing.T) {
	text, media, err := parseUBX([]byte("<Data><PSM>fish &#x26; chips &lt;3</PSM><CurrentMedia>WMP\\0Music\\01</CurrentMedia></Data>"))
	if err != nil || text != "fish & chips <3" || media != `WMP\0Music\01` {
		t.Errorf("parseUBX = %q %q %v", text, media, err)
	}
	if text, _, err := parseUBX(nil); err != nil || text != "" {
		t.Errorf("empty UBX = %q %v", text, err)
	}
	if _, _, err := parseUBX([]byte("<Data><PSM>unclosed")); err == nil {
		t.Error("broken UBX parsed")
	}
}

func TestParseDALogin(t *testing.T) {
	for in, want := range map[string]string{
		"DARealm=Passport.Net,DALogin=login.passport.com/login2.srf,DAReg=x": "https://login.passport.com/login2.srf",
		"DALogin=https://127.0.0.1:8081/login":                               "https://127.0.0.1:8081/login",
		"dalogin=http://h/login":                                             "http://h/login",
		"DARealm=x":                                                          "",
	} {
		if got := parseDALogin(in); got != want {
			t.Errorf("parseDALogin(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPctEncode(t *testing.T) {
	if got := pctEncode("a,b=c%d e@f"); got != "a%2Cb%3Dc%25d%20e@f" {
		t.Errorf("pctEncode = %q", got)
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, secret, keep string }{
		{"USR 4 TWN S t=secretticket&p=x\r\n", "secretticket", "USR 4 TWN S"},
		{"USR 4 SSO S t=secretticket&p= MBIBLOB {GUID}\r\n", "MBIBLOB", "USR 4 SSO S"},
		{"XFR 7 SB 127.0.0.1:1864 CKI sbcookie123\r\n", "sbcookie123", "127.0.0.1:1864"},
		{"XFR 7 SB 127.0.0.1:1864 CKI sbcookie123 U messenger.msn.com 1\r\n", "sbcookie123", "messenger.msn.com"},
		{"RNG 2bfc 127.0.0.1:1864 CKI sbcookie123 alice@example.com Alice\r\n", "sbcookie123", "alice@example.com"},
		{"USR 1 alice@example.com sbcookie123\r\n", "sbcookie123", "alice@example.com"},
		{"ANS 1 bob@example.com sbcookie123 2bfc\r\n", "sbcookie123", "2bfc"},
		{"MSG Hotmail Hotmail 62\r\nContent-Type: text/x-msmsgsprofile\r\nMSPAuth: tokentoken123\r\n\r\n", "tokentoken123", "x-msmsgsprofile"},
	} {
		got := Redact(cmdOf(t, tc.in))
		if strings.Contains(got, tc.secret) || !strings.Contains(got, tc.keep) || !strings.Contains(got, redacted) {
			t.Errorf("Redact(%q) = %q", tc.in, got)
		}
	}
	if got := Redact(cmdOf(t, "USR 4 OK alice@example.com 1 0\r\n")); got != "USR 4 OK alice@example.com 1 0" {
		t.Errorf("Redact(USR OK) = %q", got)
	}
	if got := Redact(cmdOf(t, "ANS 1 OK\r\n")); got != "ANS 1 OK" {
		t.Errorf("Redact(ANS OK) = %q", got)
	}
}

func TestParseMIMEMaintenance(t *testing.T) {
	h, body := parseMIME([]byte("MIME-Version: 1.0\r\nContent-Type: application/x-msmsgssystemmessage\r\n\r\nType: 1\r\nArg1: 5\r\n"))
	if h.Get("Content-Type") != "application/x-msmsgssystemmessage" {
		t.Fatalf("header %v", h)
	}
	bh, _ := parseMIME([]byte(body))
	if bh.Get("Arg1") != "5" {
		t.Fatalf("body header %v", bh)
	}
}

func FuzzParseLST(f *testing.F) {
	f.Add(int8(8), []byte("LST bob@example.com Bob 11 0\r\n"))
	f.Add(int8(12), []byte("LST N=bob@example.com F=Bob C=fe26 11 1 \r\n"))
	f.Add(int8(11), []byte("NLN NLN bob@x bob 0 %3Cmsnobj%2F%3E\r\n"))
	f.Fuzz(func(t *testing.T, v int8, line []byte) {
		d := dialectFor(Protocol(8 + int(uint8(v))%5))
		c, err := NewReader(bytes.NewReader(line)).ReadCommand()
		if err != nil {
			return
		}
		if ct, err := d.parseLST(c); err == nil && ct.Passport == "" {
			t.Fatalf("contact without passport from %q", line)
		}
		d.parseLSG(c)
		d.parseAdded(c)
		d.parseRemoved(c)
		d.synCounts(c)
		parsePresence(c)
		Redact(c)
	})
}

func FuzzParseUBX(f *testing.F) {
	f.Add([]byte("<Data><PSM>hi &#x26;</PSM><CurrentMedia></CurrentMedia></Data>"))
	f.Add([]byte("<Data><PSM>"))
	f.Fuzz(func(t *testing.T, p []byte) {
		parseUBX(p)
		parseMIME(p)
	})
}
