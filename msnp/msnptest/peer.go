package msnptest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
)

// ErrDeclined is returned by Peer.SendFile when the other side declined the
// file, and by Peer.FetchDisplayPicture when they declined the request
// (MSNSLP 603 Decline).
var ErrDeclined = errors.New("msnptest: the peer declined")

// ErrCancelled is returned when the other side ended a P2P session (BYE)
// before it completed.
var ErrCancelled = errors.New("msnptest: the peer cancelled the session")

// peerClientID is the client ID a Peer sends in CHG: MSN Messenger 7.5
// (0x50000000, MSNC5: MSNObject P2P v1) with multi-packet messaging
// (0x20), FACTS.md §5.2.
const peerClientID = "1342177312"

// peerTimeout bounds each wait of a Peer on the other side when the caller
// gave no deadline of its own (acks, BYE after a transfer).
const peerTimeout = 10 * time.Second

// Peer is a scripted MSN user of the test server: it signs in over real TCP
// with its own small raw-line MSNP12 client (Tweener login), answers and
// opens switchboards, and speaks its own MSNP2P v1 (peer_wire.go,
// peer_p2p.go), independent of package msnp's, so that tests cross-check
// two implementations. It serves its display picture, fetches others',
// sends files and receives them (accepting unless told to decline).
//
// A Peer is strict: whatever the other side does against the protocol
// (a missing or wrong ack, a bad header, a chunk over 1202 bytes, a wrong
// SHA1D, a file context that does not parse…) is recorded, and Violations
// returns the list, which tests should find empty.
type Peer struct {
	s        *Server
	passport string
	conn     net.Conn

	wmu sync.Mutex // serialises writes to conn

	mu         sync.Mutex
	trid       uint32
	waiters    map[uint32]chan *msnp.Command
	sbs        map[*peerSB]struct{}
	objects    map[string]msnp.MSNObject // contacts' advertised objects, by lower-cased passport
	dp         []byte
	dpObj      msnp.MSNObject
	decline    bool
	files      []ReceivedFile
	violations []string
	changed    chan struct{} // closed and replaced on every change the Wait* functions watch
	closed     bool
	links      map[string]*p2pLink // by lower-cased remote passport
	texts      []ReceivedText

	// tamper, set by this package's tests only, may change each P2P
	// message the Peer sends ("ack", "INVITE", "200 OK", "display picture
	// data"…) to play a broken client.
	tamper func(what string, h *p2pHeader, data []byte) []byte

	done chan struct{} // closed when the NS reader ends
	wg   sync.WaitGroup
}

// ReceivedFile is a file that someone sent a Peer.
type ReceivedFile struct {
	From, Name string
	Data       []byte
}

// NewPeer signs passport (an existing account) in over MSNP12 with
// Tweener, as twn_msnp12.txt shows, and sets it online (NLN). Close it
// when done.
func (s *Server) NewPeer(ctx context.Context, passport, password string) (*Peer, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.NSAddr())
	if err != nil {
		return nil, err
	}
	p := &Peer{
		s: s, passport: passport, conn: conn,
		waiters: map[uint32]chan *msnp.Command{},
		sbs:     map[*peerSB]struct{}{},
		objects: map[string]msnp.MSNObject{},
		links:   map[string]*p2pLink{},
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	r := msnp.NewReader(conn)
	if err := p.login(ctx, r, password); err != nil {
		conn.Close()
		return nil, fmt.Errorf("msnptest: peer %s: %w", passport, err)
	}
	conn.SetDeadline(time.Time{})
	p.wg.Add(1)
	go p.readNS(r)
	if _, err := p.nsCall(ctx, "CHG", "NLN", peerClientID); err != nil {
		p.Close()
		return nil, fmt.Errorf("msnptest: peer %s: CHG: %w", passport, err)
	}
	return p, nil
}

// login runs VER, CVR and the Tweener USR exchange, reading replies in
// line; the reader goroutine starts after it.
func (p *Peer) login(ctx context.Context, r *msnp.Reader, password string) error {
	expect := func(name string) (*msnp.Command, error) {
		for {
			c, err := r.ReadCommand()
			if err != nil {
				return nil, err
			}
			if c.Name == name {
				return c, nil
			}
			if c.IsError() {
				return nil, fmt.Errorf("%s", c.String())
			}
		}
	}
	if err := p.writeLine("VER 1 MSNP12 CVR0"); err != nil {
		return err
	}
	if _, err := expect("VER"); err != nil {
		return err
	}
	p.writeLine("CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 7.5.0324 MSMSGS " + p.passport)
	if _, err := expect("CVR"); err != nil {
		return err
	}
	p.writeLine("USR 3 TWN I " + p.passport)
	c, err := expect("USR")
	if err != nil {
		return err
	}
	tok, err := p.tweener(ctx, password, c.Arg(3))
	if err != nil {
		return err
	}
	p.writeLine("USR 4 TWN S " + tok)
	if c, err = expect("USR"); err != nil {
		return err
	}
	if c.Arg(1) != "OK" {
		return fmt.Errorf("login: %s", c.String())
	}
	p.trid = 4
	return nil
}

// tweener asks the server's Passport 1.4 login URL for a ticket.
func (p *Peer) tweener(ctx context.Context, password, policy string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.s.LoginURL(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in="+
		url.QueryEscape(p.passport)+",pwd="+url.QueryEscape(password)+","+policy)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	info := resp.Header.Get("Authentication-Info")
	_, tok, ok := strings.Cut(info, "from-PP='")
	if resp.StatusCode != http.StatusOK || !ok {
		return "", fmt.Errorf("login: HTTP %d", resp.StatusCode)
	}
	tok, _, _ = strings.Cut(tok, "'")
	return tok, nil
}

func (p *Peer) writeLine(line string) error {
	return p.write([]byte(line + "\r\n"))
}

func (p *Peer) write(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := p.conn.Write(b)
	return err
}

// nsCall sends "name trid args…" and waits for the reply with that trid.
func (p *Peer) nsCall(ctx context.Context, name string, args ...string) (*msnp.Command, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("peer closed")
	}
	p.trid++
	trid := p.trid
	ch := make(chan *msnp.Command, 1)
	p.waiters[trid] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiters, trid)
		p.mu.Unlock()
	}()
	line := strings.Join(append([]string{name, strconv.FormatUint(uint64(trid), 10)}, args...), " ")
	if err := p.writeLine(line); err != nil {
		return nil, err
	}
	select {
	case c := <-ch:
		if c.IsError() {
			return c, fmt.Errorf("%s", c.String())
		}
		return c, nil
	case <-p.done:
		return nil, errors.New("notification server connection closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// readNS handles the notification server's lines: replies to nsCall, RNG
// (answered in a goroutine), presence (the msnobj of contacts), CHL.
func (p *Peer) readNS(r *msnp.Reader) {
	defer p.wg.Done()
	defer close(p.done)
	for {
		c, err := r.ReadCommand()
		if err != nil {
			return
		}
		switch c.Name {
		case "RNG":
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.answerRNG(c)
			}()
			continue
		case "ILN", "NLN":
			// ILN trid status email friendly caps msnobj;
			// NLN status email friendly caps msnobj (MSNP12).
			args := c.Args
			if c.Name == "ILN" && len(args) > 0 {
				args = args[1:]
			}
			if len(args) >= 5 {
				p.sawObject(args[1], msnp.Unescape(args[4]))
			}
			continue
		case "FLN":
			p.sawObject(c.Arg(0), "")
			continue
		case "CHL":
			pk := productKeys["PROD0090YUAUV{2B"]
			ans := challengeAnswer(12, c.Arg(1), "PROD0090YUAUV{2B", pk)
			p.mu.Lock()
			p.trid++
			trid := p.trid
			p.mu.Unlock()
			p.write([]byte(fmt.Sprintf("QRY %d PROD0090YUAUV{2B %d\r\n%s", trid, len(ans), ans)))
			continue
		}
		if trid, ok := c.TrID(); ok && len(c.Args) > 0 {
			p.mu.Lock()
			ch := p.waiters[trid]
			p.mu.Unlock()
			if ch != nil {
				select {
				case ch <- c:
				default:
				}
			}
		}
	}
}

func (p *Peer) sawObject(email, obj string) {
	o, err := msnp.ParseMSNObject(obj)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.violationLocked("%s advertised a malformed msnobj %q: %v", email, obj, err)
		o = msnp.MSNObject{}
	}
	p.objects[key(email)] = o
	p.notifyLocked()
}

// Passport is the peer's account.
func (p *Peer) Passport() string { return p.passport }

// SetDisplayPicture makes data the peer's display picture: an MSNObject
// (Type 3, Location "0", empty Friendly, as the msnp client builds its
// own) goes out URL-encoded in CHG, and the data is served to whoever
// INVITEs for it. nil clears it. It waits for the server's echo.
func (p *Peer) SetDisplayPicture(data []byte) msnp.MSNObject {
	var obj msnp.MSNObject
	if data != nil {
		obj = msnp.NewMSNObject(p.passport, msnp.MSNObjectDisplayPicture, "0", "", data)
	}
	p.mu.Lock()
	p.dp = append([]byte(nil), data...)
	p.dpObj = obj
	p.mu.Unlock()
	args := []string{"NLN", peerClientID}
	if data != nil {
		args = append(args, urlEncodeAll(obj.String()))
	} else {
		args = append(args, "0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	if _, err := p.nsCall(ctx, "CHG", args...); err != nil {
		p.violation("CHG with the display picture got no echo: %v", err)
	}
	return obj
}

// MSNObject returns the object passport last advertised in ILN/NLN (the
// zero MSNObject when none, or when they went offline).
func (p *Peer) MSNObject(passport string) msnp.MSNObject {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.objects[key(passport)]
}

// WaitMSNObject waits until passport advertises an object with a SHA1D
// other than not (pass "" for any object) and returns it.
func (p *Peer) WaitMSNObject(ctx context.Context, passport, not string) (msnp.MSNObject, error) {
	var o msnp.MSNObject
	err := p.waitFor(ctx, func() bool {
		o = p.objects[key(passport)]
		return o.SHA1D != "" && o.SHA1D != not
	})
	return o, err
}

// DeclineFiles makes the peer decline (603) every file offered from now
// on, or accept them again.
func (p *Peer) DeclineFiles(decline bool) {
	p.mu.Lock()
	p.decline = decline
	p.mu.Unlock()
}

// WaitFile returns the next file someone sent the peer (accepted
// automatically unless DeclineFiles(true)), in the order they completed.
func (p *Peer) WaitFile(ctx context.Context) (ReceivedFile, error) {
	var f ReceivedFile
	err := p.waitFor(ctx, func() bool {
		if len(p.files) == 0 {
			return false
		}
		f = p.files[0]
		p.files = p.files[1:]
		return true
	})
	return f, err
}

// Violations lists the protocol violations the peer saw from others, in
// the order it saw them.
func (p *Peer) Violations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.violations...)
}

func (p *Peer) violation(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.violationLocked(format, args...)
}

func (p *Peer) violationLocked(format string, args ...any) {
	if len(p.violations) < 1000 {
		p.violations = append(p.violations, fmt.Sprintf(format, args...))
	}
	p.notifyLocked()
}

func (p *Peer) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// waitFor blocks until cond (called with p.mu held) holds.
func (p *Peer) waitFor(ctx context.Context, cond func() bool) error {
	for {
		p.mu.Lock()
		if cond() {
			p.mu.Unlock()
			return nil
		}
		ch := p.changed
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return errors.New("msnptest: peer closed")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close signs the peer out: OUT on its switchboards and the notification
// server, then waits for its goroutines.
func (p *Peer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.notifyLocked()
	sbs := make([]*peerSB, 0, len(p.sbs))
	for sb := range p.sbs {
		sbs = append(sbs, sb)
	}
	p.mu.Unlock()
	for _, sb := range sbs {
		sb.close()
	}
	p.writeLine("OUT")
	p.conn.Close()
	p.wg.Wait()
	return nil
}
