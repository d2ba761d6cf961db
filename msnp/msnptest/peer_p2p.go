package msnptest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/msnbridge/msnbridge/msnp"
)

// The Peer's MSNSLP session layer over its P2P wire format (peer_wire.go).
// The flows follow libpurple's msn prpl (slp.c got_sessionreq and
// got_invite, slpcall.c, slplink.c) and the msnpiki/imfreedom pages on
// display pictures and file transfer:
//
//   - Display picture, requester R and owner O: R INVITEs (EUF-GUID
//     {A4268EEC…}, AppID 1, Context base64 of the msnobj); O acks, answers
//     200 OK (R acks), sends the data preparation message (4 zero bytes,
//     flags 0, the session's id; R acks), then the picture (flags 0x20,
//     footer 1; R acks the whole), and R ends with BYE (O acks).
//   - File, sender S and receiver V: S INVITEs (EUF-GUID {5D3E02AB…},
//     AppID 2, Context base64 of the file context); V acks and answers 200
//     OK or 603 Decline (S acks); after 200 OK S sends the data (flags
//     0x1000030, footer 2; V acks the whole) and V ends with BYE (S acks).
//
// Every complete message but an ack is acked (flags 2, AckIdentifier = its
// Identifier, AckUniqueID = its AckIdentifier, AckDataSize = its
// TotalSize), and the Peer checks the acks it gets the same way.

// maxP2PMessage bounds what the Peer reassembles from one message.
const maxP2PMessage = 64 << 20

type sessionKind int

const (
	kindServeDP sessionKind = iota
	kindFetchDP
	kindSendFile
	kindRecvFile
	kindDeclined // an invitation the Peer declined
)

// p2pLink is the P2P state between the Peer and one remote user.
type p2pLink struct {
	remote    string
	nextID    uint32
	sent      map[uint32]*sentP2P    // by Identifier
	partial   map[uint64]*partialP2P // by SessionID<<32 | Identifier
	seen      map[uint32]bool        // Identifiers of the messages (not acks) they sent
	byCallID  map[string]*p2pSession
	bySession map[uint32]*p2pSession
}

type sentP2P struct {
	what    string
	session uint32
	total   uint64
	ackUID  uint32
	acked   bool
}

type partialP2P struct {
	first p2pHeader
	appID uint32
	buf   []byte
}

type p2pSession struct {
	kind           sessionKind
	callID, branch string
	id             uint32
	remote         string
	sb             *peerSB

	accepted, prepared bool
	finished, byeSeen  bool
	transBranch        string // the branch of our transreqbody INVITE
	transAnswered      bool
	err                error
	obj                msnp.MSNObject
	name               string
	size               uint64
	result             []byte
}

// link returns the state with remote. Called with p.mu held.
func (p *Peer) link(remote string) *p2pLink {
	k := key(remote)
	l := p.links[k]
	if l == nil {
		l = &p2pLink{remote: remote, nextID: randID(), sent: map[uint32]*sentP2P{}, partial: map[uint64]*partialP2P{}, seen: map[uint32]bool{},
			byCallID: map[string]*p2pSession{}, bySession: map[uint32]*p2pSession{}}
		p.links[k] = l
	}
	return l
}

// finish ends a session with err. Called with p.mu held.
func (p *Peer) finishLocked(s *p2pSession, err error) {
	if s.finished {
		return
	}
	s.finished, s.err = true, err
	p.notifyLocked()
}

// sendP2P sends one P2P message (chunked at 1202 bytes) and returns its
// Identifier. Messages other than acks get a random AckIdentifier and are
// remembered so that their ack can be checked. window makes it respect the
// switchboard window; the switchboard reader must pass false. abort, when
// not nil, is checked before each chunk.
func (p *Peer) sendP2P(ctx context.Context, sb *peerSB, l *p2pLink, what string, h p2pHeader, data []byte, appID uint32, window bool, abort func() error) (uint32, error) {
	p.mu.Lock()
	h.ID = l.nextID
	l.nextID++
	h.Total = uint64(len(data))
	if h.Flags != p2pFlagAck {
		h.AckID = randID()
		l.sent[h.ID] = &sentP2P{what: what, session: h.Session, total: h.Total, ackUID: h.AckID}
	} else {
		h.Total = h.AckSize
	}
	tamper := p.tamper
	p.mu.Unlock()
	if tamper != nil {
		data = tamper(what, &h, data)
	}
	for _, payload := range p2pChunks(l.remote, h, data, appID) {
		if abort != nil {
			if err := abort(); err != nil {
				return h.ID, err
			}
		}
		var err error
		if window {
			err = sb.sendMSG(ctx, "D", payload, false)
		} else {
			_, _, err = sb.post("D", payload, false)
		}
		if err != nil {
			return h.ID, err
		}
	}
	return h.ID, nil
}

// p2pChunks renders a P2P message to dest as MSG payloads of at most 1202
// data bytes each, sharing h's Identifier and TotalSize with increasing
// offsets (libpurple msn_slplink_send_msgpart). A message without data is
// one chunk.
func p2pChunks(dest string, h p2pHeader, data []byte, appID uint32) [][]byte {
	head := p2pMIME(dest)
	var out [][]byte
	for off := 0; off == 0 || off < len(data); {
		n := min(len(data)-off, p2pMaxChunk)
		c := h
		c.Offset, c.Length = uint64(off), uint32(n)
		out = append(out, append([]byte(head), encodeP2P(c, data[off:off+n], appID)...))
		off += n
		if n == 0 {
			break
		}
	}
	return out
}

// makeAck is the ack of a complete message whose first chunk had header
// of, to be sent with Identifier id (libpurple msn_p2p_info_create_ack:
// the same SessionID, flags 2, AckIdentifier = its Identifier,
// AckUniqueID = its AckIdentifier, TotalSize and AckDataSize = its
// TotalSize).
func makeAck(of p2pHeader, id uint32) p2pHeader {
	return p2pHeader{Session: of.Session, ID: id, Total: of.Total, Flags: p2pFlagAck, AckID: of.ID, AckUID: of.AckID, AckSize: of.Total}
}

// newSLP is an MSNSLP message of session s from one user to another, its
// headers in the order libpurple's msn_slpmsg_sip_new and WLM write them.
func newSLP(s *p2pSession, from, to, startLine string, cseq int, ctype string, body []slpField) *slpMessage {
	return &slpMessage{StartLine: startLine, Headers: []slpField{
		{"To", slpAddr(to)},
		{"From", slpAddr(from)},
		{"Via", "MSNSLP/1.0/TLP ;branch=" + s.branch},
		// "CSeq: 0 " with its trailing blank, as WLM writes it (the
		// capture in Escargot's front/msn/msnp_sb.py), so that readers
		// of our messages must trim.
		{"CSeq", strconv.Itoa(cseq) + " "},
		{"Call-ID", s.callID},
		{"Max-Forwards", "0"},
		{"Content-Type", ctype},
	}, Body: body}
}

// sendSLP sends an MSNSLP message of session s (session 0, flags 0,
// footer 0).
func (p *Peer) sendSLP(ctx context.Context, s *p2pSession, l *p2pLink, startLine string, cseq int, ctype string, body []slpField, window bool) (uint32, error) {
	m := newSLP(s, p.passport, l.remote, startLine, cseq, ctype, body)
	p.mu.Lock()
	sb := s.sb
	p.mu.Unlock()
	what := strings.Fields(startLine)[0]
	if what == "MSNSLP/1.0" {
		what = startLine[len("MSNSLP/1.0 "):]
	}
	return p.sendP2P(ctx, sb, l, what, p2pHeader{}, m.bytes(), p2pAppSLP, window, nil)
}

// waitAcked waits until the message id to remote is acked.
func (p *Peer) waitAcked(ctx context.Context, l *p2pLink, id uint32) error {
	return p.waitFor(ctx, func() bool {
		m := l.sent[id]
		return m == nil || m.acked
	})
}

// handleP2P takes one P2P MSG body from remote, received on sb.
func (p *Peer) handleP2P(sb *peerSB, from string, body []byte) {
	h, data, appID, err := decodeP2P(body)
	if err != nil {
		p.violation("P2P from %s: %v", from, err)
		return
	}
	p.mu.Lock()
	l := p.link(from)
	if uint32(len(data)) != h.Length {
		p.violationLocked("P2P from %s: MessageLength %d but %d data bytes (%v)", from, h.Length, len(data), h)
		p.mu.Unlock()
		return
	}
	if h.Length > p2pMaxChunk {
		p.violationLocked("P2P from %s: chunk of %d bytes, more than %d (%v)", from, h.Length, p2pMaxChunk, h)
	}
	if h.Flags == p2pFlagAck {
		p.checkAckLocked(l, h, appID)
		p.mu.Unlock()
		return
	}
	if h.ID == 0 {
		p.violationLocked("P2P from %s: Identifier 0 (%v)", from, h)
	}
	if h.Total > maxP2PMessage || h.Offset+uint64(h.Length) > h.Total {
		p.violationLocked("P2P from %s: chunk beyond the message (%v)", from, h)
		p.mu.Unlock()
		return
	}
	k := uint64(h.Session)<<32 | uint64(h.ID)
	m := l.partial[k]
	switch {
	case h.Offset == 0 && m != nil:
		p.violationLocked("P2P from %s: message %d restarted at offset 0 before it was complete", from, h.ID)
		m = nil
		fallthrough
	case h.Offset == 0:
		if l.seen[h.ID] {
			p.violationLocked("P2P from %s: Identifier %d reused for a new message (%v)", from, h.ID, h)
		}
		l.seen[h.ID] = true
		m = &partialP2P{first: h, appID: appID, buf: make([]byte, 0, min(h.Total, 1<<20))}
		l.partial[k] = m
	case m == nil:
		p.violationLocked("P2P from %s: chunk at offset %d of a message never started (%v)", from, h.Offset, h)
		p.mu.Unlock()
		return
	case uint64(len(m.buf)) != h.Offset || m.first.Total != h.Total || m.first.Flags != h.Flags || m.appID != appID || m.first.AckID != h.AckID:
		// Every chunk repeats the first one's TotalSize, flags, footer and
		// AckIdentifier (the capture in Escargot's msnp_sb.py; libpurple
		// copies one header into every part).
		p.violationLocked("P2P from %s: chunk does not continue message %d (first %v footer %d, have %d bytes; got %v footer %d)",
			from, h.ID, m.first, m.appID, len(m.buf), h, appID)
		delete(l.partial, k)
		p.mu.Unlock()
		return
	}
	m.buf = append(m.buf, data...)
	if uint64(len(m.buf)) < m.first.Total {
		p.mu.Unlock()
		return
	}
	delete(l.partial, k)
	p.mu.Unlock()
	// Every complete message is acked before it is acted on, as libpurple
	// does (process_complete_msg: send the ACK, then what is queued).
	ack := makeAck(m.first, 0)
	p.sendP2P(context.Background(), sb, l, "ack", ack, nil, p2pAppSLP, false, nil)
	p.completeP2P(sb, l, m.first, m.appID, m.buf)
}

// checkAckLocked checks an ack against the message it acks.
func (p *Peer) checkAckLocked(l *p2pLink, h p2pHeader, appID uint32) {
	m := l.sent[h.AckID]
	if m == nil {
		p.violationLocked("P2P from %s: ack of unknown message %d (%v)", l.remote, h.AckID, h)
		return
	}
	var bad []string
	if h.AckUID != m.ackUID {
		bad = append(bad, fmt.Sprintf("AckUniqueID %d, want %d", h.AckUID, m.ackUID))
	}
	if h.AckSize != m.total {
		bad = append(bad, fmt.Sprintf("AckDataSize %d, want %d", h.AckSize, m.total))
	}
	if h.Total != m.total {
		bad = append(bad, fmt.Sprintf("TotalSize %d, want %d", h.Total, m.total))
	}
	if h.Session != m.session {
		bad = append(bad, fmt.Sprintf("SessionID %d, want %d", h.Session, m.session))
	}
	if h.Offset != 0 || h.Length != 0 {
		bad = append(bad, "offset or length not 0")
	}
	if appID != p2pAppSLP {
		bad = append(bad, fmt.Sprintf("footer %d, want 0", appID))
	}
	if h.ID == 0 {
		bad = append(bad, "Identifier 0")
	}
	if m.acked {
		bad = append(bad, "acked twice")
	}
	if len(bad) > 0 {
		p.violationLocked("P2P from %s: bad ack of our %s: %s (%v)", l.remote, m.what, strings.Join(bad, ", "), h)
	}
	m.acked = true
	p.notifyLocked()
}

// completeP2P acts on a complete message.
func (p *Peer) completeP2P(sb *peerSB, l *p2pLink, h p2pHeader, appID uint32, data []byte) {
	if h.Session == 0 {
		if h.Flags != p2pFlagNone && h.Flags != p2pFlagWLM2009 {
			p.violation("P2P from %s: SLP message with flags %#x", l.remote, h.Flags)
		}
		if appID != p2pAppSLP {
			p.violation("P2P from %s: SLP message with footer %d, want 0", l.remote, appID)
		}
		m, err := parseSLP(data)
		if err != nil {
			p.violation("P2P from %s: %v: %q", l.remote, err, data)
			return
		}
		p.handleSLP(sb, l, m)
		return
	}
	p.mu.Lock()
	s := l.bySession[h.Session]
	if s == nil || s.finished {
		p.violationLocked("P2P from %s: data for session %d, which is not open (%v)", l.remote, h.Session, h)
		p.mu.Unlock()
		return
	}
	s.sb = sb
	switch s.kind {
	case kindFetchDP:
		p.fetchDataLocked(s, l, h, appID, data)
	case kindRecvFile:
		p.fileDataLocked(s, l, h, appID, data)
	default:
		p.violationLocked("P2P from %s: data (%v) in session %d, where they should send none", l.remote, h, h.Session)
		p.mu.Unlock()
	}
}

// fetchDataLocked takes the data preparation message and the picture of a
// display-picture request; it unlocks p.mu.
func (p *Peer) fetchDataLocked(s *p2pSession, l *p2pLink, h p2pHeader, appID uint32, data []byte) {
	if !s.accepted {
		p.violationLocked("P2P from %s: data in session %d before 200 OK", l.remote, s.id)
	}
	if h.Flags == p2pFlagNone {
		// The data preparation message: libpurple sends it with footer 0,
		// WLM with the session's AppID 1.
		if len(data) != 4 || !bytes.Equal(data, make([]byte, 4)) || s.prepared || (appID != p2pAppSLP && appID != p2pAppObject) {
			p.violationLocked("P2P from %s: bad data preparation message %x footer %d (%v)", l.remote, data, appID, h)
		}
		s.prepared = true
		p.mu.Unlock()
		return
	}
	if h.Flags != p2pFlagObjData && h.Flags != p2pFlagObjData|p2pFlagWLM2009 {
		p.violationLocked("P2P from %s: picture data with flags %#x, want 0x20", l.remote, h.Flags)
	}
	if appID != p2pAppObject {
		p.violationLocked("P2P from %s: picture data with footer %d, want 1", l.remote, appID)
	}
	if !s.prepared {
		p.violationLocked("P2P from %s: picture data before the data preparation message", l.remote)
	}
	sum := sha1.Sum(data)
	switch {
	case int64(len(data)) != s.obj.Size:
		p.violationLocked("P2P from %s: picture of %d bytes, the msnobj says %d", l.remote, len(data), s.obj.Size)
		p.finishLocked(s, fmt.Errorf("msnptest: picture of %d bytes, want %d", len(data), s.obj.Size))
	case base64.StdEncoding.EncodeToString(sum[:]) != s.obj.SHA1D:
		p.violationLocked("P2P from %s: picture SHA1D %s, the msnobj says %s", l.remote, base64.StdEncoding.EncodeToString(sum[:]), s.obj.SHA1D)
		p.finishLocked(s, errors.New("msnptest: picture does not match SHA1D"))
	default:
		s.result = data
	}
	p.mu.Unlock()
	// The receiver of the data ends the session (libpurple, msnpiki).
	p.sendSLP(context.Background(), s, l, "BYE MSNMSGR:"+l.remote+" MSNSLP/1.0", 0, "application/x-msnmsgr-sessionclosebody", nil, false)
	p.mu.Lock()
	p.finishLocked(s, s.err)
	p.mu.Unlock()
}

// fileDataLocked takes the data of a file the Peer accepted; it unlocks
// p.mu.
func (p *Peer) fileDataLocked(s *p2pSession, l *p2pLink, h p2pHeader, appID uint32, data []byte) {
	if !s.accepted {
		p.violationLocked("P2P from %s: file data in session %d before we accepted", l.remote, s.id)
	}
	if h.Flags != p2pFlagFile {
		p.violationLocked("P2P from %s: file data with flags %#x, want 0x1000030", l.remote, h.Flags)
	}
	if appID != p2pAppFile {
		p.violationLocked("P2P from %s: file data with footer %d, want 2", l.remote, appID)
	}
	if uint64(len(data)) != s.size {
		p.violationLocked("P2P from %s: file of %d bytes, the context says %d", l.remote, len(data), s.size)
	}
	p.mu.Unlock()
	p.sendSLP(context.Background(), s, l, "BYE MSNMSGR:"+l.remote+" MSNSLP/1.0", 0, "application/x-msnmsgr-sessionclosebody", nil, false)
	p.mu.Lock()
	p.files = append(p.files, ReceivedFile{From: l.remote, Name: s.name, Data: data})
	p.finishLocked(s, nil)
	p.mu.Unlock()
}

// handleSLP acts on a complete MSNSLP message.
func (p *Peer) handleSLP(sb *peerSB, l *p2pLink, m *slpMessage) {
	var bad []string
	if !strings.EqualFold(m.header("To"), slpAddr(p.passport)) {
		bad = append(bad, "To "+m.header("To"))
	}
	if !strings.EqualFold(m.header("From"), slpAddr(l.remote)) {
		bad = append(bad, "From "+m.header("From"))
	}
	if m.method() == "INVITE" && !strings.EqualFold(m.StartLine, "INVITE MSNMSGR:"+p.passport+" MSNSLP/1.0") {
		// (BYE is not checked: libpurple's names its sender.)
		bad = append(bad, "request line "+m.StartLine)
	}
	if m.header("Max-Forwards") != "0" {
		bad = append(bad, "Max-Forwards "+m.header("Max-Forwards"))
	}
	via, ok := strings.CutPrefix(m.header("Via"), "MSNSLP/1.0/TLP ;branch=")
	if !ok || !isBracedGUID(via) {
		bad = append(bad, "Via "+m.header("Via"))
	}
	callID := m.header("Call-ID")
	if !isBracedGUID(callID) {
		bad = append(bad, "Call-ID "+callID)
	}
	cseq := m.header("CSeq")
	// Requests carry CSeq 0, responses 1 (libpurple msn_slpmsg_sip_new callers).
	if m.method() == "" && cseq != "1" || m.method() != "" && cseq != "0" {
		bad = append(bad, "CSeq "+cseq)
	}
	if len(bad) > 0 {
		p.violation("SLP %q from %s: bad %s", m.StartLine, l.remote, strings.Join(bad, ", "))
	}
	p.mu.Lock()
	s := l.byCallID[strings.ToUpper(callID)]
	if s != nil {
		s.sb = sb
	}
	p.mu.Unlock()
	switch m.method() {
	case "INVITE":
		p.handleInvite(sb, l, s, m, via, callID)
	case "BYE":
		p.mu.Lock()
		defer p.mu.Unlock()
		if s == nil {
			p.violationLocked("SLP BYE from %s for unknown Call-ID %s", l.remote, callID)
			return
		}
		if m.header("Content-Type") != "application/x-msnmsgr-sessionclosebody" {
			p.violationLocked("SLP BYE from %s with Content-Type %q", l.remote, m.header("Content-Type"))
		}
		s.byeSeen = true
		p.finishLocked(s, ErrCancelled)
		p.notifyLocked()
	case "":
		p.handleResponse(l, s, m)
	default:
		p.violation("SLP from %s: unknown method in %q", l.remote, m.StartLine)
	}
}

func isBracedGUID(s string) bool {
	return len(s) == 38 && s[0] == '{' && s[37] == '}' && guidRE.MatchString(s[1:37])
}

// handleResponse takes 200 OK and 603 Decline to the Peer's INVITEs.
func (p *Peer) handleResponse(l *p2pLink, s *p2pSession, m *slpMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s == nil || (s.kind != kindFetchDP && s.kind != kindSendFile) {
		p.violationLocked("SLP %q from %s for a Call-ID we did not INVITE for", m.StartLine, l.remote)
		return
	}
	ctype := m.header("Content-Type")
	if s.transBranch != "" && !s.transAnswered {
		// The answer to our direct-connection INVITE (libpurple got_ok:
		// 200 OK transrespbody, "Listening: false" when it cannot listen).
		s.transAnswered = true
		p.notifyLocked()
		if ctype != "application/x-msnmsgr-transrespbody" {
			p.violationLocked("SLP %q from %s answers our transreqbody INVITE with Content-Type %q", m.StartLine, l.remote, ctype)
		}
		if via, _ := strings.CutPrefix(m.header("Via"), "MSNSLP/1.0/TLP ;branch="); !strings.EqualFold(via, s.transBranch) {
			p.violationLocked("SLP %q from %s answers our transreqbody INVITE with branch %s, want %s", m.StartLine, l.remote, via, s.transBranch)
		}
		return
	}
	if ctype != "application/x-msnmsgr-sessionreqbody" {
		p.violationLocked("SLP %q from %s with Content-Type %q", m.StartLine, l.remote, ctype)
	}
	if got := m.bodyValue("SessionID"); got != strconv.FormatUint(uint64(s.id), 10) {
		p.violationLocked("SLP %q from %s with SessionID %q, want %d", m.StartLine, l.remote, got, s.id)
	}
	if s.accepted || s.finished {
		p.violationLocked("SLP %q from %s after the session was answered", m.StartLine, l.remote)
		return
	}
	switch m.status() {
	case 200:
		s.accepted = true
		p.notifyLocked()
	case 603:
		p.finishLocked(s, ErrDeclined)
	default:
		p.finishLocked(s, fmt.Errorf("msnptest: INVITE answered %q", m.StartLine))
	}
}

// handleInvite answers an INVITE: a session request for the Peer's display
// picture or a file, or a direct-connection request in a session.
func (p *Peer) handleInvite(sb *peerSB, l *p2pLink, old *p2pSession, m *slpMessage, branch, callID string) {
	ctx := context.Background()
	ctype := m.header("Content-Type")
	if ctype == "application/x-msnmsgr-transreqbody" {
		// They ask to connect directly; we cannot listen, so we say so
		// and the data stays in the switchboard (libpurple got_invite
		// when listening fails).
		if old == nil {
			p.violation("SLP transreqbody INVITE from %s for unknown Call-ID %s", l.remote, callID)
			return
		}
		s := &p2pSession{callID: callID, branch: branch, sb: sb}
		p.sendSLP(ctx, s, l, "MSNSLP/1.0 200 OK", 1, "application/x-msnmsgr-transrespbody", []slpField{
			{"Bridge", "TCPv1"}, {"Listening", "false"}, {"Hashed-Nonce", "{00000000-0000-0000-0000-000000000000}"},
		}, false)
		return
	}
	if ctype != "application/x-msnmsgr-sessionreqbody" {
		p.violation("SLP INVITE from %s with Content-Type %q", l.remote, ctype)
		return
	}
	if old != nil {
		p.violation("SLP INVITE from %s reuses Call-ID %s", l.remote, callID)
		return
	}
	sid, err := strconv.ParseUint(m.bodyValue("SessionID"), 10, 32)
	if err != nil || sid == 0 {
		p.violation("SLP INVITE from %s with SessionID %q", l.remote, m.bodyValue("SessionID"))
		return
	}
	s := &p2pSession{kind: kindDeclined, callID: callID, branch: branch, id: uint32(sid), remote: l.remote, sb: sb}
	p.mu.Lock()
	if l.bySession[s.id] != nil {
		p.violationLocked("SLP INVITE from %s reuses SessionID %d", l.remote, s.id)
	}
	l.byCallID[strings.ToUpper(callID)] = s
	l.bySession[s.id] = s
	p.mu.Unlock()
	okBody := []slpField{{"SessionID", strconv.FormatUint(sid, 10)}}
	decline := func() {
		p.sendSLP(ctx, s, l, "MSNSLP/1.0 603 Decline", 1, "application/x-msnmsgr-sessionreqbody", okBody, false)
		p.mu.Lock()
		p.finishLocked(s, ErrDeclined)
		p.mu.Unlock()
	}
	appID := m.bodyValue("AppID")
	switch strings.ToUpper(m.bodyValue("EUF-GUID")) {
	case eufGUIDObject:
		if appID != "1" {
			p.violation("display picture INVITE from %s with AppID %q, want 1", l.remote, appID)
		}
		obj, err := parseObjContext(m.bodyValue("Context"))
		p.mu.Lock()
		dp, mine := p.dp, p.dpObj
		p.mu.Unlock()
		if err != nil {
			p.violation("display picture INVITE from %s: %v", l.remote, err)
			decline()
			return
		}
		if dp == nil || obj.SHA1D != mine.SHA1D {
			decline()
			return
		}
		// They should ask for the object as we advertised it.
		if !strings.EqualFold(obj.Creator, p.passport) || obj.Size != mine.Size || obj.Type != mine.Type || (obj.SHA1C != "" && obj.SHA1C != mine.SHA1C) {
			p.violation("display picture INVITE from %s asks for %+v, we advertised %+v", l.remote, obj, mine)
		}
		p.mu.Lock()
		s.kind = kindServeDP
		s.accepted = true
		p.mu.Unlock()
		okID, err := p.sendSLP(ctx, s, l, "MSNSLP/1.0 200 OK", 1, "application/x-msnmsgr-sessionreqbody", okBody, false)
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serveDP(s, l, okID, dp)
		}()
	case eufGUIDFile:
		if appID != "2" {
			p.violation("file INVITE from %s with AppID %q, want 2", l.remote, appID)
		}
		ctxt, err := base64.StdEncoding.DecodeString(m.bodyValue("Context"))
		var name string
		var size uint64
		if err == nil {
			name, size, err = decodeFileContext(ctxt)
		}
		if err != nil {
			p.violation("file INVITE from %s: %v", l.remote, err)
			decline()
			return
		}
		p.mu.Lock()
		declining := p.decline || size > maxP2PMessage
		if !declining {
			s.kind, s.name, s.size, s.accepted = kindRecvFile, name, size, true
		}
		p.mu.Unlock()
		if declining {
			decline()
			return
		}
		p.sendSLP(ctx, s, l, "MSNSLP/1.0 200 OK", 1, "application/x-msnmsgr-sessionreqbody", okBody, false)
	default:
		// Webcam, sharing, winks' own GUIDs…: not spoken here.
		decline()
	}
}

// parseObjContext reads the Context of a display-picture INVITE.
func parseObjContext(c string) (msnp.MSNObject, error) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return msnp.MSNObject{}, fmt.Errorf("the Context field is not base64: %v", err)
	}
	b = bytes.TrimRight(b, "\x00")
	obj, err := msnp.ParseMSNObject(string(b))
	if err != nil {
		return obj, err
	}
	if obj.SHA1D == "" {
		return obj, fmt.Errorf("the Context field names no object: %q", b)
	}
	return obj, nil
}

// serveDP sends the picture after the 200 OK is acked: the data
// preparation message, then the data, each waiting for its ack; then it
// waits for the requester's BYE.
func (p *Peer) serveDP(s *p2pSession, l *p2pLink, okID uint32, dp []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	fail := func(what string, err error) {
		p.mu.Lock()
		if !s.finished {
			p.violationLocked("serving our display picture to %s: %s: %v", l.remote, what, err)
		}
		p.finishLocked(s, err)
		p.mu.Unlock()
	}
	cancelled := func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if s.finished {
			return s.err
		}
		return nil
	}
	if err := p.waitAcked(ctx, l, okID); err != nil {
		fail("no ack of our 200 OK", err)
		return
	}
	prep, err := p.sendP2P(ctx, p.sessionSB(s), l, "data preparation", p2pHeader{Session: s.id}, make([]byte, 4), p2pAppObject, true, cancelled)
	if err == nil {
		err = p.waitAcked(ctx, l, prep)
	}
	if err != nil {
		fail("data preparation", err)
		return
	}
	data, err := p.sendP2P(ctx, p.sessionSB(s), l, "display picture data", p2pHeader{Session: s.id, Flags: p2pFlagObjData}, dp, p2pAppObject, true, cancelled)
	if err == nil {
		err = p.waitAcked(ctx, l, data)
	}
	if err != nil {
		fail("data", err)
		return
	}
	if err := p.waitFor(ctx, func() bool { return s.byeSeen }); err != nil {
		fail("no BYE after the picture", err)
		return
	}
	p.mu.Lock()
	s.err = nil // the BYE ends a served session normally
	p.mu.Unlock()
}

// ErrLeft is returned by FetchDisplayPicture and SendFile when the other
// side left the switchboard before the session ended.
var ErrLeft = errors.New("msnptest: the other side left the switchboard")

// goneLocked reports whether s's other side is no longer in the
// switchboard its messages go to, so that nothing more can come.
func (p *Peer) goneLocked(s *p2pSession) bool {
	return s.sb == nil || s.sb.dead || !s.sb.members[key(s.remote)]
}

// sessionSB is the switchboard s's messages go to: the one its last
// message came in on.
func (p *Peer) sessionSB(s *p2pSession) *peerSB {
	p.mu.Lock()
	defer p.mu.Unlock()
	return s.sb
}

// newSession registers a session the Peer starts. Called with p.mu held.
func (p *Peer) newSessionLocked(l *p2pLink, kind sessionKind, sb *peerSB) *p2pSession {
	s := &p2pSession{kind: kind, callID: newSLPGUID(), branch: newSLPGUID(), remote: l.remote, sb: sb}
	for s.id == 0 || l.bySession[s.id] != nil {
		s.id = randID()
	}
	l.byCallID[s.callID] = s
	l.bySession[s.id] = s
	return s
}

// FetchDisplayPicture asks from for obj over P2P (in a switchboard with
// only them, opened when needed) and returns the data once it matches
// obj's Size and SHA1D; the Peer then sends BYE and waits for its ack.
// ErrDeclined when they decline, ErrCancelled when they send BYE first.
func (p *Peer) FetchDisplayPicture(ctx context.Context, from string, obj msnp.MSNObject) ([]byte, error) {
	sb, err := p.sbWith(ctx, from)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	l := p.link(from)
	s := p.newSessionLocked(l, kindFetchDP, sb)
	s.obj = obj
	p.mu.Unlock()
	invite, err := p.sendSLP(ctx, s, l, "INVITE MSNMSGR:"+from+" MSNSLP/1.0", 0, "application/x-msnmsgr-sessionreqbody", []slpField{
		{"EUF-GUID", eufGUIDObject},
		{"SessionID", strconv.FormatUint(uint64(s.id), 10)},
		{"AppID", "1"},
		{"Context", msnObjContext(obj.String())},
	}, true)
	if err != nil {
		return nil, err
	}
	var result []byte
	if err := p.waitFor(ctx, func() bool {
		if !s.finished && p.goneLocked(s) {
			p.finishLocked(s, ErrLeft)
		}
		result, err = s.result, s.err
		return s.finished
	}); err != nil {
		p.cancelSession(s, l)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if err := p.waitAcked(ctx, l, invite); err != nil {
		p.violation("%s never acked our display picture INVITE", from)
	}
	if err := p.waitAllAcked(ctx, l); err != nil {
		return nil, err
	}
	return result, nil
}

// waitAllAcked waits until every message sent to l is acked and records a
// violation for each that is not when ctx ends.
func (p *Peer) waitAllAcked(ctx context.Context, l *p2pLink) error {
	err := p.waitFor(ctx, func() bool {
		for _, m := range l.sent {
			if !m.acked {
				return false
			}
		}
		return true
	})
	if err != nil {
		p.mu.Lock()
		for id, m := range l.sent {
			if !m.acked {
				p.violationLocked("%s never acked our %s (id %d)", l.remote, m.what, id)
				m.acked = true
			}
		}
		p.mu.Unlock()
	}
	return err
}

// cancelSession sends BYE for a session the Peer gives up on.
func (p *Peer) cancelSession(s *p2pSession, l *p2pLink) {
	p.mu.Lock()
	done := s.finished
	p.finishLocked(s, context.Canceled)
	p.mu.Unlock()
	if !done {
		p.sendSLP(context.Background(), s, l, "BYE MSNMSGR:"+l.remote+" MSNSLP/1.0", 0, "application/x-msnmsgr-sessionclosebody", nil, false)
	}
}

// SendFile offers a file to "to" (in a switchboard with only them, opened
// when needed). It returns nil once they acked all the data and ended the
// session with BYE, ErrDeclined if they declined, ErrCancelled if they
// sent BYE before all of it.
func (p *Peer) SendFile(ctx context.Context, to, name string, data []byte) error {
	sb, err := p.sbWith(ctx, to)
	if err != nil {
		return err
	}
	p.mu.Lock()
	l := p.link(to)
	s := p.newSessionLocked(l, kindSendFile, sb)
	p.mu.Unlock()
	_, err = p.sendSLP(ctx, s, l, "INVITE MSNMSGR:"+to+" MSNSLP/1.0", 0, "application/x-msnmsgr-sessionreqbody", []slpField{
		{"EUF-GUID", eufGUIDFile},
		{"SessionID", strconv.FormatUint(uint64(s.id), 10)},
		{"AppID", "2"},
		{"Context", base64.StdEncoding.EncodeToString(encodeFileContext(name, uint64(len(data))))},
	}, true)
	if err != nil {
		return err
	}
	var finished bool
	if err := p.waitFor(ctx, func() bool {
		if !s.finished && p.goneLocked(s) {
			p.finishLocked(s, ErrLeft)
		}
		finished, err = s.finished, s.err
		return s.accepted || s.finished
	}); err != nil {
		p.cancelSession(s, l)
		return err
	}
	if finished {
		if err == ErrDeclined {
			p.waitAllAcked(ctx, l)
		}
		return err
	}
	cancelled := func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if s.finished {
			return s.err
		}
		return ctx.Err()
	}
	// Like libpurple (got_ok) and WLM, offer a direct connection first with
	// a second INVITE in the session; when the answer comes (we never
	// listen, nor connect) the data goes through the switchboard.
	p.mu.Lock()
	s.transBranch = newSLPGUID()
	trans := &p2pSession{callID: s.callID, branch: s.transBranch, sb: s.sb}
	sb = s.sb
	p.mu.Unlock()
	if _, err := p.sendSLP(ctx, trans, l, "INVITE MSNMSGR:"+to+" MSNSLP/1.0", 0, "application/x-msnmsgr-transreqbody", []slpField{
		{"Bridges", "TCPv1"},
		{"NetID", strconv.FormatUint(uint64(randID()), 10)},
		{"Conn-Type", "IP-Restrict-NAT"},
		{"UPnPNat", "false"},
		{"ICF", "false"},
		{"Hashed-Nonce", newSLPGUID()},
	}, true); err != nil {
		p.cancelSession(s, l)
		return err
	}
	transCtx, cancelTrans := context.WithTimeout(ctx, peerTimeout)
	err = p.waitFor(transCtx, func() bool { return s.transAnswered || s.finished })
	cancelTrans()
	if err != nil {
		p.violation("%s did not answer our transreqbody INVITE: %v", to, err)
	}
	id, err := p.sendP2P(ctx, sb, l, "file data", p2pHeader{Session: s.id, Flags: p2pFlagFile}, data, p2pAppFile, true, cancelled)
	acked := false
	var serr error
	if err == nil {
		err = p.waitFor(ctx, func() bool {
			if !s.finished && p.goneLocked(s) {
				p.finishLocked(s, ErrLeft)
			}
			acked, serr = l.sent[id].acked, s.err
			return acked || s.finished
		})
	}
	if err != nil {
		p.cancelSession(s, l)
		return err
	}
	if !acked {
		return serr
	}
	// The receiver ends the session with BYE.
	byeCtx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	if err := p.waitFor(byeCtx, func() bool { return s.byeSeen }); err != nil {
		p.violation("%s sent no BYE after receiving our file: %v", to, err)
	}
	return p.waitAllAcked(ctx, l)
}

// WaitIdle waits until every P2P session of the Peer has ended and every
// message it sent is acked; what is still open when ctx ends is recorded
// as a violation. Call it before Violations at the end of a test.
func (p *Peer) WaitIdle(ctx context.Context) error {
	err := p.waitFor(ctx, func() bool {
		for _, l := range p.links {
			for _, s := range l.bySession {
				if !s.finished || (s.kind == kindServeDP && !s.byeSeen) {
					return false
				}
			}
			for _, m := range l.sent {
				if !m.acked {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		p.mu.Lock()
		for _, l := range p.links {
			for _, s := range l.bySession {
				if !s.finished {
					p.violationLocked("P2P session %d with %s never ended", s.id, l.remote)
				}
			}
			for id, m := range l.sent {
				if !m.acked {
					p.violationLocked("%s never acked our %s (id %d)", l.remote, m.what, id)
				}
			}
		}
		p.mu.Unlock()
	}
	return err
}
