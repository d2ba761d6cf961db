package msnptest_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

// testClient is a minimal scripted MSNP client over the msnp codec, enough
// to drive the server from tests.
type testClient struct {
	t    *testing.T
	name string
	conn net.Conn
	br   *bufio.Reader
	w    *msnp.Writer
	trid uint32
	last string // the last line read, exactly as sent, without CRLF
}

func dialNS(t *testing.T, s *msnptest.Server, name string) *testClient {
	t.Helper()
	return dialAddr(t, s.NSAddr(), name)
}

// dialAddr connects a scripted client to addr (the NS or the switchboard).
func dialAddr(t *testing.T, addr, name string) *testClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testClient{t: t, name: name, conn: conn, br: bufio.NewReader(conn), w: msnp.NewWriter(conn)}
}

// send writes a command with the next transaction id and returns the id.
func (c *testClient) send(name string, args ...string) string {
	c.t.Helper()
	c.trid++
	if err := c.w.WriteCommand(msnp.NewCommand(name, c.trid, args...)); err != nil {
		c.t.Fatalf("%s: send %s: %v", c.name, name, err)
	}
	return strconv.Itoa(int(c.trid))
}

// sendPayload writes a payload command with the next transaction id.
func (c *testClient) sendPayload(name string, payload []byte, args ...string) string {
	c.t.Helper()
	c.trid++
	cmd := msnp.NewCommand(name, c.trid, args...)
	cmd.Payload = payload
	if err := c.w.WriteCommand(cmd); err != nil {
		c.t.Fatalf("%s: send %s: %v", c.name, name, err)
	}
	return strconv.Itoa(int(c.trid))
}

// sendRaw writes bytes as they are.
func (c *testClient) sendRaw(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

// sendLine writes a raw line (CRLF added).
func (c *testClient) sendLine(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

// serverPayloads are the commands the server sends with a payload.
var serverPayloads = map[string]bool{"MSG": true, "UBX": true, "NOT": true, "GCF": true}

// readRaw reads one command keeping the exact line, so that tests see
// Escargot's trailing blanks; the command is then parsed by the codec.
func (c *testClient) readRaw() (*msnp.Command, error) {
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := c.br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	c.last = line
	frame := line + "\r\n"
	f := strings.Fields(line)
	if len(f) > 1 && serverPayloads[f[0]] {
		if n, err := strconv.Atoi(f[len(f)-1]); err == nil && n >= 0 && n < 1<<20 {
			p := make([]byte, n)
			if _, err := io.ReadFull(c.br, p); err != nil {
				return nil, err
			}
			frame += string(p)
		}
	}
	return msnp.NewReader(strings.NewReader(frame)).ReadCommand()
}

func (c *testClient) read() *msnp.Command {
	c.t.Helper()
	cmd, err := c.readRaw()
	if err != nil {
		c.t.Fatalf("%s: read: %v", c.name, err)
	}
	return cmd
}

// expect reads one command and checks its line, byte for byte.
func (c *testClient) expect(want string) *msnp.Command {
	c.t.Helper()
	cmd := c.read()
	if got := c.last; got != want {
		c.t.Fatalf("%s: got %q, want %q", c.name, got, want)
	}
	return cmd
}

// expectPrefix reads one command and checks that its line starts with want.
func (c *testClient) expectPrefix(want string) *msnp.Command {
	c.t.Helper()
	cmd := c.read()
	if got := c.last; !strings.HasPrefix(got, want) {
		c.t.Fatalf("%s: got %q, want prefix %q", c.name, got, want)
	}
	return cmd
}

// expectClosed checks that the server closes the connection next.
func (c *testClient) expectClosed() {
	c.t.Helper()
	_, err := c.readRaw()
	if err == nil {
		c.t.Fatalf("%s: got %q, want the connection closed", c.name, c.last)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("%s: connection still open", c.name)
	}
}

// tweener performs the nexus and login requests and returns the token, or
// the HTTP status on failure.
func tweener(t *testing.T, s *msnptest.Server, email, pwd string) (string, *http.Response) {
	t.Helper()
	resp, err := http.Get(s.NexusURL())
	if err != nil {
		t.Fatalf("nexus: %v", err)
	}
	resp.Body.Close()
	urls := resp.Header.Get("PassportURLs")
	if !strings.HasPrefix(urls, "DALogin=") {
		t.Fatalf("nexus PassportURLs = %q", urls)
	}
	login := strings.TrimPrefix(urls, "DALogin=")
	req, _ := http.NewRequest("GET", login, nil)
	req.Header.Set("Authorization", "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in="+
		url.QueryEscape(email)+",pwd="+url.PathEscape(pwd)+",ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", resp
	}
	info := resp.Header.Get("Authentication-Info")
	const pfx = "Passport1.4 da-status=success,from-PP='"
	if !strings.HasPrefix(info, pfx) || !strings.HasSuffix(info, "'") {
		t.Fatalf("Authentication-Info = %q", info)
	}
	return strings.TrimSuffix(strings.TrimPrefix(info, pfx), "'"), resp
}

// login logs email in at MSNP ver and consumes the login burst (USR OK,
// SBS on 11+, the profile MSG).
func login(t *testing.T, s *msnptest.Server, email, pwd string, ver int) *testClient {
	t.Helper()
	c := dialNS(t, s, email)
	v := "MSNP" + strconv.Itoa(ver)
	tr := c.send("VER", v, "CVR0")
	c.expect("VER " + tr + " " + v)
	tr = c.send("CVR", "0x0409", "winnt", "5.1", "i386", "MSNMSGR", "6.2.0208", "MSMSGS", email)
	c.expect("CVR " + tr + " 6.2.0208 6.2.0208 6.2.0208 https://escargot.log1p.xyz https://escargot.log1p.xyz")
	tr = c.send("USR", "TWN", "I", email)
	c.expect("USR " + tr + " TWN S ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1")
	tok, resp := tweener(t, s, email, pwd)
	if tok == "" {
		t.Fatalf("login %s: HTTP %d", email, resp.StatusCode)
	}
	tr = c.send("USR", "TWN", "S", tok)
	ok := c.expectPrefix("USR " + tr + " OK " + email + " ")
	if ver < 10 && len(ok.Args) != 6 || ver >= 10 && len(ok.Args) != 5 {
		t.Fatalf("USR OK has wrong shape for MSNP%d: %q", ver, ok.String())
	}
	if ver >= 11 {
		c.expect("SBS 0 null")
	}
	prof := c.expectPrefix("MSG Hotmail Hotmail ")
	if !strings.Contains(string(prof.Payload), "Content-Type: text/x-msmsgsprofile; charset=UTF-8\r\n") ||
		!strings.Contains(string(prof.Payload), "MSPAuth: "+tok+"Y6+H31sT") {
		t.Fatalf("profile payload:\n%s", prof.Payload)
	}
	return c
}

func newPost(s *msnptest.Server, path string) (*http.Request, error) {
	base := strings.TrimSuffix(s.LoginURL(), "/login")
	return http.NewRequest("POST", base+path, nil)
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
