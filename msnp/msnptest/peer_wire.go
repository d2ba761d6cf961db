package msnptest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
)

// This file is the Peer's own MSNP2P v1 wire format, written apart from
// package msnp's on purpose (as challenge.go is): the two must agree only
// through the public descriptions and the vectors in peer_wire_test.go.
//
// Sources: FACTS.md §7.5; libpurple's msn prpl (p2p.h MsnP2PHeader,
// slpmsg.c msn_slpmsg_sip_new, slpcall.c msn_slpcall_invite, slp.c
// got_sessionreq/send_bye, slplink.c release_slpmsg/create_ack, xfer.c
// MsnFileContext and msn.c gen_context); the imfreedom/msnpiki pages on
// P2Pv1 headers, MSNSLP, display pictures and file transfer.

// P2P flags (imfreedom "P2Pv1 Headers", libpurple p2p.h).
const (
	p2pFlagNone    = 0x0
	p2pFlagAck     = 0x2
	p2pFlagClose   = 0x40
	p2pFlagObjData = 0x20      // MSNObject data (display picture, emoticon)
	p2pFlagWLM2009 = 0x1000000 // "WLM 2009 compatible", set by WLM on SLP and data
	p2pFlagFile    = 0x1000030 // file data: WLM2009 | MSNObject | file
)

// AppIDs in the footer (big-endian) and in the INVITE body.
const (
	p2pAppSLP    = 0
	p2pAppObject = 1
	p2pAppFile   = 2
)

// p2pMaxChunk is the most data one P2P message over a switchboard carries
// (libpurple MSN_SBCONN_MAX_SIZE; FACTS.md §7.5).
const p2pMaxChunk = 1202

// The EUF-GUIDs of the sessions a Peer speaks (libpurple slp.h).
const (
	eufGUIDObject = "{A4268EEC-FEC5-49E5-95C3-F126696BDBF6}"
	eufGUIDFile   = "{5D3E02AB-6190-11D3-BBBB-00C04F795683}"
)

const p2pHeaderLen = 48

// p2pHeader is the 48-byte little-endian MSNP2P v1 binary header.
type p2pHeader struct {
	Session, ID   uint32
	Offset, Total uint64
	Length, Flags uint32
	AckID, AckUID uint32
	AckSize       uint64
}

func (h p2pHeader) String() string {
	return fmt.Sprintf("session=%d id=%d offset=%d total=%d len=%d flags=%#x ackid=%d ackuid=%d acksize=%d",
		h.Session, h.ID, h.Offset, h.Total, h.Length, h.Flags, h.AckID, h.AckUID, h.AckSize)
}

// encodeP2P is header + data + big-endian footer.
func encodeP2P(h p2pHeader, data []byte, appID uint32) []byte {
	b := make([]byte, p2pHeaderLen, p2pHeaderLen+len(data)+4)
	le := binary.LittleEndian
	le.PutUint32(b[0:], h.Session)
	le.PutUint32(b[4:], h.ID)
	le.PutUint64(b[8:], h.Offset)
	le.PutUint64(b[16:], h.Total)
	le.PutUint32(b[24:], h.Length)
	le.PutUint32(b[28:], h.Flags)
	le.PutUint32(b[32:], h.AckID)
	le.PutUint32(b[36:], h.AckUID)
	le.PutUint64(b[40:], h.AckSize)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, appID)
}

var errShortP2P = errors.New("P2P body shorter than header and footer")

// decodeP2P splits a P2P body. It checks only what it must to split it:
// the header's MessageLength against the bytes present is left to the
// caller, which records a violation.
func decodeP2P(body []byte) (h p2pHeader, data []byte, appID uint32, err error) {
	if len(body) < p2pHeaderLen+4 {
		return h, nil, 0, errShortP2P
	}
	le := binary.LittleEndian
	h = p2pHeader{
		Session: le.Uint32(body[0:]), ID: le.Uint32(body[4:]),
		Offset: le.Uint64(body[8:]), Total: le.Uint64(body[16:]),
		Length: le.Uint32(body[24:]), Flags: le.Uint32(body[28:]),
		AckID: le.Uint32(body[32:]), AckUID: le.Uint32(body[36:]),
		AckSize: le.Uint64(body[40:]),
	}
	data = body[p2pHeaderLen : len(body)-4]
	appID = binary.BigEndian.Uint32(body[len(body)-4:])
	return h, data, appID, nil
}

// p2pMIME is the MIME head of a P2P MSG, as libpurple's
// msn_message_new_msnslp writes it (FACTS.md §7.5).
func p2pMIME(dest string) string {
	return "MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: " + dest + "\r\n\r\n"
}

// slpMessage is an MSNSLP message: a start line, SIP-like headers, and a
// body of "Key: value" lines. On the wire it ends with a NUL that
// Content-Length counts.
type slpMessage struct {
	StartLine string
	Headers   []slpField // in order
	Body      []slpField
}

type slpField struct{ Key, Value string }

func (m *slpMessage) header(k string) string    { return fieldValue(m.Headers, k) }
func (m *slpMessage) bodyValue(k string) string { return fieldValue(m.Body, k) }

func fieldValue(fs []slpField, k string) string {
	for _, f := range fs {
		if strings.EqualFold(f.Key, k) {
			return f.Value
		}
	}
	return ""
}

// method is "INVITE", "BYE", or "" for a response.
func (m *slpMessage) method() string {
	if strings.HasPrefix(m.StartLine, "MSNSLP/1.0 ") {
		return ""
	}
	meth, _, _ := strings.Cut(m.StartLine, " ")
	return meth
}

// status is the response code (200, 603, …), 0 for a request.
func (m *slpMessage) status() int {
	rest, ok := strings.CutPrefix(m.StartLine, "MSNSLP/1.0 ")
	if !ok {
		return 0
	}
	code, _, _ := strings.Cut(rest, " ")
	n, _ := strconv.Atoi(code)
	return n
}

// bytes renders m the way libpurple's msn_slpmsg_sip_new does: the body
// fields each end in CRLF, a blank line ends the body, and a NUL ends it
// all; Content-Length counts the body and the NUL.
func (m *slpMessage) bytes() []byte {
	var body strings.Builder
	for _, f := range m.Body {
		body.WriteString(f.Key + ": " + f.Value + "\r\n")
	}
	body.WriteString("\r\n")
	if len(m.Body) == 0 {
		// A BYE's body is just CRLF (libpurple send_bye).
		body.Reset()
		body.WriteString("\r\n")
	}
	var b bytes.Buffer
	b.WriteString(m.StartLine + "\r\n")
	for _, f := range m.Headers {
		// Content-Length is computed below; a parsed message carries the
		// one it came with, which the body's rendering may not match
		// (a round-trip failure found by FuzzPeerSLP).
		if strings.EqualFold(f.Key, "Content-Length") {
			continue
		}
		b.WriteString(f.Key + ": " + f.Value + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(body.Len()+1) + "\r\n\r\n")
	b.WriteString(body.String())
	b.WriteByte(0)
	return b.Bytes()
}

// parseSLP reads an MSNSLP message strictly: the start line, the headers
// every message must have, a Content-Length that matches, the closing NUL.
func parseSLP(b []byte) (*slpMessage, error) {
	head, rest, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		return nil, errors.New("SLP: no blank line after the headers")
	}
	lines := strings.Split(string(head), "\r\n")
	m := &slpMessage{StartLine: lines[0]}
	switch {
	case strings.HasPrefix(m.StartLine, "INVITE MSNMSGR:"), strings.HasPrefix(m.StartLine, "BYE MSNMSGR:"):
		if !strings.HasSuffix(m.StartLine, " MSNSLP/1.0") {
			return nil, fmt.Errorf("SLP: bad request line %q", m.StartLine)
		}
	case strings.HasPrefix(m.StartLine, "MSNSLP/1.0 "):
		if m.status() == 0 {
			return nil, fmt.Errorf("SLP: bad status line %q", m.StartLine)
		}
	default:
		return nil, fmt.Errorf("SLP: bad start line %q", m.StartLine)
	}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			return nil, fmt.Errorf("SLP: bad header line %q", l)
		}
		// Real clients write "CSeq: 0 " with a trailing blank
		// (Escargot's msnp_sb.py capture).
		m.Headers = append(m.Headers, slpField{k, strings.TrimSpace(v)})
	}
	for _, k := range []string{"To", "From", "Via", "CSeq", "Call-ID", "Max-Forwards", "Content-Type", "Content-Length"} {
		if m.header(k) == "" {
			return nil, fmt.Errorf("SLP: no %s header", k)
		}
	}
	n, err := strconv.Atoi(m.header("Content-Length"))
	if err != nil || n != len(rest) {
		return nil, fmt.Errorf("SLP: Content-Length %q but %d bytes follow", m.header("Content-Length"), len(rest))
	}
	if n == 0 || rest[n-1] != 0 {
		return nil, errors.New("SLP: body does not end with NUL")
	}
	for _, l := range strings.Split(string(rest[:n-1]), "\r\n") {
		if l == "" {
			continue
		}
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			return nil, fmt.Errorf("SLP: bad body line %q", l)
		}
		m.Body = append(m.Body, slpField{k, strings.TrimSpace(v)})
	}
	return m, nil
}

// slpAddr is "<msnmsgr:passport>" of To and From.
func slpAddr(passport string) string { return "<msnmsgr:" + passport + ">" }

// newSLPGUID is a random upper-case GUID in braces, as Call-ID and branch.
func newSLPGUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("{%x-%x-%x-%x-%x}", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

// randID is a random identifier as libpurple picks them:
// rand() % 0xFFFFFF00 + 4, never 0.
func randID() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:])%0xFFFFFF00 + 4
}

// The file context of a file-transfer INVITE (libpurple xfer.h
// MsnFileContext, msn.c gen_context; MSNPSharp FTContext): length,
// version, file size, type (1 = no preview), the name as 260 UTF-16LE
// units, 30 unknown bytes and 0xFFFFFFFF — 574 bytes in version 2 (MSN
// 7.x, libpurple); version 3 (WLM 8+) pads it with zeros to 638, as the
// INVITE captured in Escargot's front/msn/msnp_sb.py shows ("fgIAAAMA…":
// length 0x27e, version 3).
const (
	fileContextV2Len = 4 + 4 + 8 + 4 + 520 + 30 + 4
	fileContextV3Len = 638
	fileNameUnits    = 260
)

// encodeFileContext writes a version 3 context, as WLM 8.5 sends it.
func encodeFileContext(name string, size uint64) []byte {
	b := make([]byte, 0, fileContextV3Len)
	b = binary.LittleEndian.AppendUint32(b, fileContextV3Len)
	b = binary.LittleEndian.AppendUint32(b, 3)
	b = binary.LittleEndian.AppendUint64(b, size)
	b = binary.LittleEndian.AppendUint32(b, 1)
	units := utf16.Encode([]rune(name))
	if len(units) > fileNameUnits-1 {
		units = units[:fileNameUnits-1]
	}
	for i := 0; i < fileNameUnits; i++ {
		var u uint16
		if i < len(units) {
			u = units[i]
		}
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	b = append(b, make([]byte, 30)...)
	b = binary.LittleEndian.AppendUint32(b, 0xFFFFFFFF)
	return append(b, make([]byte, fileContextV3Len-len(b))...)
}

// decodeFileContext reads a file context strictly: version 2 (MSN 7.x,
// libpurple) or 3 (WLM 8+, 638 bytes with its extra fields), a length
// field that fits, a NUL-terminated name.
func decodeFileContext(b []byte) (name string, size uint64, err error) {
	if len(b) < fileContextV2Len {
		return "", 0, fmt.Errorf("file context of %d bytes, want at least %d", len(b), fileContextV2Len)
	}
	le := binary.LittleEndian
	length, version := le.Uint32(b[0:]), le.Uint32(b[4:])
	switch version {
	case 2:
		if length != fileContextV2Len {
			return "", 0, fmt.Errorf("file context v2 with length %d, want %d", length, fileContextV2Len)
		}
	case 3:
		if length < fileContextV3Len || int(length) > len(b) {
			return "", 0, fmt.Errorf("file context v3 with length %d of %d bytes", length, len(b))
		}
	default:
		return "", 0, fmt.Errorf("file context version %d", version)
	}
	size = le.Uint64(b[8:])
	var units []uint16
	for i := 0; i < fileNameUnits; i++ {
		u := le.Uint16(b[20+2*i:])
		if u == 0 {
			break
		}
		units = append(units, u)
	}
	if len(units) == fileNameUnits {
		return "", 0, errors.New("file context name is not NUL-terminated")
	}
	if len(units) == 0 {
		return "", 0, errors.New("file context has an empty name")
	}
	return string(utf16.Decode(units)), size, nil
}

// msnObjContext is the Context of a display-picture INVITE: base64 of the
// msnobj XML with its NUL (FACTS.md §7.5; WLM sends the NUL, libpurple
// does not, so the reader accepts both).
func msnObjContext(xml string) string {
	return base64.StdEncoding.EncodeToString(append([]byte(xml), 0))
}

// urlEncodeAll percent-encodes everything but letters, digits and "-_.",
// as WLM writes the msnobj in CHG ("%3Cmsnobj%20Creator%3D%22…").
func urlEncodeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
