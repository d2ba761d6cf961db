package msnp

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"unicode/utf16"
)

// p2pVector is a data packet laid out field by field as libpurple's
// msn_p2p_header_to_wire (p2p.c) writes it: nine little-endian fields
// (u32 session, u32 id, u64 offset, u64 total, u32 length, u32 flags,
// u32 ack id, u32 ack sub id, u64 ack size), the data, and
// msn_p2p_footer_to_wire's big-endian app id.
var p2pVector = mustHex("" +
	"04030201" + // SessionID 0x01020304
	"0d0c0b0a" + // Identifier 0x0A0B0C0D
	"0010000000000000" + // Offset 4096
	"0020000000000000" + // TotalSize 8192
	"03000000" + // MessageLength 3
	"20000000" + // Flags 0x20 (MSNObject data)
	"88776655" + // AckIdentifier 0x55667788
	"00000000" + // AckUniqueID
	"0000000000000000" + // AckDataSize
	"616263" + // "abc"
	"00000001") // footer: AppID 1

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestP2PCodecVector(t *testing.T) {
	h, data, app, err := ParseP2P(p2pVector)
	if err != nil {
		t.Fatal(err)
	}
	want := P2PHeader{SessionID: 0x01020304, Identifier: 0x0A0B0C0D, Offset: 4096, TotalSize: 8192,
		MessageLength: 3, Flags: P2PFlagMSNObjData, AckIdentifier: 0x55667788}
	if h != want || string(data) != "abc" || app != P2PAppMSNObject {
		t.Fatalf("ParseP2P = %+v %q %d", h, data, app)
	}
	h.MessageLength = 99 // AppendP2P sets it from the data
	if got := AppendP2P(nil, h, data, app); !bytes.Equal(got, p2pVector) {
		t.Fatalf("AppendP2P:\n got %x\nwant %x", got, p2pVector)
	}
}

func TestP2PParseErrors(t *testing.T) {
	ok := func() P2PHeader { return P2PHeader{TotalSize: 10, Identifier: 1} }
	for _, tc := range []struct {
		name string
		body []byte
		msg  string
	}{
		{"empty", nil, "shorter"},
		{"header only", make([]byte, 48), "shorter"},
		{"length says more", func() []byte {
			b := AppendP2P(nil, ok(), []byte("abcd"), 0)
			binary.LittleEndian.PutUint32(b[24:], 5)
			return b
		}(), "MessageLength 5 but 4"},
		{"length says less", func() []byte {
			b := AppendP2P(nil, ok(), []byte("abcd"), 0)
			binary.LittleEndian.PutUint32(b[24:], 3)
			return b
		}(), "MessageLength 3 but 4"},
		{"past TotalSize", AppendP2P(nil, P2PHeader{Offset: 8, TotalSize: 10}, []byte("abcd"), 0), "beyond TotalSize"},
		{"offset past TotalSize", AppendP2P(nil, P2PHeader{Offset: 11, TotalSize: 10}, nil, 0), "beyond TotalSize"},
		{"offset overflow", AppendP2P(nil, P2PHeader{Offset: ^uint64(0), TotalSize: ^uint64(0)}, []byte("a"), 0), "beyond TotalSize"},
		{"oversized", AppendP2P(nil, P2PHeader{TotalSize: 5000}, make([]byte, 2000), 0), "over 1664"},
	} {
		_, _, _, err := ParseP2P(tc.body)
		if !errors.Is(err, ErrBadP2P) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want ErrBadP2P mentioning %q", tc.name, err, tc.msg)
		}
	}
}

// TestP2PAck checks the acknowledgement's fields against libpurple's
// msn_p2p_info_create_ack (p2p.c): same session, flags 0x02, AckIdentifier
// = the acked Identifier, AckUniqueID = its AckIdentifier, AckDataSize =
// its TotalSize.
func TestP2PAck(t *testing.T) {
	last := P2PHeader{SessionID: 7, Identifier: 100, Offset: 2404, TotalSize: 3000, MessageLength: 596, Flags: P2PFlagFileData, AckIdentifier: 0xDEADBEEF}
	got := p2pAckFor(last, 555)
	want := P2PHeader{SessionID: 7, Identifier: 555, TotalSize: 3000, Flags: P2PFlagAck, AckIdentifier: 100, AckUniqueID: 0xDEADBEEF, AckDataSize: 3000}
	if got != want {
		t.Fatalf("ack %+v, want %+v", got, want)
	}
	if _, _, _, err := ParseP2P(AppendP2P(nil, got, nil, 0)); err != nil {
		t.Fatalf("the ack does not parse: %v", err)
	}
}

// slpInviteVector is an INVITE as libpurple writes one:
// msn_slpmsg_sip_new's headers (slpmsg.c) around msn_slpcall_invite's
// body (slpcall.c), Content-Length counting the body's trailing NUL.
const slpInviteVector = "INVITE MSNMSGR:bob@example.com MSNSLP/1.0\r\n" +
	"To: <msnmsgr:bob@example.com>\r\n" +
	"From: <msnmsgr:alice@example.com>\r\n" +
	"Via: MSNSLP/1.0/TLP ;branch={33517CE4-02FC-4428-B6F4-39927229B722}\r\n" +
	"CSeq: 0\r\n" +
	"Call-ID: {9D79AE57-1BD5-444B-B14E-3FC9BB2B5D58}\r\n" +
	"Max-Forwards: 0\r\n" +
	"Content-Type: application/x-msnmsgr-sessionreqbody\r\n" +
	"Content-Length: 110\r\n" + // strlen(content) + 1
	"\r\n" +
	"EUF-GUID: {A4268EEC-FEC5-49E5-95C3-F126696BDBF6}\r\n" +
	"SessionID: 1980589\r\n" +
	"AppID: 1\r\n" +
	"Context: PG1zbm9iai8+AA==\r\n" +
	"\r\n\x00"

func TestSLPVector(t *testing.T) {
	m, err := ParseSLP([]byte(slpInviteVector))
	if err != nil {
		t.Fatal(err)
	}
	if m.Method != "INVITE" || m.Target != "bob@example.com" || m.To != "bob@example.com" || m.From != "alice@example.com" ||
		m.Branch != "{33517CE4-02FC-4428-B6F4-39927229B722}" || m.CallID != "{9D79AE57-1BD5-444B-B14E-3FC9BB2B5D58}" ||
		m.CSeq != 0 || m.ContentType != SLPSessionRequest || m.Get("EUF-GUID") != EUFGUIDMSNObject ||
		m.Get("SessionID") != "1980589" || m.Get("appid") != "1" {
		t.Fatalf("parsed %+v", m)
	}
	ctx, _ := base64.StdEncoding.DecodeString(m.Get("Context"))
	if string(ctx) != "<msnobj/>\x00" {
		t.Fatalf("context %q", ctx)
	}
	if got := string(m.Bytes()); got != slpInviteVector {
		t.Fatalf("Bytes:\n%q\nwant\n%q", got, slpInviteVector)
	}
	// A response, as msn_slp_send_ok writes it.
	ok := &SLPMessage{Status: 200, Reason: "OK", To: "alice@example.com", From: "bob@example.com", Branch: m.Branch, CSeq: 1,
		CallID: m.CallID, ContentType: SLPSessionRequest, Body: []MIMEHeader{{Name: "SessionID", Value: "1980589"}}}
	want := "MSNSLP/1.0 200 OK\r\nTo: <msnmsgr:alice@example.com>\r\nFrom: <msnmsgr:bob@example.com>\r\n" +
		"Via: MSNSLP/1.0/TLP ;branch={33517CE4-02FC-4428-B6F4-39927229B722}\r\nCSeq: 1\r\n" +
		"Call-ID: {9D79AE57-1BD5-444B-B14E-3FC9BB2B5D58}\r\nMax-Forwards: 0\r\n" +
		"Content-Type: application/x-msnmsgr-sessionreqbody\r\nContent-Length: 23\r\n\r\nSessionID: 1980589\r\n\r\n\x00"
	if got := string(ok.Bytes()); got != want {
		t.Fatalf("200 OK:\n%q\nwant\n%q", got, want)
	}
	back, err := ParseSLP(ok.Bytes())
	if err != nil || back.Status != 200 || back.Reason != "OK" || back.Get("SessionID") != "1980589" {
		t.Fatalf("200 OK round trip: %+v %v", back, err)
	}
}

func TestSLPParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"no blank line", "INVITE MSNMSGR:a@b MSNSLP/1.0\r\nCall-ID: {x}\r\n"},
		{"bad start", "HELLO there\r\nCall-ID: {x}\r\n\r\n"},
		{"bad URI", "INVITE a@b MSNSLP/1.0\r\nCall-ID: {x}\r\n\r\n"},
		{"bad status", "MSNSLP/1.0 abc OK\r\nCall-ID: {x}\r\n\r\n"},
		{"no Call-ID", "BYE MSNMSGR:a@b MSNSLP/1.0\r\nTo: <msnmsgr:a@b>\r\n\r\n"},
		{"bad CSeq", "BYE MSNMSGR:a@b MSNSLP/1.0\r\nCSeq: x\r\nCall-ID: {x}\r\n\r\n"},
		{"bad length", "BYE MSNMSGR:a@b MSNSLP/1.0\r\nContent-Length: -1\r\nCall-ID: {x}\r\n\r\n"},
		{"too big", "BYE MSNMSGR:a@b MSNSLP/1.0\r\nCall-ID: {x}\r\n\r\n" + strings.Repeat("a", 70000)},
		{"too many fields", "BYE MSNMSGR:a@b MSNSLP/1.0\r\nCall-ID: {x}\r\n\r\n" + strings.Repeat("k: v\r\n", 100)},
	} {
		if _, err := ParseSLP([]byte(tc.in)); !errors.Is(err, ErrBadSLP) {
			t.Errorf("%s: %v, want ErrBadSLP", tc.name, err)
		}
	}
}

// TestFileContext checks the layout of libpurple's gen_context (slp.c) and
// msn_file_context_to_wire (xfer.c): 574 bytes, version 2, type 1 (no
// preview), the UTF-16LE name in 520 bytes, 30 zero bytes, 0xFFFFFFFF.
func TestFileContext(t *testing.T) {
	b := fileContext("h\u00e9llo.txt", 300<<10)
	le := binary.LittleEndian
	if len(b) != 574 || le.Uint32(b[0:]) != 574 || le.Uint32(b[4:]) != 2 || le.Uint64(b[8:]) != 300<<10 || le.Uint32(b[16:]) != 1 ||
		le.Uint32(b[570:]) != 0xFFFFFFFF || !bytes.Equal(b[540:570], make([]byte, 30)) {
		t.Fatalf("context %x", b)
	}
	u := utf16.Encode([]rune("h\u00e9llo.txt"))
	for i, x := range u {
		if le.Uint16(b[20+2*i:]) != x {
			t.Fatalf("name unit %d", i)
		}
	}
	name, size, err := parseFileContext(b)
	if err != nil || name != "h\u00e9llo.txt" || size != 300<<10 {
		t.Fatalf("parse: %q %d %v", name, size, err)
	}
	// Version 3 (WLM 2009): 638 bytes, its length field 638.
	v3 := append(append([]byte(nil), b...), make([]byte, 64)...)
	le.PutUint32(v3[0:], 638)
	le.PutUint32(v3[4:], 3)
	if name, _, err := parseFileContext(v3); err != nil || name != "h\u00e9llo.txt" {
		t.Fatalf("v3: %q %v", name, err)
	}
	le.PutUint32(v3[0:], 600)
	if _, _, err := parseFileContext(v3); err == nil {
		t.Fatal("v3 with a wrong length parsed")
	}
	if _, _, err := parseFileContext(b[:100]); err == nil {
		t.Fatal("a short context parsed")
	}
	long := fileContext(strings.Repeat("x", 400), 1)
	if n, _, err := parseFileContext(long); err != nil || len(n) != 259 {
		t.Fatalf("long name: %d %v", len(n), err)
	}
}

func FuzzParseP2P(f *testing.F) {
	f.Add(p2pVector)
	f.Add(AppendP2P(nil, p2pAckFor(P2PHeader{Identifier: 5, TotalSize: 9}, 6), nil, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		h, data, app, err := ParseP2P(body)
		if err != nil {
			return
		}
		if uint64(len(data)) != uint64(h.MessageLength) || h.Offset+uint64(len(data)) > h.TotalSize || len(data) > p2pMaxPacketData {
			t.Fatalf("accepted an inconsistent packet: %+v with %d bytes", h, len(data))
		}
		if out := AppendP2P(nil, h, data, app); !bytes.Equal(out, body) {
			t.Fatalf("round trip changed the packet")
		}
	})
}

func FuzzParseSLP(f *testing.F) {
	f.Add([]byte(slpInviteVector))
	f.Add([]byte("MSNSLP/1.0 603 Decline\r\nCall-ID: {x}\r\n\r\nSessionID: 1\r\n\r\n\x00"))
	f.Add([]byte("BYE MSNMSGR:a@b MSNSLP/1.0\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseSLP(b)
		if err != nil {
			return
		}
		// What parsed renders to something that parses the same way.
		again, err := ParseSLP(m.Bytes())
		if err != nil {
			t.Fatalf("re-parsing %q: %v", m.Bytes(), err)
		}
		if again.Method != m.Method || again.Status != m.Status || again.CallID != m.CallID || len(again.Body) > len(m.Body) {
			t.Fatalf("round trip changed %+v into %+v", m, again)
		}
	})
}

// TestP2PRouting: P2P-Dest names this account, bare or (MSNP16+) with
// this endpoint's GUID; another endpoint's GUID, another account, or our
// own account's other endpoints sending are not ours.
func TestP2PRouting(t *testing.T) {
	c, err := New(Config{Server: "127.0.0.1:1", LoginURL: "http://127.0.0.1:1/login"}, "Alice@Example.com", "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.machineGUID = "{0D6D8D9B-1F59-4E3B-8C0E-6A1C9A8B7F10}"
	body := AppendP2P(nil, P2PHeader{Identifier: 1, TotalSize: 1, Flags: P2PFlagAck}, nil, 0)
	for _, tc := range []struct {
		from, dest string
		ours       bool
	}{
		{"bob@example.com", "alice@example.com", true},
		{"bob@example.com", "ALICE@example.com;{0d6d8d9b-1f59-4e3b-8c0e-6a1c9a8b7f10}", true},
		{"bob@example.com", "alice@example.com;{11111111-1f59-4e3b-8c0e-6a1c9a8b7f10}", false},
		{"bob@example.com", "carol@example.com", false},
		{"alice@example.com", "bob@example.com", false},
		{"alice@example.com", "alice@example.com", false},
	} {
		if got := c.p2pReceive(tc.from, "", &P2PMessage{Dest: tc.dest, Body: body}); got != tc.ours {
			t.Errorf("from %s to %s: ours = %v, want %v", tc.from, tc.dest, got, tc.ours)
		}
	}
}
