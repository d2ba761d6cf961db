package msnptest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
)

// List bits (FACTS.md §4.1).
const (
	listFL = 1
	listAL = 2
	listBL = 4
	listRL = 8
	listPL = 16
)

// DefaultTokenLifetime is how long a Tweener token from /login stays valid,
// as on Escargot (FACTS.md §2.2).
const DefaultTokenLifetime = 30 * time.Second

// Server is an in-process MSN notification server and its HTTP endpoints
// (Tweener nexus and login, SSO RST, the address-book SOAP services). Create it with NewServer and Close it when
// done. All methods are safe for concurrent use.
//
// It behaves as the Escargot transcripts in shared/msnp/transcripts show for
// MSNP8 to MSNP18 (SSO, the address-book services, MPOP); where the transcripts say nothing it follows Escargot's
// public code (FACTS.md). Commands the server does not know, and commands
// that need a login sent before one, get no reply at all, as on Escargot.
type Server struct {
	ln  net.Listener
	web *httptest.Server

	mu        sync.Mutex
	accounts  map[string]*account // by lower-cased passport
	sessions  map[string]*nsConn  // the authenticated NS connection of each passport
	conns     map[*nsConn]struct{}
	tokens    map[string]token
	secrets   map[string]string       // SSO: BinarySecret of each RST token
	oims      map[string][]*storedOIM // offline messages by recipient
	received  map[string][]msnp.Command
	versions  map[int]bool
	refuse    int
	challenge bool
	tokenLife time.Duration
	changed   chan struct{} // closed and replaced whenever sessions change
	closed    bool

	// sbAddr is the host:port that XFR SB and RNG hand out: the
	// switchboard's listener (an address where nothing answers if it could
	// not listen). sbTickets records the cookies handed out by XFR and RNG
	// so that the switchboard can check USR and ANS.
	sbAddr    string
	sbTickets map[string]sbTicket
	sb        sbState // the switchboard server (switchboard.go)

	wg sync.WaitGroup
}

// sbTicket is a switchboard cookie handed out by XFR SB.
type sbTicket struct {
	passport string
	dialect  int
	expires  time.Time
	session  string  // RNG: the session the invitee may join; "" for XFR
	ns       *nsConn // the notification session (endpoint) it was issued to
}

type token struct {
	passport string
	expires  time.Time
}

type account struct {
	email    string
	password string
	name     string // friendly name, unescaped
	uuid     string
	psm      string
	media    string
	blp      string // "" until set: shown as AL
	gtc      string // "" until set: shown as A
	contacts map[string]*contact
	order    []string // contact keys in the order they were added
}

type contact struct {
	key     string // lower-cased passport of the contact's account
	lists   int
	pending bool // added me; I have not put them on any list yet
}

func key(passport string) string { return strings.ToLower(passport) }

// NewServer starts a server on 127.0.0.1 with random ports. It accepts
// MSNP8 to MSNP18 until SetVersions says otherwise.
func NewServer() *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("msnptest: listening: %v", err))
	}
	s := &Server{
		ln:        ln,
		accounts:  make(map[string]*account),
		sessions:  make(map[string]*nsConn),
		conns:     make(map[*nsConn]struct{}),
		tokens:    make(map[string]token),
		received:  make(map[string][]msnp.Command),
		versions:  map[int]bool{8: true, 9: true, 10: true, 11: true, 12: true, 13: true, 14: true, 15: true, 16: true, 17: true, 18: true},
		tokenLife: DefaultTokenLifetime,
		changed:   make(chan struct{}),
		sbTickets: make(map[string]sbTicket),
	}
	s.sbAddr = deadAddr()
	s.startSwitchboard()
	s.web = httptest.NewServer(s.httpHandler())
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

// deadAddr returns a 127.0.0.1 address that nothing listens on (a port
// that was free a moment ago), so that an XFR SB before the switchboard
// exists fails fast with "connection refused".
func deadAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:1"
	}
	a := l.Addr().String()
	l.Close()
	return a
}

// NSAddr returns the notification server's host:port.
func (s *Server) NSAddr() string { return s.ln.Addr().String() }

// NexusURL returns the nexus URL (the /nexus-mock path answers the same).
func (s *Server) NexusURL() string { return s.web.URL + "/rdr/pprdr.asp" }

// LoginURL returns the Passport 1.4 login URL that the nexus advertises.
func (s *Server) LoginURL() string { return s.web.URL + "/login" }

// Close shuts the server down: every connection is dropped and Close
// returns when all of the server's goroutines have ended.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for c := range s.conns {
		c.drop()
	}
	s.closeSwitchboard()
	s.mu.Unlock()
	s.ln.Close()
	s.web.Close()
	s.wg.Wait()
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		c := newConn(s, conn)
		s.conns[c] = struct{}{}
		s.wg.Add(2)
		s.mu.Unlock()
		go c.readLoop()
		go c.writeLoop()
	}
}

// AddAccount creates an account. An empty friendlyName means the passport
// itself, as Escargot shows for accounts that never set a name.
func (s *Server) AddAccount(passport, password, friendlyName string) {
	if friendlyName == "" {
		friendlyName = passport
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[key(passport)] = &account{
		email: passport, password: password, name: friendlyName,
		uuid: newGUID(), contacts: make(map[string]*contact),
	}
}

// AddContact makes owner and contact mutual contacts: each has the other on
// FL, AL and RL (list bits 11), which is how the transcripts' accounts
// start. Both accounts must exist.
func (s *Server) AddContact(owner, contact string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, b := s.mustAccount(owner), s.mustAccount(contact)
	a.setLists(b, listFL|listAL|listRL)
	b.setLists(a, listFL|listAL|listRL)
}

// AddContactOneWay records that owner added contact while contact has not
// answered: owner has contact on FL and AL; contact has owner on RL only
// and pending, the "someone added you" state a client finds at SYN.
func (s *Server) AddContactOneWay(owner, contact string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, b := s.mustAccount(owner), s.mustAccount(contact)
	a.setLists(b, listFL|listAL)
	b.setLists(a, listRL)
	b.contacts[key(a.email)].pending = true
}

func (s *Server) mustAccount(passport string) *account {
	a := s.accounts[key(passport)]
	if a == nil {
		panic("msnptest: no account " + passport)
	}
	return a
}

// setLists ORs bits into a's entry for b, creating it.
func (a *account) setLists(b *account, bits int) *contact {
	k := key(b.email)
	c := a.contacts[k]
	if c == nil {
		c = &contact{key: k}
		a.contacts[k] = c
		a.order = append(a.order, k)
	}
	c.lists |= bits
	return c
}

// clearLists removes bits from a's entry for b, forgetting an empty entry.
func (a *account) clearLists(b *account, bits int) {
	k := key(b.email)
	c := a.contacts[k]
	if c == nil {
		return
	}
	c.lists &^= bits
	if c.lists == 0 {
		delete(a.contacts, k)
		for i, o := range a.order {
			if o == k {
				a.order = append(a.order[:i:i], a.order[i+1:]...)
				break
			}
		}
	}
}

// Lists returns the list bits (FL=1 AL=2 BL=4 RL=8 PL=16) that owner has
// for contact, for assertions; 0 when either is unknown.
func (s *Server) Lists(owner, contact string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[key(owner)]
	if a == nil {
		return 0
	}
	if c := a.contacts[key(contact)]; c != nil {
		bits := c.lists
		if c.pending {
			bits |= listPL
		}
		return bits
	}
	return 0
}

// FriendlyName returns the account's current friendly name (unescaped).
func (s *Server) FriendlyName(passport string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[key(passport)]; a != nil {
		return a.name
	}
	return ""
}

// PSM returns the account's personal message as last set by UUX.
func (s *Server) PSM(passport string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[key(passport)]; a != nil {
		return a.psm
	}
	return ""
}

// SetVersions sets the MSNP versions VER accepts (e.g. 8, 11, 12). The
// server picks the highest offered one it accepts.
func (s *Server) SetVersions(versions ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions = make(map[int]bool, len(versions))
	for _, v := range versions {
		s.versions[v] = true
	}
}

// RefuseLogins makes the server answer "USR trid TWN I" with "code trid"
// and close the connection, as a busy or maintained server does; 0
// restores normal logins.
func (s *Server) RefuseLogins(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = code
}

// SetChallenge turns challenges on or off. When on, the server sends
// "CHL 0 <digits>" right after the login profile and checks the client's
// QRY: a right answer gets "QRY trid", a wrong one "540 trid" and a
// disconnect. Escargot itself never challenges (FACTS.md §3), so it is off
// by default; QRY is then ignored without a reply.
func (s *Server) SetChallenge(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.challenge = on
}

// SetTokenLifetime changes how long /login tokens live (30 s by default).
// Zero or less makes every token expired by the time it is used.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenLife = d
}

// Online reports whether the passport has an authenticated NS session
// (USR OK was sent), whatever its presence.
func (s *Server) Online(passport string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[key(passport)] != nil
}

// Status returns the presence the passport last set with CHG ("NLN",
// "BSY", "HDN"...), or "FLN" when it has no session or has not sent CHG.
func (s *Server) Status(passport string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.sessions[key(passport)]
	if c == nil || c.status == "" {
		return "FLN"
	}
	return c.status
}

// WaitOnline waits until the passport has an authenticated NS session or
// ctx ends.
func (s *Server) WaitOnline(ctx context.Context, passport string) error {
	return s.waitFor(ctx, func() bool { return s.sessions[key(passport)] != nil })
}

// WaitStatus waits until the passport's presence (see Status) is status.
func (s *Server) WaitStatus(ctx context.Context, passport, status string) error {
	return s.waitFor(ctx, func() bool {
		c := s.sessions[key(passport)]
		if c == nil || c.status == "" {
			return status == "FLN"
		}
		return c.status == status
	})
}

// WaitOffline waits until the passport has no NS session.
func (s *Server) WaitOffline(ctx context.Context, passport string) error {
	return s.waitFor(ctx, func() bool { return s.sessions[key(passport)] == nil })
}

func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok := cond()
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notifyChanged wakes the waiters. Called with s.mu held.
func (s *Server) notifyChanged() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Received returns a copy of the commands the server read from the
// passport's NS connections, oldest first (commands sent before USR I named
// the account are included once it is named). At most 65536 are kept.
func (s *Server) Received(passport string) []msnp.Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.received[key(passport)]
	out := make([]msnp.Command, len(in))
	copy(out, in)
	return out
}

// WaitReceived waits until the server has read a command named name from
// the passport, and returns it (the first one not before index from in
// Received's order), so that tests can await fire-and-forget commands.
func (s *Server) WaitReceived(ctx context.Context, passport, name string, from int) (msnp.Command, error) {
	var got msnp.Command
	err := s.waitFor(ctx, func() bool {
		in := s.received[key(passport)]
		for i := from; i < len(in); i++ {
			if in[i].Name == name {
				got = in[i]
				return true
			}
		}
		return false
	})
	return got, err
}

// Drop closes the passport's NS connection abruptly, without a word, like a
// network failure. It reports whether there was a session to drop.
func (s *Server) Drop(passport string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.sessions[key(passport)]
	if c == nil {
		return false
	}
	c.drop()
	return true
}

// Kick sends "OUT reason" (OTH: logged in elsewhere; SSD: server shutting
// down) to the passport's NS connection and closes it.
func (s *Server) Kick(passport, reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.sessions[key(passport)]
	if c == nil {
		return false
	}
	c.send("OUT", reason)
	c.closeAfterFlush()
	return true
}

// SendRaw writes raw bytes, unchecked, to the passport's NS connection, in
// order with the server's own output.
func (s *Server) SendRaw(passport string, raw []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.sessions[key(passport)]
	if c == nil {
		return false
	}
	c.enqueue(append([]byte(nil), raw...))
	return true
}

// Passports lists the accounts that have an NS session, sorted.
func (s *Server) Passports() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.sessions {
		out = append(out, c.acct.email)
	}
	sort.Strings(out)
	return out
}

// newToken returns n random lower-case hex digits.
func newToken(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)[:n]
}

func newGUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// AnnounceMaintenance sends every logged-in client Escargot's maintenance
// notice, "MSG Hotmail Hotmail" with an application/x-msmsgssystemmessage
// body of Type 1 and Arg1 minutes (FACTS.md §1.5). It returns how many
// sessions were told. Follow it with Kick(passport, "SSD") to shut down.
func (s *Server) AnnounceMaintenance(minutes int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	body := fmt.Sprintf("MIME-Version: 1.0\r\nContent-Type: application/x-msmsgssystemmessage\r\n\r\nType: 1\r\nArg1: %d\r\n", minutes)
	n := 0
	for _, c := range s.sessions {
		c.sendPayload([]byte(body), "MSG", "Hotmail", "Hotmail")
		n++
	}
	return n
}
