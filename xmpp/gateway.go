package xmpp

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
)

// Kind is the frontend's name in bridge.UserID.Frontend.
const Kind = "xmpp"

// ErrNotConnected is returned by Deliver while the component is not
// connected to its server; the core queues the event and retries.
var ErrNotConnected = errors.New("xmpp: component not connected")

const (
	defaultName = "MSN Transport"
	// coreTimeout bounds every call into the core made for one stanza.
	coreTimeout = 30 * time.Second
	sendTimeout = 10 * time.Second
	dialTimeout = 10 * time.Second
	// maxQueued bounds the stanzas waiting per user; beyond it a user gets
	// resource-constraint errors rather than growing memory.
	maxQueued = 256
)

// Gateway is the XMPP frontend: an XEP-0114 component that presents each
// user's MSN contacts as JIDs at its domain. It implements bridge.Frontend.
type Gateway struct {
	cfg    config.XMPP
	domain jid.JID
	name   string
	core   bridge.Core
	log    zerolog.Logger

	// Reconnect backoff bounds; tests shorten them.
	minBackoff, maxBackoff time.Duration

	mu   sync.Mutex
	sess *xmpp.Session
	conn net.Conn
	up   chan struct{} // closed while a session is up
	ctx  context.Context

	queue serialQueue
	state state
	muc   mucState // group portals as MUC rooms (muc.go)

	iqs     iqWaiters   // the gateway's own IQs awaiting answers
	uploads uploadCache // HTTP upload services found per user domain
	files   fileState   // file transfers both ways (files.go)

	// The user's avatar as their MSN display picture (userpicture.go).
	userPics            userPictures
	userPictureInterval time.Duration                                         // least time between two vCard fetches, per user
	fetchVCard          func(ctx context.Context, bare string) (*node, error) // tests replace it

	// rosterHosts are the server hosts that granted this component XEP-0356
	// roster privilege on the current connection (under mu).
	rosterHosts map[string]bool

	// onConnect, when set (by tests), runs after each successful connect.
	onConnect func()
}

var _ bridge.Frontend = (*Gateway)(nil)

// New checks cfg and returns a gateway; Run connects it.
func New(cfg config.XMPP, core bridge.Core, log zerolog.Logger) (*Gateway, error) {
	if core == nil {
		return nil, errors.New("xmpp: no core")
	}
	domain, err := jid.Parse(cfg.JID)
	if err != nil {
		return nil, fmt.Errorf("xmpp: component JID %q: %w", cfg.JID, err)
	}
	if domain.Localpart() != "" || domain.Resourcepart() != "" {
		return nil, fmt.Errorf("xmpp: component JID %q must be a bare domain", cfg.JID)
	}
	if cfg.Server == "" {
		return nil, errors.New("xmpp: no server (host:port of the component port)")
	}
	if _, _, err := net.SplitHostPort(cfg.Server); err != nil {
		return nil, fmt.Errorf("xmpp: server %q: %w", cfg.Server, err)
	}
	if cfg.Secret == "" {
		return nil, errors.New("xmpp: no component secret")
	}
	name := cfg.Name
	if name == "" {
		name = defaultName
	}
	g := &Gateway{
		cfg:        cfg,
		domain:     domain,
		name:       name,
		core:       core,
		log:        log.With().Str("component", "xmpp").Logger(),
		minBackoff: time.Second,
		maxBackoff: 2 * time.Minute,
		up:         make(chan struct{}),
		ctx:        context.Background(),
	}
	g.state.init()
	g.userPictureInterval = defaultUserPictureInterval
	g.fetchVCard = g.requestVCard
	return g, nil
}

// Kind implements bridge.Frontend.
func (g *Gateway) Kind() string { return Kind }

// Domain is the gateway's JID.
func (g *Gateway) Domain() jid.JID { return g.domain }

// ContactJID is the JID of an MSN contact at this gateway.
func (g *Gateway) ContactJID(passport string) (jid.JID, error) {
	return ContactJID(g.domain, passport)
}

// Run connects to the server and serves until ctx ends, reconnecting with
// capped exponential backoff and jitter whenever the connection drops. It
// returns once the stanzas already received have been handled (their calls
// into the core see ctx ended), so that nothing calls the core after Run.
func (g *Gateway) Run(ctx context.Context) error {
	g.mu.Lock()
	g.ctx = ctx
	g.mu.Unlock()
	defer g.files.running.Wait()    // after the queue: its stanzas may start fetches
	defer g.userPics.running.Wait() // likewise
	defer g.queue.wait()
	delay := g.minBackoff
	for {
		connected, err := g.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			delay = g.minBackoff
		}
		// Jitter: wait in [delay/2, delay], so many bridges restarting with one
		// server do not reconnect in lockstep.
		wait := delay/2 + rand.N(delay/2+1)
		g.log.Warn().Err(err).Str("server", g.cfg.Server).Dur("retry_in", wait).Msg("component connection ended")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		delay = min(delay*2, g.maxBackoff)
	}
}

func (g *Gateway) runOnce(ctx context.Context) (connected bool, err error) {
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", g.cfg.Server)
	if err != nil {
		return false, err
	}
	hctx, cancel := context.WithTimeout(ctx, dialTimeout)
	sess, err := component.NewSession(hctx, g.domain, []byte(g.cfg.Secret), conn)
	cancel()
	if err != nil {
		conn.Close()
		// The handshake sends only a hash of the secret; err never holds it.
		return false, fmt.Errorf("component handshake: %w", err)
	}
	// Clear any deadline the handshake left on the connection.
	_ = conn.SetDeadline(time.Time{})
	g.log.Info().Str("server", g.cfg.Server).Str("jid", g.domain.String()).Msg("component connected")
	stop := context.AfterFunc(ctx, func() {
		// Shutting down: tell users their contacts are gone (XEP-0100
		// §4.5.2), end the stream politely, but never hang on a dead peer.
		_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		g.announceOffline()
		_ = sess.Close()
		conn.Close()
	})
	defer stop()
	g.setSession(sess, conn)
	go g.afterConnect()
	if g.onConnect != nil {
		g.onConnect()
	}
	err = sess.Serve(xmpp.HandlerFunc(g.handle))
	g.setSession(nil, nil)
	conn.Close()
	if err == nil {
		err = errors.New("server closed the stream")
	}
	return true, err
}

func (g *Gateway) setSession(sess *xmpp.Session, conn net.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sess, g.conn = sess, conn
	g.rosterHosts = nil // privileges are granted anew on each connection
	if sess != nil {
		close(g.up)
	} else {
		g.up = make(chan struct{})
	}
}

// WaitConnected blocks until the component is connected or ctx ends.
func (g *Gateway) WaitConnected(ctx context.Context) error {
	g.mu.Lock()
	up := g.up
	g.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// afterConnect asks known users for their presence again: while the
// component was away the server dropped what it would have routed to it.
func (g *Gateway) afterConnect() {
	for _, user := range g.state.knownUsers() {
		_ = g.send(outPresence{Type: "probe", From: g.domain.String(), To: user})
	}
}

// announceOffline sends unavailable presence from every contact shown
// online and from the gateway to every user it knows.
func (g *Gateway) announceOffline() {
	g.closeRooms()
	for user, contacts := range g.state.onlineContacts() {
		for _, c := range contacts {
			if j, err := g.ContactJID(c.Passport); err == nil {
				_ = g.send(outPresence{Type: "unavailable", From: j.String(), To: user})
			}
		}
		_ = g.send(outPresence{Type: "unavailable", From: g.domain.String(), To: user, Status: g.name + " is shutting down"})
	}
}

// send writes one stanza on the current session.
func (g *Gateway) send(v any) error { return g.sendCtx(context.Background(), v) }

// sendCtx is send, not started once ctx has ended, and bounded by
// sendTimeout.
//
// mellium never gets a context that ends: when the context given to
// Session.Encode ends (even by the cancel right after Encode returned), a
// goroutine of mellium's may still set the connection's write deadline to
// the past, failing whatever write another goroutine is making then and
// breaking the stream. The timeout is the connection's write deadline
// instead, moved forward by every send.
func (g *Gateway) sendCtx(ctx context.Context, v any) error {
	g.mu.Lock()
	sess, conn := g.sess, g.conn
	g.mu.Unlock()
	if sess == nil {
		return ErrNotConnected
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("xmpp: sending: %w", err)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(sendTimeout))
	if err := sess.Encode(context.Background(), v); err != nil {
		return fmt.Errorf("xmpp: sending: %w", err)
	}
	return nil
}

// coreCtx is the context for calls into the core on a stanza's behalf.
func (g *Gateway) coreCtx() (context.Context, context.CancelFunc) {
	g.mu.Lock()
	ctx := g.ctx
	g.mu.Unlock()
	return context.WithTimeout(ctx, coreTimeout)
}

// handle reads one stanza whole and queues it for its sender. It never
// returns an error: one bad stanza must not end the session.
func (g *Gateway) handle(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	// Decoding from a reader that replays start avoids mellium's
	// "unexpected end element" with DecodeElement (see peers.md).
	d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), t))
	n := &node{}
	if err := d.Decode(n); err != nil {
		g.log.Warn().Err(err).Str("element", start.Name.Local).Msg("dropping undecodable stanza")
		// Tell the sender, from what the opening tag alone says.
		bad := &node{Name: start.Name, Attrs: start.Attr}
		from, ferr := jid.Parse(bad.Attr("from"))
		to, terr := jid.Parse(bad.Attr("to"))
		if ferr == nil && terr == nil && from.Domainpart() != g.domain.Domainpart() {
			go g.replyError(&inStanza{node: bad, from: from, to: to}, newErr(errModify, "not-acceptable", "stanza too complex for this gateway"))
		}
		return nil
	}
	switch n.Name.Local {
	case "iq", "message", "presence":
	default:
		g.log.Debug().Str("element", n.Name.Local).Msg("ignoring non-stanza element")
		return nil
	}
	from, err := jid.Parse(n.Attr("from"))
	if err != nil || from.Domainpart() == "" {
		g.log.Debug().Str("from", n.Attr("from")).Msg("dropping stanza without a valid sender")
		return nil
	}
	to, err := jid.Parse(n.Attr("to"))
	if err != nil || to.Domainpart() != g.domain.Domainpart() {
		g.log.Debug().Str("to", n.Attr("to")).Msg("dropping stanza not addressed to the gateway")
		return nil
	}
	if from.Domainpart() == g.domain.Domainpart() {
		return nil // our own stanzas bounced back; never answer them (loops)
	}
	if n.Name.Local == "iq" && (n.Attr("type") == "result" || n.Attr("type") == "error") && g.iqs.deliver(from, n) {
		return nil // an answer to one of the gateway's own IQs (iqclient.go)
	}
	if from.Localpart() == "" && n.Name.Local == "message" {
		if priv := n.Child(nsPrivilege, "privilege"); priv != nil {
			g.grantPrivileges(from.Domainpart(), priv)
			return nil
		}
	}
	st := &inStanza{node: n, from: from, to: to, user: bridge.UserID{Frontend: Kind, ID: from.Bare().String()}}
	// Stanzas of one user are handled in order, each user independently,
	// so a slow MSN login does not hold up anyone else.
	if !g.queue.push(st.user.ID, func() { g.process(st) }) {
		g.log.Warn().Str("user", st.user.ID).Msg("too many stanzas queued; refusing")
		g.replyError(st, newErr(errWait, "resource-constraint", "too many requests at once; try again"))
	}
	return nil
}

// inStanza is a decoded stanza with its parsed addresses.
type inStanza struct {
	*node
	from, to jid.JID
	user     bridge.UserID
}

func (s *inStanza) kind() string { return s.Name.Local }
func (s *inStanza) typ() string  { return s.Attr("type") }

// toGateway says the stanza is for the gateway itself, not a contact.
func (s *inStanza) toGateway() bool { return s.to.Localpart() == "" }

func (g *Gateway) process(st *inStanza) {
	defer func() {
		// A bug in one handler must not take the whole frontend down.
		if r := recover(); r != nil {
			g.log.Error().Interface("panic", r).Str("stanza", st.kind()).Msg("stanza handler panicked")
			g.replyError(st, newErr(errCancel, "internal-server-error", ""))
		}
	}()
	switch st.kind() {
	case "iq":
		g.handleIQ(st)
	case "message":
		g.handleMessage(st)
	case "presence":
		g.handlePresence(st)
	}
}

// replyError answers a stanza with an error, unless it is itself an error
// or a result (answering those could loop).
func (g *Gateway) replyError(st *inStanza, e *stanzaErr) {
	switch st.typ() {
	case "error", "result":
		return
	}
	var v any
	switch st.kind() {
	case "iq":
		v = outIQ{ID: st.Attr("id"), Type: "error", From: st.to.String(), To: st.from.String(), Error: e}
	case "message":
		v = outMessage{ID: st.Attr("id"), Type: "error", From: st.to.String(), To: st.from.String(), Error: e}
	case "presence":
		v = outPresence{ID: st.Attr("id"), Type: "error", From: st.to.String(), To: st.from.String(), Error: e}
	}
	if err := g.send(v); err != nil {
		g.log.Debug().Err(err).Msg("could not send stanza error")
	}
}

func (g *Gateway) iqResult(st *inStanza, payload any) {
	if err := g.send(outIQ{ID: st.Attr("id"), Type: "result", From: st.to.String(), To: st.from.String(), Payload: payload}); err != nil {
		g.log.Debug().Err(err).Msg("could not send IQ result")
	}
}

// Checks shared by the handlers.

var (
	errForbidden = func() *stanzaErr {
		return newErr(errAuth, "forbidden", "you are not allowed to use this gateway")
	}
	errRegistrationRequired = func() *stanzaErr {
		return newErr(errAuth, "registration-required", "register your MSN account with the gateway first")
	}
)

// loginStatus reports whether user has a stored MSN login, and its status.
func (g *Gateway) loginStatus(user bridge.UserID) (bridge.LoginStatus, bool) {
	ctx, cancel := g.coreCtx()
	defer cancel()
	st, err := g.core.Status(ctx, user)
	if err != nil || st.Passport == "" {
		return st, false
	}
	return st, true
}

// authorize returns the error to answer with when user may not use the
// gateway (no permission) or, if needLogin, has no MSN login.
func (g *Gateway) authorize(user bridge.UserID, needLogin bool) *stanzaErr {
	if g.core.Permission(user) == bridge.PermissionNone {
		return errForbidden()
	}
	if needLogin {
		if _, ok := g.loginStatus(user); !ok {
			return errRegistrationRequired()
		}
	}
	return nil
}

func newID() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serialQueue runs functions one at a time per key, in order, with a
// goroutine per busy key that exits when the key's queue is empty.
type serialQueue struct {
	mu      sync.Mutex
	pending map[string][]func()
	running sync.WaitGroup // one per busy key
}

// wait blocks until every queued function has run.
func (q *serialQueue) wait() { q.running.Wait() }

func (q *serialQueue) push(key string, f func()) bool {
	q.mu.Lock()
	if q.pending == nil {
		q.pending = make(map[string][]func())
	}
	fs, running := q.pending[key]
	if len(fs) >= maxQueued {
		q.mu.Unlock()
		return false
	}
	q.pending[key] = append(fs, f)
	if !running {
		q.running.Add(1)
	}
	q.mu.Unlock()
	if !running {
		go func() {
			defer q.running.Done()
			q.run(key)
		}()
	}
	return true
}

func (q *serialQueue) run(key string) {
	for {
		q.mu.Lock()
		fs := q.pending[key]
		if len(fs) == 0 {
			delete(q.pending, key)
			q.mu.Unlock()
			return
		}
		f := fs[0]
		fs[0] = nil
		q.pending[key] = fs[1:]
		q.mu.Unlock()
		f()
	}
}
