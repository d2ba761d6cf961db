package msnp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Conversations are the chat-session policy on top of Switchboard: when to
// open a switchboard, whom to call, what to resend when one dies, and which
// conversation an invitation belongs to. Everything here is guarded by
// Client.conv.mu; the switchboards' handlers take that lock too, so they
// never call back into a Switchboard (which would wait on the reader the
// handler runs on) and the events they emit go to the Client's queue.

// ConversationInfo identifies a conversation to callers. Direct
// conversations have ID == the contact's passport (lower-case) and
// Participants == [that passport]; group ones have an opaque stable ID.
type ConversationInfo struct {
	ID           string
	Group        bool
	Participants []string // lower-case passports, this account excluded
}

// ConversationMessage is a text message. Self is true when another
// endpoint of this account sent it (MSNP16+ MPOP): the user typed it on
// their own Messenger, signed in beside this client, to the conversation's
// contact. This client's own sends never come back as messages.
type ConversationMessage struct {
	Conversation   ConversationInfo
	From, FromName string
	Self           bool
	Text           string
	Format         TextFormat
}

// ConversationTyping is a typing notice.
type ConversationTyping struct {
	Conversation ConversationInfo
	From         string
}

// ConversationNudge is a nudge (datacast ID 1).
type ConversationNudge struct {
	Conversation ConversationInfo
	From         string
}

// ConversationUnsupported is content this package does not interpret: P2P
// applications it declines (webcam, winks, voice, sharing folders; display
// pictures and files are handled, see FetchMSNObject and FileOffer), ink,
// unknown types. The bridge should tell the user something arrived.
type ConversationUnsupported struct {
	Conversation      ConversationInfo
	From, ContentType string
}

// ConversationJoined is someone joining a group conversation; when a
// conversation becomes a group (a third person joined, or Invite on a
// direct conversation) it comes once for every member.
type ConversationJoined struct {
	Conversation   ConversationInfo
	Passport, Name string
}

// ConversationLeft is someone leaving a group conversation (not the
// switchboard's idle timeout, which ends no membership).
type ConversationLeft struct {
	Conversation ConversationInfo
	Passport     string
}

func (ConversationMessage) isEvent()     {}
func (ConversationTyping) isEvent()      {}
func (ConversationNudge) isEvent()       {}
func (ConversationUnsupported) isEvent() {}
func (ConversationJoined) isEvent()      {}
func (ConversationLeft) isEvent()        {}

// Errors of conversations.
var (
	// ErrConversationLeft is returned for sends to a conversation that was
	// left (Leave), and by the sends Leave interrupted.
	ErrConversationLeft = errors.New("msnp: conversation was left")
	// ErrSendFailed is matched by a send that failed every attempt; the
	// error also wraps the last attempt's cause.
	ErrSendFailed = errors.New("msnp: message not accepted by the switchboard")
	// ErrQueueFull means too many sends are waiting in one conversation.
	ErrQueueFull = errors.New("msnp: too many messages waiting in the conversation")
	// ErrNoParticipants means a group conversation has no member left to
	// call.
	ErrNoParticipants = errors.New("msnp: nobody left in the conversation")
)

// Bounds of the conversation machinery.
const (
	// maxSendAttempts is how many switchboards (or NAKs) one message may
	// go through before its send fails.
	maxSendAttempts = 3
	// maxQueuedSends bounds one conversation's waiting messages.
	maxQueuedSends = 1024
	// maxAnswering bounds invitations being answered at once.
	maxAnswering = 32
	// maxEarlyEvents bounds what a switchboard's handler keeps before the
	// session is attached to its conversation.
	maxEarlyEvents = 256
)

// convState is the Client's conversations and live switchboards.
type convState struct {
	mu        sync.Mutex
	direct    map[string]*Conversation       // by lower-case passport
	groups    map[string]*Conversation       // by ID
	sessions  map[*sbSession]struct{}        // every switchboard not yet closed
	answering int                            // invitations waiting or being answered
	invites   map[string][]SwitchboardInvite // by lower-case inviter, oldest first
}

// Conversation is one chat: with one contact (direct) or several (group).
// It owns at most one live switchboard for sending, opened lazily on the
// first send and reused while it lives; messages are sent one at a time,
// in the order the sends were made, by a goroutine that lives only while
// messages wait.
//
// Received events keep their order within a switchboard. Across
// switchboards (a contact's old one dying and a new one answered) each
// connection is read on its own goroutine, so a message still unread in
// the old one can, rarely, surface after one from the new: invitations
// from one contact are answered in order to keep that window small, but
// the protocol offers nothing to close it.
type Conversation struct {
	c     *Client
	id    string
	group bool
	peer  string // direct: the contact, lower-case

	// Guarded by c.conv.mu.
	members   []string        // group: lower-case passports to CAL
	announced map[string]bool // group: members ConversationJoined was sent for
	sb        *sbSession      // the switchboard sends go to, or nil
	queue     []*sendOp
	current   *sendOp // being sent by the worker
	running   bool    // the worker goroutine exists
	left      bool
}

// sendOp is one MSG payload to get accepted, or one invitation to make.
type sendOp struct {
	payload []byte // nil for invitations
	ack     AckMode
	invite  string // passport to CAL; "" with a nil payload: just connect
	batch   *sendBatch
}

// sendBatch is what one call waits for: the parts of one split text.
type sendBatch struct {
	left      int
	err       error
	done      chan struct{}
	finished  bool
	abandoned bool // the caller stopped waiting
}

// sbSession is one switchboard connection and the conversation it serves.
type sbSession struct {
	c *Client

	// Guarded by c.conv.mu.
	sb       *Switchboard
	conv     *Conversation
	attached bool
	early    []SwitchboardEvent
	closed   bool
	called   map[string]bool // passports CALled in this switchboard
	changed  chan struct{}   // closed and replaced on every event
	// awaitPeer marks a switchboard another endpoint of this account
	// invited us to (MPOP: WLM 2009 CALs its own account on opening one)
	// before any contact was in it: it is attached to a conversation
	// when the first contact joins.
	awaitPeer bool
}

func (c *Client) convInit() {
	if c.conv.direct == nil {
		c.conv.direct = map[string]*Conversation{}
		c.conv.groups = map[string]*Conversation{}
		c.conv.sessions = map[*sbSession]struct{}{}
		c.conv.invites = map[string][]SwitchboardInvite{}
	}
}

// Chat returns the 1:1 conversation with passport, creating it if needed.
// It opens no switchboard by itself.
func (c *Client) Chat(passport string) *Conversation {
	c.conv.mu.Lock()
	defer c.conv.mu.Unlock()
	return c.chatLocked(passport)
}

func (c *Client) chatLocked(passport string) *Conversation {
	c.convInit()
	k := strings.ToLower(passport)
	cv := c.conv.direct[k]
	if cv == nil {
		cv = &Conversation{c: c, id: k, peer: k}
		c.conv.direct[k] = cv
	}
	return cv
}

// Group returns the group conversation with this id, creating it with
// these members if it is unknown (after a restart, say). Sending to it
// opens a switchboard and CALs every member.
func (c *Client) Group(id string, members []string) *Conversation {
	c.conv.mu.Lock()
	defer c.conv.mu.Unlock()
	c.convInit()
	if cv := c.conv.groups[id]; cv != nil {
		return cv
	}
	return c.newGroupLocked(id, members)
}

func (c *Client) newGroupLocked(id string, members []string) *Conversation {
	c.convInit()
	if id == "" {
		id = newConversationID()
	}
	cv := &Conversation{c: c, id: id, group: true, announced: map[string]bool{}}
	self := strings.ToLower(c.passport)
	for _, m := range members {
		m = strings.ToLower(m)
		if m != "" && m != self && !containsString(cv.members, m) {
			cv.members = append(cv.members, m)
		}
	}
	c.conv.groups[id] = cv
	return cv
}

// newConversationID returns a random opaque group ID. It holds no '@', so
// it never equals a direct conversation's ID.
func newConversationID() string {
	var b [12]byte
	if err := randomBytes(b[:]); err != nil {
		return fmt.Sprintf("g%x", time.Now().UnixNano())
	}
	return "g" + hex.EncodeToString(b[:])
}

// Info describes the conversation as it is now.
func (cv *Conversation) Info() ConversationInfo {
	cv.c.conv.mu.Lock()
	defer cv.c.conv.mu.Unlock()
	return cv.infoLocked()
}

func (cv *Conversation) infoLocked() ConversationInfo {
	if !cv.group {
		return ConversationInfo{ID: cv.id, Participants: []string{cv.peer}}
	}
	return ConversationInfo{ID: cv.id, Group: true, Participants: append([]string(nil), cv.members...)}
}

// SendText sends text in format f, split into as many messages as the
// switchboard's size limit needs. It returns once the server accepted
// every part (nil) or the send failed: an error whose CodeOf is
// ErrUserNotOnline when the contact is offline, another server refusal
// (e.g. ErrNotAllowedOffline while invisible), ErrNotConnected, or one
// matching ErrSendFailed after the bounded retries. Sends to one
// conversation go out in the order they were made.
func (cv *Conversation) SendText(ctx context.Context, text string, f TextFormat) error {
	payloads, err := NewTextMessage(text, f).Split(SwitchboardMaxMessage)
	if err != nil {
		return err
	}
	return cv.send(ctx, payloads)
}

// SendNudge sends a nudge, opening the switchboard if needed.
func (cv *Conversation) SendNudge(ctx context.Context) error {
	return cv.send(ctx, [][]byte{NewNudgeMessage().Bytes()})
}

// SendTyping tells the others this account is typing. It never opens a
// switchboard: without a live one with someone in it, it does nothing.
func (cv *Conversation) SendTyping(ctx context.Context) error {
	c := cv.c
	c.conv.mu.Lock()
	s := cv.sb
	ok := s != nil && !s.closed && s.sb != nil && s.conv == cv
	if ok && !cv.group {
		ok = s.hasLocked(cv.peer)
	}
	c.conv.mu.Unlock()
	if !ok {
		return nil
	}
	_, err := s.sb.SendMessage(ctx, AckNone, NewTypingMessage(c.passport).Bytes())
	if errors.Is(err, ErrSwitchboardEmpty) || errors.Is(err, ErrSwitchboardClosed) {
		return nil // a typing notice is not worth a switchboard
	}
	return err
}

// Invite calls passport into the conversation's switchboard, opening it if
// needed, and returns once the server rang them (their ConversationJoined
// follows when they join). On a direct conversation it creates a new group
// conversation of the contact and passport instead, leaving the direct one
// as it is; the group is announced by its ConversationJoined events.
func (cv *Conversation) Invite(ctx context.Context, passport string) error {
	c := cv.c
	p := strings.ToLower(passport)
	if p == "" || strings.ContainsAny(p, " \t\r\n") || !strings.Contains(p, "@") {
		return fmt.Errorf("msnp: invite: invalid passport %q", passport)
	}
	c.conv.mu.Lock()
	target := cv
	if !cv.group {
		target = c.newGroupLocked("", []string{cv.peer, p})
	} else if cv.left {
		c.conv.mu.Unlock()
		return ErrConversationLeft
	} else if !containsString(cv.members, p) {
		cv.members = append(cv.members, p)
	}
	c.conv.mu.Unlock()
	err := target.enqueue(ctx, []*sendOp{{invite: p}})
	if err != nil && target != cv {
		// The group was only for this invitation: do not leave it half
		// made, with the contact in it and the invitee not.
		target.Leave()
	}
	return err
}

// Leave closes the conversation's switchboards (OUT) and fails its waiting
// sends with ErrConversationLeft. A group conversation is forgotten
// (Group with its ID makes a new one); a direct one may be used again.
func (cv *Conversation) Leave() error {
	c := cv.c
	c.conv.mu.Lock()
	cv.left = true
	cv.sb = nil
	var close []*Switchboard
	for s := range c.conv.sessions {
		if s.conv == cv && s.sb != nil {
			close = append(close, s.sb)
		}
	}
	for _, op := range append([]*sendOp(nil), cv.queue...) {
		cv.finishLocked(op, ErrConversationLeft)
	}
	if cv.group && c.conv.groups[cv.id] == cv {
		delete(c.conv.groups, cv.id)
	}
	c.conv.mu.Unlock()
	for _, sb := range close {
		sb.Close()
	}
	return nil
}

func (cv *Conversation) send(ctx context.Context, payloads [][]byte) error {
	ops := make([]*sendOp, len(payloads))
	for i, p := range payloads {
		ops[i] = &sendOp{payload: p, ack: AckAlways}
	}
	return cv.enqueue(ctx, ops)
}

// enqueue queues ops as one batch and waits for its result.
func (cv *Conversation) enqueue(ctx context.Context, ops []*sendOp) error {
	c := cv.c
	b := &sendBatch{left: len(ops), done: make(chan struct{})}
	c.conv.mu.Lock()
	if cv.left {
		if cv.group {
			c.conv.mu.Unlock()
			return ErrConversationLeft
		}
		cv.left = false // a direct conversation lives on after Leave
	}
	if len(cv.queue)+len(ops) > maxQueuedSends {
		c.conv.mu.Unlock()
		return ErrQueueFull
	}
	for _, op := range ops {
		op.batch = b
		cv.queue = append(cv.queue, op)
	}
	if !cv.running {
		cv.running = true
		go cv.run()
	}
	c.conv.mu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
	}
	c.conv.mu.Lock()
	defer c.conv.mu.Unlock()
	if b.finished {
		return b.err
	}
	// Parts not yet written are dropped; one being written may still get
	// through.
	b.abandoned = true
	for _, op := range append([]*sendOp(nil), cv.queue...) {
		if op.batch == b && op != cv.current {
			cv.finishLocked(op, ctx.Err())
		}
	}
	return ctx.Err()
}

// finishLocked removes op from the queue and records its result.
func (cv *Conversation) finishLocked(op *sendOp, err error) {
	for i, o := range cv.queue {
		if o == op {
			cv.queue = append(cv.queue[:i:i], cv.queue[i+1:]...)
			break
		}
	}
	b := op.batch
	if b.finished {
		return
	}
	b.left--
	if err != nil {
		b.err = err
		// The rest of a failed text is not sent: it would arrive cut.
		for _, o := range append([]*sendOp(nil), cv.queue...) {
			if o.batch == b && o != cv.current {
				cv.finishLocked(o, err)
			}
		}
	}
	if (err != nil || b.left <= 0) && !b.finished {
		b.finished = true
		close(b.done)
	}
}

// run sends the queue, head first, until it is empty.
func (cv *Conversation) run() {
	c := cv.c
	for {
		c.conv.mu.Lock()
		if len(cv.queue) == 0 {
			cv.running = false
			cv.current = nil
			if cv.sb != nil {
				cv.sb.closeIfAloneLocked()
			}
			c.conv.mu.Unlock()
			return
		}
		op := cv.queue[0]
		cv.current = op
		c.conv.mu.Unlock()
		err := cv.process(op)
		c.conv.mu.Lock()
		cv.current = nil
		cv.finishLocked(op, err)
		c.conv.mu.Unlock()
	}
}

// process gets one op through, over as many switchboards as it takes, up
// to maxSendAttempts.
func (cv *Conversation) process(op *sendOp) error {
	c := cv.c
	var last error
	for attempt := 1; attempt <= maxSendAttempts; attempt++ {
		c.conv.mu.Lock()
		left, abandoned := cv.left, op.batch.abandoned || op.batch.finished
		c.conv.mu.Unlock()
		if left {
			return ErrConversationLeft
		}
		if abandoned {
			return context.Canceled
		}
		ctx, cancel := context.WithTimeout(context.Background(), orDuration(c.cfg.SwitchboardTimeout, 30*time.Second))
		err := cv.attempt(ctx, op)
		cancel()
		if err == nil {
			return nil
		}
		if permanent(err) {
			return err
		}
		c.log.Debug().Err(err).Str("conversation", cv.id).Int("attempt", attempt).Msg("switchboard send failed")
		last = err
	}
	return fmt.Errorf("%w after %d attempts: %w", ErrSendFailed, maxSendAttempts, last)
}

// permanent reports errors that another attempt would only repeat.
func permanent(err error) bool {
	switch CodeOf(err) {
	case ErrUserNotOnline, ErrInvalidPrincipal, ErrInvalidUser, ErrNotAllowedOffline, ErrNotOnList, ErrOnOppositeList:
		return true
	}
	return errors.Is(err, ErrNotConnected) || errors.Is(err, ErrConversationLeft) || errors.Is(err, ErrNoParticipants)
}

var errSwitchboardMoved = errors.New("msnp: the switchboard became another conversation's")

func (cv *Conversation) attempt(ctx context.Context, op *sendOp) error {
	s, err := cv.ensure(ctx)
	if err != nil {
		return err
	}
	if op.payload == nil {
		if op.invite == "" {
			return nil
		}
		return cv.invite(ctx, s, op.invite)
	}
	c := cv.c
	c.conv.mu.Lock()
	ok := s.conv == cv && !s.closed
	c.conv.mu.Unlock()
	if !ok {
		return errSwitchboardMoved
	}
	// A message written here whose ACK never comes (the switchboard dies
	// first) is sent again on a new switchboard. If the old switchboard
	// had relayed it before dying, the peer sees it twice: a rare
	// duplicate is preferred to a loss. A message once ACKed is never
	// sent again.
	_, err = s.sb.SendMessage(ctx, op.ack, op.payload)
	if err != nil && !errors.Is(err, ErrNotAccepted) && !errors.Is(err, ErrSwitchboardEmpty) {
		cv.drop(s)
	}
	return err
}

// drop stops using s for sending and closes it.
func (cv *Conversation) drop(s *sbSession) {
	c := cv.c
	c.conv.mu.Lock()
	if cv.sb == s {
		cv.sb = nil
	}
	sb := s.sb
	c.conv.mu.Unlock()
	if sb != nil {
		sb.Close()
	}
}

// ensure returns a live switchboard of this conversation with the other
// party in it: the current one, after re-CALling whoever left, or a new
// one. Escargot ACKs messages to an empty switchboard, so presence is
// checked here, not inferred from ACKs.
func (cv *Conversation) ensure(ctx context.Context) (*sbSession, error) {
	c := cv.c
	c.conv.mu.Lock()
	if cv.left {
		c.conv.mu.Unlock()
		return nil, ErrConversationLeft
	}
	s := cv.sb
	if s != nil && (s.closed || s.conv != cv) {
		cv.sb, s = nil, nil
	}
	c.conv.mu.Unlock()
	if s == nil {
		var err error
		if s, err = cv.open(ctx); err != nil {
			return nil, err
		}
	}
	if err := cv.callMembers(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

// open starts a switchboard for the conversation: XFR SB, then USR.
func (cv *Conversation) open(ctx context.Context) (*sbSession, error) {
	c := cv.c
	addr, cookie, err := c.RequestSwitchboard(ctx)
	if err != nil {
		return nil, err
	}
	s := c.newSession()
	sb, err := DialSwitchboard(ctx, addr, c.EndpointID(), cookie, &SwitchboardOptions{Handler: s.handle})
	if err != nil {
		return nil, err
	}
	c.conv.mu.Lock()
	if cv.left {
		c.conv.mu.Unlock()
		sb.Close()
		return nil, ErrConversationLeft
	}
	s.sb = sb
	s.conv = cv
	cv.sb = s
	c.conv.sessions[s] = struct{}{}
	s.attachLocked()
	c.conv.mu.Unlock()
	return s, nil
}

// callMembers CALs the conversation's members who are not in s and waits
// for them to join. A direct conversation needs its contact; a group one
// needs anyone, and waits a while for the rest.
func (cv *Conversation) callMembers(ctx context.Context, s *sbSession) error {
	c := cv.c
	c.conv.mu.Lock()
	var want []string
	if cv.group {
		want = append(want, cv.members...)
	} else {
		want = []string{cv.peer}
	}
	var call []string
	present := 0
	for _, p := range want {
		switch {
		case s.hasLocked(p):
			present++
		case !cv.group || !s.called[p]:
			// A group member already ringing is not rung twice. (One who
			// left is no member any more.)
			call = append(call, p)
		}
	}
	c.conv.mu.Unlock()
	if len(call) == 0 && present > 0 {
		return nil
	}
	var firstErr error
	var rang []string
	for _, p := range call {
		_, err := s.sb.Call(ctx, p)
		switch {
		case err == nil, CodeOf(err) == ErrAlreadyOnList:
			c.conv.mu.Lock()
			s.called[p] = true
			c.conv.mu.Unlock()
			rang = append(rang, p)
		case errors.Is(err, ErrSwitchboardClosed) || ctx.Err() != nil:
			cv.drop(s)
			return err
		default:
			if CodeOf(err) == ErrUserNotOnline {
				err = fmt.Errorf("msnp: %s is not online: %w", p, err)
			}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if len(rang) == 0 && present == 0 {
		if firstErr == nil {
			firstErr = ErrNoParticipants
		}
		return firstErr
	}
	// Wait for everyone who rang; a group proceeds with whoever came when
	// half the time is up.
	wctx := ctx
	if cv.group && present == 0 {
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			wctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/2))
			defer cancel()
		}
	}
	err := s.wait(wctx, func() bool {
		for _, p := range rang {
			if !s.hasLocked(p) {
				return false
			}
		}
		return true
	})
	if err == nil {
		return nil
	}
	if cv.group && ctx.Err() == nil && s.othersCount() > 0 {
		return nil
	}
	if !errors.Is(err, ErrSwitchboardClosed) {
		// Nobody answered the ring: this switchboard is not worth keeping.
		cv.drop(s)
		err = fmt.Errorf("msnp: waiting for %s to join: %w", strings.Join(rang, ", "), err)
	}
	return err
}

// invite CALs p into s (a group's), unless ensure just did, and waits for
// them.
func (cv *Conversation) invite(ctx context.Context, s *sbSession, p string) error {
	c := cv.c
	c.conv.mu.Lock()
	in, called := s.hasLocked(p), s.called[p]
	c.conv.mu.Unlock()
	if in {
		return nil
	}
	if called {
		// Rung already (by ensure, or an earlier attempt) and not yet
		// there: ringing again would invite them twice.
		return s.wait(ctx, func() bool { return s.hasLocked(p) })
	}
	_, err := s.sb.Call(ctx, p)
	if err == nil || CodeOf(err) == ErrAlreadyOnList {
		c.conv.mu.Lock()
		s.called[p] = true
		c.conv.mu.Unlock()
	} else {
		if errors.Is(err, ErrSwitchboardClosed) {
			cv.drop(s)
			return err
		}
		c.conv.mu.Lock()
		cv.removeMemberLocked(p)
		c.conv.mu.Unlock()
		if CodeOf(err) == ErrUserNotOnline {
			return fmt.Errorf("msnp: %s is not online: %w", p, err)
		}
		return err
	}
	return s.wait(ctx, func() bool { return s.hasLocked(p) })
}

func (cv *Conversation) removeMemberLocked(p string) {
	for i, m := range cv.members {
		if m == p {
			cv.members = append(cv.members[:i:i], cv.members[i+1:]...)
			break
		}
	}
	delete(cv.announced, p)
}

func (c *Client) newSession() *sbSession {
	return &sbSession{c: c, called: map[string]bool{}, changed: make(chan struct{})}
}

// hasLocked reports whether passport (lower-case) is in the switchboard.
func (s *sbSession) hasLocked(passport string) bool {
	if s.sb == nil || s.closed {
		return false
	}
	for _, p := range s.sb.Participants() {
		if !p.Self && strings.EqualFold(p.Passport, passport) {
			return true
		}
	}
	return false
}

// othersLocked returns the participants other than this account.
func (s *sbSession) othersLocked() []SwitchboardParticipant {
	if s.sb == nil {
		return nil
	}
	var out []SwitchboardParticipant
	for _, p := range s.sb.Participants() {
		if !p.Self {
			out = append(out, p)
		}
	}
	return out
}

func (s *sbSession) othersCount() int {
	s.c.conv.mu.Lock()
	defer s.c.conv.mu.Unlock()
	return len(s.othersLocked())
}

// wait waits until cond (called with the lock held) holds, the
// switchboard closes or ctx ends.
func (s *sbSession) wait(ctx context.Context, cond func() bool) error {
	for {
		s.c.conv.mu.Lock()
		ok, closed, ch := cond(), s.closed, s.changed
		s.c.conv.mu.Unlock()
		if ok {
			return nil
		}
		if closed {
			return ErrSwitchboardClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// handle is the switchboard's handler. Events that come before the
// session is attached to a conversation wait in early.
func (s *sbSession) handle(ev SwitchboardEvent) {
	c := s.c
	c.conv.mu.Lock()
	defer c.conv.mu.Unlock()
	if !s.attached {
		_, last := ev.(SBClosed)
		if len(s.early) < maxEarlyEvents || last {
			s.early = append(s.early, ev)
		}
		if last {
			s.closed = true
			if s.awaitPeer {
				// No contact ever came; answerOne is long done.
				delete(c.conv.sessions, s)
			}
			s.notifyLocked()
			return
		}
		if s.awaitPeer && s.sb != nil {
			if others := s.othersLocked(); len(others) > 0 {
				s.awaitPeer = false
				c.adoptLocked(s, others)
			} else if s.ownEndpointsGoneLocked() {
				// The endpoint that invited us left before calling
				// anyone: nobody is coming.
				go s.sb.Close()
			}
		}
		return
	}
	s.applyLocked(ev)
}

// ownEndpointsGoneLocked reports whether no other endpoint of this
// account is left in the switchboard. (Escargot may announce this
// connection's own endpoint to it, too.)
func (s *sbSession) ownEndpointsGoneLocked() bool {
	mine := strings.ToLower(s.c.MachineGUID())
	for _, p := range s.sb.Participants() {
		if !p.Self {
			continue
		}
		for _, e := range p.Endpoints {
			if e != mine {
				return false
			}
		}
	}
	return true
}

// attachLocked starts routing the switchboard's events to s.conv.
func (s *sbSession) attachLocked() {
	s.attached = true
	early := s.early
	s.early = nil
	for _, ev := range early {
		s.applyLocked(ev)
	}
	s.notifyLocked()
}

func (s *sbSession) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *sbSession) applyLocked(ev SwitchboardEvent) {
	c := s.c
	defer s.notifyLocked()
	cv := s.conv
	switch e := ev.(type) {
	case SBJoined:
		if e.Participant.Self || !e.New || cv == nil {
			return
		}
		others := s.othersLocked()
		if !cv.group && len(others) >= 2 {
			s.becomeGroupLocked(others)
			return
		}
		if cv.group {
			p := strings.ToLower(e.Participant.Passport)
			if !containsString(cv.members, p) {
				cv.members = append(cv.members, p)
			}
			if !cv.announced[p] {
				cv.announced[p] = true
				c.emit(ConversationJoined{Conversation: cv.infoLocked(), Passport: e.Participant.Passport, Name: e.Participant.FriendlyName})
			}
		}
	case SBLeft:
		if !e.Gone || cv == nil || strings.EqualFold(e.Passport, c.passport) {
			return
		}
		// Only the current switchboard speaks for the group's membership:
		// an old one emptying out says nothing.
		p := strings.ToLower(e.Passport)
		delete(s.called, p) // whoever calls them again means it
		if cv.group && !e.IdleTimeout && cv.sb == s && containsString(cv.members, p) {
			cv.removeMemberLocked(p)
			c.emit(ConversationLeft{Conversation: cv.infoLocked(), Passport: e.Passport})
		}
		s.closeIfAloneLocked()
	case SBMessage:
		if cv != nil {
			s.messageLocked(e)
		}
	case SBClosed:
		s.closed = true
		delete(c.conv.sessions, s)
		if cv != nil && cv.sb == s {
			cv.sb = nil
		}
	case SBServerError:
		c.log.Debug().Err(e.Err).Msg("switchboard error")
	}
}

// closeIfAloneLocked closes s when nobody else is left in it and no send
// is using it: a lone switchboard is worth nothing (a send would have to
// CAL anyway) and, on a server without an idle timeout, would stay open
// for good. A send in progress re-CALs into it instead.
func (s *sbSession) closeIfAloneLocked() {
	cv := s.conv
	if s.closed || s.sb == nil || len(s.othersLocked()) > 0 || (cv != nil && cv.running && cv.sb == s) {
		return
	}
	if cv != nil && cv.sb == s {
		cv.sb = nil
	}
	go s.sb.Close()
}

// becomeGroupLocked turns a direct conversation's switchboard, which a
// third person joined, into a new group conversation; the direct
// conversation opens a fresh switchboard next time.
func (s *sbSession) becomeGroupLocked(others []SwitchboardParticipant) {
	c := s.c
	old := s.conv
	var members []string
	for _, p := range others {
		members = append(members, p.Passport)
	}
	g := c.newGroupLocked("", members)
	if old.sb == s {
		old.sb = nil
	}
	s.conv = g
	g.sb = s
	for _, p := range others {
		g.announced[strings.ToLower(p.Passport)] = true
		c.emit(ConversationJoined{Conversation: g.infoLocked(), Passport: p.Passport, Name: p.FriendlyName})
	}
}

// Content types that carry nothing for a user: client capability and
// keep-alive chatter some clients send.
var ignoredContent = map[string]bool{
	"text/x-clientcaps": true,
	"text/x-keepalive":  true,
	ContentTypeControl:  true, // a control message other than typing
}

func (s *sbSession) messageLocked(e SBMessage) {
	c := s.c
	info := s.conv.infoLocked()
	self := strings.EqualFold(e.From, c.passport)
	switch ct := e.Content.(type) {
	case *TextMessage:
		c.emit(ConversationMessage{Conversation: info, From: e.From, FromName: e.FriendlyName, Self: self, Text: ct.Text, Format: ct.Format})
	case *TypingNotice:
		if !self && !ct.Recording {
			c.emit(ConversationTyping{Conversation: info, From: e.From})
		}
	case *Datacast:
		if ct.ID == DatacastNudge {
			c.emit(ConversationNudge{Conversation: info, From: e.From})
			return
		}
		c.emit(ConversationUnsupported{Conversation: info, From: e.From, ContentType: ContentTypeDatacast})
	case *P2PMessage:
		// P2P to this endpoint goes to the session layer (p2psession.go),
		// which reports the applications it declines as unsupported; P2P
		// between others in a group switchboard, or to another endpoint
		// of this account, is not ours to read.
		c.p2pReceive(e.From, e.FriendlyName, ct)
	case *InkMessage:
		c.emit(ConversationUnsupported{Conversation: info, From: e.From, ContentType: ct.ContentType})
	case *UnsupportedContent:
		if !ignoredContent[ct.ContentType] {
			c.emit(ConversationUnsupported{Conversation: info, From: e.From, ContentType: ct.ContentType})
		}
	}
}

// answerInvite joins the switchboard an RNG invited to and attaches it:
// one other participant makes it that contact's direct conversation's
// switchboard, more make a new group conversation. One inviter's
// invitations are answered one after the other, on a goroutine that lives
// while they wait, so that what the inviter said in an older switchboard
// is delivered before what they said in a newer one.
func (c *Client) answerInvite(inv SwitchboardInvite) {
	c.conv.mu.Lock()
	defer c.conv.mu.Unlock()
	c.convInit()
	if c.conv.answering >= maxAnswering {
		c.log.Debug().Str("inviter", inv.Inviter).Msg("too many invitations at once; ignoring one")
		return
	}
	c.conv.answering++
	k := strings.ToLower(inv.Inviter)
	c.conv.invites[k] = append(c.conv.invites[k], inv)
	if len(c.conv.invites[k]) == 1 {
		go c.answerInvites(k)
	}
}

func (c *Client) answerInvites(inviter string) {
	for {
		c.conv.mu.Lock()
		q := c.conv.invites[inviter]
		if len(q) == 0 {
			delete(c.conv.invites, inviter)
			c.conv.mu.Unlock()
			return
		}
		inv := q[0]
		c.conv.mu.Unlock()
		c.answerOne(inv)
		c.conv.mu.Lock()
		c.conv.answering--
		c.conv.invites[inviter] = c.conv.invites[inviter][1:]
		c.conv.mu.Unlock()
	}
}

func (c *Client) answerOne(inv SwitchboardInvite) {
	s := c.newSession()
	ctx, cancel := context.WithTimeout(context.Background(), orDuration(c.cfg.SwitchboardTimeout, 30*time.Second))
	sb, err := AnswerSwitchboard(ctx, inv.Addr, c.EndpointID(), inv.Cookie, inv.SessionID, &SwitchboardOptions{Handler: s.handle})
	cancel()
	if err != nil {
		c.log.Debug().Err(err).Str("inviter", inv.Inviter).Msg("answering an invitation failed")
		return
	}
	if c.current() == nil {
		// Logged out (Close) while answering: closeSwitchboards has run
		// and would not know this one.
		sb.Close()
		return
	}
	c.conv.mu.Lock()
	defer c.conv.mu.Unlock()
	s.sb = sb
	others := s.othersLocked()
	c.conv.sessions[s] = struct{}{}
	switch {
	case len(others) == 0 && strings.EqualFold(inv.Inviter, c.passport):
		// Another endpoint of this account (the user's own Messenger)
		// brought us in before calling anyone: what it says to the
		// contact it calls next is the user's, "sent elsewhere", so stay
		// and attach when the contact joins (handle).
		if s.closed {
			delete(c.conv.sessions, s)
			return
		}
		s.awaitPeer = true
		if s.ownEndpointsGoneLocked() {
			go sb.Close()
		}
	case len(others) == 0:
		// Everyone left already, but what they said before leaving
		// (waiting in s.early) is still the inviter's to deliver.
		s.conv = c.chatLocked(inv.Inviter)
		s.attachLocked()
		go sb.Close()
	default:
		c.adoptLocked(s, others)
	}
}

// adoptLocked attaches an answered switchboard to the conversation its
// other participants make: one contact's direct conversation, or a new
// group of several.
func (c *Client) adoptLocked(s *sbSession, others []SwitchboardParticipant) {
	if len(others) == 1 {
		cv := c.chatLocked(others[0].Passport)
		cv.left = false
		// The newest switchboard is the one the contact uses; an older
		// one still delivers what comes through it until it closes.
		cv.sb = s
		s.conv = cv
		s.attachLocked()
		return
	}
	var members []string
	for _, p := range others {
		members = append(members, p.Passport)
	}
	g := c.newGroupLocked("", members)
	g.sb = s
	s.conv = g
	for _, p := range others {
		g.announced[strings.ToLower(p.Passport)] = true
		c.emit(ConversationJoined{Conversation: g.infoLocked(), Passport: p.Passport, Name: p.FriendlyName})
	}
	s.attachLocked()
}

// OpenSwitchboards is the number of switchboard connections the client has
// open now (sending or answering), for monitoring.
func (c *Client) OpenSwitchboards() int {
	c.conv.mu.Lock()
	defer c.conv.mu.Unlock()
	n := 0
	for s := range c.conv.sessions {
		if s.sb != nil && !s.closed && !s.sb.isClosing() {
			n++
		}
	}
	return n
}

// closeSwitchboards closes every conversation's switchboard (Client.Close).
func (c *Client) closeSwitchboards() {
	c.conv.mu.Lock()
	var sbs []*Switchboard
	for s := range c.conv.sessions {
		if s.sb != nil {
			sbs = append(sbs, s.sb)
		}
	}
	c.conv.mu.Unlock()
	for _, sb := range sbs {
		sb.Close()
	}
	for _, sb := range sbs {
		<-sb.Done()
	}
}
