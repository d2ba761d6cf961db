package msnptest

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
)

// The switchboard server, as Escargot's front/msn/msnp_sb.py and the
// transcripts show it (FACTS.md §6): XFR SB and RNG hand out cookies that
// live 120 s; USR opens a session, ANS joins one, CAL rings a contact over
// the notification server, MSG is relayed verbatim and ACKed
// unconditionally, OUT and dropped connections become BYE for the others.
// On MSNP16+ (sso_msnp18.txt) USR and ANS name an endpoint, "email;{guid}",
// and IRO, JOI and BYE list each endpoint ("email;{guid}") as well as the
// account itself (the bare "email").

// sbAuthTimeout is how long a switchboard connection may stay
// unauthenticated, as on Escargot.
const sbAuthTimeout = 60 * time.Second

// sbTicketLife is how long XFR and RNG cookies live.
const sbTicketLife = 120 * time.Second

// sbState is the switchboard's part of Server, guarded by Server.mu.
type sbState struct {
	ln        net.Listener
	conns     map[*sbConn]struct{}
	sessions  map[string]*sbSession
	idle      time.Duration
	refuseCAL int
	dropNext  map[string]bool // by lower-cased passport
	nakNext   map[string]bool
	delivered map[string][]Delivery
	received  map[string][]msnp.Command
	opened    int
}

// Delivery is a message the switchboard relayed to an account.
type Delivery struct {
	From    string // the sender's passport
	Payload []byte
}

// sbSession is one switchboard session: its participants in join order.
type sbSession struct {
	id      string
	members []*sbConn
	timer   *time.Timer
	last    time.Time
	ended   bool
}

// sbConn is one switchboard connection. Its fields are guarded by
// Server.mu, as nsConn's are; output goes through writeLoop.
type sbConn struct {
	s    *Server
	conn net.Conn
	out  chan []byte
	quit chan struct{}
	once sync.Once

	dead     bool
	flushing bool // closeAfterFlush queued the end: the writer closes
	acct     *account
	dialect  int
	guid     string  // MSNP16+: the endpoint's machine GUID, lower case, no braces
	ns       *nsConn // the notification session its cookie was issued to
	sess     *sbSession
}

func (s *Server) startSwitchboard() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return // XFR SB keeps handing out the dead address
	}
	s.sb = sbState{
		ln:        ln,
		conns:     map[*sbConn]struct{}{},
		sessions:  map[string]*sbSession{},
		dropNext:  map[string]bool{},
		nakNext:   map[string]bool{},
		delivered: map[string][]Delivery{},
		received:  map[string][]msnp.Command{},
	}
	s.sbAddr = ln.Addr().String()
	s.wg.Add(1)
	go s.sbAcceptLoop(ln)
}

// SBAddr returns the switchboard's host:port.
func (s *Server) SBAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sbAddr
}

func (s *Server) sbAcceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		c := &sbConn{s: s, conn: conn, out: make(chan []byte, outQueue), quit: make(chan struct{})}
		s.sb.conns[c] = struct{}{}
		s.wg.Add(2)
		s.mu.Unlock()
		conn.SetReadDeadline(time.Now().Add(sbAuthTimeout))
		go c.readLoop()
		go c.writeLoop()
	}
}

// closeSwitchboard ends every switchboard connection. Called with s.mu held
// from Close.
func (s *Server) closeSwitchboard() {
	if s.sb.ln == nil {
		return
	}
	s.sb.ln.Close()
	for c := range s.sb.conns {
		c.drop()
	}
	for _, ss := range s.sb.sessions {
		if ss.timer != nil {
			ss.timer.Stop()
		}
		ss.ended = true
	}
}

func (c *sbConn) readLoop() {
	s := c.s
	defer s.wg.Done()
	r := msnp.NewReader(c.conn)
	for {
		cmd, err := r.ReadCommand()
		if err != nil {
			break
		}
		s.mu.Lock()
		if c.dead {
			s.mu.Unlock()
			break
		}
		c.handle(cmd)
		s.mu.Unlock()
	}
	s.mu.Lock()
	c.leave()
	c.dead = true
	delete(s.sb.conns, c)
	flushing := c.flushing
	s.mu.Unlock()
	// After closeAfterFlush the writer still owes the client what was
	// queued (the idle BYE, say); it closes the connection itself.
	if !flushing {
		c.once.Do(func() { close(c.quit) })
		c.conn.Close()
	}
}

func (c *sbConn) writeLoop() {
	defer c.s.wg.Done()
	defer c.conn.Close()
	for {
		select {
		case b := <-c.out:
			if b == nil {
				return
			}
			c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := c.conn.Write(b); err != nil {
				return
			}
		case <-c.quit:
			return
		}
	}
}

func (c *sbConn) enqueue(b []byte) {
	if c.dead {
		return
	}
	select {
	case c.out <- b:
	default:
		c.drop()
	}
}

func (c *sbConn) send(parts ...string) { c.enqueue(wireLine(parts)) }

func (c *sbConn) sendPayload(payload []byte, parts ...string) { c.enqueue(payloadLine(payload, parts)) }

// closeAfterFlush leaves the session (telling the others when bye) and
// closes the connection once its queued output is written.
func (c *sbConn) closeAfterFlush() {
	if c.dead {
		return
	}
	c.leave()
	select {
	case c.out <- nil:
		c.dead = true
		c.flushing = true
	default:
		c.drop()
	}
}

// drop closes the connection at once; the reader then leaves the session.
func (c *sbConn) drop() {
	c.dead = true
	c.once.Do(func() { close(c.quit) })
	c.conn.Close()
}

// leave takes c out of its session: the others get "BYE email" and the
// session ends with its last participant. Idempotent.
func (c *sbConn) leave() {
	ss := c.sess
	if ss == nil {
		return
	}
	c.sess = nil
	for i, m := range ss.members {
		if m == c {
			ss.members = append(ss.members[:i:i], ss.members[i+1:]...)
			break
		}
	}
	if !ss.ended {
		last := !ss.has(c.acct)
		for _, m := range ss.members {
			if m.dialect >= 16 && c.guid != "" {
				m.send("BYE", c.acct.email+";{"+c.guid+"}")
			}
			if last {
				m.send("BYE", c.acct.email)
			}
		}
	}
	if len(ss.members) == 0 {
		c.s.endSession(ss)
	}
	c.s.notifyChanged()
}

func (s *Server) endSession(ss *sbSession) {
	ss.ended = true
	if ss.timer != nil {
		ss.timer.Stop()
	}
	if s.sb.sessions[ss.id] == ss {
		delete(s.sb.sessions, ss.id)
	}
}

// has reports whether one of a's endpoints is in the session.
func (ss *sbSession) has(a *account) bool {
	for _, m := range ss.members {
		if m.acct == a {
			return true
		}
	}
	return false
}

// hasEndpoint reports whether the endpoint (notification session) ns is
// in the session, as Escargot compares sessions, not names.
func (ss *sbSession) hasEndpoint(ns *nsConn) bool {
	for _, m := range ss.members {
		if m.ns == ns {
			return true
		}
	}
	return false
}

// sbCaps is the client id a participant shows in IRO and JOI on MSNP12+,
// formatted for a connection speaking dialect: its notification
// session's, "0" without one.
func (s *Server) sbCaps(a *account, dialect int) string {
	caps := ""
	if ns := s.sessions[key(a.email)]; ns != nil {
		caps = ns.caps
	}
	return capsForDialect(caps, dialect)
}

// sbEndpoint splits USR's and ANS's "email;{guid}" (MSNP16+) into the
// passport and the lower-cased GUID without braces. ok is false for a
// malformed GUID or a GUID below MSNP16.
func sbEndpoint(arg string, dialect int) (email, guid string, ok bool) {
	email, g, has := strings.Cut(arg, ";")
	if !has {
		return email, "", true
	}
	if dialect < 16 || len(g) != 38 || g[0] != '{' || g[37] != '}' || !guidRE.MatchString(g[1:37]) {
		return email, "", false
	}
	return email, strings.ToLower(g[1:37]), true
}

// handle dispatches one command. Called with s.mu held.
func (c *sbConn) handle(cmd *msnp.Command) {
	s := c.s
	if c.acct != nil {
		k := key(c.acct.email)
		if len(s.sb.received[k]) < maxReceived {
			cp := msnp.Command{Name: cmd.Name, Args: append([]string(nil), cmd.Args...)}
			if cmd.Payload != nil {
				cp.Payload = append([]byte(nil), cmd.Payload...)
			}
			s.sb.received[k] = append(s.sb.received[k], cp)
		}
	}
	trid := cmd.Arg(0)
	switch cmd.Name {
	case "USR":
		c.usr(trid, msnp.Unescape(cmd.Arg(1)), cmd.Arg(2))
		return
	case "ANS":
		c.ans(trid, msnp.Unescape(cmd.Arg(1)), cmd.Arg(2), cmd.Arg(3))
		return
	case "OUT":
		c.closeAfterFlush()
		return
	}
	if c.sess == nil {
		// Nothing else is allowed before USR/ANS: Escargot closes.
		c.closeAfterFlush()
		return
	}
	c.sess.last = time.Now()
	switch cmd.Name {
	case "CAL":
		c.cal(trid, msnp.Unescape(cmd.Arg(1)))
	case "MSG":
		c.msg(trid, cmd.Arg(1), cmd.Payload)
	}
}

// ticket checks and consumes a cookie for passport (and, for ANS, the
// session it was issued for).
func (s *Server) ticket(cookie, passport, session string) (sbTicket, bool) {
	t, ok := s.sbTickets[cookie]
	if !ok || !time.Now().Before(t.expires) || key(t.passport) != key(passport) || t.session != session {
		return sbTicket{}, false
	}
	delete(s.sbTickets, cookie)
	return t, true
}

// usr opens a session. who is "email", or "email;{guid}" on MSNP16+, which
// the answer echoes as given.
func (c *sbConn) usr(trid, who, cookie string) {
	s := c.s
	if c.acct != nil {
		c.closeAfterFlush()
		return
	}
	email, _, _ := strings.Cut(who, ";")
	t, ok := s.ticket(cookie, email, "")
	a := s.accounts[key(email)]
	_, guid, okEP := sbEndpoint(who, t.dialect)
	if !ok || a == nil || !okEP {
		c.send("911", trid)
		c.closeAfterFlush()
		return
	}
	c.conn.SetReadDeadline(time.Time{})
	c.acct, c.dialect, c.guid, c.ns = a, t.dialect, guid, t.ns
	ss := &sbSession{id: newToken(31), last: time.Now()}
	s.sb.sessions[ss.id] = ss
	s.sb.opened++
	s.armIdle(ss)
	c.sess = ss
	ss.members = append(ss.members, c)
	if guid == "" {
		who = a.email
	}
	c.send("USR", trid, "OK", esc(who), esc(a.name))
	s.notifyChanged()
}

// roster is what a connection speaking dialect is told of the participants
// (IRO) or of one joining (JOI): on MSNP16+ each endpoint, "email;{guid}",
// and after an account's last endpoint the account itself, the bare
// "email"; below 16 each account once.
func (s *Server) roster(members []*sbConn, dialect int) [][]string {
	var out [][]string
	for i, m := range members {
		if dialect >= 16 && m.guid != "" {
			out = append(out, s.rosterEntry(m.acct, m.acct.email+";{"+m.guid+"}", dialect))
		}
		last := true
		for _, o := range members[i+1:] {
			last = last && o.acct != m.acct
		}
		if last {
			out = append(out, s.rosterEntry(m.acct, m.acct.email, dialect))
		}
	}
	return out
}

func (s *Server) rosterEntry(a *account, who string, dialect int) []string {
	e := []string{who, esc(a.name)}
	if dialect >= 12 {
		e = append(e, s.sbCaps(a, dialect))
	}
	return e
}

// ans joins a session. who is "email", or "email;{guid}" on MSNP16+.
func (c *sbConn) ans(trid, who, cookie, session string) {
	s := c.s
	if c.acct != nil {
		c.closeAfterFlush()
		return
	}
	email, _, _ := strings.Cut(who, ";")
	t, ok := s.ticket(cookie, email, session)
	a := s.accounts[key(email)]
	ss := s.sb.sessions[session]
	_, guid, okEP := sbEndpoint(who, t.dialect)
	if !ok || a == nil || ss == nil || ss.ended || !okEP {
		c.send("911", trid)
		c.closeAfterFlush()
		return
	}
	c.conn.SetReadDeadline(time.Time{})
	c.acct, c.dialect, c.guid, c.ns = a, t.dialect, guid, t.ns
	iro := s.roster(ss.members, c.dialect)
	n := strconv.Itoa(len(iro))
	for i, e := range iro {
		c.send(append([]string{"IRO", trid, strconv.Itoa(i + 1), n}, e...)...)
	}
	c.send("ANS", trid, "OK")
	first := !ss.has(a)
	for _, m := range ss.members {
		for _, e := range s.roster([]*sbConn{c}, m.dialect) {
			if e[0] == a.email && !first {
				continue // the account itself joined before
			}
			m.send(append([]string{"JOI"}, e...)...)
		}
	}
	if first && c.guid != "" {
		// Escargot tells an MSNP16+ endpoint that its own account joined
		// (sso_msnp18.txt: B's "JOI bob@example.com" after ANS OK).
		c.send(append([]string{"JOI"}, s.rosterEntry(a, a.email, c.dialect)...)...)
	}
	ss.members = append(ss.members, c)
	ss.last = time.Now()
	c.sess = ss
	s.notifyChanged()
}

func (c *sbConn) cal(trid, email string) {
	s := c.s
	if s.sb.refuseCAL != 0 {
		c.send(strconv.Itoa(s.sb.refuseCAL), trid)
		return
	}
	if !strings.Contains(email, "@") {
		c.send("208", trid)
		return
	}
	b := s.accounts[key(email)]
	var ns *nsConn
	if b != nil {
		ns = s.sessions[key(b.email)]
	}
	if ns == nil || ns.status == "" || ns.status == "HDN" {
		c.send("217", trid)
		return
	}
	ss := c.sess
	// Every endpoint of the invitee not yet in the session is rung, each
	// with its own cookie (MSNP16+ MPOP; below 16 there is only one);
	// with all of them in, the CAL is refused with 215. Escargot's
	// ChatSession.invite works this way, so an account can CAL itself to
	// bring its other endpoints in, as WLM 2009 does when it opens a
	// switchboard; on MSNP18, with no other endpoint to ring, Escargot
	// fakes the RINGING and the caller's own JOI instead of the 215.
	self := c.acct == b
	var ring []*nsConn
	for _, ep := range s.endpoints(key(b.email)) {
		if !ss.hasEndpoint(ep) {
			ring = append(ring, ep)
		}
	}
	if len(ring) == 0 && !(self && c.dialect >= 18) {
		c.send("215", trid)
		return
	}
	c.send("CAL", trid, "RINGING", ss.id)
	if self && c.dialect >= 18 {
		for _, e := range s.roster([]*sbConn{c}, c.dialect) {
			c.send(append([]string{"JOI"}, e...)...)
		}
	}
	// MSNP13+ add the Passport domain, 14+ the "direct TCP allowed"
	// flag, as XFR does.
	for _, ep := range ring {
		cookie := newToken(20)
		s.sbTickets[cookie] = sbTicket{passport: b.email, dialect: ep.dialect, expires: time.Now().Add(sbTicketLife), session: ss.id, ns: ep}
		parts := []string{"RNG", ss.id, s.sbAddr, "CKI", cookie, c.acct.email, esc(c.acct.name)}
		switch {
		case ep.dialect >= 14:
			parts = append(parts, "U", "messenger.hotmail.com", "1")
		case ep.dialect >= 13:
			parts = append(parts, "U", "messenger.hotmail.com")
		}
		ep.send(parts...)
	}
}

func (c *sbConn) msg(trid, ack string, payload []byte) {
	s := c.s
	if payload == nil || len(payload) > msnp.SwitchboardMaxMessage {
		c.closeAfterFlush()
		return
	}
	switch ack {
	case "U", "N", "A", "D":
	default:
		c.closeAfterFlush()
		return
	}
	if ack != "D" {
		if m, err := msnp.ParseMessage(payload); err == nil && m.ContentType() == msnp.ContentTypeP2P {
			c.closeAfterFlush()
			return
		}
	}
	k := key(c.acct.email)
	if s.sb.dropNext[k] {
		// The message was read and is lost with the connection.
		delete(s.sb.dropNext, k)
		c.drop()
		return
	}
	if s.sb.nakNext[k] {
		delete(s.sb.nakNext, k)
		c.send("NAK", trid)
		return
	}
	for _, m := range c.sess.members {
		if m == c {
			continue
		}
		m.sendPayload(payload, "MSG", c.acct.email, esc(c.acct.name))
		mk := key(m.acct.email)
		if len(s.sb.delivered[mk]) < maxReceived {
			s.sb.delivered[mk] = append(s.sb.delivered[mk], Delivery{From: c.acct.email, Payload: append([]byte(nil), payload...)})
		}
	}
	if ack == "A" || ack == "D" {
		c.send("ACK", trid)
	}
	s.notifyChanged()
}

// armIdle starts the session's idle timer when an idle timeout is set.
func (s *Server) armIdle(ss *sbSession) {
	d := s.sb.idle
	if d <= 0 || ss.ended {
		return
	}
	if ss.timer != nil {
		ss.timer.Reset(d)
		return
	}
	ss.timer = time.AfterFunc(d, func() { s.idleFired(ss) })
}

// idleFired ends a session nobody spoke in for the idle timeout, as real
// MSN did: every participant is told "BYE email 1" for each of the others
// and disconnected.
func (s *Server) idleFired(ss *sbSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss.ended || s.closed || s.sb.idle <= 0 {
		return
	}
	if left := s.sb.idle - time.Since(ss.last); left > 0 {
		ss.timer.Reset(left)
		return
	}
	members := append([]*sbConn(nil), ss.members...)
	s.endSession(ss)
	for _, m := range members {
		for i, o := range members {
			if o == m {
				continue
			}
			// On MSNP16+ each endpoint leaves, then the account with its
			// last one (Escargot's on_idle_increment and
			// on_participant_left); m's own account stays.
			if m.dialect >= 16 && o.guid != "" {
				m.send("BYE", o.acct.email+";{"+o.guid+"}", "1")
			}
			last := o.acct != m.acct
			for _, x := range members[i+1:] {
				last = last && x.acct != o.acct
			}
			if last {
				m.send("BYE", o.acct.email, "1")
			}
		}
	}
	for _, m := range members {
		m.closeAfterFlush()
	}
	s.notifyChanged()
}

// SetSBIdleTimeout makes switchboard sessions end after d without a
// command from any participant: each participant gets "BYE email 1" for
// the others and is disconnected. 0 (the default) turns it off.
func (s *Server) SetSBIdleTimeout(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sb.idle = d
	for _, ss := range s.sb.sessions {
		s.armIdle(ss)
	}
}

// DropSwitchboards closes the passport's switchboard connections abruptly,
// like a network failure; the others in those sessions get "BYE email".
// It returns how many connections it dropped.
func (s *Server) DropSwitchboards(passport string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.sb.conns {
		if c.acct != nil && key(c.acct.email) == key(passport) && !c.dead {
			c.drop()
			n++
		}
	}
	return n
}

// DropNextMessage makes the switchboard close the passport's connection
// right after reading its next MSG, before relaying or acknowledging it.
func (s *Server) DropNextMessage(passport string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sb.dropNext[key(passport)] = true
}

// NAKNext makes the switchboard answer the passport's next MSG with NAK
// (and not relay it), which Escargot itself never does.
func (s *Server) NAKNext(passport string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sb.nakNext[key(passport)] = true
}

// RefuseCAL makes every CAL fail with code (e.g. 217, 215, 280); 0
// restores normal calls.
func (s *Server) RefuseCAL(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sb.refuseCAL = code
}

// Delivered returns the messages the switchboard relayed to the passport,
// oldest first.
func (s *Server) Delivered(passport string) []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.sb.delivered[key(passport)]...)
}

// WaitDelivered waits until at least n messages were relayed to the
// passport and returns them all.
func (s *Server) WaitDelivered(ctx context.Context, passport string, n int) ([]Delivery, error) {
	var out []Delivery
	err := s.waitFor(ctx, func() bool {
		d := s.sb.delivered[key(passport)]
		if len(d) < n {
			return false
		}
		out = append([]Delivery(nil), d...)
		return true
	})
	return out, err
}

// SBReceived returns the commands the switchboard read from the passport's
// connections (after USR or ANS named it), oldest first.
func (s *Server) SBReceived(passport string) []msnp.Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]msnp.Command(nil), s.sb.received[key(passport)]...)
}

// SwitchboardsOpened counts the sessions USR has opened so far.
func (s *Server) SwitchboardsOpened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sb.opened
}

// SBParticipants returns the passports in the passport's switchboard
// sessions, per session, in join order.
func (s *Server) SBParticipants(passport string) [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]string
	for _, ss := range s.sb.sessions {
		var names []string
		in := false
		for _, m := range ss.members {
			names = append(names, m.acct.email)
			in = in || key(m.acct.email) == key(passport)
		}
		if in {
			out = append(out, names)
		}
	}
	return out
}

// WaitSBSessions waits until the passport is in exactly n switchboard
// sessions.
func (s *Server) WaitSBSessions(ctx context.Context, passport string, n int) error {
	return s.waitFor(ctx, func() bool {
		count := 0
		for _, ss := range s.sb.sessions {
			for _, m := range ss.members {
				if key(m.acct.email) == key(passport) {
					count++
					break
				}
			}
		}
		return count == n
	})
}

// WaitSBParticipants waits until one of the passport's switchboard
// sessions holds exactly n participants.
func (s *Server) WaitSBParticipants(ctx context.Context, passport string, n int) error {
	return s.waitFor(ctx, func() bool {
		for _, ss := range s.sb.sessions {
			in := false
			for _, m := range ss.members {
				in = in || key(m.acct.email) == key(passport)
			}
			if in && len(ss.members) == n {
				return true
			}
		}
		return false
	})
}
