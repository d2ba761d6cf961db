package msnp

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// fuzzSep splits one fuzz input into the packets a hostile contact sends.
var fuzzSep = []byte("\xfe\xfd\xfc")

// FuzzP2PInput feeds whatever a contact may send through a switchboard
// into the client's P2P layer (the link's handler: packet parsing, MSNSLP
// reassembly and parsing, session set-up, data, acks, BYE), several
// packets in a row, so that state carried from one packet to the next is
// exercised too. The client is not connected: what it answers fails to
// send, which is a path of its own.
func FuzzP2PInput(f *testing.F) {
	slp := func(m *SLPMessage) []byte {
		b := m.Bytes()
		return AppendP2P(nil, P2PHeader{Identifier: 7, TotalSize: uint64(len(b)), MessageLength: uint32(len(b))}, b, P2PAppSLP)
	}
	invite := func(guid string, app uint32, ctxt []byte) []byte {
		return slp(&SLPMessage{Method: "INVITE", Target: "me@example.com", To: "me@example.com", From: "peer@example.com",
			Branch: "{11111111-1111-1111-1111-111111111111}", CallID: "{22222222-2222-2222-2222-222222222222}", MaxForwards: 0,
			ContentType: SLPSessionRequest, Body: []MIMEHeader{{Name: "EUF-GUID", Value: guid}, {Name: "SessionID", Value: "99"},
				{Name: "AppID", Value: string(rune('0' + app))}, {Name: "Context", Value: base64.StdEncoding.EncodeToString(ctxt)}}})
	}
	file := invite(EUFGUIDFile, P2PAppFile, fileContext("a.txt", 5))
	data := AppendP2P(nil, P2PHeader{SessionID: 99, Identifier: 8, TotalSize: 5, MessageLength: 5, Flags: P2PFlagFileData}, []byte("hello"), P2PAppFile)
	bye := slp(&SLPMessage{Method: "BYE", Target: "me@example.com", To: "me@example.com", From: "peer@example.com",
		Branch: "{33333333-3333-3333-3333-333333333333}", CallID: "{22222222-2222-2222-2222-222222222222}", ContentType: SLPSessionClose})
	f.Add(bytes.Join([][]byte{file, data, bye}, fuzzSep))
	f.Add(invite(EUFGUIDMSNObject, P2PAppMSNObject, []byte(`<msnobj Creator="me@example.com" Size="5" Type="3" Location="0" Friendly="AAA=" SHA1D="x"/>`+"\x00")))
	f.Add(AppendP2P(nil, P2PHeader{Identifier: 9, Flags: P2PFlagAck, AckIdentifier: 8}, nil, P2PAppSLP))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := New(Config{Server: "127.0.0.1:1", LoginURL: "http://127.0.0.1:1/login"}, "me@example.com", "pw", func(Event) {})
		if err != nil {
			t.Fatal(err)
		}
		c.p2p.mu.Lock()
		c.p2p.discardOutput = true
		l := c.linkLocked("peer@example.com")
		c.p2p.mu.Unlock()
		for i, pk := range bytes.Split(in, fuzzSep) {
			if i == 8 {
				break
			}
			l.handle(p2pIn{body: pk, fromName: "Peer"})
		}
		c.Close()
	})
}

// TestP2PPanicCostsOnlyThePacket: a bug that panics on a contact's packet
// drops that packet and is logged; the link goes on with the next one and
// the process lives.
func TestP2PPanicCostsOnlyThePacket(t *testing.T) {
	c, err := New(Config{Server: "127.0.0.1:1", LoginURL: "http://127.0.0.1:1/login"}, "me@example.com", "pw", func(Event) {})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	handled := make(chan string, 2)
	p2pHandleHook = func(pk p2pIn) {
		handled <- string(pk.body)
		if string(pk.body) == "boom" {
			panic("a bug")
		}
	}
	defer func() { p2pHandleHook = nil }()
	c.p2p.mu.Lock()
	c.p2p.discardOutput = true
	l := c.linkLocked("peer@example.com")
	l.in = append(l.in, p2pIn{body: []byte("boom")}, p2pIn{body: []byte("next")})
	l.reading = true
	c.p2p.mu.Unlock()
	l.readLoop() // would panic the test binary without the recover
	if a, b := <-handled, <-handled; a != "boom" || b != "next" {
		t.Fatalf("handled %q then %q", a, b)
	}
}
