package msnp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AckMode is the acknowledgement a sender asks for in "MSG trid <mode> len"
// (FACTS.md §6).
type AckMode byte

const (
	// AckNone ('U') gets no reply ever: typing notices.
	AckNone AckMode = 'U'
	// AckOnFailure ('N') gets a NAK only if the server refuses the message.
	AckOnFailure AckMode = 'N'
	// AckAlways ('A') gets ACK or NAK: text.
	AckAlways AckMode = 'A'
	// AckData ('D') is AckAlways for P2P data, which requires it.
	AckData AckMode = 'D'
)

func (a AckMode) String() string { return string(rune(a)) }

func (a AckMode) valid() bool {
	return a == AckNone || a == AckOnFailure || a == AckAlways || a == AckData
}

// Errors from the switchboard connection.
var (
	// ErrNotAccepted means the server answered a message with NAK.
	ErrNotAccepted = errors.New("msnp: switchboard did not accept the message")
	// ErrSwitchboardEmpty means nobody but this account's own endpoints is
	// in the switchboard: the server would accept and drop the message.
	ErrSwitchboardEmpty = errors.New("msnp: nobody else is in the switchboard")
	// ErrSwitchboardClosed means the connection is gone.
	ErrSwitchboardClosed = errors.New("msnp: switchboard closed")
)

// SwitchboardOptions are the optional parts of a switchboard connection.
type SwitchboardOptions struct {
	// Handler receives every event, in order, on the connection's reader
	// goroutine. It must return promptly and must not wait for this
	// switchboard's replies (SendMessage with AckAlways, Call): those are
	// read by the goroutine the handler runs on. Hand such work to another
	// goroutine. Nil drops events.
	Handler func(SwitchboardEvent)
	// DialContext replaces net.Dialer.DialContext, for tests and proxies.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// SwitchboardParticipant is a user in the switchboard. On MSNP16+ each of
// a user's endpoints joins separately ("email;{guid}"); they are folded
// into one participant per passport.
type SwitchboardParticipant struct {
	Passport     string   // as the server spelled it, without ";{guid}"
	FriendlyName string   // URL-decoded
	Capabilities string   // raw client-id token, e.g. "2788999212:48"
	Endpoints    []string // endpoint GUIDs ("{...}") seen, lower-cased
	Self         bool     // another endpoint of this connection's own account
}

// SwitchboardEvent is one of SBJoined, SBLeft, SBMessage, SBNotAccepted,
// SBServerError or SBClosed.
type SwitchboardEvent interface{ isSwitchboardEvent() }

// SBJoined reports a JOI: a user, or another endpoint of one, joined.
type SBJoined struct {
	Participant SwitchboardParticipant // after the join
	Endpoint    string                 // the endpoint GUID that joined, or ""
	New         bool                   // the passport was not in the switchboard before
}

// SBLeft reports a BYE.
type SBLeft struct {
	Passport string
	Endpoint string // the endpoint GUID that left, or ""
	// Gone is true when the passport has no endpoint left in the switchboard.
	Gone bool
	// IdleTimeout is real MSN's "BYE email 1".
	IdleTimeout bool
}

// SBMessage is a received MSG, reassembled when it was chunked. Content is
// Message.Classify(), with the sender's preceding custom-emoticon
// declaration attached to a TextMessage.
type SBMessage struct {
	From         string // passport, without ";{guid}"
	FromEndpoint string // endpoint GUID, when the server gave one
	FriendlyName string // URL-decoded
	Message      *Message
	Content      MessageContent
}

// SBNotAccepted is a NAK for a message sent with AckOnFailure.
type SBNotAccepted struct{ TrID uint32 }

// SBServerError is an error reply, or an undecodable payload, that no
// waiting call claimed.
type SBServerError struct{ Err error }

// SBClosed is the last event: the connection ended. Err is nil after Close.
type SBClosed struct{ Err error }

func (SBJoined) isSwitchboardEvent()      {}
func (SBLeft) isSwitchboardEvent()        {}
func (SBMessage) isSwitchboardEvent()     {}
func (SBNotAccepted) isSwitchboardEvent() {}
func (SBServerError) isSwitchboardEvent() {}
func (SBClosed) isSwitchboardEvent()      {}

// Switchboard is one client connection to a switchboard server: the
// protocol, not the chat session policy (when to open, re-invite, or give
// up). It is safe for concurrent use.
type Switchboard struct {
	conn    net.Conn
	r       *Reader
	w       *Writer
	handler func(SwitchboardEvent)
	self    string // our passport, bare and lower-cased
	selfEP  string // our endpoint GUID ("{...}", lower-cased) on MSNP16+, or ""

	trid atomic.Uint32

	mu           sync.Mutex
	selfName     string
	sessionID    string
	participants map[string]*SwitchboardParticipant // by lower-cased passport
	order        []string                           // join order of keys
	pending      map[uint32]chan *Command
	closing      bool
	err          error // why the connection ended

	// Owned by the reader goroutine.
	chunks    ChunkAssembler
	emoticons map[string][]CustomEmoticon

	done chan struct{}
}

// DialSwitchboard connects to the switchboard an XFR reply named and logs
// in with "USR trid passport cookie". On MSNP16+ passport carries the
// machine GUID: "me@x;{guid}".
func DialSwitchboard(ctx context.Context, addr, passport, cookie string, opts *SwitchboardOptions) (*Switchboard, error) {
	return openSwitchboard(ctx, addr, passport, opts, NewCommand("USR", 1, passport, cookie), "")
}

// AnswerSwitchboard joins the switchboard an RNG invited to with "ANS trid
// passport cookie sessionID" and collects its roster (IRO) until the
// server's "ANS trid OK". The roster is in Participants when it returns;
// it does not come as SBJoined events.
func AnswerSwitchboard(ctx context.Context, addr, passport, cookie, sessionID string, opts *SwitchboardOptions) (*Switchboard, error) {
	return openSwitchboard(ctx, addr, passport, opts, NewCommand("ANS", 1, passport, cookie, sessionID), sessionID)
}

func openSwitchboard(ctx context.Context, addr, passport string, opts *SwitchboardOptions, login *Command, sessionID string) (*Switchboard, error) {
	if opts == nil {
		opts = &SwitchboardOptions{}
	}
	dial := opts.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("msnp: switchboard %s: %w", addr, err)
	}
	s := &Switchboard{
		conn:         conn,
		r:            NewReader(conn),
		w:            NewWriter(conn),
		handler:      opts.Handler,
		self:         strings.ToLower(splitEndpoint(passport)),
		selfEP:       endpointOf(passport),
		sessionID:    sessionID,
		participants: map[string]*SwitchboardParticipant{},
		pending:      map[uint32]chan *Command{},
		emoticons:    map[string][]CustomEmoticon{},
		done:         make(chan struct{}),
	}
	s.trid.Store(1)
	// The context bounds the handshake only: cancelling it unblocks the
	// reads below by expiring the connection's deadline.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err = s.handshake(login)
	if !stop() || ctx.Err() != nil {
		if err == nil {
			err = ctx.Err()
		} else {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("msnp: switchboard %s: %s: %w", addr, login.Name, err)
	}
	conn.SetDeadline(time.Time{})
	go s.readLoop()
	return s, nil
}

func (s *Switchboard) handshake(login *Command) error {
	if err := s.w.WriteCommand(login); err != nil {
		return err
	}
	for {
		c, err := s.r.ReadCommand()
		if err != nil {
			return err
		}
		if id, ok := c.TrID(); ok && id == 1 && (c.Name == login.Name || c.IsError()) {
			if err := c.Err(); err != nil {
				return err
			}
			if c.Arg(1) != "OK" {
				return &ProtocolError{Line: cut(c.String()), Err: errors.New("unexpected login reply")}
			}
			if c.Name == "USR" {
				s.selfName = validText(Unescape(c.Arg(3)))
			}
			return nil
		}
		if c.Name == "IRO" {
			// IRO trid index total passport friendly [caps]
			s.join(c.Arg(3), c.Arg(4), c.Arg(5))
			continue
		}
		s.dispatch(c)
	}
}

// nextTrID returns the next transaction id; 1 was the login's.
func (s *Switchboard) nextTrID() uint32 { return s.trid.Add(1) }

// SessionID is the switchboard session id: RNG's, or CAL's RINGING reply.
func (s *Switchboard) SessionID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionID
}

// FriendlyName is this account's name as the USR reply gave it (empty for a
// switchboard that was answered).
func (s *Switchboard) FriendlyName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.selfName
}

// Participants returns the users in the switchboard, in join order, this
// account's other endpoints included (marked Self).
func (s *Switchboard) Participants() []SwitchboardParticipant {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SwitchboardParticipant, 0, len(s.order))
	for _, k := range s.order {
		p := *s.participants[k]
		p.Endpoints = append([]string(nil), p.Endpoints...)
		out = append(out, p)
	}
	return out
}

// HasOthers reports whether anyone but this account is in the switchboard.
func (s *Switchboard) HasOthers() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.participants {
		if !p.Self {
			return true
		}
	}
	return false
}

// Call invites passport with "CAL" and returns the session id from the
// "RINGING" reply. The invitee's JOI comes later as an SBJoined event.
// Refusals are *ServerError: 217 (offline or unknown), 208 (invalid
// address), 215 (already in the switchboard); use CodeOf.
func (s *Switchboard) Call(ctx context.Context, passport string) (string, error) {
	if passport == "" || strings.ContainsAny(passport, " \t\r\n") {
		return "", fmt.Errorf("msnp: CAL: invalid passport %q", passport)
	}
	trid := s.nextTrID()
	reply, err := s.request(ctx, NewCommand("CAL", trid, passport))
	if err != nil {
		return "", fmt.Errorf("msnp: CAL %s: %w", passport, err)
	}
	if reply.Name != "CAL" || reply.Arg(1) != "RINGING" {
		return "", fmt.Errorf("msnp: CAL %s: unexpected reply %q", passport, cut(reply.String()))
	}
	s.mu.Lock()
	if s.sessionID == "" {
		s.sessionID = reply.Arg(2)
	}
	s.mu.Unlock()
	return reply.Arg(2), nil
}

// SendMessage sends payload with the given ack mode. For AckAlways and
// AckData it waits for the server's verdict: nil means the server
// accepted the message (Escargot accepts unconditionally, so this is not
// proof of delivery), ErrNotAccepted a NAK. For AckNone and AckOnFailure
// it returns once the message is written; a later NAK of an AckOnFailure
// message arrives as SBNotAccepted with the returned TrID.
//
// It refuses, without sending, what would make the server close the
// switchboard (a payload over SwitchboardMaxMessage, P2P without AckData)
// and sending into a switchboard nobody else is in (ErrSwitchboardEmpty).
func (s *Switchboard) SendMessage(ctx context.Context, ack AckMode, payload []byte) (uint32, error) {
	if !ack.valid() {
		return 0, fmt.Errorf("msnp: MSG: invalid ack mode %q", byte(ack))
	}
	if len(payload) > SwitchboardMaxMessage {
		return 0, fmt.Errorf("msnp: MSG: %d-byte payload over the switchboard's %d-byte limit", len(payload), SwitchboardMaxMessage)
	}
	if ack != AckData {
		if m, err := ParseMessage(payload); err == nil && m.ContentType() == ContentTypeP2P {
			return 0, fmt.Errorf("msnp: MSG: P2P data must be sent with ack D, not %v", ack)
		}
	}
	if !s.HasOthers() {
		return 0, ErrSwitchboardEmpty
	}
	trid := s.nextTrID()
	c := NewCommand("MSG", trid, ack.String())
	c.Payload = payload
	if c.Payload == nil {
		c.Payload = []byte{}
	}
	if ack == AckNone || ack == AckOnFailure {
		if err := s.write(c); err != nil {
			return trid, err
		}
		return trid, nil
	}
	reply, err := s.request(ctx, c)
	if err != nil {
		return trid, fmt.Errorf("msnp: MSG %d: %w", trid, err)
	}
	switch reply.Name {
	case "ACK":
		return trid, nil
	case "NAK":
		return trid, ErrNotAccepted
	}
	return trid, fmt.Errorf("msnp: MSG %d: unexpected reply %q", trid, cut(reply.String()))
}

// sendPipelined writes a P2P payload with ack 'D' and returns at once,
// with a function that waits for the server's verdict (nil on ACK,
// ErrNotAccepted on NAK). Calls from one goroutine are written in order, so
// several packets may be in flight (the P2P layer's window). The refusals
// of SendMessage apply; ErrSwitchboardEmpty means nothing was written.
func (s *Switchboard) sendPipelined(payload []byte) (func(context.Context) error, error) {
	if len(payload) > SwitchboardMaxMessage {
		return nil, fmt.Errorf("msnp: MSG: %d-byte payload over the switchboard's %d-byte limit", len(payload), SwitchboardMaxMessage)
	}
	if !s.HasOthers() {
		return nil, ErrSwitchboardEmpty
	}
	trid := s.nextTrID()
	c := NewCommand("MSG", trid, AckData.String())
	c.Payload = payload
	ch := make(chan *Command, 1)
	s.mu.Lock()
	if s.closing || s.pending == nil {
		s.mu.Unlock()
		return nil, ErrSwitchboardClosed
	}
	s.pending[trid] = ch
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		if s.pending != nil {
			delete(s.pending, trid)
		}
		s.mu.Unlock()
	}
	if err := s.write(c); err != nil {
		forget()
		return nil, err
	}
	return func(ctx context.Context) error {
		defer forget()
		select {
		case reply, ok := <-ch:
			switch {
			case !ok:
				return ErrSwitchboardClosed
			case reply.Name == "ACK":
				return nil
			case reply.Name == "NAK":
				return ErrNotAccepted
			}
			if err := reply.Err(); err != nil {
				return err
			}
			return fmt.Errorf("msnp: MSG %d: unexpected reply %q", trid, cut(reply.String()))
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

// Close leaves the switchboard with OUT and closes the connection. It does
// not wait for the reader goroutine (so a handler may call it); Done is
// closed once that goroutine has delivered SBClosed.
func (s *Switchboard) Close() error {
	s.mu.Lock()
	already := s.closing
	s.closing = true
	s.mu.Unlock()
	if already {
		return nil
	}
	// OUT is a courtesy: the server treats a dropped connection the same.
	s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := s.w.WriteCommand(&Command{Name: "OUT"}); err != nil {
		return s.conn.Close()
	}
	// What the server relayed before it read our OUT is still on its way,
	// and the sender was told it was accepted: keep reading until the
	// server hangs up (it does after OUT), briefly, so it is not lost.
	s.conn.SetReadDeadline(time.Now().Add(closeDrainTime))
	go func() {
		select {
		case <-s.done:
		case <-time.After(closeDrainTime):
		}
		s.conn.Close()
	}()
	return nil
}

// isClosing reports whether Close was called (it may still be draining).
func (s *Switchboard) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// closeDrainTime bounds how long Close keeps reading after OUT.
const closeDrainTime = 2 * time.Second

// Done is closed when the connection has ended and the handler has seen
// SBClosed; Err then says why.
func (s *Switchboard) Done() <-chan struct{} { return s.done }

// Err is why the connection ended: nil while it is open or after Close.
func (s *Switchboard) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Switchboard) write(c *Command) error {
	select {
	case <-s.done:
		return ErrSwitchboardClosed
	default:
	}
	if err := s.w.WriteCommand(c); err != nil {
		return fmt.Errorf("%w: %v", ErrSwitchboardClosed, err)
	}
	return nil
}

// request writes c and waits for the reply carrying its TrID.
func (s *Switchboard) request(ctx context.Context, c *Command) (*Command, error) {
	trid, _ := c.TrID()
	ch := make(chan *Command, 1)
	s.mu.Lock()
	if s.closing || s.pending == nil {
		s.mu.Unlock()
		return nil, ErrSwitchboardClosed
	}
	s.pending[trid] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.pending != nil {
			delete(s.pending, trid)
		}
		s.mu.Unlock()
	}()
	if err := s.write(c); err != nil {
		return nil, err
	}
	select {
	case reply, ok := <-ch:
		if !ok {
			return nil, ErrSwitchboardClosed
		}
		if err := reply.Err(); err != nil {
			return nil, err
		}
		return reply, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Switchboard) readLoop() {
	var err error
	for {
		var c *Command
		c, err = s.r.ReadCommand()
		if err != nil {
			break
		}
		s.dispatch(c)
	}
	s.mu.Lock()
	if s.closing {
		err = nil
	} else {
		err = fmt.Errorf("%w: %v", ErrSwitchboardClosed, err)
	}
	s.err = err
	s.closing = true
	for _, ch := range s.pending {
		close(ch)
	}
	s.pending = nil
	s.mu.Unlock()
	s.conn.Close()
	s.emit(SBClosed{Err: err})
	close(s.done)
}

func (s *Switchboard) emit(e SwitchboardEvent) {
	if s.handler != nil {
		s.handler(e)
	}
}

// dispatch handles one command after login (and the handshake's strays).
func (s *Switchboard) dispatch(c *Command) {
	switch c.Name {
	case "JOI":
		// JOI passport friendly [caps]
		if ev, ok := s.join(c.Arg(0), c.Arg(1), c.Arg(2)); ok {
			s.emit(ev)
		}
		return
	case "IRO":
		s.join(c.Arg(3), c.Arg(4), c.Arg(5))
		return
	case "BYE":
		if ev, ok := s.leave(c.Arg(0), c.Arg(1) == "1"); ok {
			s.emit(ev)
		}
		return
	case "MSG":
		s.message(c)
		return
	}
	trid, ok := c.TrID()
	if ok {
		s.mu.Lock()
		ch := s.pending[trid]
		s.mu.Unlock()
		if ch != nil {
			ch <- c // buffered, one reply per request
			return
		}
		if c.Name == "NAK" {
			s.emit(SBNotAccepted{TrID: trid})
			return
		}
	}
	if err := c.Err(); err != nil {
		s.emit(SBServerError{Err: err})
	}
	// ACKs nobody waits for (the caller gave up) and unknown commands are
	// ignored: servers add commands, and none changes the session's state.
}

// splitEndpoint returns "me@x" for "me@x;{guid}".
func splitEndpoint(passport string) string {
	p, _, _ := strings.Cut(passport, ";")
	return p
}

func endpointOf(passport string) string {
	_, g, _ := strings.Cut(passport, ";")
	return strings.ToLower(g)
}

// maxParticipants bounds the roster against a misbehaving server; real
// switchboards hold a few dozen at most.
const maxParticipants = 256

func (s *Switchboard) join(entry, friendly, caps string) (SBJoined, bool) {
	passport, guid := splitEndpoint(entry), endpointOf(entry)
	if passport == "" {
		return SBJoined{}, false
	}
	key := strings.ToLower(passport)
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.participants[key]
	if !ok {
		if len(s.participants) >= maxParticipants {
			return SBJoined{}, false
		}
		p = &SwitchboardParticipant{Passport: passport, Self: key == s.self}
		s.participants[key] = p
		s.order = append(s.order, key)
	}
	if friendly != "" {
		p.FriendlyName = validText(Unescape(friendly))
	}
	if caps != "" {
		p.Capabilities = caps
	}
	if guid != "" && !containsString(p.Endpoints, guid) && len(p.Endpoints) < maxParticipants {
		p.Endpoints = append(p.Endpoints, guid)
	}
	ev := SBJoined{Participant: *p, Endpoint: guid, New: !ok}
	ev.Participant.Endpoints = append([]string(nil), p.Endpoints...)
	return ev, true
}

func (s *Switchboard) leave(entry string, idle bool) (SBLeft, bool) {
	passport, guid := splitEndpoint(entry), endpointOf(entry)
	key := strings.ToLower(passport)
	s.mu.Lock()
	p, ok := s.participants[key]
	if !ok {
		s.mu.Unlock()
		return SBLeft{}, false
	}
	gone := guid == ""
	if !gone {
		for i, e := range p.Endpoints {
			if e == guid {
				p.Endpoints = append(p.Endpoints[:i], p.Endpoints[i+1:]...)
				break
			}
		}
		// The bare "BYE email" follows when the last endpoint leaves; until
		// then the passport stays.
	}
	if gone {
		delete(s.participants, key)
		for i, k := range s.order {
			if k == key {
				s.order = append(s.order[:i], s.order[i+1:]...)
				break
			}
		}
	}
	s.mu.Unlock()
	if gone {
		s.chunks.Discard(key)
		delete(s.emoticons, key)
	}
	return SBLeft{Passport: p.Passport, Endpoint: guid, Gone: gone, IdleTimeout: idle}, true
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// message handles "MSG passport friendly len".
func (s *Switchboard) message(c *Command) {
	if c.Payload == nil {
		s.emit(SBServerError{Err: &ProtocolError{Line: cut(c.String()), Err: errors.New("MSG without payload")}})
		return
	}
	entry := c.Arg(0)
	from, guid := splitEndpoint(entry), endpointOf(entry)
	key := strings.ToLower(from)
	if guid != "" && key == s.self && guid == s.selfEP {
		// Our own message echoed back: it is not "sent elsewhere".
		// (Escargot never echoes, and names the bare account.)
		return
	}
	m, err := ParseMessage(c.Payload)
	if err != nil {
		s.emit(SBServerError{Err: fmt.Errorf("message from %s: %w", from, err)})
		return
	}
	m, err = s.chunks.Add(key, m)
	if err != nil {
		s.emit(SBServerError{Err: fmt.Errorf("message from %s: %w", from, err)})
		return
	}
	if m == nil {
		return // a chunk; the rest will follow
	}
	content := m.Classify()
	switch ct := content.(type) {
	case *EmoticonDeclaration:
		// Kept for the text that follows; a later declaration replaces it.
		if _, ok := s.emoticons[key]; ok || len(s.emoticons) < maxParticipants {
			s.emoticons[key] = ct.Emoticons
		}
		return
	case *TextMessage:
		if e, ok := s.emoticons[key]; ok {
			ct.Emoticons = e
			delete(s.emoticons, key)
		}
	}
	s.emit(SBMessage{From: from, FromEndpoint: guid, FriendlyName: validText(Unescape(c.Arg(1))), Message: m, Content: content})
}

// validText replaces invalid UTF-8, which peers' names may hold, with U+FFFD.
func validText(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
