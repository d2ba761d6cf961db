package msnp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// sbPeer plays the server side of a switchboard connection from the
// transcripts' lines.
type sbPeer struct {
	t      *testing.T
	conn   net.Conn
	client net.Conn // the other end, for cleanup
	r      *Reader
}

// run plays script on its own goroutine. The test's cleanup closes the
// pipe and waits for the script to end, so no peer outlives its test.
func (p *sbPeer) run(script func()) {
	done := make(chan struct{})
	p.t.Cleanup(func() {
		p.client.Close()
		p.conn.Close()
		<-done
	})
	go func() {
		defer close(done)
		script()
	}()
}

// expect reads one command and checks its line (as Command.String renders
// it, payload length included) and payload.
func (p *sbPeer) expect(line, payload string) {
	p.t.Helper()
	c, err := p.r.ReadCommand()
	if err != nil {
		p.t.Errorf("peer: reading %q: %v", line, err)
		return
	}
	if c.String() != line || string(c.Payload) != payload {
		p.t.Errorf("peer: got %q %q, want %q %q", c.String(), c.Payload, line, payload)
	}
}

func (p *sbPeer) send(s string) {
	p.t.Helper()
	if _, err := io.WriteString(p.conn, s); err != nil {
		p.t.Errorf("peer: writing %q: %v", s, err)
	}
}

// events collects a switchboard's events for the test goroutine.
type events chan SwitchboardEvent

func (e events) next(t *testing.T) SwitchboardEvent {
	t.Helper()
	select {
	case ev := <-e:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
		return nil
	}
}

// pipeSwitchboard returns options whose dialer hands the client one end of
// a pipe, and the peer on the other end.
func pipeSwitchboard(t *testing.T) (*SwitchboardOptions, *sbPeer, events) {
	client, server := net.Pipe()
	ev := make(events, 100)
	opts := &SwitchboardOptions{
		Handler: func(e SwitchboardEvent) { ev <- e },
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != "127.0.0.1:1864" {
				return nil, fmt.Errorf("dialled %q", addr)
			}
			return client, nil
		},
	}
	return opts, &sbPeer{t: t, conn: server, client: client, r: NewReader(server)}, ev
}

const (
	twnHello = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Arial; EF=; CO=0; CS=0; PF=22\r\n\r\nHello Bob via TWN/MSNP12"
	twnHi    = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Arial; EF=; CO=0; CS=0; PF=22\r\n\r\nHi Alice (MSNP12)"
	ssoHello = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Arial; EF=; CO=0; CS=0; PF=22\r\n\r\nHello Bob via SSO/MSNP18"
	ssoHi    = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Arial; EF=; CO=0; CS=0; PF=22\r\n\r\nHi Alice (MSNP18)"
)

// TestDialSwitchboardTWN replays alice's side of twn_msnp12.txt.
func TestDialSwitchboardTWN(t *testing.T) {
	opts, peer, ev := pipeSwitchboard(t)
	peerDone := make(chan struct{})
	peer.run(func() {
		defer close(peerDone)
		peer.expect("USR 1 alice@example.com 1e5ce94cf9d74584250f", "")
		peer.send("USR 1 OK alice@example.com alice@example.com\r\n")
		peer.expect("CAL 2 bob@example.com", "")
		peer.send("CAL 2 RINGING d083519687cfdd658f7914e8b1fdf76\r\n")
		peer.send("JOI bob@example.com bob@example.com 0\r\n")
		peer.expect("MSG 3 N 137", twnHello)
		peer.send(fmt.Sprintf("MSG bob@example.com bob@example.com %d\r\n%s", len(twnHi), twnHi))
		peer.expect("OUT", "")
		peer.conn.Close()
	})
	ctx := context.Background()
	sb, err := DialSwitchboard(ctx, "127.0.0.1:1864", "alice@example.com", "1e5ce94cf9d74584250f", opts)
	if err != nil {
		t.Fatal(err)
	}
	if sb.FriendlyName() != "alice@example.com" {
		t.Errorf("FriendlyName = %q", sb.FriendlyName())
	}
	if _, err := sb.SendMessage(ctx, AckOnFailure, []byte(twnHello)); !errors.Is(err, ErrSwitchboardEmpty) {
		t.Errorf("send before anyone joined: %v", err)
	}
	sid, err := sb.Call(ctx, "bob@example.com")
	if err != nil || sid != "d083519687cfdd658f7914e8b1fdf76" || sb.SessionID() != sid {
		t.Fatalf("Call = %q, %v", sid, err)
	}
	j, ok := ev.next(t).(SBJoined)
	if !ok || !j.New || j.Participant.Passport != "bob@example.com" || j.Participant.Capabilities != "0" || j.Participant.Self {
		t.Fatalf("join event: %#v", j)
	}
	if trid, err := sb.SendMessage(ctx, AckOnFailure, []byte(twnHello)); err != nil || trid != 3 {
		t.Fatalf("SendMessage N = %d, %v", trid, err)
	}
	m, ok := ev.next(t).(SBMessage)
	if !ok || m.From != "bob@example.com" || string(m.Message.Bytes()) != twnHi {
		t.Fatalf("message event: %#v", m)
	}
	if tm, ok := m.Content.(*TextMessage); !ok || tm.Text != "Hi Alice (MSNP12)" {
		t.Errorf("content: %#v", m.Content)
	}
	sb.Close()
	<-peerDone
	<-sb.Done()
	if c, ok := ev.next(t).(SBClosed); !ok || c.Err != nil || sb.Err() != nil {
		t.Errorf("closed event: %#v, Err %v", c, sb.Err())
	}
	if _, err := sb.SendMessage(ctx, AckAlways, []byte(twnHello)); err == nil {
		t.Error("send after Close succeeded")
	}
}

// TestAnswerSwitchboardSSO replays bob's side of sso_msnp18.txt, with the
// endpoint-qualified roster, then alice's endpoints leaving.
func TestAnswerSwitchboardSSO(t *testing.T) {
	rosterChecked := make(chan struct{})
	var closeRoster sync.Once
	defer closeRoster.Do(func() { close(rosterChecked) }) // when a check fails
	opts, peer, ev := pipeSwitchboard(t)
	peerDone := make(chan struct{})
	peer.run(func() {
		defer close(peerDone)
		peer.expect("ANS 1 bob@example.com;{0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D} a429b802941501681637 3d65cebe2c180b183d6898b0df8c9ed", "")
		peer.send("IRO 1 1 2 alice@example.com;{f52973b6-c926-4bad-9ba8-7c1e840e4ab0} Alice 2788999212:48\r\n")
		peer.send("IRO 1 2 2 alice@example.com Alice 2788999212:48\r\n")
		peer.send("ANS 1 OK\r\n")
		<-rosterChecked
		peer.send("JOI bob@example.com Bob 2788999212:48\r\n")
		peer.send(fmt.Sprintf("MSG alice@example.com Alice %d\r\n%s", len(ssoHello), ssoHello))
		peer.expect(fmt.Sprintf("MSG 2 A %d", len(ssoHi)), ssoHi)
		peer.send("ACK 2\r\n")
		peer.expect("MSG 3 A 5", "MIME-")
		peer.send("NAK 3\r\n")
		peer.send("BYE alice@example.com;{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}\r\n")
		peer.send("BYE alice@example.com\r\n")
		peer.expect("OUT", "")
		peer.conn.Close()
	})
	ctx := context.Background()
	sb, err := AnswerSwitchboard(ctx, "127.0.0.1:1864", "bob@example.com;{0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D}",
		"a429b802941501681637", "3d65cebe2c180b183d6898b0df8c9ed", opts)
	if err != nil {
		t.Fatal(err)
	}
	ps := sb.Participants()
	if len(ps) != 1 || ps[0].Passport != "alice@example.com" || ps[0].FriendlyName != "Alice" ||
		len(ps[0].Endpoints) != 1 || ps[0].Endpoints[0] != "{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}" || sb.SessionID() != "3d65cebe2c180b183d6898b0df8c9ed" {
		t.Fatalf("roster after ANS: %+v", ps)
	}
	closeRoster.Do(func() { close(rosterChecked) })
	j, ok := ev.next(t).(SBJoined)
	if !ok || !j.Participant.Self || !j.New {
		t.Fatalf("own endpoint's join: %#v", j)
	}
	m, ok := ev.next(t).(SBMessage)
	if !ok || m.From != "alice@example.com" || m.FriendlyName != "Alice" {
		t.Fatalf("message: %#v", m)
	}
	if trid, err := sb.SendMessage(ctx, AckAlways, []byte(ssoHi)); err != nil || trid != 2 {
		t.Fatalf("SendMessage A = %d, %v (want accepted)", trid, err)
	}
	if _, err := sb.SendMessage(ctx, AckAlways, []byte("MIME-")); !errors.Is(err, ErrNotAccepted) {
		t.Fatalf("NAKed send: %v", err)
	}
	l, ok := ev.next(t).(SBLeft)
	if !ok || l.Gone || l.Endpoint != "{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}" {
		t.Fatalf("endpoint leave: %#v", l)
	}
	l, ok = ev.next(t).(SBLeft)
	if !ok || !l.Gone || l.Passport != "alice@example.com" {
		t.Fatalf("passport leave: %#v", l)
	}
	if sb.HasOthers() {
		t.Error("HasOthers with only our own endpoint left")
	}
	if _, err := sb.SendMessage(ctx, AckAlways, []byte(ssoHi)); !errors.Is(err, ErrSwitchboardEmpty) {
		t.Errorf("send to an empty switchboard: %v", err)
	}
	sb.Close()
	<-peerDone
	<-sb.Done()
}

func TestSwitchboardCallErrors(t *testing.T) {
	opts, peer, _ := pipeSwitchboard(t)
	peer.run(func() {
		peer.expect("USR 1 me@x c", "")
		peer.send("USR 1 OK me@x Me\r\n")
		peer.expect("CAL 2 nobody@x", "")
		peer.send("217 2\r\n")
		peer.expect("CAL 3 bad", "")
		peer.send("208 3\r\n")
		peer.expect("CAL 4 bob@x", "")
		peer.send("215 4\r\n")
		peer.expect("OUT", "")
	})
	ctx := context.Background()
	sb, err := DialSwitchboard(ctx, "127.0.0.1:1864", "me@x", "c", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for _, c := range []struct {
		who  string
		code ErrorCode
	}{{"nobody@x", ErrUserNotOnline}, {"bad", ErrInvalidPrincipal}, {"bob@x", ErrAlreadyOnList}} {
		if _, err := sb.Call(ctx, c.who); CodeOf(err) != c.code {
			t.Errorf("Call(%s) = %v, want code %d", c.who, err, c.code)
		}
	}
	if _, err := sb.Call(ctx, "a b"); err == nil {
		t.Error("Call with a blank in the passport was sent")
	}
}

func TestSwitchboardLoginRefused(t *testing.T) {
	opts, peer, _ := pipeSwitchboard(t)
	peer.run(func() {
		peer.expect("USR 1 me@x stale", "")
		peer.send("911 1\r\n")
	})
	_, err := DialSwitchboard(context.Background(), "127.0.0.1:1864", "me@x", "stale", opts)
	if CodeOf(err) != ErrAuthFailed {
		t.Errorf("err = %v, want 911", err)
	}
}

func TestSwitchboardHandshakeCancelled(t *testing.T) {
	opts, peer, _ := pipeSwitchboard(t)
	ctx, cancel := context.WithCancel(context.Background())
	peer.run(func() {
		peer.expect("USR 1 me@x c", "")
		cancel() // the server never answers
	})
	_, err := DialSwitchboard(ctx, "127.0.0.1:1864", "me@x", "c", opts)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestSwitchboardRefusesBadSends(t *testing.T) {
	opts, peer, ev := pipeSwitchboard(t)
	peer.run(func() {
		peer.expect("USR 1 me@x c", "")
		peer.send("USR 1 OK me@x Me\r\nJOI bob@x Bob 0\r\n")
		// The refused sends never reach the wire; this is the next one.
		peer.expect("MSG 2 A 3", "abc")
		peer.conn.Close()
	})
	ctx := context.Background()
	sb, err := DialSwitchboard(ctx, "127.0.0.1:1864", "me@x", "c", opts)
	if err != nil {
		t.Fatal(err)
	}
	ev.next(t) // JOI
	if _, err := sb.SendMessage(ctx, AckAlways, make([]byte, SwitchboardMaxMessage+1)); err == nil {
		t.Error("oversized payload was sent")
	}
	p2p := "MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: bob@x\r\n\r\n"
	if _, err := sb.SendMessage(ctx, AckAlways, []byte(p2p)); err == nil {
		t.Error("P2P with ack A was sent")
	}
	if _, err := sb.SendMessage(ctx, AckMode('S'), []byte("x")); err == nil {
		t.Error("ack mode S was sent")
	}
	// Closing underneath a waiting send ends it.
	if _, err := sb.SendMessage(ctx, AckAlways, []byte("abc")); !errors.Is(err, ErrSwitchboardClosed) {
		t.Errorf("send on a dropped connection: %v", err)
	}
	<-sb.Done()
	if !errors.Is(sb.Err(), ErrSwitchboardClosed) {
		t.Errorf("Err = %v", sb.Err())
	}
}

// TestSwitchboardChunksAndEmoticons checks that the receive path
// reassembles chunks and attaches a declaration to the following text.
func TestSwitchboardChunksAndEmoticons(t *testing.T) {
	opts, peer, ev := pipeSwitchboard(t)
	msg := func(p string) string { return fmt.Sprintf("MSG bob@x Bob %d\r\n%s", len(p), p) }
	peer.run(func() {
		peer.expect("USR 1 me@x c", "")
		peer.send("USR 1 OK me@x Me\r\nJOI bob@x Bob 0\r\n")
		peer.send(msg("MIME-Version: 1.0\r\nContent-Type: text/x-mms-emoticon\r\n\r\n:cat:\t<msnobj Type=\"2\"/>\t"))
		peer.send(msg("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nMessage-ID: {1}\r\nChunks: 2\r\n\r\nI like "))
		peer.send(msg("Message-ID: {1}\r\nChunk: 1\r\n\r\n:cat: a lot"))
		peer.send(msg("MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinvite\r\n\r\nInvitation-Command: INVITE\r\n"))
		peer.send("MSG bob@x Bob 4\r\nnope")
		peer.expect("OUT", "")
	})
	sb, err := DialSwitchboard(context.Background(), "127.0.0.1:1864", "me@x", "c", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ev.next(t) // JOI
	m, ok := ev.next(t).(SBMessage)
	if !ok {
		t.Fatalf("got %#v", m)
	}
	tm, ok := m.Content.(*TextMessage)
	if !ok || tm.Text != "I like :cat: a lot" || len(tm.Emoticons) != 1 || tm.Emoticons[0].Shortcut != ":cat:" {
		t.Fatalf("text: %#v", m.Content)
	}
	m, ok = ev.next(t).(SBMessage)
	if u, isU := m.Content.(*UnsupportedContent); !ok || !isU || u.ContentType != "text/x-msmsgsinvite" {
		t.Fatalf("unsupported: %#v", m)
	}
	if e, ok := ev.next(t).(SBServerError); !ok || !errors.Is(e.Err, ErrMalformedMessage) {
		t.Fatalf("garbage payload: %#v", e)
	}
	if !strings.Contains(fmt.Sprint(sb.Participants()), "bob@x") {
		t.Errorf("participants: %+v", sb.Participants())
	}
}

func TestSwitchboardNAKOfAckOnFailure(t *testing.T) {
	opts, peer, ev := pipeSwitchboard(t)
	peer.run(func() {
		peer.expect("USR 1 me@x c", "")
		peer.send("USR 1 OK me@x Me\r\nJOI bob@x Bob 0\r\n")
		peer.expect("MSG 2 N 3", "abc")
		peer.send("NAK 2\r\n")
		peer.expect("MSG 3 U 3", "xyz")
		peer.send("500 9\r\n")
		peer.expect("OUT", "")
	})
	ctx := context.Background()
	sb, err := DialSwitchboard(ctx, "127.0.0.1:1864", "me@x", "c", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ev.next(t) // JOI
	trid, err := sb.SendMessage(ctx, AckOnFailure, []byte("abc"))
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := ev.next(t).(SBNotAccepted); !ok || n.TrID != trid {
		t.Fatalf("NAK event: %#v, want TrID %d", n, trid)
	}
	if _, err := sb.SendMessage(ctx, AckNone, []byte("xyz")); err != nil {
		t.Fatal(err)
	}
	if e, ok := ev.next(t).(SBServerError); !ok || CodeOf(e.Err) != ErrInternal {
		t.Fatalf("unclaimed error: %#v", e)
	}
}

func FuzzSwitchboardServer(f *testing.F) {
	f.Add([]byte("JOI bob@x Bob 0\r\nMSG bob@x Bob 5\r\nhello"))
	f.Add([]byte("IRO 1 1 1 a;{g} A\r\nBYE a;{g}\r\nBYE a 1\r\nACK 9\r\nNAK 3\r\n911 2\r\n"))
	f.Add([]byte("MSG b B 40\r\nMessage-ID: {1}\r\nChunks: 2\r\n\r\nab\tcd\t"))
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		defer server.Close()
		go func() {
			r := NewReader(server)
			r.ReadCommand()
			server.Write(append([]byte("USR 1 OK me@x Me\r\n"), data...))
			server.Close()
		}()
		n := 0
		sb, err := DialSwitchboard(context.Background(), "x", "me@x", "c", &SwitchboardOptions{
			Handler:     func(SwitchboardEvent) { n++ },
			DialContext: func(context.Context, string, string) (net.Conn, error) { return client, nil },
		})
		if err != nil {
			return
		}
		<-sb.Done()
		if n == 0 {
			t.Fatal("no SBClosed event")
		}
		if len(sb.Participants()) > maxParticipants {
			t.Fatal("roster over its bound")
		}
	})
}

// TestSwitchboardLoopback goes through the default dialer and a real TCP
// connection, where OUT is followed by the server closing the socket.
func TestSwitchboardLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peerDone := make(chan struct{})
	go func() {
		defer close(peerDone)
		conn, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		peer := &sbPeer{t: t, conn: conn, r: NewReader(conn)}
		peer.expect("USR 1 alice@example.com;{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0} 6afb7935d805c5a05a38", "")
		peer.send("USR 1 OK alice@example.com;{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0} Alice\r\n")
		peer.expect("CAL 2 bob@example.com", "")
		peer.send("CAL 2 RINGING 3d65cebe2c180b183d6898b0df8c9ed\r\n")
		peer.send("JOI bob@example.com;{0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d} Bob 2788999212:48\r\n")
		peer.expect(fmt.Sprintf("MSG 3 N %d", len(ssoHello)), ssoHello)
		peer.send("JOI bob@example.com Bob 2788999212:48\r\n")
		peer.expect("OUT", "")
	}()
	ev := make(events, 10)
	ctx := context.Background()
	sb, err := DialSwitchboard(ctx, ln.Addr().String(), "alice@example.com;{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}", "6afb7935d805c5a05a38",
		&SwitchboardOptions{Handler: func(e SwitchboardEvent) { ev <- e }})
	if err != nil {
		t.Fatal(err)
	}
	if sb.FriendlyName() != "Alice" {
		t.Errorf("FriendlyName = %q", sb.FriendlyName())
	}
	if _, err := sb.Call(ctx, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if j, ok := ev.next(t).(SBJoined); !ok || !j.New || j.Endpoint != "{0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}" {
		t.Fatalf("first join: %#v", j)
	}
	if _, err := sb.SendMessage(ctx, AckOnFailure, []byte(ssoHello)); err != nil {
		t.Fatal(err)
	}
	if j, ok := ev.next(t).(SBJoined); !ok || j.New || j.Participant.Passport != "bob@example.com" || len(j.Participant.Endpoints) != 1 {
		t.Fatalf("bare join folded into the same participant: %#v", j)
	}
	if ps := sb.Participants(); len(ps) != 1 {
		t.Errorf("participants: %+v", ps)
	}
	sb.Close()
	<-peerDone
	<-sb.Done()
	if sb.Err() != nil {
		t.Errorf("Err after Close = %v", sb.Err())
	}
}

// TestSwitchboardDropsOwnEcho: Escargot relays a message to every
// connection but the sender's and names the bare account, so another
// endpoint's message comes as "MSG me@x" (sso_msnp18.txt's shape). A
// server that named endpoints and echoed the sender's own message back
// would make it look "sent elsewhere": a message naming this very
// endpoint is dropped, one naming another endpoint is kept.
func TestSwitchboardDropsOwnEcho(t *testing.T) {
	opts, peer, ev := pipeSwitchboard(t)
	peerDone := make(chan struct{})
	echo := fmt.Sprintf("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n%s", "echo")
	other := fmt.Sprintf("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n%s", "elsewhere")
	peer.run(func() {
		defer close(peerDone)
		peer.expect("USR 1 alice@example.com;{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0} 6afb7935d805c5a05a38", "")
		peer.send("USR 1 OK alice@example.com;{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0} Alice\r\n")
		peer.send(fmt.Sprintf("MSG alice@example.com;{f52973b6-c926-4bad-9ba8-7c1e840e4ab0} Alice %d\r\n%s", len(echo), echo))
		peer.send(fmt.Sprintf("MSG alice@example.com;{a2a2a2a2-0000-4000-8000-000000000002} Alice %d\r\n%s", len(other), other))
		peer.send(fmt.Sprintf("MSG alice@example.com Alice %d\r\n%s", len(other), other))
		peer.expect("OUT", "")
		peer.conn.Close()
	})
	sb, err := DialSwitchboard(context.Background(), "127.0.0.1:1864", "alice@example.com;{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}", "6afb7935d805c5a05a38", opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, wantEndpoint := range []string{"{a2a2a2a2-0000-4000-8000-000000000002}", ""} {
		m, ok := ev.next(t).(SBMessage)
		if !ok || m.From != "alice@example.com" || m.FromEndpoint != wantEndpoint || string(m.Message.Body) != "elsewhere" {
			t.Fatalf("message: %#v", m)
		}
	}
	sb.Close()
	<-peerDone
	<-sb.Done()
	if c, ok := ev.next(t).(SBClosed); !ok {
		t.Fatalf("after the messages: %#v", c)
	}
}

// TestSwitchboardCloseReadsWhatWasInFlight: a message the server relayed
// before it read our OUT was accepted for us; Close keeps reading until
// the server hangs up, so it still reaches the handler.
func TestSwitchboardCloseReadsWhatWasInFlight(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		peer := &sbPeer{t: t, conn: conn, r: NewReader(conn)}
		peer.expect("USR 1 alice@example.com cookie", "")
		peer.send("USR 1 OK alice@example.com Alice\r\n")
		peer.send("JOI bob@example.com Bob\r\n")
		peer.expect("OUT", "")
		// In flight when the OUT arrived:
		peer.send(fmt.Sprintf("MSG bob@example.com Bob %d\r\n%s", len(twnHello), twnHello))
	}()
	ev := make(events, 10)
	sb, err := DialSwitchboard(context.Background(), ln.Addr().String(), "alice@example.com", "cookie",
		&SwitchboardOptions{Handler: func(e SwitchboardEvent) { ev <- e }})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ev.next(t).(SBJoined); !ok {
		t.Fatal("no join")
	}
	sb.Close()
	for {
		switch e := ev.next(t).(type) {
		case SBMessage:
			return // the in-flight message was read
		case SBClosed:
			t.Fatalf("closed without the in-flight message (%v)", e.Err)
		}
	}
}
