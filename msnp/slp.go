package msnp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MSNSLP is the SIP-like text protocol P2P sessions are negotiated with
// (FACTS.md §7.5; libpurple slpmsg.c msn_slpmsg_sip_new): a start line,
// headers, a blank line and a body of "Key: Value" lines ended by a blank
// line and a NUL, which Content-Length counts.

// MSNSLP content types.
const (
	SLPSessionRequest = "application/x-msnmsgr-sessionreqbody"
	SLPTransRequest   = "application/x-msnmsgr-transreqbody"
	SLPTransResponse  = "application/x-msnmsgr-transrespbody"
	SLPSessionClose   = "application/x-msnmsgr-sessionclosebody"
)

// EUF-GUIDs of the P2P applications this package speaks.
const (
	EUFGUIDMSNObject = "{A4268EEC-FEC5-49E5-95C3-F126696BDBF6}"
	EUFGUIDFile      = "{5D3E02AB-6190-11D3-BBBB-00C04F795683}"
)

// SLPMessage is one MSNSLP request (Method set) or response (Status set).
type SLPMessage struct {
	Method string // "INVITE", "BYE", …; "" for a response
	Target string // the request URI's address: "MSNMSGR:bob@x" → "bob@x"
	Status int    // 200, 603, … for a response
	Reason string // "OK", "Decline"

	To, From    string // addresses without "<msnmsgr:" and ">"
	Branch      string // Via's branch, braces included
	CSeq        int
	CallID      string // braces included
	MaxForwards int
	ContentType string
	// Body holds the body's "Key: Value" lines in order.
	Body []MIMEHeader
}

// Get returns the first body field named name (case-insensitive).
func (m *SLPMessage) Get(name string) string {
	for _, f := range m.Body {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// ErrBadSLP is wrapped by every MSNSLP parse error.
var ErrBadSLP = errors.New("msnp: malformed MSNSLP message")

// Bounds of a parsed message.
const (
	maxSLPMessage = 64 << 10
	maxSLPFields  = 64
)

// Bytes renders the message with its trailing NUL.
func (m *SLPMessage) Bytes() []byte {
	var body bytes.Buffer
	for _, f := range m.Body {
		body.WriteString(f.Name)
		body.WriteString(": ")
		body.WriteString(f.Value)
		body.WriteString("\r\n")
	}
	body.WriteString("\r\n")
	body.WriteByte(0)

	var b bytes.Buffer
	if m.Method != "" {
		fmt.Fprintf(&b, "%s MSNMSGR:%s MSNSLP/1.0\r\n", m.Method, m.Target)
	} else {
		fmt.Fprintf(&b, "MSNSLP/1.0 %d %s\r\n", m.Status, m.Reason)
	}
	fmt.Fprintf(&b, "To: <msnmsgr:%s>\r\n", m.To)
	fmt.Fprintf(&b, "From: <msnmsgr:%s>\r\n", m.From)
	fmt.Fprintf(&b, "Via: MSNSLP/1.0/TLP ;branch=%s\r\n", m.Branch)
	fmt.Fprintf(&b, "CSeq: %d\r\n", m.CSeq)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", m.CallID)
	fmt.Fprintf(&b, "Max-Forwards: %d\r\n", m.MaxForwards)
	fmt.Fprintf(&b, "Content-Type: %s\r\n", m.ContentType)
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", body.Len())
	b.Write(body.Bytes())
	return b.Bytes()
}

// ParseSLP reads one MSNSLP message. It is lenient where clients differ
// (trailing NULs, a Content-Length that disagrees with the body, bare LF
// line ends) and strict where a mistake would misroute the message (the
// start line, a Call-ID).
func ParseSLP(b []byte) (*SLPMessage, error) {
	if len(b) > maxSLPMessage {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrBadSLP, len(b), maxSLPMessage)
	}
	b = bytes.TrimRight(b, "\x00")
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		if head, body, ok = bytes.Cut(b, []byte("\n\n")); !ok {
			return nil, fmt.Errorf("%w: no blank line after the headers", ErrBadSLP)
		}
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	m := &SLPMessage{}
	start := strings.Fields(lines[0])
	switch {
	case len(start) >= 3 && start[0] == "MSNSLP/1.0":
		n, err := strconv.Atoi(start[1])
		if err != nil || n < 100 || n > 999 {
			return nil, fmt.Errorf("%w: status %q", ErrBadSLP, start[1])
		}
		m.Status, m.Reason = n, strings.Join(start[2:], " ")
	case len(start) == 3 && start[2] == "MSNSLP/1.0" && isSLPMethod(start[0]):
		m.Method = start[0]
		t, ok := cutPrefixFold(start[1], "MSNMSGR:")
		if !ok {
			return nil, fmt.Errorf("%w: request URI %q", ErrBadSLP, start[1])
		}
		m.Target = t
	default:
		return nil, fmt.Errorf("%w: start line %q", ErrBadSLP, cutString(lines[0], 80))
	}
	if len(lines) > maxSLPFields+1 {
		return nil, fmt.Errorf("%w: %d header lines", ErrBadSLP, len(lines)-1)
	}
	for _, line := range lines[1:] {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "to":
			m.To = slpAddress(v)
		case "from":
			m.From = slpAddress(v)
		case "via":
			if i := indexASCIIFold(v, "branch="); i >= 0 {
				br := v[i+len("branch="):]
				if j := strings.IndexAny(br, " ;"); j >= 0 {
					br = br[:j]
				}
				m.Branch = br
			}
		case "cseq":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%w: CSeq %q", ErrBadSLP, cutString(v, 20))
			}
			m.CSeq = n
		case "call-id":
			m.CallID = v
		case "max-forwards":
			m.MaxForwards, _ = strconv.Atoi(v)
		case "content-type":
			m.ContentType = v
		case "content-length":
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				return nil, fmt.Errorf("%w: Content-Length %q", ErrBadSLP, cutString(v, 20))
			}
		}
	}
	if m.CallID == "" {
		return nil, fmt.Errorf("%w: no Call-ID", ErrBadSLP)
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if len(m.Body) == maxSLPFields {
			return nil, fmt.Errorf("%w: more than %d body fields", ErrBadSLP, maxSLPFields)
		}
		m.Body = append(m.Body, MIMEHeader{Name: strings.TrimSpace(k), Value: strings.TrimSpace(v)})
	}
	return m, nil
}

func isSLPMethod(s string) bool { return s == "INVITE" || s == "BYE" || s == "ACK" }

// slpAddress reads "<msnmsgr:bob@x>" (or a bare address).
func slpAddress(v string) string {
	v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
	if a, ok := cutPrefixFold(v, "msnmsgr:"); ok {
		return a
	}
	return v
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

func cutString(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// indexASCIIFold is strings.Index ignoring ASCII case. Unlike an Index in
// strings.ToLower(s), its result is an offset in s itself: ToLower turns
// each invalid UTF-8 byte into three (U+FFFD), which moved the offset past
// the end of s (a crash found by FuzzParseSLP).
func indexASCIIFold(s, substr string) int {
	for i := 0; i+len(substr) <= len(s); i++ {
		if asciiEqualFold(s[i:i+len(substr)], substr) {
			return i
		}
	}
	return -1
}

func asciiEqualFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
