package msnptest

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
)

// outQueue bounds what the server buffers for one client. A test client
// that stops reading for this many lines is dropped rather than letting the
// server's memory grow.
const outQueue = 4096

// writeTimeout bounds one write to a client.
const writeTimeout = 10 * time.Second

// nsConn is one notification-server connection. Fields after the channels
// are guarded by Server.mu: every command is handled with the lock held,
// and output is queued (in order) for writeLoop, so no network write ever
// happens under the lock.
type nsConn struct {
	s        *Server
	conn     net.Conn
	out      chan []byte // a nil entry means: close after what came before
	quit     chan struct{}
	once     sync.Once
	dead     bool // no more input is handled and no more output queued
	flushing bool // closeAfterFlush queued the end: the writer closes
	dialect  int
	usrEmail string
	acct     *account // set at USR OK
	status   string   // "" until the first CHG
	caps     string
	msnobj   string // as the client sent it (escaped), "" for none
	ilnSent  bool
	synSent  bool
	ser      int
	chl      string          // outstanding challenge
	seen     map[string]bool // contacts this client was told are online
	early    []msnp.Command  // commands read before USR I named the account
	nonce    string          // SSO: the MBI nonce of USR SSO S
	guid     string          // MSNP16+: the machine GUID, lower case, no braces
	tok      string          // the token this session logged in with (ABCH auth)
	uuxGUID  string          // MSNP13+: the MachineGuid of the last UUX, as sent
	private  string          // MSNP16+: the PrivateEndpointData the endpoint sent (raw XML)
}

func newConn(s *Server, c net.Conn) *nsConn {
	return &nsConn{
		s: s, conn: c,
		out:  make(chan []byte, outQueue),
		quit: make(chan struct{}),
		seen: make(map[string]bool),
	}
}

func (c *nsConn) readLoop() {
	defer c.s.wg.Done()
	r := msnp.NewReader(c.conn)
	for {
		cmd, err := r.ReadCommand()
		if err != nil {
			break
		}
		c.s.mu.Lock()
		if c.dead {
			c.s.mu.Unlock()
			break
		}
		c.record(cmd)
		c.handle(cmd)
		c.s.mu.Unlock()
	}
	c.s.mu.Lock()
	c.hangup()
	delete(c.s.conns, c)
	flushing := c.flushing
	c.s.mu.Unlock()
	// After closeAfterFlush the writer still owes the client what was
	// queued (OUT OTH, say); it closes the connection itself.
	if !flushing {
		c.once.Do(func() { close(c.quit) })
	}
}

func (c *nsConn) writeLoop() {
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

// record keeps cmd for Server.Received.
func (c *nsConn) record(cmd *msnp.Command) {
	cp := msnp.Command{Name: cmd.Name, Args: append([]string(nil), cmd.Args...)}
	if cmd.Payload != nil {
		cp.Payload = append([]byte(nil), cmd.Payload...)
	}
	if c.usrEmail == "" {
		if len(c.early) < 64 {
			c.early = append(c.early, cp)
		}
		return
	}
	k := key(c.usrEmail)
	if len(c.s.received[k]) < maxReceived {
		c.s.received[k] = append(c.s.received[k], cp)
		c.s.notifyChanged()
	}
}

// maxReceived bounds what Received keeps per account; later commands are
// not recorded.
const maxReceived = 1 << 16

// enqueue queues raw bytes; a client too slow to drain its queue is dropped.
func (c *nsConn) enqueue(b []byte) {
	if c.dead {
		return
	}
	select {
	case c.out <- b:
	default:
		c.drop()
	}
}

// send queues one line (see wireLine).
func (c *nsConn) send(parts ...string) { c.enqueue(wireLine(parts)) }

// sendPayload queues a payload command (see payloadLine).
func (c *nsConn) sendPayload(payload []byte, parts ...string) { c.enqueue(payloadLine(payload, parts)) }

// wireLine renders one command line. The parts are written as given, joined by
// single blanks: an empty last part gives Escargot's trailing blank
// ("LST ... 11 "). The notification server and the switchboard share it.
func wireLine(parts []string) []byte { return []byte(strings.Join(parts, " ") + "\r\n") }

// payloadLine renders a line whose last token is len(payload), then payload.
func payloadLine(payload []byte, parts []string) []byte {
	b := make([]byte, 0, 64+len(payload))
	b = append(b, strings.Join(parts, " ")...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, '\r', '\n')
	return append(b, payload...)
}

// closeAfterFlush ends the session now and closes the connection once what
// is queued has been written.
func (c *nsConn) closeAfterFlush() {
	if c.dead {
		return
	}
	select {
	case c.out <- nil:
		c.hangup()
		c.dead = true
		c.flushing = true
	default:
		c.drop()
	}
}

// drop ends the session and closes the connection at once.
func (c *nsConn) drop() {
	c.hangup()
	c.dead = true
	c.once.Do(func() { close(c.quit) })
	c.conn.Close()
}

// hangup ends the connection's session: it is no longer the account's
// session, and those watching it see it go offline. Idempotent.
func (c *nsConn) hangup() {
	c.dead = true
	if c.acct == nil {
		return
	}
	k := key(c.acct.email)
	if c.s.sessions[k] == c {
		delete(c.s.sessions, k)
		if eps := c.s.endpoints(k); len(eps) > 0 {
			// Another endpoint (MPOP) stays signed in: it speaks for
			// the account now.
			c.s.sessions[k] = eps[len(eps)-1]
			c.s.fanOutStatus(c.acct, true)
		} else {
			c.s.fanOutStatus(c.acct, false)
		}
		c.s.notifyChanged()
	}
}

// esc escapes free text for output the way Escargot does: '%', blanks,
// CR and LF only, so UTF-8 goes out raw (FACTS.md §0).
func esc(s string) string {
	r := strings.NewReplacer("%", "%25", " ", "%20", "\r", "%0D", "\n", "%0A")
	return r.Replace(s)
}

var guidRE = regexp.MustCompile(`^[A-Fa-f0-9]{8}-([A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}`)

// handle dispatches one command. Called with s.mu held.
func (c *nsConn) handle(cmd *msnp.Command) {
	trid := cmd.Arg(0)
	// args are the arguments after the transaction id, unescaped as
	// Escargot unescapes every argument.
	var args []string
	if len(cmd.Args) > 1 {
		for _, a := range cmd.Args[1:] {
			args = append(args, msnp.Unescape(a))
		}
	}
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	switch cmd.Name {
	case "VER":
		c.ver(trid, cmd.Args)
		return
	case "CVR":
		// Escargot reads args[5] and throws, sending nothing, with fewer.
		if len(args) < 6 {
			return
		}
		v := esc(args[5])
		c.send("CVR", trid, v, v, v, "https://escargot.log1p.xyz", "https://escargot.log1p.xyz")
		return
	case "USR":
		c.usr(trid, args)
		return
	case "OUT":
		c.closeAfterFlush()
		return
	case "PNG":
		if c.acct == nil {
			c.closeAfterFlush()
			return
		}
		if c.dialect >= 9 {
			c.send("QNG", "60")
		} else {
			c.send("QNG")
		}
		return
	case "QRY":
		c.qry(trid, arg(0), cmd.Payload)
		return
	}
	if c.acct == nil {
		// Escargot's handlers assert a session and the failure is only
		// logged: no reply.
		return
	}
	switch cmd.Name {
	case "SYN":
		c.syn(trid, args)
	case "GTC":
		c.gtc(trid, arg(0))
	case "BLP":
		c.blp(trid, arg(0))
	case "CHG":
		if len(args) < 1 {
			return
		}
		c.chg(trid, args[0], cmd.Arg(2), cmd.Arg(3))
	case "UUX":
		c.uux(trid, cmd.Payload)
	case "PRP":
		c.prp(trid, arg(0), arg(1), len(args) > 1)
	case "REA":
		c.rea(trid, arg(0), arg(1))
	case "ADD":
		c.add(trid, args)
	case "ADC":
		c.adc(trid, args)
	case "REM":
		c.rem(trid, args)
	case "ADL":
		c.adl(trid, cmd.Payload)
	case "RML":
		c.rml(trid, cmd.Payload)
	case "FQY":
		c.fqy(trid, cmd.Payload)
	case "UUM":
		c.uum(args, cmd.Payload)
	case "XFR":
		c.xfr(trid, arg(0))
	case "SBP":
		if c.dialect < 10 {
			c.closeAfterFlush()
			return
		}
		if len(cmd.Args) >= 4 {
			c.send("SBP", trid, cmd.Args[1], cmd.Args[2], cmd.Args[3])
		}
	case "URL":
		c.send("URL", trid, "/unused1", "/unused2", "1")
	case "GCF":
		if c.dialect < 11 {
			c.closeAfterFlush()
			return
		}
		if !c.synSent {
			c.send("715", trid)
			return
		}
		c.sendPayload([]byte(shieldsXML), "GCF", trid, cmd.Arg(1))
	}
}

func (c *nsConn) ver(trid string, offered []string) {
	if c.dialect != 0 {
		c.send("715", trid)
		c.closeAfterFlush()
		return
	}
	if _, err := strconv.Atoi(trid); err != nil {
		c.closeAfterFlush()
		return
	}
	best := 0
	for _, o := range offered[min(1, len(offered)):] {
		o = strings.ToUpper(o)
		if !strings.HasPrefix(o, "MSNP") {
			continue
		}
		v, err := strconv.Atoi(o[4:])
		if err != nil || !c.s.versions[v] {
			continue
		}
		// Escargot prefers 18…2 over the nominal 19–21.
		if rank(v) > rank(best) {
			best = v
		}
	}
	if best == 0 {
		c.send("VER", trid, "0")
		c.closeAfterFlush()
		return
	}
	c.dialect = best
	c.send("VER", trid, "MSNP"+strconv.Itoa(best))
}

func rank(v int) int {
	switch {
	case v == 0:
		return 0
	case v >= 19:
		return v - 18
	default:
		return v + 10
	}
}

func (c *nsConn) usr(trid string, args []string) {
	if len(args) < 2 {
		c.send("911", trid)
		c.closeAfterFlush()
		return
	}
	authType, stage := args[0], args[1]
	if authType == "SSO" {
		c.usrSSO(trid, args)
		return
	}
	if authType != "TWN" || c.dialect < 8 || c.dialect >= 15 {
		// MD5 on MSNP8+, SSO below 15, TWN outside 8–14: Escargot closes.
		c.closeAfterFlush()
		return
	}
	if c.acct != nil {
		c.send("205", trid)
		return
	}
	switch stage {
	case "I":
		if len(args) < 3 || !strings.Contains(args[2], "@") {
			c.send("911", trid)
			c.closeAfterFlush()
			return
		}
		c.nameAccount(args[2])
		if c.s.refuse != 0 {
			c.send(strconv.Itoa(c.s.refuse), trid)
			c.closeAfterFlush()
			return
		}
		if c.dialect >= 13 {
			// Escargot sends its policies first (twn_msnp13.txt).
			c.sendPayload([]byte(policiesXML), "GCF", "0")
		}
		c.send("USR", trid, "TWN", "S", "ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1")
	case "S":
		if len(args) < 3 || c.usrEmail == "" {
			c.send("911", trid)
			c.closeAfterFlush()
			return
		}
		tok := args[2]
		if strings.HasPrefix(tok, "t=") {
			tok = tok[2:min(22, len(tok))]
		}
		t, ok := c.s.tokens[tok]
		if !ok || !time.Now().Before(t.expires) || key(t.passport) != key(c.usrEmail) {
			c.send("911", trid)
			c.closeAfterFlush()
			return
		}
		c.login(trid, c.s.accounts[key(t.passport)], tok)
	default:
		c.send("911", trid)
		c.closeAfterFlush()
	}
}

// nameAccount records the account USR I names, and files the commands
// read before it under that account.
func (c *nsConn) nameAccount(email string) {
	if c.usrEmail == "" {
		c.usrEmail = email
		k := key(c.usrEmail)
		c.s.received[k] = append(c.s.received[k], c.early...)
		c.early = nil
		c.s.notifyChanged()
	}
	c.usrEmail = email
}

// login completes USR: it boots the account's other session (OUT OTH),
// then sends USR OK, SBS (11+) and the profile MSG, as Escargot's
// _util_usr_final does.
func (c *nsConn) login(trid string, a *account, tok string) {
	k := key(a.email)
	// Escargot's rule: an MSNP16+ login with a machine GUID signs in
	// beside the others (MPOP) unless one of them has that GUID or none
	// (a session below 16); then, like any login below 16, it boots them
	// all.
	others := c.s.endpoints(k)
	bootAll := c.dialect < 16
	for _, old := range others {
		if old.dialect < 16 || old.guid == c.guid {
			bootAll = true
		}
	}
	for _, old := range others {
		if bootAll {
			old.send("OUT", "OTH")
			old.closeAfterFlush()
		}
	}
	c.acct = a
	c.tok = tok
	c.s.sessions[k] = c
	c.s.notifyChanged()
	if c.dialect < 10 {
		c.send("USR", trid, "OK", a.email, esc(a.name), "1", "0")
	} else {
		c.send("USR", trid, "OK", a.email, "1", "0")
	}
	if c.dialect >= 11 {
		c.send("SBS", "0", "null")
	}
	high, low := memberID(a.uuid)
	ip, port := "127.0.0.1", "0"
	if ra, ok := c.conn.RemoteAddr().(*net.TCPAddr); ok {
		ip, port = ra.IP.String(), strconv.Itoa(ra.Port)
	}
	mpop := 0
	if c.guid != "" {
		mpop = 1
	}
	profile := fmt.Sprintf(profileTemplate, time.Now().Unix(), high, low, tok, ip, port, mpop)
	c.sendPayload(crlf(profile), "MSG", "Hotmail", "Hotmail")
	if c.dialect >= 16 {
		// The empty self-UBX of MSNP16+ (FACTS.md §1.4).
		c.send(append(append([]string{"UBX"}, c.who(a.email)...), "0")...)
	}
	if c.s.challenge {
		c.chl = challengeDigits()
		c.send("CHL", "0", c.chl)
	}
}

func (c *nsConn) qry(trid, productID string, payload []byte) {
	if c.chl == "" {
		return // Escargot ignores QRY without a reply.
	}
	chl := c.chl
	c.chl = ""
	if !checkChallenge(c.dialect, chl, productID, string(payload)) {
		c.send("540", trid)
		c.closeAfterFlush()
		return
	}
	c.send("QRY", trid)
}

// nextSer returns the next list version on MSNP≤9 and "" (no token) on 10+.
func (c *nsConn) nextSer() string {
	if c.dialect >= 10 {
		return ""
	}
	c.ser++
	return strconv.Itoa(c.ser)
}

// line builds a command line from parts, leaving out empty optional parts
// marked by omit (the way Escargot leaves out None).
func line(parts ...string) []string {
	out := parts[:0:0]
	for _, p := range parts {
		if p != omit {
			out = append(out, p)
		}
	}
	return out
}

// omit marks an absent optional token for line.
const omit = "\x00"

func orOmit(s string) string {
	if s == "" {
		return omit
	}
	return s
}

const synTimestamp = "2000-01-01T00:00:00.0-00:00"

func (c *nsConn) syn(trid string, args []string) {
	a := c.acct
	c.synSent = true
	switch {
	case c.dialect < 10:
		n, _ := strconv.Atoi(firstOr(args, "0"))
		c.ser = n
		ser := c.nextSer()
		c.send("SYN", trid, ser, strconv.Itoa(len(a.order)), "1")
		c.send("GTC", or(a.gtc, "A"))
		c.send("BLP", or(a.blp, "AL"))
		c.send("LSG", "0", "Other%20Contacts", "0")
		for _, k := range a.order {
			ct := a.contacts[k]
			b := c.s.accounts[k]
			c.send("LST", b.email, esc(b.name), strconv.Itoa(ct.lists), "0")
		}
	case c.dialect <= 12:
		c.send("SYN", trid, synTimestamp, synTimestamp, strconv.Itoa(len(a.order)), "0")
		c.send("GTC", or(a.gtc, "A"))
		c.send("BLP", or(a.blp, "AL"))
		c.send("PRP", "MFN", esc(a.name))
		for _, k := range a.order {
			ct := a.contacts[k]
			b := c.s.accounts[k]
			lists := ct.lists
			if ct.pending {
				lists = (lists | listPL) &^ listRL
			}
			cid := omit
			if ct.lists&listFL != 0 {
				cid = "C=" + b.uuid
			}
			nid := omit
			if c.dialect >= 12 {
				nid = "1"
			}
			// The empty group list leaves Escargot's trailing blank.
			c.send(line("LST", "N="+b.email, "F="+esc(b.name), cid, strconv.Itoa(lists), nid, "")...)
		}
	default:
		c.send("502", trid)
	}
}

func firstOr(s []string, d string) string {
	if len(s) > 0 {
		return s[0]
	}
	return d
}

func or(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (c *nsConn) gtc(trid, v string) {
	if c.dialect >= 13 || (v != "A" && v != "N") {
		c.closeAfterFlush()
		return
	}
	if c.acct.gtc == v {
		c.send("218", trid)
		return
	}
	c.acct.gtc = v
	c.send(line("GTC", trid, orOmit(c.nextSer()), v)...)
}

func (c *nsConn) blp(trid, v string) {
	if v != "AL" && v != "BL" {
		c.closeAfterFlush()
		return
	}
	if c.acct.blp == v && c.dialect < 13 {
		c.send("218", trid)
		return
	}
	c.acct.blp = v
	c.send(line("BLP", trid, orOmit(c.nextSer()), v)...)
	c.s.refreshWatchers(c.acct)
}

var msnStatuses = map[string]bool{
	"NLN": true, "BSY": true, "IDL": true, "BRB": true, "AWY": true,
	"PHN": true, "LUN": true, "HDN": true, "FLN": true,
}

func (c *nsConn) chg(trid, status, caps, msnobj string) {
	if !msnStatuses[status] {
		c.closeAfterFlush()
		return
	}
	if status == "FLN" {
		c.send("201", trid)
		return
	}
	if caps == "" {
		return // Escargot drops CHG without a client id on MSNP8+.
	}
	if base, _, _ := strings.Cut(caps, ":"); !validCaps(base) {
		return
	}
	old, oldObj := c.status, c.msnobj
	c.status, c.caps, c.msnobj = status, caps, msnobj
	// With several endpoints (MPOP) the account has one presence: the
	// one its latest CHG set, as on Escargot.
	c.s.sessions[key(c.acct.email)] = c
	if msnobj == caps {
		// Escargot's test for "no object" (libpurple sends a literal 0).
		c.msnobj = ""
	}
	// Escargot tells the contacts when the status changed or the client
	// set a new object (a display picture: its msnp_ns.py _m_chg passes
	// refresh_profile), without UBX; the same status and object again,
	// or a new client id alone, go unnoticed.
	if old != status || oldObj != c.msnobj {
		c.s.fanOutStatus(c.acct, false)
	}
	c.s.notifyChanged()
	if c.dialect >= 9 && msnobj != "" {
		c.send("CHG", trid, status, caps, msnobj)
	} else {
		c.send("CHG", trid, status, caps)
	}
	if !c.ilnSent {
		c.ilnSent = true
		a := c.acct
		for _, k := range a.order {
			if a.contacts[k].lists&listFL == 0 {
				continue
			}
			b := c.s.accounts[k]
			if c.s.seenStatus(b, a) == "FLN" {
				continue
			}
			c.seen[k] = true
			c.presence(trid, b, true)
		}
		if c.dialect >= 11 {
			c.sendPayload(c.s.initialMail(c.acct), "MSG", "Hotmail", "Hotmail")
		}
	}
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", `"`, "&quot;").Replace(s)
}

// seenStatus is the presence of b as watcher w sees it: "FLN" when b is
// offline, hidden, has not sent CHG, blocks w, or allows only its AL.
func (s *Server) seenStatus(b, w *account) string {
	bs := s.sessions[key(b.email)]
	if bs == nil || bs.status == "" || bs.status == "HDN" {
		return "FLN"
	}
	ct := b.contacts[key(w.email)]
	if ct != nil && ct.lists&listBL != 0 {
		return "FLN"
	}
	if b.blp == "BL" && (ct == nil || ct.lists&listAL == 0) {
		return "FLN"
	}
	return bs.status
}

// watchers returns the sessions that have b on their FL or AL (Escargot's
// test) and have had their initial presence dump (Escargot tells no one
// before that).
func (s *Server) watchers(b *account) []*nsConn {
	var out []*nsConn
	for ws := range s.conns {
		if ws.dead || ws.acct == nil || !ws.ilnSent {
			continue
		}
		if key(ws.acct.email) == key(b.email) {
			// MSNP16+ endpoints hear of their own account, the one that
			// changed it included (sso_msnp18.txt).
			if ws.dialect >= 16 {
				out = append(out, ws)
			}
			continue
		}
		if ct := ws.acct.contacts[key(b.email)]; ct != nil && ct.lists&(listFL|listAL) != 0 {
			out = append(out, ws)
		}
	}
	return out
}

// fanOutStatus tells b's watchers b's presence after a CHG, a name or PSM
// change, or a logout: NLN (and UBX on MSNP11+ when withUBX) to those who
// see b online, FLN to those from whose sight b just went.
//
// Escargot batches these notifications every 0.2 s, so a CHG quickly
// followed by a UUX reaches the watchers as one NLN and UBX; this server
// sends each at once, which a client must handle just as well.
func (s *Server) fanOutStatus(b *account, withUBX bool) {
	k := key(b.email)
	for _, ws := range s.watchers(b) {
		if s.seenStatus(b, ws.acct) == "FLN" {
			if ws.seen[k] {
				delete(ws.seen, k)
				ws.sendFLN(b)
			}
			continue
		}
		ws.seen[k] = true
		ws.presence("", b, withUBX)
	}
}

// refreshWatchers re-evaluates what b's watchers may see after b changed
// its lists or BLP, telling only those whose view changed.
func (s *Server) refreshWatchers(b *account) {
	k := key(b.email)
	for _, ws := range s.watchers(b) {
		online := s.seenStatus(b, ws.acct) != "FLN"
		switch {
		case online && !ws.seen[k]:
			ws.seen[k] = true
			ws.presence("", b, true)
		case !online && ws.seen[k]:
			delete(ws.seen, k)
			ws.sendFLN(b)
		}
	}
}

type uuxData struct {
	XMLName      xml.Name
	PSM          *string `xml:"PSM"`
	CurrentMedia *string `xml:"CurrentMedia"`
	MachineGUID  *string `xml:"MachineGuid"`
	Inner        string  `xml:",innerxml"`
}

func (c *nsConn) uux(trid string, payload []byte) {
	var d uuxData
	if err := xml.Unmarshal(payload, &d); err != nil {
		return // Escargot's XML parser throws: no reply.
	}
	a := c.acct
	if d.PSM != nil {
		a.psm = *d.PSM
	}
	if d.CurrentMedia != nil {
		a.media = *d.CurrentMedia
	}
	if d.MachineGUID != nil && c.dialect >= 13 {
		c.uuxGUID = *d.MachineGUID
	}
	if d.XMLName.Local == "PrivateEndpointData" && c.dialect >= 16 {
		// The second UUX of 16+: this endpoint's name and state, read
		// (as Escargot does) from the root's children.
		c.private = d.Inner
	}
	if c.status != "" {
		// A new PSM is a status notification with the info: NLN, then
		// UBX on MSNP11+ (sso_msnp15.txt).
		c.s.fanOutStatus(a, true)
	}
	c.send("UUX", trid, "0")
}

func (c *nsConn) prp(trid, k, v string, hasValue bool) {
	if c.dialect < 5 {
		c.closeAfterFlush()
		return
	}
	if k == "MFN" {
		if c.dialect < 10 {
			c.send("715", trid)
			return
		}
		if v == "" {
			c.send("209", trid) // nickname change illegal
			return
		}
		c.setName(v)
	}
	val := omit
	if hasValue {
		val = esc(v)
	}
	c.send(line("PRP", trid, orOmit(c.nextSer()), k, val)...)
}

func (c *nsConn) setName(name string) {
	c.acct.name = name
	if c.status != "" {
		c.s.fanOutStatus(c.acct, false)
	}
}

func (c *nsConn) rea(trid, email, name string) {
	if c.dialect >= 10 {
		c.send("502", trid)
		return
	}
	if name == "" {
		// An empty name cannot be sent back (USR OK, ILN and LST carry
		// it as an argument): refused, "nickname change illegal".
		c.send("209", trid)
		return
	}
	if key(email) == key(c.acct.email) {
		c.setName(name)
	}
	c.send("REA", trid, c.nextSer(), email, esc(name))
}

var listNames = map[string]int{"FL": listFL, "AL": listAL, "BL": listBL, "RL": listRL, "PL": listPL}

// add is MSNP≤9's ADD trid LIST email [name [group]].
func (c *nsConn) add(trid string, args []string) {
	if c.dialect >= 10 {
		c.closeAfterFlush()
		return
	}
	if len(args) < 2 {
		return
	}
	lst, ok := listNames[args[0]]
	if !ok {
		return
	}
	email := args[1]
	if !strings.Contains(email, "@") {
		c.send("201", trid)
		return
	}
	b := c.s.accounts[key(email)]
	if b == nil {
		c.send("205", trid)
		return
	}
	name, group := omit, omit
	if len(args) > 2 {
		name = esc(args[2])
	}
	if len(args) > 3 {
		group = esc(args[3])
	}
	c.addCommon(trid, lst, b, func(ser string) []string {
		return line("ADD", trid, args[0], ser, b.email, name, group)
	})
}

// adc is MSNP10–12's ADC trid LIST N=email [F=name] | C=guid group.
func (c *nsConn) adc(trid string, args []string) {
	if c.dialect < 10 {
		c.closeAfterFlush()
		return
	}
	if len(args) < 2 {
		return
	}
	lst, ok := listNames[args[0]]
	if !ok {
		return
	}
	var b *account
	group := ""
	if strings.HasPrefix(args[1], "N=") {
		email := args[1][2:]
		if !strings.Contains(email, "@") {
			c.send("201", trid)
			return
		}
		b = c.s.accounts[key(email)]
	} else {
		id := strings.TrimPrefix(args[1], "C=")
		for _, a := range c.s.accounts {
			if a.uuid == id {
				b = a
			}
		}
		if len(args) > 2 {
			group = args[2]
		}
	}
	if b == nil {
		c.send("208", trid)
		return
	}
	if group != "" {
		// Groups are not modelled: adding a contact to a group is accepted
		// when the contact is on FL, as Escargot does for a known group.
		if ct := c.acct.contacts[key(b.email)]; ct == nil || ct.lists&listFL == 0 {
			c.send("216", trid)
			return
		}
		c.send("ADC", trid, args[0], "C="+b.uuid, group)
		return
	}
	c.addCommon(trid, lst, b, func(string) []string {
		if lst == listFL {
			return []string{"ADC", trid, args[0], "N=" + b.email, "F=" + esc(b.name), "C=" + b.uuid}
		}
		return []string{"ADC", trid, args[0], "N=" + b.email}
	})
}

// addCommon puts b on the list and answers with reply(ser), as Escargot's
// _add_common and me_contact_add do: adding twice is not an error (there is
// no 215 outside groups) and AL and BL are not checked against each other.
// An FL add always tells b (RL); if b was already on a list of ours but not
// FL (someone who added us), the answer is followed by the BPR lines and
// b's presence (ILN trid); a contact new to us gets no presence until it
// changes its status.
func (c *nsConn) addCommon(trid string, lst int, b *account, reply func(ser string) []string) {
	a := c.acct
	old := a.contacts[key(b.email)]
	if lst == listRL && (c.dialect < 11 || old == nil || !old.pending) {
		c.closeAfterFlush()
		return
	}
	if lst == listPL {
		c.closeAfterFlush()
		return
	}
	oldLists := -1
	if old != nil {
		oldLists = old.lists
	}
	ct := a.setLists(b, lst&^listRL)
	if lst != listFL || ct.lists&(listAL|listBL) != 0 {
		ct.pending = false
	}
	ser := orOmit(c.nextSer())
	c.send(reply(ser)...)
	if lst == listFL {
		bc := b.setLists(a, listRL)
		if bc.lists&(listAL|listBL) == 0 {
			bc.pending = true
		}
		if bs := c.s.sessions[key(b.email)]; bs != nil {
			bs.addedMe(a)
		}
		if oldLists >= 0 && oldLists&listFL == 0 {
			if c.synSent {
				for _, p := range []string{"PHH", "PHW", "PHM"} {
					c.send(line("BPR", ser, b.email, p)...)
				}
				c.send(line("BPR", ser, b.email, "MOB", "N")...)
			}
			if c.ilnSent && c.s.seenStatus(b, a) != "FLN" {
				c.seen[key(b.email)] = true
				c.presence(trid, b, true)
			}
		}
	}
	c.s.refreshWatchers(a)
}

// addedMe tells this session that a put it on its FL (Escargot's
// on_added_me), followed by the ABCH NOT.
func (c *nsConn) addedMe(a *account) {
	switch {
	case c.dialect >= 13:
		c.sendML(a, listRL, true)
	case c.dialect < 10:
		c.send("ADD", "0", "RL", c.nextSer(), a.email, esc(a.name))
	default:
		c.send("ADC", "0", "RL", "N="+a.email, "F="+esc(a.name))
	}
	c.notifyAB()
}

// removedMe tells this session that a took it off its FL.
func (c *nsConn) removedMe(a *account) {
	if c.dialect >= 13 {
		c.sendML(a, listRL, false)
		c.notifyAB()
		return
	}
	c.send(line("REM", "0", "RL", orOmit(c.nextSer()), a.email)...)
	c.notifyAB()
}

func (c *nsConn) notifyAB() {
	if c.dialect < 8 {
		return
	}
	u := c.acct.uuid
	high, low := memberID(u)
	p := fmt.Sprintf(abchNotification, fmt.Sprintf("%08x", low), fmt.Sprintf("%08x", high),
		c.acct.email, cid(u), time.Now().UTC().Format("2006-01-02T15:04:05.0000000Z07:00"))
	c.sendPayload(crlf(p), "NOT")
}

// rem is REM trid LIST id [group]: FL by GUID on MSNP10+, otherwise by
// passport. As on Escargot, removing from a list the contact is not on
// succeeds; removing a contact we have no entry for is 205 (208 on 10+).
func (c *nsConn) rem(trid string, args []string) {
	if len(args) < 2 {
		return
	}
	lst, ok := listNames[args[0]]
	if !ok {
		return
	}
	if lst == listRL {
		c.closeAfterFlush()
		return
	}
	usr := args[1]
	notFound := "205"
	if c.dialect >= 10 {
		notFound = "208"
	}
	var b *account
	if lst == listFL && c.dialect >= 10 {
		if !guidRE.MatchString(usr) {
			c.send("403", trid)
			return
		}
		for _, x := range c.s.accounts {
			if strings.EqualFold(x.uuid, usr) {
				b = x
			}
		}
	} else {
		b = c.s.accounts[key(usr)]
		if b == nil {
			c.send("205", trid)
			return
		}
	}
	a := c.acct
	var ct *contact
	if b != nil {
		ct = a.contacts[key(b.email)]
	}
	if ct == nil {
		c.send(notFound, trid)
		return
	}
	if len(args) > 2 {
		// Removing from a group only: the contact stays on FL.
		c.send(line("REM", trid, args[0], orOmit(c.nextSer()), esc(usr), esc(args[2]))...)
		return
	}
	wasOn := ct.lists&lst != 0
	a.clearLists(b, lst)
	c.send(line("REM", trid, args[0], orOmit(c.nextSer()), esc(usr))...)
	if lst == listFL && wasOn {
		delete(c.seen, key(b.email))
		b.clearLists(a, listRL)
		if bc := b.contacts[key(a.email)]; bc != nil && bc.lists&listRL == 0 {
			bc.pending = false
		}
		if bs := c.s.sessions[key(b.email)]; bs != nil {
			bs.removedMe(a)
		}
	}
	c.s.refreshWatchers(a)
}

func (c *nsConn) xfr(trid, dest string) {
	if dest != "SB" {
		c.send("201", trid)
		return
	}
	if !c.ilnSent || (c.status == "HDN" && c.dialect < 13) {
		c.send("913", trid)
		return
	}
	now := time.Now()
	for k, v := range c.s.sbTickets {
		if !now.Before(v.expires) {
			delete(c.s.sbTickets, k)
		}
	}
	cookie := newToken(20)
	c.s.sbTickets[cookie] = sbTicket{passport: c.acct.email, dialect: c.dialect, expires: time.Now().Add(sbTicketLife), ns: c}
	switch {
	case c.dialect >= 14:
		c.send("XFR", trid, "SB", c.s.sbAddr, "CKI", cookie, "U", "messenger.msn.com", "1")
	case c.dialect >= 13:
		c.send("XFR", trid, "SB", c.s.sbAddr, "CKI", cookie, "U", "messenger.msn.com")
	default:
		c.send("XFR", trid, "SB", c.s.sbAddr, "CKI", cookie)
	}
}

// memberID is Escargot's uuid_to_high_low: the GUID's first 32 bits and
// the low 32 bits of its node.
func memberID(guid string) (high, low uint32) {
	h := strings.ReplaceAll(guid, "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 {
		return 0, 0
	}
	return binary.BigEndian.Uint32(b[0:4]), binary.BigEndian.Uint32(b[12:16])
}

// cid is Escargot's decimal CID: GUID characters 19–22 and 24–35 read as
// a little-endian int64.
func cid(guid string) string {
	if len(guid) < 36 {
		return "0"
	}
	b, err := hex.DecodeString(guid[19:23] + guid[24:36])
	if err != nil || len(b) != 8 {
		return "0"
	}
	return strconv.FormatInt(int64(binary.LittleEndian.Uint64(b)), 10)
}

// crlf turns a template's LF line ends into CRLF, as Escargot's
// encode_payload does.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

// profileTemplate is Escargot's PAYLOAD_MSG_1 (the login profile).
const profileTemplate = `MIME-Version: 1.0
Content-Type: text/x-msmsgsprofile; charset=UTF-8
LoginTime: %d
EmailEnabled: 0
MemberIdHigh: %d
MemberIdLow: %d
lang_preference: 1033
preferredEmail:
country:
PostalCode:
Gender:
Kid: 0
Age:
BDayPre:
Birthday:
Wallet:
Flags: 536872513
sid: 507
MSPAuth: %sY6+H31sTUOFkqjNTDYqAAFLr5Ote7BMrMnUIzpg860jh084QMgs5djRQLLQP0TVOFkKdWDwAJdEWcfsI9YL8otN9kSfhTaPHR1njHmG0H98O2NE/Ck6zrog3UJFmYlCnHidZk1g3AzUNVXmjZoyMSyVvoHLjQSzoGRpgHg3hHdi7zrFhcYKWD8XeNYdoz9wfA2YAAAgZIgF9kFvsy2AC0Fl/ezc/fSo6YgB9TwmXyoK0wm0F9nz5EfhHQLu2xxgsvMOiXUSFSpN1cZaNzEk/KGVa3Z33Mcu0qJqvXoLyv2VjQyI0VLH6YlW5E+GMwWcQurXB9hT/DnddM5Ggzk3nX8uMSV4kV+AgF1EWpiCdLViRI6DmwwYDtUJU6W6wQXsfyTm6CNMv0eE0wFXmZvoKaL24fggkp99dX+m1vgMQJ39JblVH9cmnnkBQcKkV8lnQJ003fd6iIFzGpgPBW5Z3T1Bp7uzSGMWnHmrEw8eOpKC5ny4x8uoViXDmA2UId23xYSoJ/GQrMjqB+NslqnuVsOBE1oWpNrmfSKhGU1X0kR4Eves56t5i5n3XU+7ne0MkcUzlrMi89n2j8aouf0zeuD7o+ngqvfRCsOqjaU71XWtuD4ogu2X7/Ajtwkxg/UJDFGAnCxFTTd4dqrrEpKyMK8eWBMaartFxwwrH39HMpx1T9JgknJ1hFWELzG8b302sKy64nCseOTGaZrdH63pjGkT7vzyIxVH/b+yJwDRmy/PlLz7fmUj6zpTBNmCtl1EGFOEFdtI2R04EprIkLXbtpoIPA7m0TPZURpnWufCSsDtD91ChxR8j/FnQ/gOOyKg/EJrTcHvM1e50PMRmoRZGlltBRRwBV+ArPO64On6zygr5zud5o/aADF1laBjkuYkjvUVsXwgnaIKbTLN2+sr/WjogxT1Yins79jPa1+3dDenxZtE/rHA/6qsdJmo5BJZqNYQUFrnpkU428LryMnBaNp2BW51JRsWXPAA7yCi0wDlHzEDxpqaOnhI4Ol87ra+VAg==&p=
ClientIP: %s
ClientPort: %s
ABCHMigrated: 1
MPOPEnabled: %d

`

// abchNotification is Escargot's PAYLOAD_MSG_4, sent as NOT after RL changes.
const abchNotification = `<NOTIFICATION id="0" siteid="45705" siteurl="http://contacts.msn.com">
	<TO pid="0x%s:0x%s" name="%s">
		<VIA agent="messenger" />
	</TO>
	<MSG id="0">
		<SUBSCR url="s.htm" />
		<ACTION url="a.htm" />
		<BODY>
			&lt;NotificationData xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"&gt;
				&lt;Service&gt;ABCHInternal&lt;/Service&gt;
				&lt;CID&gt;%s&lt;/CID&gt;
				&lt;LastModifiedDate&gt;%s&lt;/LastModifiedDate&gt;
				&lt;HasNewItem&gt;false&lt;/HasNewItem&gt;
			&lt;/NotificationData&gt;
		</BODY>
	</MSG>
</NOTIFICATION>`

// shieldsXML is Escargot's answer to GCF Shields.xml.
const shieldsXML = "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\r\n<config>\r\n\t<shield><cli maj=\"7\" min=\"0\" minbld=\"0\" maxbld=\"9999\" deny=\" \" /></shield>\r\n\t<block></block>\r\n</config>"
