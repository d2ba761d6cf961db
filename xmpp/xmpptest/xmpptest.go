// Package xmpptest is a real XMPP user for tests: a mellium client that
// registers at the test Prosody (scripts/prosody.sh), logs in over c2s
// without TLS, sends stanzas and waits for stanzas matching a predicate.
// Received stanzas are kept whole in a small DOM (Node).
//
// It owns nothing of the gateway: tests of xmpp/ and the end-to-end tests of
// cmd/msnbridge use it to talk to the gateway the way an XMPP client does.
package xmpptest

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/msnbridge/msnbridge/xmpp/internal/dom"
)

// Namespaces tests look stanzas up by.
const (
	NSStanzas = dom.NSStanzas
	NSRoster  = "jabber:iq:roster"
)

// Env is where the test Prosody runs, from the MSNBRIDGE_TEST_XMPP_*
// variables that `scripts/prosody.sh start` prints.
type Env struct {
	C2S       string // host:port of client connections
	Component string // host:port of XEP-0114 components
	Domain    string // the VirtualHost users live at
	JID       string // the gateway component's domain
	Secret    string // the component's secret
	Config    string // Prosody's config file, for prosodyctl
}

// EnvFromOS reads Env, failing the test when Prosody was not started.
func EnvFromOS(t testing.TB) Env {
	t.Helper()
	get := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			t.Fatalf("%s is not set: run `eval \"$(scripts/prosody.sh start)\"` first (scripts/test.sh does)", name)
		}
		return v
	}
	return Env{
		C2S:       get("MSNBRIDGE_TEST_XMPP_C2S"),
		Component: get("MSNBRIDGE_TEST_XMPP_COMPONENT"),
		Domain:    get("MSNBRIDGE_TEST_XMPP_DOMAIN"),
		JID:       get("MSNBRIDGE_TEST_XMPP_JID"),
		Secret:    get("MSNBRIDGE_TEST_XMPP_SECRET"),
		Config:    get("MSNBRIDGE_TEST_XMPP_CONFIG"),
	}
}

// Register makes the user name@Domain with password, with prosodyctl.
func (e Env) Register(t testing.TB, name, password string) {
	t.Helper()
	out, err := exec.Command("prosodyctl", "--config", e.Config, "register", name, e.Domain, password).CombinedOutput()
	if err != nil {
		t.Fatalf("prosodyctl register %s: %v: %s", name, err, out)
	}
}

// NewID returns a random stanza id (also handy for unique user names).
func NewID() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Timeout is how long Expect waits by default.
const Timeout = 10 * time.Second

// maxKept bounds the stanzas a client keeps unread.
const maxKept = 10000

// Client is a logged-in XMPP user. Every stanza it receives is kept until a
// test's Expect takes it, so that stanzas arriving in a different order
// than a test waits for them are not lost.
type Client struct {
	JID  jid.JID // the full JID the server bound
	sess *xmpp.Session

	mu      sync.Mutex
	kept    []*Node
	arrived chan struct{} // closed and replaced when a stanza arrives
	closed  bool
}

// Dial registers name at the test server and logs in; the client lives
// until t ends.
func (e Env) Dial(t testing.TB, name string) *Client { return e.DialUntil(t, t, name) }

// DialUntil is Dial for a client that lives until owner ends.
func (e Env) DialUntil(t, owner testing.TB, name string) *Client {
	t.Helper()
	password := "test-password-" + name
	e.Register(t, name, password)
	return e.Login(t, owner, name, password)
}

// Login logs in as an existing user name with password; the client lives
// until owner ends. It fetches the roster (so the server sends roster
// pushes to this resource, RFC 6121 §2.1.6) and sends initial presence.
func (e Env) Login(t, owner testing.TB, name, password string) *Client {
	t.Helper()
	addr, err := jid.Parse(name + "@" + e.Domain)
	if err != nil {
		t.Fatalf("user JID: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	conn, err := net.DialTimeout("tcp", e.C2S, Timeout)
	if err != nil {
		t.Fatal(err)
	}
	// Secure: no TLS on loopback, but SASL must still run.
	sess, err := xmpp.NewSession(ctx, addr.Domain(), addr, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
			xmpp.SASL("", password, sasl.ScramSha1, sasl.Plain),
			xmpp.BindResource(),
		}}
	}))
	if err != nil {
		conn.Close()
		t.Fatalf("client %s: %v", name, err)
	}
	c := &Client{JID: sess.LocalAddr(), sess: sess, arrived: make(chan struct{})}
	go func() {
		_ = sess.Serve(xmpp.HandlerFunc(c.handle))
	}()
	owner.Cleanup(func() { c.Close(); conn.Close() })
	c.IQ(t, "get", "", `<query xmlns='jabber:iq:roster'/>`)
	c.SendRaw(t, `<presence xmlns='jabber:client'/>`)
	return c
}

// handle keeps one stanza. Roster pushes are answered (the server wants a
// result) and kept too.
func (c *Client) handle(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	n := &Node{}
	// Decoding from a reader that replays start avoids mellium's
	// "unexpected end element" with DecodeElement (see peers.md).
	if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(n); err != nil {
		return nil
	}
	if n.Name.Local == "iq" && n.Attr("type") == "set" && n.Child(NSRoster, "query") != nil {
		_ = r.Encode(struct {
			XMLName xml.Name `xml:"iq"`
			ID      string   `xml:"id,attr"`
			Type    string   `xml:"type,attr"`
			To      string   `xml:"to,attr,omitempty"`
		}{ID: n.Attr("id"), Type: "result", To: n.Attr("from")})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.kept) >= maxKept {
		c.kept = c.kept[1:]
	}
	c.kept = append(c.kept, n)
	close(c.arrived)
	c.arrived = make(chan struct{})
	return nil
}

// Close ends the session.
func (c *Client) Close() {
	c.mu.Lock()
	closed := c.closed
	c.closed = true
	c.mu.Unlock()
	if !closed {
		_ = c.sess.Close()
	}
}

// Bare is the client's bare JID as a string, its bridge user id.
func (c *Client) Bare() string { return c.JID.Bare().String() }

// Writes never get a context that ends: when it does, even by the cancel
// right after a write returned, mellium may set the connection's write
// deadline to the past under a concurrent write (the roster-push answers
// of the read loop), which then fails with an i/o timeout. Writes to the
// loopback server do not block anyway.

// Send encodes v as a stanza (top-level elements without a namespace get
// the stream's, jabber:client).
func (c *Client) Send(t testing.TB, v any) {
	t.Helper()
	if err := c.sess.Encode(context.Background(), v); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// SendRaw sends literal XML (for payloads a test builds by hand).
func (c *Client) SendRaw(t testing.TB, s string) {
	t.Helper()
	if err := c.sess.Send(context.Background(), xml.NewDecoder(strings.NewReader(s))); err != nil {
		t.Fatalf("send %s: %v", s, err)
	}
}

// Presence sends a presence of type typ ("" for available) to to ("" for
// a broadcast).
func (c *Client) Presence(t testing.TB, typ, to string) {
	t.Helper()
	c.Send(t, struct {
		XMLName xml.Name `xml:"presence"`
		Type    string   `xml:"type,attr,omitempty"`
		To      string   `xml:"to,attr,omitempty"`
	}{Type: typ, To: to})
}

// Message sends a chat message with body to to and returns its id.
func (c *Client) Message(t testing.TB, to, body string) string {
	t.Helper()
	id := NewID()
	c.Send(t, struct {
		XMLName xml.Name `xml:"message"`
		ID      string   `xml:"id,attr"`
		Type    string   `xml:"type,attr"`
		To      string   `xml:"to,attr"`
		Body    string   `xml:"body"`
	}{ID: id, Type: "chat", To: to, Body: body})
	return id
}

// Expect returns the oldest kept stanza matching ok, waiting up to Timeout
// for one to arrive; the stanza is taken, others stay kept.
func (c *Client) Expect(t testing.TB, what string, ok func(*Node) bool) *Node {
	t.Helper()
	return c.ExpectWithin(t, Timeout, what, ok)
}

// ExpectWithin is Expect with its own deadline.
func (c *Client) ExpectWithin(t testing.TB, d time.Duration, what string, ok func(*Node) bool) *Node {
	t.Helper()
	if n := c.Await(d, ok); n != nil {
		return n
	}
	t.Fatalf("%s: never received %s (within %s)", c.JID, what, d)
	return nil
}

// Await is Expect without a test: nil when nothing matched within d.
func (c *Client) Await(d time.Duration, ok func(*Node) bool) *Node {
	timeout := time.After(d)
	for {
		c.mu.Lock()
		for i, n := range c.kept {
			if ok(n) {
				c.kept = append(c.kept[:i:i], c.kept[i+1:]...)
				c.mu.Unlock()
				return n
			}
		}
		arrived := c.arrived
		c.mu.Unlock()
		select {
		case <-arrived:
		case <-timeout:
			return nil
		}
	}
}

// Count says how many kept stanzas match ok, taking none.
func (c *Client) Count(ok func(*Node) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.kept {
		if ok(s) {
			n++
		}
	}
	return n
}

// Forget drops every kept stanza: later Expects see only what arrives
// from now on.
func (c *Client) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kept = nil
}

// IQ sends an IQ of type typ to to ("" for the user's own account) with a
// literal payload, and returns the reply (result or error).
func (c *Client) IQ(t testing.TB, typ, to, payload string) *Node {
	t.Helper()
	id := c.sendIQ(t, typ, to, payload)
	return c.Expect(t, "reply to iq "+id, isReply(id))
}

// IQWithin is IQ that returns nil when no reply came within d (a server
// may lose an IQ routed to a component whose connection is closing).
func (c *Client) IQWithin(t testing.TB, d time.Duration, typ, to, payload string) *Node {
	t.Helper()
	return c.Await(d, isReply(c.sendIQ(t, typ, to, payload)))
}

func (c *Client) sendIQ(t testing.TB, typ, to, payload string) string {
	t.Helper()
	id := NewID()
	toAttr := ""
	if to != "" {
		toAttr = fmt.Sprintf(" to='%s'", to)
	}
	c.SendRaw(t, fmt.Sprintf(`<iq xmlns='jabber:client' type='%s' id='%s'%s>%s</iq>`, typ, id, toAttr, payload))
	return id
}

func isReply(id string) func(*Node) bool {
	return func(n *Node) bool { return n.Name.Local == "iq" && n.Attr("id") == id }
}
