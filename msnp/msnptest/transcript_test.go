package msnptest_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

// The transcripts are recordings of real sessions against Escargot. The
// conformance tests replay each Tweener scenario's notification-server part
// against msnptest and compare what the server says with what Escargot said.

// transcriptDir finds shared/msnp/transcripts beside one of the working
// directory's ancestors: /work/shared beside /work/wt/..., or, in CI, the
// shared/ folder beside the clone of the repository.
func transcriptDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		cand := filepath.Join(dir, "shared", "msnp", "transcripts")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("transcripts not found: no shared/msnp/transcripts beside any ancestor of the working directory; " +
				"the conformance tests need the shared/ folder checked out next to the repository")
		}
		dir = parent
	}
}

// event is one transcript line: who (e.g. "A/NS", "HTTP"), the direction
// (">>>" client to server, "<<<" server to client, "--" a note), the text
// and, for payload commands, the payload as logged (possibly cut short).
type event struct {
	lineNo  int
	who     string
	dir     string
	text    string
	payload []byte
	hasPay  bool
}

var eventRE = regexp.MustCompile(`^\[\s*[0-9.]+\]\s+(\S+)\s+(<<<|>>>|--)\s?(.*)$`)

func parseTranscript(t *testing.T, name string) []event {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(transcriptDir(t), name))
	if err != nil {
		t.Fatalf("reading transcript: %v", err)
	}
	var evs []event
	for i, l := range strings.Split(string(data), "\n") {
		m := eventRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ev := event{lineNo: i + 1, who: m[1], dir: m[2], text: m[3]}
		if j := strings.Index(ev.text, "  <payload "); j >= 0 {
			rest := ev.text[j+len("  <payload "):]
			ev.text = ev.text[:j]
			k := strings.Index(rest, "b'")
			if k < 0 {
				k = strings.Index(rest, `b"`)
			}
			if k < 0 || !strings.HasSuffix(rest, ">") {
				t.Fatalf("%s:%d: cannot read payload", name, i+1)
			}
			p, err := pyBytes(rest[k : len(rest)-1])
			if err != nil {
				t.Fatalf("%s:%d: %v", name, i+1, err)
			}
			ev.payload, ev.hasPay = p, true
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		t.Fatalf("%s: no events", name)
	}
	return evs
}

// pyBytes decodes a Python bytes literal such as b'a\r\n\x00'.
func pyBytes(s string) ([]byte, error) {
	if len(s) < 3 || s[0] != 'b' || (s[1] != '\'' && s[1] != '"') || s[len(s)-1] != s[1] {
		return nil, fmt.Errorf("not a bytes literal: %.20q", s)
	}
	s = s[2 : len(s)-1]
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		i++
		if i >= len(s) {
			return nil, fmt.Errorf("dangling backslash")
		}
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '\\', '\'', '"':
			out = append(out, s[i])
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf("short \\x escape")
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, err
			}
			out = append(out, byte(v))
			i += 2
		default:
			return nil, fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return out, nil
}

// Normalisation of what differs from run to run: tokens, cookies, GUIDs,
// addresses, times and member ids.
var (
	normLine = []struct {
		re   *regexp.Regexp
		repl string
	}{
		{regexp.MustCompile(`^(XFR \d+ SB) \S+ CKI \S+`), "$1 <addr> CKI <cookie>"},
		{regexp.MustCompile(`^RNG \S+ \S+ CKI \S+`), "RNG <session> <addr> CKI <cookie>"},
		{regexp.MustCompile(`^(CAL \d+ RINGING) \S+$`), "$1 <session>"},
		{regexp.MustCompile(` C=[0-9a-fA-F-]{36}`), " C=<guid>"},
	}
	normPayload = []struct {
		re   *regexp.Regexp
		repl string
	}{
		{regexp.MustCompile(`LoginTime: \d+`), "LoginTime: <time>"},
		{regexp.MustCompile(`MemberIdHigh: \d+`), "MemberIdHigh: <id>"},
		{regexp.MustCompile(`MemberIdLow: \d+`), "MemberIdLow: <id>"},
		{regexp.MustCompile(`MSPAuth: [0-9a-f]{20}`), "MSPAuth: <token>"},
		{regexp.MustCompile(`ClientIP: \S+`), "ClientIP: <ip>"},
		{regexp.MustCompile(`ClientPort: \d+`), "ClientPort: <port>"},
	}
	profileMSG = regexp.MustCompile(`^MSG Hotmail Hotmail \d+$`)
)

func normalise(line string, payload []byte) (string, string) {
	for _, n := range normLine {
		line = n.re.ReplaceAllString(line, n.repl)
	}
	p := string(payload)
	for _, n := range normPayload {
		p = n.re.ReplaceAllString(p, n.repl)
	}
	// The profile's length varies with the digits of the times and ids.
	if profileMSG.MatchString(line) && strings.Contains(p, "text/x-msmsgsprofile") {
		line = "MSG Hotmail Hotmail <len>"
	}
	return line, p
}

var (
	usrI    = regexp.MustCompile(`^USR \d+ TWN I (\S+)$`)
	usrS    = regexp.MustCompile(`^(USR \d+ TWN S) \S+$`)
	loginRE = regexp.MustCompile(`^GET /login .*sign-in=([^,]+),`)
)

var (
	xfrSB  = regexp.MustCompile(`^XFR \d+ SB (\S+) CKI (\S+)`)
	rngRE  = regexp.MustCompile(`^RNG (\S+) (\S+) CKI (\S+) `)
	sbUSR  = regexp.MustCompile(`^(USR \d+ \S+) \S+$`)
	sbANS  = regexp.MustCompile(`^(ANS \d+ \S+) \S+ \S+$`)
	ringRE = regexp.MustCompile(`^CAL \d+ RINGING (\S+)$`)
)

// replay runs a transcript's scenario, notification server and
// switchboard, against a fresh server. Cookies and session ids are taken
// from what this server handed out (XFR, RNG) and checked to agree with
// each other (CAL's RINGING and the RNG name the same session).
func replay(t *testing.T, name string) {
	evs := parseTranscript(t, name)
	s := msnptest.NewServer()
	defer s.Close()
	const password = "secret"
	s.AddAccount(alice, password, "")
	s.AddAccount(bob, password, "")
	s.AddContact(alice, bob)

	conns := map[string]*testClient{}
	emails := map[string]string{} // connection → passport from USR I
	tokens := map[string]string{} // passport → token from /login
	compared := 0
	person := func(who string) string { p, _, _ := strings.Cut(who, "/"); return p }
	xfrAddr := ""                    // the switchboard address XFR handed out
	xfrCookie := map[string]string{} // person → cookie from their XFR SB
	rng := map[string][]string{}     // person → session, cookie from their RNG
	ringing := ""                    // session id from the last CAL RINGING
	for _, ev := range evs {
		where := fmt.Sprintf("%s:%d", name, ev.lineNo)
		sb := strings.HasSuffix(ev.who, "/SB")
		if ev.who == "HTTP" {
			switch {
			case strings.HasPrefix(ev.text, "GET /rdr/pprdr.asp"):
				resp, err := http.Get(s.NexusURL())
				if err != nil {
					t.Fatalf("%s: nexus: %v", where, err)
				}
				resp.Body.Close()
				if got, want := resp.Header.Get("PassportURLs"), "DALogin="+s.LoginURL(); resp.StatusCode != 200 || got != want {
					t.Fatalf("%s: nexus: %d %q, want 200 %q", where, resp.StatusCode, got, want)
				}
			case loginRE.MatchString(ev.text):
				email := loginRE.FindStringSubmatch(ev.text)[1]
				tok, resp := tweener(t, s, email, password)
				if tok == "" || len(tok) != 20 {
					t.Fatalf("%s: login %s: status %d token %q", where, email, resp.StatusCode, tok)
				}
				tokens[email] = tok
			default:
				t.Fatalf("%s: unexpected HTTP event %q", where, ev.text)
			}
			continue
		}
		c := conns[ev.who]
		switch ev.dir {
		case "--":
			switch {
			case strings.HasPrefix(ev.text, "connected to") && sb:
				if xfrAddr == "" || xfrAddr != s.SBAddr() {
					t.Fatalf("%s: XFR handed out %q, the switchboard is at %q", where, xfrAddr, s.SBAddr())
				}
				conns[ev.who] = dialAddr(t, s.SBAddr(), ev.who)
			case strings.HasPrefix(ev.text, "connected to"):
				conns[ev.who] = dialNS(t, s, ev.who)
			case ev.text == "connection closed by server":
				// Escargot's FLN for a contact who logged out a moment
				// earlier can race with this client's own OUT; the
				// transcripts caught the close first.
				for {
					cmd, err := c.readRaw()
					if err != nil {
						break
					}
					if cmd.Name != "FLN" {
						t.Fatalf("%s: %s: got %q, want the connection closed", where, ev.who, c.last)
					}
				}
				compared++
			default:
				t.Fatalf("%s: unknown note %q", where, ev.text)
			}
		case ">>>":
			line := ev.text
			if m := usrI.FindStringSubmatch(line); m != nil {
				emails[ev.who] = m[1]
			}
			if m := usrS.FindStringSubmatch(line); m != nil {
				tok := tokens[emails[ev.who]]
				if tok == "" {
					t.Fatalf("%s: no token for %s", where, emails[ev.who])
				}
				line = m[1] + " " + tok
			}
			if m := sbUSR.FindStringSubmatch(line); sb && m != nil {
				line = m[1] + " " + xfrCookie[person(ev.who)]
			}
			if m := sbANS.FindStringSubmatch(line); sb && m != nil {
				r := rng[person(ev.who)]
				if r == nil {
					t.Fatalf("%s: ANS without an RNG", where)
				}
				line = m[1] + " " + r[1] + " " + r[0]
			}
			if ev.hasPay {
				if !sb {
					t.Fatalf("%s: client payloads on the NS are not in these scenarios", where)
				}
				c.sendRaw(append([]byte(line+"\r\n"), ev.payload...))
				continue
			}
			c.sendLine(line)
		case "<<<":
			cmd, err := c.readRaw()
			if err != nil {
				t.Fatalf("%s: %s: reading the line for %q: %v", where, ev.who, ev.text, err)
			}
			if m := xfrSB.FindStringSubmatch(c.last); m != nil {
				xfrAddr, xfrCookie[person(ev.who)] = m[1], m[2]
			}
			if m := ringRE.FindStringSubmatch(c.last); m != nil && sb {
				ringing = m[1]
			}
			if m := rngRE.FindStringSubmatch(c.last); m != nil {
				if m[1] != ringing || m[2] != s.SBAddr() {
					t.Fatalf("%s: RNG %q after RINGING %q", where, c.last, ringing)
				}
				rng[person(ev.who)] = []string{m[1], m[3]}
			}
			gotLine, gotPay := normalise(c.last, cmd.Payload)
			wantLine, wantPay := normalise(ev.text, ev.payload)
			if gotLine != wantLine {
				t.Fatalf("%s: %s:\n got  %q\n want %q", where, ev.who, gotLine, wantLine)
			}
			// The logger cut long payloads short: what it shows must be
			// a prefix of what the server sent.
			if ev.hasPay && !strings.HasPrefix(gotPay, wantPay) {
				t.Fatalf("%s: %s: payload of %q:\n got  %q\n want %q…", where, ev.who, ev.text, gotPay, wantPay)
			}
			f := strings.Fields(ev.text)
			if n, err := strconv.Atoi(f[len(f)-1]); ev.hasPay && err == nil && n == len(ev.payload) && gotPay != wantPay {
				// A payload shown whole must be matched whole.
				t.Fatalf("%s: %s: payload of %q:\n got  %q\n want %q", where, ev.who, ev.text, gotPay, wantPay)
			}
			compared++
		}
	}
	if compared < 20 {
		t.Fatalf("%s: only %d server lines compared", name, compared)
	}
	t.Logf("%s: %d server lines matched", name, compared)
}

func TestTranscriptTWNMSNP8(t *testing.T)  { replay(t, "twn_msnp8.txt") }
func TestTranscriptTWNMSNP11(t *testing.T) { replay(t, "twn_msnp11.txt") }
func TestTranscriptTWNMSNP12(t *testing.T) { replay(t, "twn_msnp12.txt") }

func TestPyBytes(t *testing.T) {
	got, err := pyBytes(`b'a\r\n\\\'\x41"'`)
	if err != nil || string(got) != "a\r\n\\'A\"" {
		t.Fatalf("pyBytes = %q, %v", got, err)
	}
	for _, bad := range []string{`'x'`, `b'\q'`, `b'\x4'`, `b'abc`} {
		if _, err := pyBytes(bad); err == nil {
			t.Errorf("pyBytes(%q) did not fail", bad)
		}
	}
}
