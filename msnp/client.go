package msnp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ErrNetwork is matched (errors.Is) by failures to reach or keep talking to
// a server: dial errors, resets, timeouts. Retrying later may help.
var ErrNetwork = errors.New("msnp: network failure")

// ErrUnsupported is returned for features the negotiated protocol version
// lacks (e.g. a personal message before MSNP11).
var ErrUnsupported = errors.New("msnp: not supported by this protocol version")

// ErrNotConnected is returned by requests made before Connect or after the
// connection ended.
var ErrNotConnected = errors.New("msnp: not connected")

// ErrNoCommonVersion means the server speaks none of the offered versions.
var ErrNoCommonVersion = errors.New("msnp: server supports none of the offered protocol versions")

// ErrKeepaliveTimeout is the cause in Disconnected when PNG went unanswered.
var ErrKeepaliveTimeout = errors.New("msnp: server stopped answering pings")

// NetworkError wraps an I/O failure; it matches ErrNetwork.
type NetworkError struct {
	Op  string
	Err error
}

func (e *NetworkError) Error() string        { return "msnp: " + e.Op + ": " + e.Err.Error() }
func (e *NetworkError) Unwrap() error        { return e.Err }
func (e *NetworkError) Is(target error) bool { return target == ErrNetwork }

// Client is one MSN account's session with a notification server.
//
// Events reach the handler from a single goroutine, in order. They are
// queued (up to Config.MaxQueuedEvents) rather than delivered inline by
// the connection's reader, so a handler may call the Client's methods —
// which wait for the server's reply — without deadlocking; a handler that
// stops returning eventually gets the connection closed instead of growing
// memory without bound.
type Client struct {
	cfg      Config
	passport string
	password string
	handler  func(Event)
	log      zerolog.Logger
	// sso keeps the MSNP15+ tokens across reconnects and renews them
	// before they expire; machineGUID names this endpoint (MSNP16+).
	sso         *SSOTokenCache
	machineGUID string

	oimMu   sync.Mutex
	oim     *OIMService
	oimSeen map[string]bool // OIM ids fetched or being fetched

	mu           sync.Mutex
	conn         *conn // nil when not connected
	friendlyName string
	status       Status
	contacts     map[string]*Contact // by lower-case passport
	groups       map[string]Group
	blp, gtc     string

	evMu       sync.Mutex
	evQueue    []Event
	delivering bool

	conv convState // conversations and their switchboards (conversation.go)
	p2p  p2pState  // display pictures and file transfers (p2psession.go)
}

// conn is one TCP connection and the state that lives and dies with it.
type conn struct {
	c       *Client
	nc      net.Conn
	w       *Writer
	d       dialect       // set by the reader on the VER reply, then fixed
	done    chan struct{} // closed when the reader stops
	pingNow chan struct{}

	mu          sync.Mutex
	trid        uint32
	pending     map[uint32]*pendingReq
	err         error // why the connection ended
	outReason   DisconnectReason
	outSeen     bool
	closing     bool // Close called
	loggedIn    bool // Disconnected is reported only after login
	syncLeft    int  // LST+LSG lines still expected after SYN
	synced      chan struct{}
	chgEchoed   bool
	presSynced  bool
	lastPing    time.Time
	awaitingQNG bool
	qngInterval time.Duration
	tokens      *SSOTokens // MSNP15+: what the session logged in with
}

type pendingReq struct {
	names []string // reply names accepted besides errors
	ch    chan *Command
}

// New returns a client for one account. The handler receives every Event
// (see Client for how); it may be nil.
func New(cfg Config, passport, password string, handler func(Event)) (*Client, error) {
	if cfg.Server == "" {
		return nil, errors.New("msnp: Config.Server is empty")
	}
	tweener := cfg.LoginURL != "" || cfg.NexusURL != ""
	if !tweener && cfg.RSTURL == "" {
		return nil, errors.New("msnp: Config needs a NexusURL or a LoginURL (MSNP8–12) or an RSTURL (MSNP15–18)")
	}
	if !strings.Contains(passport, "@") || strings.ContainsAny(passport, " \r\n\t%") {
		return nil, fmt.Errorf("msnp: invalid passport %q", passport)
	}
	if cfg.OnlyEndpoint {
		return nil, fmt.Errorf("%w: Config.OnlyEndpoint (signing the account's other endpoints out)", ErrUnsupported)
	}
	if len(cfg.Protocols) == 0 {
		switch {
		case cfg.RSTURL == "":
			cfg.Protocols = tweenerProtocols()
		case !tweener:
			cfg.Protocols = []Protocol{MSNP18, MSNP15}
		default:
			cfg.Protocols = SupportedProtocols()
		}
	}
	for _, p := range cfg.Protocols {
		if dialectFor(p) == nil {
			return nil, fmt.Errorf("msnp: protocol %s is not supported", p)
		}
		if p >= MSNP15 && cfg.RSTURL == "" {
			return nil, fmt.Errorf("msnp: %s needs Config.RSTURL", p)
		}
		if p < MSNP15 && !tweener {
			return nil, fmt.Errorf("msnp: %s needs a NexusURL or a LoginURL", p)
		}
	}
	guid := cfg.MachineGUID
	var err error
	if guid == "" {
		guid, err = NewMachineGUID()
	} else {
		guid, err = ParseMachineGUID(guid)
	}
	if err != nil {
		return nil, err
	}
	if handler == nil {
		handler = func(Event) {}
	}
	c := &Client{cfg: cfg, passport: passport, password: password, handler: handler,
		log: cfg.Logger.With().Str("passport", passport).Logger(), machineGUID: guid, oimSeen: map[string]bool{}}
	c.sso = &SSOTokenCache{Request: SSORequest{URL: cfg.RSTURL, Username: passport, Password: password, HTTP: cfg.httpClient()}}
	return c, nil
}

// Passport returns the account's sign-in name.
func (c *Client) Passport() string { return c.passport }

// Protocol returns the negotiated version, or 0 when not connected.
func (c *Client) Protocol() Protocol {
	cn := c.current()
	if cn == nil {
		return 0
	}
	return cn.d.protocol()
}

// FriendlyName returns the account's own display name.
func (c *Client) FriendlyName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.friendlyName
}

func (c *Client) current() *conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// Connect logs in: it dials, negotiates the version, authenticates with
// Passport 1.4 (Tweener) and downloads the contact list. It returns once
// Contacts is complete. Presence follows SetStatus. A wrong passport or
// password gives an error matching ErrAuthentication; an unreachable
// server, one matching ErrNetwork; anything else is a protocol failure
// (*ServerError, *ProtocolError, ErrNoCommonVersion).
func (c *Client) Connect(ctx context.Context) error {
	if c.current() != nil {
		return errors.New("msnp: already connected")
	}
	addr := c.cfg.Server
	retried := false
	for redirects := 0; ; redirects++ {
		cn, next, err := c.login(ctx, addr)
		var stale *staleTokensError
		if errors.As(err, &stale) && !retried {
			retried = true
			redirects--
			continue
		}
		if stale != nil {
			err = stale.err
		}
		if err != nil {
			return err
		}
		if cn != nil {
			return c.finishLogin(ctx, cn)
		}
		if redirects >= 3 {
			return &ProtocolError{Err: errors.New("too many XFR NS redirects")}
		}
		if next != "0" {
			addr = next
		}
	}
}

// login runs VER, CVR and USR on addr. It returns the authenticated conn,
// or the address an XFR NS redirected to.
func (c *Client) login(ctx context.Context, addr string) (*conn, string, error) {
	d := net.Dialer{Timeout: orDuration(c.cfg.DialTimeout, 30*time.Second)}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, "", &NetworkError{Op: "dial " + addr, Err: err}
	}
	cn := &conn{c: c, nc: nc, w: NewWriter(nc), done: make(chan struct{}), pingNow: make(chan struct{}, 1),
		pending: map[uint32]*pendingReq{}, synced: make(chan struct{})}
	go cn.readLoop()
	ok := false
	defer func() {
		if !ok {
			cn.close()
		}
	}()
	c.log.Debug().Str("addr", addr).Msg("connected")

	vers := make([]string, 0, len(c.cfg.Protocols)+1)
	for _, p := range c.cfg.Protocols {
		vers = append(vers, p.String())
	}
	r, err := cn.request(ctx, "VER", nil, append(vers, "CVR0")...)
	if err != nil {
		return nil, "", err
	}
	if r.Arg(1) == "0" {
		return nil, "", ErrNoCommonVersion
	}
	if cn.d == nil { // applyReply sets it when the reply names an offered version
		return nil, "", &ProtocolError{Line: cut(r.String()), Err: errors.New("server chose a version that was not offered")}
	}
	p := cn.d.protocol()
	c.log.Debug().Stringer("protocol", p).Msg("version negotiated")

	ci := c.cfg.clientInfo()
	if _, err := cn.request(ctx, "CVR", nil, ci.Locale, ci.OSType, ci.OSVer, ci.Arch, ci.Name, ci.Version, ci.Brand, c.passport); err != nil {
		return nil, "", err
	}
	if p >= MSNP15 {
		if err := c.loginSSO(ctx, cn); err != nil {
			return nil, "", err
		}
		ok = true
		return cn, "", nil
	}
	r, err = cn.request(ctx, "USR", []string{"XFR"}, "TWN", "I", c.passport)
	if err != nil {
		return nil, "", err
	}
	if r.Name == "XFR" {
		if r.Arg(1) != "NS" || r.Arg(2) == "" {
			return nil, "", &ProtocolError{Line: cut(r.String()), Err: errors.New("unexpected XFR")}
		}
		return nil, r.Arg(2), nil
	}
	if r.Arg(1) != "TWN" || r.Arg(2) != "S" || r.Arg(3) == "" {
		return nil, "", &ProtocolError{Line: cut(Redact(r)), Err: errors.New("unexpected USR reply")}
	}
	// The ticket lives 30 s on Escargot: fetch it now and use it at once.
	ticket, err := c.tweener(ctx, r.Arg(3))
	if err != nil {
		return nil, "", err
	}
	r, err = cn.request(ctx, "USR", nil, "TWN", "S", ticket)
	if err != nil {
		return nil, "", err
	}
	if usesABCH(p) {
		cn.mu.Lock()
		cn.tokens = tweenerTokens(ticket)
		cn.mu.Unlock()
	}
	if r.Arg(1) != "OK" {
		return nil, "", &ProtocolError{Line: cut(Redact(r)), Err: errors.New("unexpected USR reply")}
	}
	if p <= MSNP9 && len(r.Args) >= 4 {
		c.mu.Lock()
		c.friendlyName = Unescape(r.Arg(3))
		c.mu.Unlock()
	}
	ok = true
	return cn, "", nil
}

func containsProto(ps []Protocol, p Protocol) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func (c *Client) finishLogin(ctx context.Context, cn *conn) error {
	c.mu.Lock()
	c.conn = cn
	c.contacts = map[string]*Contact{}
	c.groups = map[string]Group{}
	c.status = StatusOffline
	c.mu.Unlock()
	fail := func(err error) error {
		c.mu.Lock()
		c.conn = nil
		c.mu.Unlock()
		cn.close()
		return err
	}
	go cn.keepalive()
	if usesABCH(cn.d.protocol()) {
		if err := c.syncAB(ctx, cn); err != nil {
			return fail(err)
		}
	} else if err := c.syncList(ctx, cn); err != nil {
		return fail(err)
	}
	cn.mu.Lock()
	cn.loggedIn = true
	cn.mu.Unlock()
	select {
	case <-cn.done: // died between the last LST and here: report it
		cn.mu.Lock()
		cn.loggedIn = false
		cn.mu.Unlock()
		return fail(cn.cause())
	default:
	}
	c.log.Debug().Msg("logged in, contact list synced")
	return nil
}

// syncList downloads the server-stored list (MSNP8–12: SYN, LST, LSG).
func (c *Client) syncList(ctx context.Context, cn *conn) error {
	if _, err := cn.request(ctx, "SYN", nil, cn.d.synArgs()...); err != nil {
		return err
	}
	select {
	case <-cn.synced:
		return nil
	case <-cn.done:
		return cn.cause()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close logs out (OUT) and closes the connection. The handler then gets
// Disconnected with ReasonLoggedOut.
func (c *Client) Close() error {
	c.p2pClose()
	c.closeSwitchboards()
	cn := c.current()
	if cn == nil {
		return nil
	}
	cn.mu.Lock()
	cn.closing = true
	cn.mu.Unlock()
	_ = cn.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_ = cn.w.WriteCommand(&Command{Name: "OUT"})
	cn.close()
	<-cn.done
	return nil
}

// send writes a command without waiting for a reply.
func (cn *conn) send(name string, payload []byte, args ...string) (uint32, error) {
	cn.mu.Lock()
	if cn.err != nil {
		err := cn.err
		cn.mu.Unlock()
		return 0, err
	}
	cn.trid++
	trid := cn.trid
	cn.mu.Unlock()
	cmd := NewCommand(name, trid, args...)
	cmd.Payload = payload
	cn.trace(">>>", cmd)
	if err := cn.w.WriteCommand(cmd); err != nil {
		return 0, cn.fail(&NetworkError{Op: "write", Err: err})
	}
	return trid, nil
}

// request sends name with a fresh TrID and waits for the reply carrying it:
// a command named name (or one of also), or an error (*ServerError).
func (cn *conn) request(ctx context.Context, name string, also []string, args ...string) (*Command, error) {
	return cn.requestPayload(ctx, name, nil, also, args...)
}

func (cn *conn) requestPayload(ctx context.Context, name string, payload []byte, also []string, args ...string) (*Command, error) {
	ch := make(chan *Command, 1)
	cn.mu.Lock()
	if cn.err != nil {
		err := cn.err
		cn.mu.Unlock()
		return nil, err
	}
	cn.trid++
	trid := cn.trid
	cn.pending[trid] = &pendingReq{names: append([]string{name}, also...), ch: ch}
	cn.mu.Unlock()
	defer func() {
		cn.mu.Lock()
		delete(cn.pending, trid)
		cn.mu.Unlock()
	}()
	cmd := NewCommand(name, trid, args...)
	cmd.Payload = payload
	cn.trace(">>>", cmd)
	if err := cn.w.WriteCommand(cmd); err != nil {
		return nil, cn.fail(&NetworkError{Op: "write", Err: err})
	}
	select {
	case r := <-ch:
		if err := r.Err(); err != nil {
			return nil, err
		}
		return r, nil
	case <-cn.done:
		// The reply may have been the last thing read.
		select {
		case r := <-ch:
			if err := r.Err(); err != nil {
				return nil, err
			}
			return r, nil
		default:
		}
		return nil, cn.cause()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (cn *conn) cause() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.err == nil {
		return ErrNotConnected
	}
	return cn.err
}

// fail records err as the reason the connection ends and closes it.
func (cn *conn) fail(err error) error {
	cn.mu.Lock()
	if cn.err == nil {
		cn.err = err
	}
	err = cn.err
	cn.mu.Unlock()
	_ = cn.nc.Close()
	return err
}

func (cn *conn) close() { cn.fail(ErrNotConnected) }

func (cn *conn) trace(dir string, cmd *Command) {
	if e := cn.c.log.Debug(); e.Enabled() {
		e.Str("dir", dir).Msg(Redact(cmd))
	}
}

// readLoop is the connection's only reader: it routes replies to waiting
// requests and everything else to dispatch.
func (cn *conn) readLoop() {
	r := NewReader(cn.nc)
	var err error
	for {
		var cmd *Command
		cmd, err = r.ReadCommand()
		if err != nil {
			break
		}
		cn.trace("<<<", cmd)
		if err = cn.route(cmd); err != nil {
			break
		}
	}
	var pe *ProtocolError
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, io.EOF):
		err = &NetworkError{Op: "read", Err: io.EOF}
	default:
		err = &NetworkError{Op: "read", Err: err}
	}
	cn.fail(err)
	cn.mu.Lock()
	report, closing, outSeen, reason := cn.loggedIn, cn.closing, cn.outSeen, cn.outReason
	cause := cn.err
	cn.mu.Unlock()
	close(cn.done)
	c := cn.c
	c.mu.Lock()
	if c.conn == cn {
		c.conn = nil
		c.status = StatusOffline
	}
	c.mu.Unlock()
	if !report {
		return
	}
	ev := Disconnected{Reason: ReasonConnectionLost, Err: cause}
	switch {
	case closing:
		ev = Disconnected{Reason: ReasonLoggedOut}
	case outSeen:
		ev.Reason = reason
	}
	c.log.Debug().Stringer("reason", ev.Reason).AnErr("err", ev.Err).Msg("disconnected")
	_ = c.emit(ev)
}

func (cn *conn) route(cmd *Command) error {
	if trid, ok := cmd.TrID(); ok && trid != 0 {
		cn.mu.Lock()
		p := cn.pending[trid]
		cn.mu.Unlock()
		if p != nil && (cmd.IsError() || containsStr(p.names, cmd.Name)) {
			// State the reply changes must be in place before the next
			// line is read, so it is applied here, not by the waiter.
			if err := cn.c.applyReply(cn, cmd); err != nil {
				return err
			}
			select {
			case p.ch <- cmd:
			default: // a duplicate reply: the first one counts
			}
			return nil
		}
	}
	return cn.c.dispatch(cn, cmd)
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// keepalive pings the server and declares the connection dead when a ping
// goes unanswered. It is the connection's only timer.
func (cn *conn) keepalive() {
	c := cn.c
	timeout := orDuration(c.cfg.KeepaliveTimeout, 30*time.Second)
	t := time.NewTimer(cn.interval())
	defer t.Stop()
	for {
		select {
		case <-cn.done:
			return
		case <-t.C:
		case <-cn.pingNow:
		}
		wait := cn.interval()
		cn.mu.Lock()
		if cn.awaitingQNG && time.Since(cn.lastPing) >= timeout {
			cn.mu.Unlock()
			cn.fail(&NetworkError{Op: "keepalive", Err: ErrKeepaliveTimeout})
			return
		}
		if !cn.awaitingQNG {
			cn.awaitingQNG = true
			cn.lastPing = time.Now()
			cn.mu.Unlock()
			cmd := &Command{Name: "PNG"}
			cn.trace(">>>", cmd)
			if err := cn.w.WriteCommand(cmd); err != nil {
				cn.fail(&NetworkError{Op: "write", Err: err})
				return
			}
		} else {
			cn.mu.Unlock()
		}
		cn.mu.Lock()
		if cn.awaitingQNG {
			left := timeout - time.Since(cn.lastPing)
			if left < wait {
				wait = left
			}
		}
		cn.mu.Unlock()
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

func (cn *conn) interval() time.Duration {
	if d := cn.c.cfg.KeepaliveInterval; d > 0 {
		return d
	}
	cn.mu.Lock()
	q := cn.qngInterval
	cn.mu.Unlock()
	if q > 0 {
		// A little under the server's hint, so the ping is never late.
		if d := q * 5 / 6; d >= 5*time.Second {
			return d
		}
		return 5 * time.Second
	}
	return 50 * time.Second
}

// emit queues an event for the handler. It fails when the queue is full,
// which means the handler is stuck: the caller then ends the connection.
func (c *Client) emit(ev Event) error {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	max := c.cfg.MaxQueuedEvents
	if max <= 0 {
		max = 10000
	}
	if _, last := ev.(Disconnected); len(c.evQueue) >= max && !last {
		return errors.New("msnp: event handler is not keeping up")
	}
	c.evQueue = append(c.evQueue, ev)
	if !c.delivering {
		// The delivering goroutine lives only while events wait, so an
		// idle or finished Client holds no goroutine.
		c.delivering = true
		go c.deliver()
	}
	return nil
}

func (c *Client) deliver() {
	for {
		c.evMu.Lock()
		if len(c.evQueue) == 0 {
			c.delivering = false
			c.evMu.Unlock()
			return
		}
		ev := c.evQueue[0]
		c.evQueue[0] = nil
		c.evQueue = c.evQueue[1:]
		c.evMu.Unlock()
		c.handler(ev)
	}
}

// parseQNG reads the seconds of "QNG n".
func parseQNG(cmd *Command) time.Duration {
	n, err := strconv.Atoi(cmd.Arg(0))
	if err != nil || n <= 0 || n > 3600 {
		return 0
	}
	return time.Duration(n) * time.Second
}
