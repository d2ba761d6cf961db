package msnp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"
)

// The P2P session layer (MSNP2P v1 over switchboards; libpurple slplink.c,
// slpcall.c, slp.c): one link per contact holds that contact's sessions.
//
// Received packets are handed, in order, from the switchboard reader to the
// link's reader goroutine, which never holds the conversation lock: it
// parses, reassembles MSNSLP messages, acknowledges every complete message
// (libpurple process_complete_msg) and writes received data straight into
// the receiver's io.Writer.
//
// Everything sent goes through the link's writer goroutine, to the
// contact's direct Conversation and its switchboard (opened and called on
// demand). MSNSLP messages and acks go first, in the order they were made,
// through the conversation's queue, one MSG (ack 'D') at a time, in line
// with its text. Data packets, taken round-robin from the link's streams
// once no control packet waits, are written straight into that
// switchboard, up to p2pWindow of them awaiting the server's ACK: text
// queued meanwhile is written between two packets, so a big file delays
// text by a packet or so, never starves it. A transfer holds p2pWindow
// chunks of 1202 bytes in memory however large it is: the next chunk is
// read from its source only when the window has room.
//
// A data message (a whole file or picture, one Identifier) is acknowledged
// by the peer once, when complete; the sender finishes on that ack (or on
// the BYE the receiver sends after it).

// Bounds of the P2P layer.
const (
	maxP2PLinks          = 256 // contacts with P2P state at once
	maxP2PSessions       = 16  // sessions per contact
	maxP2PInbound        = 256 // packets waiting for a link's reader
	maxP2PControl        = 256 // MSNSLP and ack packets waiting to be sent
	maxSLPAssemblies     = 4   // MSNSLP messages being reassembled per contact
	maxOwnPicture        = 1 << 20
	defaultP2PTimeout    = 60 * time.Second
	defaultOfferTimeout  = 2 * time.Minute
	p2pControlSendBudget = 2 * time.Minute
)

type p2pKind int

const (
	p2pFetch   p2pKind = iota // we asked for an MSNObject
	p2pServe                  // a contact asked for our display picture
	p2pFileIn                 // a contact offers us a file
	p2pFileOut                // we offer a contact a file
)

// p2pState is the Client's P2P layer. mu is taken after conv.mu (the
// switchboard handler calls in with conv.mu held), never before it.
type p2pState struct {
	mu      sync.Mutex
	links   map[string]*p2pLink
	picture *ownPicture

	// Test knobs: 0 means the default.
	timeout      time.Duration // a session without progress fails
	offerTimeout time.Duration // an offer neither accepted nor declined
	// quietReceiver makes this client receive like libpurple: no ack of a
	// complete data message, no BYE after it.
	quietReceiver bool
	// discardOutput drops every packet the writer would send (for
	// FuzzP2PInput, whose client has no server to send to).
	discardOutput bool
}

type ownPicture struct {
	obj  MSNObject
	data []byte
}

// p2pLink is the P2P state with one contact.
type p2pLink struct {
	c      *Client
	peer   string        // lower-case passport
	nextID atomic.Uint32 // Identifier of our last message

	// Guarded by c.p2p.mu.
	in       []p2pIn
	reading  bool
	ctrl     [][]byte
	streams  []*p2pStream
	writing  bool
	sessions map[uint32]*p2pSession // by SessionID
	calls    map[string]*p2pSession // by lower-case Call-ID
	slp      map[uint32]*slpAssembly
	slpOrder []uint32
	// byeDue holds, by lower-case Call-ID, when a session we sent data in
	// ended on the receiver's ack: its BYE usually follows, and Close
	// waits a moment to acknowledge it.
	byeDue map[string]time.Time
}

// maxByeDue bounds a link's byeDue.
const maxByeDue = 16

// expectByeLocked records that s's receiver will likely say BYE.
func (l *p2pLink) expectByeLocked(s *p2pSession) {
	now := time.Now()
	for k, t := range l.byeDue {
		if now.Sub(t) > p2pCloseDrain {
			delete(l.byeDue, k)
		}
	}
	if l.byeDue == nil {
		l.byeDue = map[string]time.Time{}
	}
	if len(l.byeDue) < maxByeDue {
		l.byeDue[strings.ToLower(s.callID)] = now
	}
}

// byeAwaitedLocked says a BYE recorded by expectByeLocked may still come.
func (l *p2pLink) byeAwaitedLocked(now time.Time) bool {
	for _, t := range l.byeDue {
		if now.Sub(t) <= p2pCloseDrain {
			return true
		}
	}
	return false
}

type p2pIn struct {
	body     []byte
	fromName string
}

type slpAssembly struct {
	buf  []byte
	next uint64
}

// p2pSession is one MSNSLP call and its data.
type p2pSession struct {
	l      *p2pLink
	kind   p2pKind
	id     uint32 // SessionID
	callID string
	branch string // the INVITE's branch

	// Guarded by c.p2p.mu.
	accepted bool // 200 OK sent or received
	closed   bool
	err      error
	done     chan struct{}
	timer    *time.Timer
	ctx      context.Context // cancelled when the session ends
	cancel   context.CancelFunc

	// Receiving.
	w      io.Writer
	limit  uint64 // most data accepted
	want   uint64 // exact size expected, 0 for any up to limit
	total  uint64 // TotalSize of the data message, once seen
	got    uint64
	dataID uint32
	sum    hash.Hash
	sha1d  string
	wmu    sync.Mutex // held by the reader while it writes into w

	// Sending.
	src       io.Reader // SendFile's data
	dataSent  bool      // the last data packet is being or was sent
	delivered bool      // the switchboard accepted every data packet
	sentID    uint32    // Identifier of our data message

	// Offers.
	name string
	size int64
}

// linkLocked returns the link with peer, creating it (nil past the bound).
func (c *Client) linkLocked(peer string) *p2pLink {
	k := strings.ToLower(peer)
	if c.p2p.links == nil {
		c.p2p.links = map[string]*p2pLink{}
	}
	l := c.p2p.links[k]
	if l == nil {
		if len(c.p2p.links) >= maxP2PLinks {
			c.p2p.gcLocked()
			if len(c.p2p.links) >= maxP2PLinks {
				return nil
			}
		}
		var b [4]byte
		_ = randomBytes(b[:])
		l = &p2pLink{c: c, peer: k, sessions: map[uint32]*p2pSession{}, calls: map[string]*p2pSession{}, slp: map[uint32]*slpAssembly{}}
		// A random first Identifier, as libpurple (slplink.c) and the
		// official clients start.
		l.nextID.Store(binary.LittleEndian.Uint32(b[:])%0xFFFFFF00 + 4)
		c.p2p.links[k] = l
	}
	return l
}

// gcLocked forgets idle links.
func (st *p2pState) gcLocked() {
	for k, l := range st.links {
		if !l.reading && !l.writing && len(l.sessions) == 0 && len(l.slp) == 0 {
			delete(st.links, k)
		}
	}
}

// p2pReceive takes a P2P packet from a switchboard (conv.mu held).
// It reports false when the packet is not for this endpoint.
func (c *Client) p2pReceive(from, fromName string, m *P2PMessage) bool {
	dest, guid := splitEndpoint(m.Dest), endpointOf(m.Dest)
	if !strings.EqualFold(dest, c.passport) || strings.EqualFold(from, c.passport) {
		return false
	}
	if guid != "" && c.machineGUID != "" && !strings.EqualFold(guid, c.machineGUID) {
		return false // another endpoint of this account
	}
	c.p2p.mu.Lock()
	defer c.p2p.mu.Unlock()
	l := c.linkLocked(from)
	if l == nil {
		c.log.Debug().Str("from", from).Msg("p2p: too many contacts at once; packet dropped")
		return true
	}
	if len(l.in) >= maxP2PInbound {
		// The reader is stuck behind a slow writer: the data would have a
		// hole, so the transfers with this contact fail.
		for _, s := range l.sessions {
			s.finishLocked(fmt.Errorf("msnp: p2p: receiving from %s faster than the data can be written", from), true)
		}
		l.in = nil
		return true
	}
	l.in = append(l.in, p2pIn{body: m.Body, fromName: fromName})
	if !l.reading {
		l.reading = true
		go l.readLoop()
	}
	return true
}

func (l *p2pLink) readLoop() {
	st := &l.c.p2p
	for {
		st.mu.Lock()
		if len(l.in) == 0 {
			l.reading = false
			st.mu.Unlock()
			return
		}
		pk := l.in[0]
		l.in[0] = p2pIn{}
		l.in = l.in[1:]
		st.mu.Unlock()
		l.handleSafely(pk)
	}
}

// handleSafely is handle, except that a panic (a bug on input a contact
// controls: one was found in ParseSLP by fuzzing) costs only the packet
// and is logged, as net/http costs only the request: it must not take the
// whole process, and every other user's session, down with it.
func (l *p2pLink) handleSafely(pk p2pIn) {
	defer func() {
		if r := recover(); r != nil {
			l.c.log.Error().Str("from", l.peer).Int("bytes", len(pk.body)).
				Str("panic", fmt.Sprint(r)).Str("stack", string(debug.Stack())).
				Msg("p2p: panic while handling a packet; packet dropped (a bug: please report it)")
		}
	}()
	if p2pHandleHook != nil {
		p2pHandleHook(pk)
	}
	l.handle(pk)
}

// p2pHandleHook, when set (by tests only), runs before each packet is
// handled.
var p2pHandleHook func(p2pIn)

func (l *p2pLink) handle(pk p2pIn) {
	c := l.c
	h, data, app, err := ParseP2P(pk.body)
	if err != nil {
		c.log.Debug().Err(err).Str("from", l.peer).Msg("p2p: bad packet")
		return
	}
	st := &c.p2p
	switch {
	case h.Flags == P2PFlagAck:
		st.mu.Lock()
		for _, s := range l.sessions {
			if s.sentID != 0 && s.sentID == h.AckIdentifier {
				s.finishLocked(nil, false)
				l.expectByeLocked(s)
			}
		}
		st.mu.Unlock()
	case h.SessionID == 0 && (h.Flags == P2PFlagNone || h.Flags == P2PFlagWLM2009):
		l.slpPacket(h, data, pk.fromName)
	case h.SessionID != 0 && isP2PData(h.Flags):
		l.dataPacket(h, data)
	case h.SessionID != 0 && (h.Flags == P2PFlagNone || h.Flags == P2PFlagWLM2009):
		// The data preparation message (4 zero bytes) before an MSNObject's
		// data (libpurple msn_slpmsg_dataprep_new): acknowledged, nothing
		// more.
		st.mu.Lock()
		if s := l.sessions[h.SessionID]; s != nil {
			s.touchLocked()
		}
		st.mu.Unlock()
		if h.Offset+uint64(h.MessageLength) >= h.TotalSize {
			l.queueAck(h)
		}
	case h.Flags&(P2PFlagCancel|P2PFlagTLPError|P2PFlagError|P2PFlagNak) != 0:
		st.mu.Lock()
		if s := l.sessions[h.SessionID]; s != nil {
			s.finishLocked(ErrP2PCancelled, false)
		}
		st.mu.Unlock()
	default:
		c.log.Debug().Uint32("flags", h.Flags).Uint32("app", app).Msg("p2p: packet ignored")
	}
}

// slpPacket reassembles MSNSLP messages by Identifier (they may span
// several packets) and handles each once complete.
func (l *p2pLink) slpPacket(h P2PHeader, data []byte, fromName string) {
	st := &l.c.p2p
	if h.TotalSize > maxSLPMessage {
		l.c.log.Debug().Uint64("size", h.TotalSize).Msg("p2p: MSNSLP message too large; dropped")
		return
	}
	st.mu.Lock()
	a := l.slp[h.Identifier]
	if h.Offset == 0 {
		if a == nil {
			if len(l.slp) >= maxSLPAssemblies {
				old := l.slpOrder[0]
				l.slpOrder = l.slpOrder[1:]
				delete(l.slp, old)
			}
			l.slpOrder = append(l.slpOrder, h.Identifier)
		}
		a = &slpAssembly{buf: make([]byte, 0, h.TotalSize)}
		l.slp[h.Identifier] = a
	}
	if a == nil || h.Offset != a.next || h.TotalSize != uint64(cap(a.buf)) {
		if a != nil {
			l.dropSLPLocked(h.Identifier)
		}
		st.mu.Unlock()
		l.c.log.Debug().Uint32("id", h.Identifier).Msg("p2p: MSNSLP fragment out of order; dropped")
		return
	}
	a.buf = append(a.buf, data...)
	a.next += uint64(len(data))
	complete := a.next >= h.TotalSize
	if complete {
		l.dropSLPLocked(h.Identifier)
	}
	st.mu.Unlock()
	if !complete {
		return
	}
	l.queueAck(h)
	m, err := ParseSLP(a.buf)
	if err != nil {
		l.c.log.Debug().Err(err).Str("from", l.peer).Msg("p2p: bad MSNSLP message")
		return
	}
	l.slpMessage(m, fromName)
}

func (l *p2pLink) dropSLPLocked(id uint32) {
	delete(l.slp, id)
	for i, x := range l.slpOrder {
		if x == id {
			l.slpOrder = append(l.slpOrder[:i:i], l.slpOrder[i+1:]...)
			break
		}
	}
}

func (l *p2pLink) slpMessage(m *SLPMessage, fromName string) {
	st := &l.c.p2p
	call := strings.ToLower(m.CallID)
	st.mu.Lock()
	if s := l.calls[call]; s != nil && s.accepted {
		// Transport negotiation and the like are progress too: a sender
		// may try a direct connection for a while before the data comes.
		s.touchLocked()
	}
	st.mu.Unlock()
	switch {
	case m.Method == "INVITE" && strings.EqualFold(m.ContentType, SLPSessionRequest):
		st.mu.Lock()
		_, known := l.calls[call]
		st.mu.Unlock()
		if !known {
			l.invited(m, fromName)
		}
	case m.Method == "INVITE" && strings.EqualFold(m.ContentType, SLPTransRequest):
		// An offer of a direct connection. We have none to give: say we
		// are not listening, as libpurple does with direct connections
		// turned off (slpcall.c got_invite), so the data stays in the
		// switchboard.
		l.respond(m, 200, "OK", SLPTransResponse, []MIMEHeader{
			{Name: "Bridge", Value: "TCPv1"},
			{Name: "Listening", Value: "false"},
			{Name: "Nonce", Value: "{00000000-0000-0000-0000-000000000000}"},
		})
	case m.Method == "INVITE" && strings.EqualFold(m.ContentType, SLPTransResponse):
		// The peer listens and wants us to connect: we cannot. A 603 for
		// the transport negotiation makes libpurple fall back to the
		// switchboard at once (slpcall.c got_error); others time out and
		// fall back.
		l.respond(m, 603, "Decline", SLPTransRequest, nil)
	case m.Method == "INVITE":
		l.respond(m, 603, "Decline", m.ContentType, nil)
	case m.Method == "BYE":
		st.mu.Lock()
		delete(l.byeDue, call) // its ack is queued (slpPacket)
		if s := l.calls[call]; s != nil {
			if s.kind == p2pFileOut && s.dataSent || s.kind == p2pServe && s.dataSent {
				// The receiver's BYE after it got everything.
				s.finishLocked(nil, false)
			} else {
				s.finishLocked(ErrP2PCancelled, false)
			}
		}
		st.mu.Unlock()
	case m.Status != 0:
		st.mu.Lock()
		s := l.calls[call]
		if s == nil || s.accepted || !(s.kind == p2pFetch || s.kind == p2pFileOut) {
			st.mu.Unlock()
			return // a response to a BYE, a transport answer, …
		}
		if m.Status != 200 || !strings.EqualFold(m.ContentType, SLPSessionRequest) {
			err := ErrP2PDeclined
			if m.Status != 603 {
				err = fmt.Errorf("%w: %d %s", ErrP2PDeclined, m.Status, m.Reason)
			}
			s.finishLocked(err, false)
			st.mu.Unlock()
			return
		}
		s.accepted = true
		s.touchLocked()
		src, size := s.src, uint64(s.size)
		st.mu.Unlock()
		if s.kind == p2pFileOut {
			l.startStream(s, io.LimitReader(src, int64(size)), size, P2PFlagFileData, P2PAppFile)
		}
	}
}

// invited handles a new session request.
func (l *p2pLink) invited(m *SLPMessage, fromName string) {
	c := l.c
	st := &c.p2p
	sid, err := strconv.ParseUint(m.Get("SessionID"), 10, 32)
	guid := strings.ToUpper(m.Get("EUF-GUID"))
	context, _ := base64.StdEncoding.DecodeString(m.Get("Context"))
	decline := func() { l.respond(m, 603, "Decline", SLPSessionRequest, sessionIDBody(uint32(sid))) }
	if err != nil || sid == 0 {
		decline()
		return
	}
	switch guid {
	case EUFGUIDMSNObject:
		obj, err := ParseMSNObject(string(bytes.TrimRight(context, "\x00")))
		st.mu.Lock()
		pic := st.picture
		st.mu.Unlock()
		if err != nil || pic == nil || obj.Type != MSNObjectDisplayPicture || obj.SHA1D != pic.obj.SHA1D {
			decline()
			return
		}
		s := l.newSession(p2pServe, uint32(sid), m.CallID, m.Branch)
		if s == nil {
			decline()
			return
		}
		st.mu.Lock()
		s.accepted = true
		st.mu.Unlock()
		l.respond(m, 200, "OK", SLPSessionRequest, sessionIDBody(s.id))
		// The data preparation message, then the data (libpurple
		// slpcall.c got_sessionreq: DATA PREP, then DATA with flags 0x20).
		// The footer is the AppID the INVITE named, as libpurple echoes it
		// (slplink.c msn_slplink_release_slpmsg): 1, or 12 from WLM 2009
		// (MSNPSharp DisplayImageFooter12).
		app := P2PAppMSNObject
		if n, err := strconv.ParseUint(m.Get("AppID"), 10, 32); err == nil && n != 0 {
			app = uint32(n)
		}
		prep := P2PHeader{SessionID: s.id, Identifier: l.newID(), TotalSize: 4, AckIdentifier: randomUint32()}
		l.queueControl(AppendP2P(nil, prep, make([]byte, 4), app))
		l.startStream(s, bytes.NewReader(pic.data), uint64(len(pic.data)), P2PFlagMSNObjData, app)
	case EUFGUIDFile:
		name, size, err := parseFileContext(context)
		if err != nil {
			c.log.Debug().Err(err).Str("from", l.peer).Msg("p2p: bad file context")
			decline()
			return
		}
		s := l.newSession(p2pFileIn, uint32(sid), m.CallID, m.Branch)
		if s == nil {
			decline()
			return
		}
		st.mu.Lock()
		s.name, s.size = name, size
		s.want, s.limit = uint64(size), uint64(size)
		s.timer.Reset(orDuration(st.offerTimeout, defaultOfferTimeout))
		st.mu.Unlock()
		c.emit(FileOffer{
			Conversation: ConversationInfo{ID: l.peer, Participants: []string{l.peer}},
			From:         l.peer, FromName: fromName,
			Name: name, Size: size, Transfer: &IncomingFile{s: s},
		})
	default:
		decline()
		c.emit(ConversationUnsupported{Conversation: ConversationInfo{ID: l.peer, Participants: []string{l.peer}},
			From: l.peer, ContentType: ContentTypeP2P})
	}
}

func sessionIDBody(id uint32) []MIMEHeader {
	return []MIMEHeader{{Name: "SessionID", Value: strconv.FormatUint(uint64(id), 10)}}
}

// dataPacket handles a data packet of a session we receive.
func (l *p2pLink) dataPacket(h P2PHeader, data []byte) {
	st := &l.c.p2p
	st.mu.Lock()
	s := l.sessions[h.SessionID]
	if s == nil || s.closed || !s.accepted || s.w == nil || !(s.kind == p2pFetch || s.kind == p2pFileIn) {
		st.mu.Unlock()
		return
	}
	if h.Offset == 0 && s.total == 0 {
		switch {
		case s.limit > 0 && h.TotalSize > s.limit && s.kind == p2pFetch:
			s.finishLocked(ErrP2PTooLarge, true)
			st.mu.Unlock()
			return
		case s.want > 0 && h.TotalSize != s.want:
			s.finishLocked(fmt.Errorf("%w: %d bytes announced, %d sent", ErrP2PCorrupt, s.want, h.TotalSize), true)
			st.mu.Unlock()
			return
		case h.TotalSize == 0:
			s.finishLocked(fmt.Errorf("%w: empty data message", ErrP2PCorrupt), true)
			st.mu.Unlock()
			return
		}
		s.total, s.dataID = h.TotalSize, h.Identifier
	}
	if h.TotalSize != s.total || h.Identifier != s.dataID || h.Offset != s.got {
		s.finishLocked(fmt.Errorf("%w: data out of order (offset %d, expected %d)", ErrP2PCorrupt, h.Offset, s.got), true)
		st.mu.Unlock()
		return
	}
	s.touchLocked()
	w, sum := s.w, s.sum
	s.wmu.Lock()
	st.mu.Unlock()

	_, werr := w.Write(data)
	if sum != nil {
		sum.Write(data)
	}
	s.wmu.Unlock()

	st.mu.Lock()
	if s.closed {
		st.mu.Unlock()
		return
	}
	if werr != nil {
		s.finishLocked(fmt.Errorf("msnp: p2p: writing the data: %w", werr), true)
		st.mu.Unlock()
		return
	}
	s.got += uint64(len(data))
	complete := s.got >= s.total
	st.mu.Unlock()
	if !complete {
		return
	}
	// Everything arrived: acknowledge it and, as the receiver, end the
	// session with a BYE.
	st.mu.Lock()
	quiet := st.quietReceiver
	st.mu.Unlock()
	if !quiet {
		l.queueAck(h)
	}
	var err error
	if sum != nil {
		if got := base64.StdEncoding.EncodeToString(sum.Sum(nil)); got != s.sha1d {
			err = fmt.Errorf("%w: SHA1D %s, data hashes to %s", ErrP2PCorrupt, s.sha1d, got)
		}
	}
	st.mu.Lock()
	s.finishLocked(err, !quiet)
	st.mu.Unlock()
}

// newSession registers a session (nil past the bound or on a duplicate).
func (l *p2pLink) newSession(kind p2pKind, id uint32, callID, branch string) *p2pSession {
	st := &l.c.p2p
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(l.sessions) >= maxP2PSessions || l.sessions[id] != nil || l.calls[strings.ToLower(callID)] != nil {
		return nil
	}
	s := &p2pSession{l: l, kind: kind, id: id, callID: callID, branch: branch, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	l.sessions[id] = s
	l.calls[strings.ToLower(callID)] = s
	s.timer = time.AfterFunc(orDuration(st.timeout, defaultP2PTimeout), func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		if s.closed {
			return
		}
		if s.kind == p2pFileIn && !s.accepted {
			// Nobody decided: decline, as the offer said.
			s.l.respondRaw(s, 603, "Decline")
			s.finishLocked(ErrP2PTimeout, false)
			return
		}
		if s.delivered {
			// Everything reached the switchboard and the receiver says
			// nothing more: libpurple acks no complete data message
			// (slpcall.c msn_slp_process_msg marks the call wasted before
			// process_complete_msg would ack) and sends no BYE. Accepted
			// by the server is as far as we can know, as for text.
			s.finishLocked(nil, true)
			return
		}
		s.finishLocked(ErrP2PTimeout, true)
	})
	return s
}

// touchLocked records progress: the session's timeout starts again.
func (s *p2pSession) touchLocked() {
	if !s.closed && s.timer != nil {
		s.timer.Reset(orDuration(s.l.c.p2p.timeout, defaultP2PTimeout))
	}
}

// finishLocked ends the session with err (nil: success) and, when bye is
// set, tells the peer with a BYE.
func (s *p2pSession) finishLocked(err error, bye bool) {
	if s.closed {
		return
	}
	s.closed = true
	s.err = err
	s.timer.Stop()
	s.cancel()
	l := s.l
	delete(l.sessions, s.id)
	delete(l.calls, strings.ToLower(s.callID))
	// A stream of s is dropped by the writer, which owns its packets in
	// flight (sendChunk).
	if bye {
		l.queueControlLocked(l.slpPackets(&SLPMessage{
			Method: "BYE", Target: l.peer, To: l.peer, From: l.c.passport,
			Branch: newGUIDOr(), CSeq: 0, CallID: s.callID, ContentType: SLPSessionClose,
		}))
	}
	close(s.done)
}

// wait waits for the session's end or ctx; on ctx it cancels the session.
func (s *p2pSession) wait(ctx context.Context) error {
	select {
	case <-s.done:
	case <-ctx.Done():
		st := &s.l.c.p2p
		st.mu.Lock()
		if !s.closed {
			if s.kind == p2pFileIn && !s.accepted {
				s.l.respondRaw(s, 603, "Decline")
				s.finishLocked(ctx.Err(), false)
			} else {
				s.finishLocked(ctx.Err(), true)
			}
		}
		st.mu.Unlock()
	}
	// A write into the caller's writer may be under way: the caller may
	// close it once this returns.
	s.wmu.Lock()
	//lint:ignore SA2001 the empty critical section waits for the writer
	s.wmu.Unlock()
	st := &s.l.c.p2p
	st.mu.Lock()
	defer st.mu.Unlock()
	return s.err
}

// respond answers request m.
func (l *p2pLink) respond(m *SLPMessage, status int, reason, contentType string, body []MIMEHeader) {
	r := &SLPMessage{Status: status, Reason: reason, To: l.peer, From: l.c.passport, Branch: m.Branch,
		CSeq: m.CSeq + 1, CallID: m.CallID, ContentType: contentType, Body: body}
	l.queueControl(l.slpPackets(r)...)
}

// respondRaw answers a session's INVITE (c.p2p.mu held).
func (l *p2pLink) respondRaw(s *p2pSession, status int, reason string) {
	r := &SLPMessage{Status: status, Reason: reason, To: l.peer, From: l.c.passport, Branch: s.branch,
		CSeq: 1, CallID: s.callID, ContentType: SLPSessionRequest, Body: sessionIDBody(s.id)}
	l.queueControlLocked(l.slpPackets(r))
}

// slpPackets renders m as P2P packets: one Identifier, split at
// p2pMaxChunk bytes.
func (l *p2pLink) slpPackets(m *SLPMessage) [][]byte {
	b := m.Bytes()
	h := P2PHeader{Identifier: l.newID(), TotalSize: uint64(len(b)), AckIdentifier: randomUint32()}
	var out [][]byte
	for off := 0; off < len(b); off += p2pMaxChunk {
		end := min(off+p2pMaxChunk, len(b))
		h.Offset = uint64(off)
		out = append(out, AppendP2P(nil, h, b[off:end], P2PAppSLP))
	}
	return out
}

// newID returns the next message Identifier.
func (l *p2pLink) newID() uint32 { return l.nextID.Add(1) }

func (l *p2pLink) queueAck(h P2PHeader) {
	st := &l.c.p2p
	st.mu.Lock()
	ack := p2pAckFor(h, l.newID())
	st.mu.Unlock()
	l.queueControl(AppendP2P(nil, ack, nil, P2PAppSLP))
}

func (l *p2pLink) queueControl(pkts ...[]byte) {
	st := &l.c.p2p
	st.mu.Lock()
	defer st.mu.Unlock()
	l.queueControlLocked(pkts)
}

func (l *p2pLink) queueControlLocked(pkts [][]byte) {
	if len(l.ctrl)+len(pkts) > maxP2PControl {
		l.c.log.Debug().Str("to", l.peer).Msg("p2p: too many control packets waiting; dropped")
		return
	}
	l.ctrl = append(l.ctrl, pkts...)
	l.kickLocked()
}

func (l *p2pLink) kickLocked() {
	if !l.writing {
		l.writing = true
		go l.writeLoop()
	}
}

// p2pStream is a data message being sent: read from r one chunk at a
// time, written straight into the contact's switchboard with up to
// p2pWindow packets awaiting the server's ACK. Used by the link's writer
// only.
type p2pStream struct {
	s        *p2pSession
	r        io.Reader
	h        P2PHeader // Offset: what was read so far
	appID    uint32
	buf      []byte
	sb       *Switchboard                  // where the packets go; nil: get one
	pending  []byte                        // a packet read but not yet written
	inflight []func(context.Context) error // written, ACK awaited, oldest first
	switches int                           // switchboards asked for
}

// p2pWindow bounds a transfer's packets written and not yet ACKed by the
// switchboard: memory stays at a few chunks, and a round trip to the
// server is paid every p2pWindow packets rather than every packet.
const p2pWindow = 8

func (l *p2pLink) startStream(s *p2pSession, r io.Reader, size uint64, flags, appID uint32) {
	st := &l.c.p2p
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.closed {
		return
	}
	s.sentID = l.newID()
	l.streams = append(l.streams, &p2pStream{s: s, r: r, appID: appID, buf: make([]byte, p2pMaxChunk),
		h: P2PHeader{SessionID: s.id, Identifier: s.sentID, TotalSize: size, Flags: flags, AckIdentifier: randomUint32()}})
	l.kickLocked()
}

// writeLoop sends the link's packets while there are any.
func (l *p2pLink) writeLoop() {
	c := l.c
	st := &c.p2p
	next := 0
	for {
		st.mu.Lock()
		var pkt []byte
		var stream *p2pStream
		switch {
		case len(l.ctrl) > 0:
			pkt = l.ctrl[0]
			l.ctrl[0] = nil
			l.ctrl = l.ctrl[1:]
		case len(l.streams) > 0:
			next %= len(l.streams)
			stream = l.streams[next]
			next++
		default:
			l.writing = false
			st.mu.Unlock()
			return
		}
		st.mu.Unlock()

		if stream == nil {
			st.mu.Lock()
			discard := st.discardOutput
			st.mu.Unlock()
			if discard {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), p2pControlSendBudget)
			err := c.Chat(l.peer).sendP2P(ctx, l.peer, pkt)
			cancel()
			if err != nil {
				c.log.Debug().Err(err).Str("to", l.peer).Msg("p2p: sending a control packet failed")
				l.failAll(err)
			}
			continue
		}
		l.sendChunk(stream)
	}
}

// sendChunk takes the stream's next step: write a packet, or wait for
// the oldest ACK when the window is full or everything is written.
func (l *p2pLink) sendChunk(x *p2pStream) {
	c := l.c
	st := &c.p2p
	s := x.s
	fail := func(err error) {
		st.mu.Lock()
		s.finishLocked(err, true)
		st.mu.Unlock()
	}
	st.mu.Lock()
	closed := s.closed
	st.mu.Unlock()
	if closed {
		// s.ctx is cancelled: the waits return at once and release their
		// place in the switchboard's table.
		for _, w := range x.inflight {
			w(s.ctx)
		}
		l.dropStream(x)
		return
	}
	written := x.pending == nil && x.h.Offset >= x.h.TotalSize
	if len(x.inflight) >= p2pWindow || (written && len(x.inflight) > 0) {
		err := x.inflight[0](s.ctx)
		x.inflight = x.inflight[1:]
		if err != nil {
			fail(err)
			return
		}
		st.mu.Lock()
		s.touchLocked()
		st.mu.Unlock()
		return
	}
	if written {
		// All written and accepted: the peer's ack (or BYE) ends s.
		st.mu.Lock()
		s.delivered = true
		st.mu.Unlock()
		l.dropStream(x)
		return
	}
	if x.pending == nil {
		n := min(uint64(p2pMaxChunk), x.h.TotalSize-x.h.Offset)
		if _, err := io.ReadFull(x.r, x.buf[:n]); err != nil {
			fail(fmt.Errorf("msnp: p2p: reading the data to send: %w", err))
			return
		}
		x.pending = p2pPayload(l.peer, AppendP2P(nil, x.h, x.buf[:n], x.appID))
		x.h.Offset += n
		if x.h.Offset >= x.h.TotalSize {
			// The receiver may answer the last packet (ack, BYE) before
			// the switchboard's ACK of it reaches us.
			st.mu.Lock()
			s.dataSent = true
			st.mu.Unlock()
		}
	}
	if x.sb == nil {
		// Before another switchboard, everything written to the last one
		// must be in: a packet lost with it would leave a hole.
		for _, w := range x.inflight {
			if err := w(s.ctx); err != nil {
				fail(err)
				return
			}
		}
		x.inflight = nil
		if x.switches++; x.switches > maxSendAttempts*2 {
			fail(fmt.Errorf("%w: no switchboard with %s stays", ErrSendFailed, l.peer))
			return
		}
		sb, err := c.Chat(l.peer).switchboard(s.ctx)
		if err != nil {
			fail(err)
			return
		}
		x.sb = sb
	}
	wait, err := x.sb.sendPipelined(x.pending)
	switch {
	case errors.Is(err, ErrSwitchboardEmpty):
		x.sb = nil // nothing written: the packet goes to the next one
	case err != nil:
		fail(err)
	default:
		x.pending = nil
		x.inflight = append(x.inflight, wait)
	}
}

func (l *p2pLink) dropStream(x *p2pStream) {
	st := &l.c.p2p
	st.mu.Lock()
	defer st.mu.Unlock()
	for i, y := range l.streams {
		if y == x {
			l.streams = append(l.streams[:i:i], l.streams[i+1:]...)
			break
		}
	}
}

// failAll ends every session with the contact: a control packet could not
// be sent (the contact went offline, say).
func (l *p2pLink) failAll(err error) {
	st := &l.c.p2p
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, s := range l.sessions {
		s.finishLocked(err, false)
	}
}

// sendP2P sends one P2P packet to peer through the conversation's queue,
// in order with its text, with ack 'D' as switchboards require.
func (cv *Conversation) sendP2P(ctx context.Context, peer string, body []byte) error {
	return cv.enqueue(ctx, []*sendOp{{payload: p2pPayload(peer, body), ack: AckData}})
}

// p2pPayload wraps a P2P packet in its MSG headers. P2P-Dest is the bare
// passport, as libpurple sends P2P v1 on every protocol version.
func p2pPayload(peer string, body []byte) []byte {
	payload := make([]byte, 0, len(body)+128)
	payload = append(payload, "MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: "...)
	payload = append(payload, peer...)
	payload = append(payload, "\r\n\r\n"...)
	return append(payload, body...)
}

func randomUint32() uint32 {
	var b [4]byte
	_ = randomBytes(b[:])
	return binary.LittleEndian.Uint32(b[:])
}

func newGUIDOr() string {
	g, err := NewMachineGUID()
	if err != nil {
		return "{00000000-0000-0000-0000-000000000000}"
	}
	return g
}

// File context (libpurple xfer.h MsnFileContext; MSNPSharp FTContext):
// length u32, version u32 (2, or 3 with 63 more bytes), file size u64,
// type u32 (0 with a preview, 1 without), the name in UTF-16LE padded to
// 520 bytes, 30 unknown bytes, 0xFFFFFFFF, then an optional preview.
const (
	fileContextLen   = 574
	fileContextV3Len = fileContextLen + 64
	fileNameBytes    = 520
	maxFileNameUnits = fileNameBytes / 2
)

// fileContext renders the context of an offer (version 2, no preview).
func fileContext(name string, size int64) []byte {
	b := make([]byte, fileContextLen)
	le := binary.LittleEndian
	le.PutUint32(b[0:], fileContextLen)
	le.PutUint32(b[4:], 2)
	le.PutUint64(b[8:], uint64(size))
	le.PutUint32(b[16:], 1)
	u := utf16.Encode([]rune(name))
	if len(u) > maxFileNameUnits-1 {
		u = u[:maxFileNameUnits-1] // keep a terminating NUL
	}
	for i, x := range u {
		le.PutUint16(b[20+2*i:], x)
	}
	le.PutUint32(b[570:], 0xFFFFFFFF)
	return b
}

// parseFileContext reads the name and size of an offer.
func parseFileContext(b []byte) (name string, size int64, err error) {
	if len(b) < fileContextLen {
		return "", 0, fmt.Errorf("msnp: p2p: file context of %d bytes", len(b))
	}
	le := binary.LittleEndian
	switch v := le.Uint32(b[4:]); v {
	case 2:
	case 3:
		if le.Uint32(b[0:]) != fileContextV3Len-1 && le.Uint32(b[0:]) != fileContextV3Len {
			return "", 0, fmt.Errorf("msnp: p2p: version 3 file context of length %d", le.Uint32(b[0:]))
		}
	default:
		return "", 0, fmt.Errorf("msnp: p2p: file context version %d", v)
	}
	sz := le.Uint64(b[8:])
	if sz == 0 || sz > 1<<62 {
		return "", 0, fmt.Errorf("msnp: p2p: file size %d", sz)
	}
	u := make([]uint16, 0, maxFileNameUnits)
	for i := 0; i < maxFileNameUnits; i++ {
		x := le.Uint16(b[20+2*i:])
		if x == 0 {
			break
		}
		u = append(u, x)
	}
	name = strings.ToValidUTF8(string(utf16.Decode(u)), "\uFFFD")
	return name, int64(sz), nil
}

// p2pCloseDrain bounds how long Close lets queued MSNSLP and ack packets
// reach the switchboard.
const p2pCloseDrain = 2 * time.Second

// p2pClose ends every transfer (Client.Close). Transfers still under way
// fail, but what is already queued to tell peers about finished ones (the
// ack of a picture's or file's last data, the BYE after it, a 603 Decline
// and its ack) is first given p2pCloseDrain to go out, and the BYE a
// receiver sends just after acknowledging our data the same time to
// arrive and be acknowledged: a program that
// closes the Client as soon as FetchMSNObject or SendFile returned would
// otherwise leave the peer waiting for an ack that never comes, and
// reporting a failed transfer.
func (c *Client) p2pClose() {
	st := &c.p2p
	st.mu.Lock()
	for _, l := range st.links {
		for _, s := range l.sessions {
			s.finishLocked(ErrNotConnected, false)
		}
		// Packets already received stay: one may be that BYE.
		l.streams = nil
	}
	st.mu.Unlock()
	deadline := time.Now().Add(p2pCloseDrain)
	for {
		st.mu.Lock()
		busy := false
		now := time.Now()
		for _, l := range st.links {
			busy = busy || len(l.ctrl) > 0 || l.writing || len(l.in) > 0 || l.reading || l.byeAwaitedLocked(now)
		}
		if !busy || time.Now().After(deadline) {
			for _, l := range st.links {
				l.ctrl, l.streams, l.in = nil, nil, nil
			}
			st.mu.Unlock()
			return
		}
		st.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

// errNoSession is returned when the bounds leave no room for a session.
var errNoSession = errors.New("msnp: p2p: too many transfers with this contact")
