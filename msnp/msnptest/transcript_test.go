package msnptest_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/msnbridge/msnbridge/msnp"
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
		{regexp.MustCompile(`^(USR \d+ SSO S MBI_KEY_OLD) \S+$`), "$1 <nonce>"},
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
	usrI     = regexp.MustCompile(`^USR \d+ (?:TWN|SSO) I (\S+)$`)
	usrS     = regexp.MustCompile(`^(USR \d+ TWN S) \S+$`)
	ssoS     = regexp.MustCompile(`^(USR \d+ SSO S) \S+ \S+( \S+)?$`)
	nonceRE  = regexp.MustCompile(`^(USR \d+ SSO S MBI_KEY_OLD) (\S+)$`)
	loginRE  = regexp.MustCompile(`^GET /login .*sign-in=([^,]+),`)
	rstRE    = regexp.MustCompile(`^POST /RST2?\.srf \(user (\S+)\)`)
	abchRE   = regexp.MustCompile(`^POST /abservice/\S+ SOAPAction (\S+) -> 200 .*PassportNames=\[(.*)\]$`)
	presence = regexp.MustCompile(`^(NLN|UBX|FLN|ILN) `)
)

// presenceQueue holds, per connection, presence lines read ahead of the
// line a lenient replay waited for, and those already matched. Escargot
// batches presence notifications every 0.2 s, which reorders them against
// replies and sends some twice; msnptest sends each change at once. In
// the SSO scenarios a wanted presence line may therefore come earlier or,
// as a repeat of one already matched, not again.
type presenceQueue struct {
	ahead   []string // normalised line + "\x00" + payload
	matched map[string]bool
}

// replay runs a transcript's notification-server scenario against a fresh
// server. Switchboard lines are skipped (the switchboard is not part of
// msnptest yet), and so is the RNG that the switchboard's CAL causes.
func replay(t *testing.T, name string) {
	evs := parseTranscript(t, name)
	s := msnptest.NewServer()
	defer s.Close()
	const password = "secret"
	s.AddAccount(alice, password, "")
	s.AddAccount(bob, password, "")
	s.AddContact(alice, bob)

	lenient := strings.HasPrefix(name, "sso_")
	queues := map[string]*presenceQueue{}
	nonces := map[string]string{}             // connection → MBI nonce
	ssoTokens := map[string]*msnp.SSOTokens{} // passport → RST tokens
	conns := map[string]*testClient{}
	emails := map[string]string{} // connection → passport from USR I
	tokens := map[string]string{} // passport → token from /login
	compared := 0
	for _, ev := range evs {
		where := fmt.Sprintf("%s:%d", name, ev.lineNo)
		if strings.HasSuffix(ev.who, "/SB") {
			continue
		}
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
			case rstRE.MatchString(ev.text):
				email := rstRE.FindStringSubmatch(ev.text)[1]
				tk, err := msnp.RequestSSOTokens(ctx(t), msnp.SSORequest{URL: s.RSTURL(), Username: email, Password: password})
				if err != nil {
					t.Fatalf("%s: RST %s: %v", where, email, err)
				}
				ssoTokens[email] = tk
			case abchRE.MatchString(ev.text):
				m := abchRE.FindStringSubmatch(ev.text)
				checkABCH(t, where, s, ssoTokens, m[1], m[2])
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
					if cmd.Name != "FLN" && !(lenient && presence.MatchString(c.last)) {
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
			if m := ssoS.FindStringSubmatch(line); m != nil {
				tk := ssoTokens[emails[ev.who]]
				if tk == nil {
					t.Fatalf("%s: no SSO tokens for %s", where, emails[ev.who])
				}
				ticket, mbi, err := msnp.SSOLoginArgs(tk, nonces[ev.who])
				if err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				line = m[1] + " " + ticket + " " + mbi + m[2]
			}
			if ev.hasPay {
				if _, err := c.conn.Write(append([]byte(line+"\r\n"), ev.payload...)); err != nil {
					t.Fatalf("%s: write: %v", where, err)
				}
				continue
			}
			c.sendLine(line)
		case "<<<":
			if strings.HasPrefix(ev.text, "RNG ") {
				continue // caused by the switchboard's CAL
			}
			wantLine, wantPay := normalise(ev.text, ev.payload)
			q := queues[ev.who]
			if q == nil {
				q = &presenceQueue{matched: map[string]bool{}}
				queues[ev.who] = q
			}
			if lenient && presence.MatchString(wantLine) {
				if q.take(wantLine, wantPay) || q.matched[wantLine+"\x00"+wantPay] {
					q.matched[wantLine+"\x00"+wantPay] = true
					compared++
					continue
				}
			}
			var gotLine, gotPay string
			for {
				cmd, err := c.readRaw()
				if err != nil {
					t.Fatalf("%s: %s: reading the line for %q: %v", where, ev.who, ev.text, err)
				}
				if m := nonceRE.FindStringSubmatch(c.last); m != nil {
					nonces[ev.who] = m[2]
				}
				gotLine, gotPay = normalise(c.last, cmd.Payload)
				if !lenient || !presence.MatchString(gotLine) || (gotLine == wantLine && strings.HasPrefix(gotPay, wantPay)) {
					break
				}
				q.ahead = append(q.ahead, gotLine+"\x00"+gotPay)
			}
			if lenient && presence.MatchString(wantLine) {
				q.matched[wantLine+"\x00"+wantPay] = true
			}
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
func TestTranscriptTWNMSNP13(t *testing.T) { replay(t, "twn_msnp13.txt") }
func TestTranscriptSSOMSNP15(t *testing.T) { replay(t, "sso_msnp15.txt") }
func TestTranscriptSSOMSNP18(t *testing.T) { replay(t, "sso_msnp18.txt") }

// take removes a presence line read ahead that matches (the transcript's
// payload may be cut short: a prefix matches).
func (q *presenceQueue) take(line, payload string) bool {
	for i, a := range q.ahead {
		l, p, _ := strings.Cut(a, "\x00")
		if l == line && strings.HasPrefix(p, payload) {
			q.ahead = append(q.ahead[:i], q.ahead[i+1:]...)
			return true
		}
	}
	return false
}

// checkABCH makes the SOAP call a transcript's HTTP line records and
// compares the passport names in the answer.
func checkABCH(t *testing.T, where string, s *msnptest.Server, tokens map[string]*msnp.SSOTokens, method, names string) {
	t.Helper()
	var want []string
	for _, n := range strings.Split(names, ",") {
		if n = strings.Trim(strings.TrimSpace(n), "'"); n != "" {
			want = append(want, n)
		}
	}
	sort.Strings(want)
	// The call belongs to whoever logged in last with SSO: try each.
	for _, tk := range tokens {
		ct, _ := tk.Get(msnp.SSOAddressContacts)
		ab := msnp.NewABService(s.SOAPBaseURL(), ct.Ticket, nil)
		var got []string
		switch method {
		case "FindMembership":
			m, err := ab.FindMembership(ctx(t))
			if err != nil {
				continue
			}
			seen := map[string]bool{}
			for _, r := range []msnp.ABRole{msnp.ABRoleAllow, msnp.ABRoleBlock, msnp.ABRoleReverse, msnp.ABRolePending} {
				for _, x := range m.Role(r) {
					if !seen[x.PassportName] {
						seen[x.PassportName] = true
						got = append(got, x.PassportName)
					}
				}
			}
		case "ABFindAll", "ABFindContactsPaged":
			find := ab.FindAll
			if method == "ABFindContactsPaged" {
				find = ab.FindContactsPaged
			}
			book, err := find(ctx(t))
			if err != nil {
				continue
			}
			for _, x := range book.Contacts {
				got = append(got, x.PassportName)
			}
		default:
			t.Fatalf("%s: unknown SOAP action %s", where, method)
		}
		sort.Strings(got)
		if strings.Join(got, ",") == strings.Join(want, ",") {
			return
		}
	}
	t.Fatalf("%s: %s: no session's answer names %v", where, method, want)
}
func TestTranscriptTWNMSNP14(t *testing.T) { replay(t, "twn_msnp14.txt") }

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
