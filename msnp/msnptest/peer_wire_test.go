package msnptest

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/msnbridge/msnbridge/msnp"
)

// The vectors below are a file transfer offer between two real clients
// (t1h@hotmail.com offers an empty "a.txt" to t2h@hotmail.com, who
// declines), as captured in the comment of messagedata_from_msnp in
// Escargot's front/msn/msnp_sb.py: the INVITE in two chunks, its ack, the
// 603 Decline and its ack. The capture elides the middle of the Context;
// the 852 base64 characters are fully determined by its visible ends
// ("fgIAAAMAAAAAAAAAAAAAAAEAAABhAC4AdAB4AHQAA" … "/////wAAAA…A="), the
// Content-Length (948) and the chunk sizes (1202 + 72).

const (
	capFrom    = "t1h@hotmail.com"
	capTo      = "t2h@hotmail.com"
	capBranch  = "{CDE28DAF-B67C-4B2D-8186-D3F46EEF0916}"
	capCallID  = "{F87327A8-741F-4FEF-AB63-45D06F51A0C2}"
	capSession = "180646677"
)

var (
	// The binary headers of the capture, verbatim.
	capInviteHead1 = "\x00\x00\x00\x00Gt\xc4\n\x00\x00\x00\x00\x00\x00\x00\x00\xfa\x04\x00\x00\x00\x00\x00\x00\xb2\x04\x00\x00\x00\x00\x00\x00wn\xc5\n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	capInviteHead2 = "\x00\x00\x00\x00Gt\xc4\n\xb2\x04\x00\x00\x00\x00\x00\x00\xfa\x04\x00\x00\x00\x00\x00\x00H\x00\x00\x00\x00\x00\x00\x00wn\xc5\n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	capInviteAck   = "\x00\x00\x00\x00Wt\xc4\n\x00\x00\x00\x00\x00\x00\x00\x00\xfa\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00Gt\xc4\nwn\xc5\n\xfa\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	capDecline     = "\x00\x00\x00\x00Xt\xc4\n\x00\x00\x00\x00\x00\x00\x00\x00K\x01\x00\x00\x00\x00\x00\x00K\x01\x00\x00\x00\x00\x00\x00N\x0b\xc7\n\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
		"MSNSLP/1.0 603 Decline\r\nTo: <msnmsgr:t1h@hotmail.com>\r\nFrom: <msnmsgr:t2h@hotmail.com>\r\nVia: MSNSLP/1.0/TLP ;branch={CDE28DAF-B67C-4B2D-8186-D3F46EEF0916}\r\nCSeq: 1 \r\nCall-ID: {F87327A8-741F-4FEF-AB63-45D06F51A0C2}\r\nMax-Forwards: 0\r\nContent-Type: application/x-msnmsgr-sessionreqbody\r\nContent-Length: 25\r\n\r\nSessionID: 180646677\r\n\r\n\x00" +
		"\x00\x00\x00\x00"
	capDeclineAck = "\x00\x00\x00\x00Ht\xc4\n\x00\x00\x00\x00\x00\x00\x00\x00K\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00Xt\xc4\nN\x0b\xc7\nK\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

	capContext = "fgIAAAMAAAAAAAAAAAAAAAEAAABhAC4AdAB4AHQAA" + strings.Repeat("A", 852-41-92) + "/////w" + strings.Repeat("A", 85) + "="
	capInvite  = "INVITE MSNMSGR:t2h@hotmail.com MSNSLP/1.0\r\nTo: <msnmsgr:t2h@hotmail.com>\r\nFrom: <msnmsgr:t1h@hotmail.com>\r\nVia: MSNSLP/1.0/TLP ;branch={CDE28DAF-B67C-4B2D-8186-D3F46EEF0916}\r\nCSeq: 0 \r\nCall-ID: {F87327A8-741F-4FEF-AB63-45D06F51A0C2}\r\nMax-Forwards: 0\r\nContent-Type: application/x-msnmsgr-sessionreqbody\r\nContent-Length: 948\r\n\r\n" +
		"EUF-GUID: {5D3E02AB-6190-11D3-BBBB-00C04F795683}\r\nSessionID: 180646677\r\nAppID: 2\r\nContext: " + capContext + "\r\n\r\n\x00"
)

func capSLP(start string, cseq int, body []slpField) *slpMessage {
	s := &p2pSession{callID: capCallID, branch: capBranch}
	from, to := capFrom, capTo
	if cseq == 1 {
		from, to = capTo, capFrom
	}
	return newSLP(s, from, to, start, cseq, "application/x-msnmsgr-sessionreqbody", body)
}

// TestP2PWireCaptureInvite builds the captured INVITE from its parts and
// checks every byte of both chunks, headers included.
func TestP2PWireCaptureInvite(t *testing.T) {
	if len(capInvite) != 1274 {
		t.Fatalf("reconstructed INVITE is %d bytes, the capture says 1274", len(capInvite))
	}
	ctxt := encodeFileContext("a.txt", 0)
	if got := base64.StdEncoding.EncodeToString(ctxt); got != capContext {
		t.Fatalf("file context\n got %s\nwant %s", got, capContext)
	}
	m := capSLP("INVITE MSNMSGR:"+capTo+" MSNSLP/1.0", 0, []slpField{
		{"EUF-GUID", eufGUIDFile}, {"SessionID", capSession}, {"AppID", "2"}, {"Context", capContext},
	})
	if got := string(m.bytes()); got != capInvite {
		t.Fatalf("INVITE\n got %q\nwant %q", got, capInvite)
	}
	h := p2pHeader{ID: 0x0ac47447, Total: 1274, AckID: 0x0ac56e77}
	chunks := p2pChunks(capTo, h, m.bytes(), 0)
	mime := "MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: t2h@hotmail.com\r\n\r\n"
	want := []string{
		mime + capInviteHead1 + capInvite[:1202] + "\x00\x00\x00\x00",
		mime + capInviteHead2 + capInvite[1202:] + "\x00\x00\x00\x00",
	}
	if len(chunks) != 2 {
		t.Fatalf("%d chunks, want 2", len(chunks))
	}
	for i := range want {
		if string(chunks[i]) != want[i] {
			t.Fatalf("chunk %d\n got %q\nwant %q", i, chunks[i], want[i])
		}
	}
	// And back: the Peer's reader takes the captured INVITE.
	got, err := parseSLP([]byte(capInvite))
	if err != nil {
		t.Fatal(err)
	}
	if got.method() != "INVITE" || got.header("CSeq") != "0" || got.bodyValue("Context") != capContext || got.bodyValue("EUF-GUID") != eufGUIDFile {
		t.Fatalf("parsed %+v", got)
	}
	name, size, err := decodeFileContext(ctxt)
	if err != nil || name != "a.txt" || size != 0 {
		t.Fatalf("decodeFileContext = %q, %d, %v", name, size, err)
	}
}

// TestP2PWireCaptureDecline renders the captured 603 Decline and the acks.
func TestP2PWireCaptureDecline(t *testing.T) {
	h, data, appID, err := decodeP2P([]byte(capDecline))
	if err != nil {
		t.Fatal(err)
	}
	if h != (p2pHeader{ID: 0x0ac47458, Total: 331, Length: 331, AckID: 0x0ac70b4e}) || appID != 0 {
		t.Fatalf("decline header %v footer %d", h, appID)
	}
	m, err := parseSLP(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.status() != 603 || m.bodyValue("SessionID") != capSession || m.header("Call-ID") != capCallID {
		t.Fatalf("parsed %+v", m)
	}
	ours := capSLP("MSNSLP/1.0 603 Decline", 1, []slpField{{"SessionID", capSession}})
	if string(ours.bytes()) != string(data) {
		t.Fatalf("our 603 Decline\n got %q\nwant %q", ours.bytes(), data)
	}
	invite := p2pHeader{ID: 0x0ac47447, Total: 1274, Length: 1202, AckID: 0x0ac56e77}
	if got := encodeP2P(makeAck(invite, 0x0ac47457), nil, 0); string(got) != capInviteAck {
		t.Fatalf("ack of the INVITE\n got %q\nwant %q", got, capInviteAck)
	}
	if got := encodeP2P(makeAck(h, 0x0ac47448), nil, 0); string(got) != capDeclineAck {
		t.Fatalf("ack of the decline\n got %q\nwant %q", got, capDeclineAck)
	}
}

// TestP2PAckChecks feeds the captured ack to the check of a Peer that sent
// the INVITE, then broken variants of it.
func TestP2PAckChecks(t *testing.T) {
	good, _, _, err := decodeP2P([]byte(capInviteAck))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		break_ func(*p2pHeader, *uint32)
		bad    bool
	}{
		{"captured", func(*p2pHeader, *uint32) {}, false},
		{"wrong AckUniqueID", func(h *p2pHeader, _ *uint32) { h.AckUID++ }, true},
		{"wrong AckDataSize", func(h *p2pHeader, _ *uint32) { h.AckSize = 1202 }, true},
		{"wrong TotalSize", func(h *p2pHeader, _ *uint32) { h.Total = 0 }, true},
		{"wrong SessionID", func(h *p2pHeader, _ *uint32) { h.Session = 7 }, true},
		{"footer 1", func(_ *p2pHeader, a *uint32) { *a = 1 }, true},
		{"unknown message", func(h *p2pHeader, _ *uint32) { h.AckID++ }, true},
	} {
		p := &Peer{changed: make(chan struct{}), links: map[string]*p2pLink{}}
		l := p.link(capTo)
		l.sent[0x0ac47447] = &sentP2P{what: "INVITE", total: 1274, ackUID: 0x0ac56e77}
		h, appID := good, uint32(0)
		tc.break_(&h, &appID)
		p.checkAckLocked(l, h, appID)
		if got := len(p.violations) > 0; got != tc.bad {
			t.Errorf("%s: violations %q", tc.name, p.violations)
		}
		if !tc.bad {
			p.checkAckLocked(l, h, appID)
			if len(p.violations) == 0 {
				t.Errorf("a second ack of the same message went unnoticed")
			}
		}
	}
}

// TestP2PWireObjectInvite checks a display-picture INVITE against the
// format of libpurple's msn_slpcall_invite and msn_slpmsg_sip_new
// (written out by hand), with WLM's "CSeq: 0 ".
func TestP2PWireObjectInvite(t *testing.T) {
	obj := msnp.MSNObject{Creator: "bob@example.com", Size: 3, Type: 3, Location: "0", Friendly: "", SHA1D: "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="}
	obj.SHA1C = obj.ComputeSHA1C()
	xml := obj.String()
	ctxt := msnObjContext(xml)
	raw, _ := base64.StdEncoding.DecodeString(ctxt)
	if string(raw) != xml+"\x00" {
		t.Fatalf("Context decodes to %q", raw)
	}
	s := &p2pSession{callID: "{11111111-2222-3333-4444-555555555555}", branch: "{AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}"}
	m := newSLP(s, "alice@example.com", "bob@example.com", "INVITE MSNMSGR:bob@example.com MSNSLP/1.0", 0, "application/x-msnmsgr-sessionreqbody",
		[]slpField{{"EUF-GUID", eufGUIDObject}, {"SessionID", "42"}, {"AppID", "1"}, {"Context", ctxt}})
	body := "EUF-GUID: {A4268EEC-FEC5-49E5-95C3-F126696BDBF6}\r\nSessionID: 42\r\nAppID: 1\r\nContext: " + ctxt + "\r\n\r\n"
	want := "INVITE MSNMSGR:bob@example.com MSNSLP/1.0\r\n" +
		"To: <msnmsgr:bob@example.com>\r\n" +
		"From: <msnmsgr:alice@example.com>\r\n" +
		"Via: MSNSLP/1.0/TLP ;branch={AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}\r\n" +
		"CSeq: 0 \r\n" +
		"Call-ID: {11111111-2222-3333-4444-555555555555}\r\n" +
		"Max-Forwards: 0\r\n" +
		"Content-Type: application/x-msnmsgr-sessionreqbody\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)+1) + "\r\n\r\n" + body + "\x00"
	if got := string(m.bytes()); got != want {
		t.Fatalf("INVITE\n got %q\nwant %q", got, want)
	}
	back, err := parseObjContext(ctxt)
	if err != nil || back != obj {
		t.Fatalf("parseObjContext = %+v, %v", back, err)
	}
	// libpurple sends the object without its NUL; both are read.
	if back, err := parseObjContext(base64.StdEncoding.EncodeToString([]byte(xml))); err != nil || back != obj {
		t.Fatalf("parseObjContext without NUL = %+v, %v", back, err)
	}
	// The BYE: libpurple send_bye's body is a bare CRLF.
	bye := newSLP(s, "alice@example.com", "bob@example.com", "BYE MSNMSGR:bob@example.com MSNSLP/1.0", 0, "application/x-msnmsgr-sessionclosebody", nil)
	if b := bye.bytes(); !bytes.HasSuffix(b, []byte("Content-Length: 3\r\n\r\n\r\n\x00")) {
		t.Fatalf("BYE = %q", b)
	}
}

// TestP2PFileContexts reads libpurple's version 2 context and rejects
// broken ones.
func TestP2PFileContexts(t *testing.T) {
	v3 := encodeFileContext("résumé.pdf", 300000)
	if len(v3) != 638 {
		t.Fatalf("v3 context is %d bytes", len(v3))
	}
	// libpurple gen_context: version 2, length 574, the same layout.
	v2 := append([]byte(nil), v3[:574]...)
	v2[0], v2[1], v2[4] = 0x3e, 0x02, 2
	for _, c := range [][]byte{v2, v3} {
		name, size, err := decodeFileContext(c)
		if err != nil || name != "résumé.pdf" || size != 300000 {
			t.Fatalf("decodeFileContext = %q, %d, %v", name, size, err)
		}
	}
	for name, c := range map[string][]byte{
		"short":           v3[:500],
		"version 4":       append(append([]byte(nil), v3[:4]...), append([]byte{4, 0, 0, 0}, v3[8:]...)...),
		"v2 length 600":   append([]byte{0x58, 0x02, 0, 0}, v2[4:]...),
		"v3 past its end": append([]byte{0xff, 0x02, 0, 0}, v3[4:]...),
		"empty name":      append(append([]byte(nil), v3[:20]...), make([]byte, 618)...),
	} {
		if _, _, err := decodeFileContext(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzPeerSLP(f *testing.F) {
	f.Add([]byte(capInvite))
	f.Add([]byte(capDecline[48 : len(capDecline)-4]))
	f.Add([]byte("BYE MSNMSGR:a@b MSNSLP/1.0\r\nTo: <msnmsgr:a@b>\r\n\r\n\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseSLP(b)
		if err != nil {
			return
		}
		again, err := parseSLP(m.bytes())
		if err != nil {
			t.Fatalf("re-parsing our rendering of %q: %v", b, err)
		}
		if again.StartLine != m.StartLine || len(again.Body) != len(m.Body) {
			t.Fatalf("round trip changed %+v to %+v", m, again)
		}
		m.status()
		m.method()
	})
}

func FuzzPeerFileContext(f *testing.F) {
	f.Add(encodeFileContext("a.txt", 0))
	f.Add(encodeFileContext("x", 1<<40)[:574])
	f.Fuzz(func(t *testing.T, b []byte) {
		name, size, err := decodeFileContext(b)
		if err != nil {
			return
		}
		n2, s2, err := decodeFileContext(encodeFileContext(name, size))
		if err != nil || s2 != size || (n2 != name && len([]rune(name)) < 200) {
			t.Fatalf("round trip of %q %d: %q %d %v", name, size, n2, s2, err)
		}
	})
}

func FuzzPeerP2P(f *testing.F) {
	f.Add([]byte(capDecline))
	f.Add([]byte(capInviteAck))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, data, appID, err := decodeP2P(b)
		if err != nil {
			return
		}
		if got := encodeP2P(h, data, appID); !bytes.Equal(got, b) {
			t.Fatalf("round trip changed %x to %x", b, got)
		}
	})
}
