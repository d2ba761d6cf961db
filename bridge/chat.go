package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/store"
)

// This file bridges conversations: msnp's Conversation (one chat kept alive
// across switchboard sessions) on one side, portals on the other.

// newMSNID names a message for the message map. MSN messages carry no id
// of their own.
func newMSNID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// portalForConversation finds or creates the portal of an msnp
// conversation: the direct portal of the contact, or the group portal bound
// to the conversation's id.
func (l *login) portalForConversation(ctx context.Context, cv msnp.ConversationInfo) (PortalID, error) {
	if !cv.Group {
		p, _, err := l.b.store.Portals.GetOrCreateDirect(ctx, l.id, cv.Participants[0])
		return PortalID(p.ID), err
	}
	key := "conv:" + cv.ID
	if id, err := l.b.store.KV.Get(ctx, l.kvKey(key)); err == nil {
		if _, err := l.b.store.Portals.Get(ctx, id); err == nil {
			return PortalID(id), nil
		}
	}
	p, err := l.b.store.Portals.CreateGroup(ctx, l.id, "", cv.Participants)
	if err != nil {
		return "", err
	}
	if err := l.b.store.KV.Set(ctx, l.kvKey(key), p.ID); err != nil {
		return "", err
	}
	if err := l.b.store.KV.Set(ctx, l.kvKey("portal:"+p.ID), cv.ID); err != nil {
		return "", err
	}
	return PortalID(p.ID), nil
}

func (l *login) kvKey(k string) string { return fmt.Sprintf("login/%d/%s", l.id, k) }

// handleChat translates conversation events.
func (l *login) handleChat(client *msnp.Client, ev msnp.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	portal := func(cv msnp.ConversationInfo) (PortalID, bool) {
		id, err := l.portalForConversation(ctx, cv)
		if err != nil {
			l.log.Error().Err(err).Msg("no portal for a conversation; its event is shown as a notice")
			return "", false
		}
		return id, true
	}
	switch e := ev.(type) {
	case msnp.ConversationMessage:
		id, ok := portal(e.Conversation)
		if !ok {
			l.b.emit(l.user, Notice{Text: fmt.Sprintf("%s wrote (the conversation could not be bridged): %s", e.From, cleanBody(e.Text))})
			return
		}
		l.b.emit(l.user, Message{
			Portal: id, Sender: e.From, FromSelf: e.Self, MSNID: newMSNID(),
			Text: textFromMSN(e.Text, e.Format), Time: time.Now(),
		})
	case msnp.OfflineMessage:
		// Left while the account was offline (MSNP13+): shown in the
		// contact's portal at the time it was written.
		id, ok := portal(msnp.ConversationInfo{ID: strings.ToLower(e.From), Participants: []string{strings.ToLower(e.From)}})
		if !ok {
			return
		}
		when := e.Time
		if when.IsZero() {
			when = time.Now()
		}
		l.b.emit(l.user, Message{Portal: id, Sender: strings.ToLower(e.From), MSNID: newMSNID(),
			Text: Text{Body: cleanBody(e.Text)}, Time: when})
	case msnp.ConversationTyping:
		if id, ok := portal(e.Conversation); ok {
			l.b.emit(l.user, Typing{Portal: id, Sender: e.From, Active: true})
		}
	case msnp.ConversationNudge:
		if id, ok := portal(e.Conversation); ok {
			l.b.emit(l.user, Nudge{Portal: id, Sender: e.From})
		}
	case msnp.ConversationUnsupported:
		if id, ok := portal(e.Conversation); ok {
			l.b.emit(l.user, Notice{Portal: id, Text: fmt.Sprintf("%s sent something the bridge cannot show yet (%s).", e.From, e.ContentType)})
		}
	case msnp.FileOffer:
		id, ok := portal(e.Conversation)
		if !ok {
			_ = e.Transfer.Decline()
			l.b.emit(l.user, Notice{Text: fmt.Sprintf("%s offered you the file “%s”, which was declined: the conversation could not be bridged.", e.From, cleanFileName(e.Name))})
			return
		}
		l.handleFileOffer(id, e)
	case msnp.ConversationJoined:
		if !e.Conversation.Group {
			return
		}
		if id, ok := portal(e.Conversation); ok {
			_ = l.b.store.Portals.AddMember(ctx, string(id), e.Passport)
			l.b.emit(l.user, Membership{Portal: id, Passport: e.Passport, Name: cleanText(e.Name, 387), Joined: true})
		}
	case msnp.ConversationLeft:
		if !e.Conversation.Group {
			return
		}
		if id, ok := portal(e.Conversation); ok {
			_ = l.b.store.Portals.RemoveMember(ctx, string(id), e.Passport)
			l.b.emit(l.user, Membership{Portal: id, Passport: e.Passport, Joined: false})
		}
	}
}

// conversation returns the msnp conversation behind a portal.
func (l *login) conversation(ctx context.Context, client *msnp.Client, p Portal) (*msnp.Conversation, error) {
	if p.Kind == PortalDirect {
		return client.Chat(p.Contact), nil
	}
	convID, err := l.b.store.KV.Get(ctx, l.kvKey("portal:"+string(p.ID)))
	if err != nil {
		convID = "portal-" + string(p.ID)
		_ = l.b.store.KV.Set(ctx, l.kvKey("portal:"+string(p.ID)), convID)
		_ = l.b.store.KV.Set(ctx, l.kvKey("conv:"+convID), string(p.ID))
	}
	if len(p.Members) == 0 {
		return nil, errors.New("nobody is left in this group conversation")
	}
	return client.Group(convID, p.Members), nil
}

// senders serialises each portal's outgoing messages so they reach MSN in
// the order the user sent them, without one slow portal holding up others.
type senders struct {
	mu      sync.Mutex
	q       map[PortalID]chan func()
	pending sync.WaitGroup // sends queued or running
}

// wait waits up to d for every queued send to finish.
func (s *senders) wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() { s.pending.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func (s *senders) run(p PortalID, f func()) {
	s.pending.Add(1)
	g := f
	f = func() { defer s.pending.Done(); g() }
	s.mu.Lock()
	if s.q == nil {
		s.q = map[PortalID]chan func(){}
	}
	ch, ok := s.q[p]
	if !ok {
		ch = make(chan func(), 256)
		s.q[p] = ch
		go func() {
			for {
				select {
				case f := <-ch:
					f()
				case <-time.After(time.Minute):
					s.mu.Lock()
					if len(ch) == 0 {
						delete(s.q, p)
						s.mu.Unlock()
						return
					}
					s.mu.Unlock()
				}
			}
		}()
	}
	s.mu.Unlock()
	ch <- f
}

// SendMessage implements Core. The message goes out in order with the
// portal's others; its DeliveryResult follows as an event. A message whose
// FrontendID was already sent (a retried transaction) is not sent again.
func (b *Bridge) SendMessage(ctx context.Context, user UserID, id PortalID, msg OutgoingMessage) error {
	l, err := b.loginFor(user)
	if err != nil {
		return err
	}
	p, err := b.portalOf(ctx, l, id)
	if err != nil {
		return err
	}
	if msg.FrontendID != "" {
		if _, err := b.store.Messages.ByFrontendID(ctx, string(id), msg.FrontendID); err == nil {
			return nil
		}
	}
	if strings.TrimSpace(msg.Text.Body) == "" {
		return errors.New("the message is empty")
	}
	l.log.Debug().Str("portal", string(id)).Str("frontend_id", msg.FrontendID).Msg("message queued for MSN")
	b.senders.run(id, func() {
		sctx, cancel := context.WithTimeout(b.ctx, 2*time.Minute)
		defer cancel()
		err := b.sendText(sctx, l, p, msg)
		if err != nil {
			l.log.Warn().Err(err).Str("portal", string(id)).Str("frontend_id", msg.FrontendID).Msg("message to MSN failed")
		} else {
			l.log.Debug().Str("portal", string(id)).Str("frontend_id", msg.FrontendID).Msg("message accepted by MSN")
		}
		if err == nil {
			b.obs.MessageBridged(user.Frontend, ToMSN)
		} else {
			b.obs.Error(ErrorSend)
		}
		if err == nil && msg.FrontendID != "" {
			_ = b.store.Messages.Put(sctx, store.MessageMapping{PortalID: string(id), MSNID: newMSNID(),
				FrontendID: msg.FrontendID, Direction: store.ToMSN, Time: time.Now()})
		}
		b.emit(user, DeliveryResult{Portal: id, FrontendID: msg.FrontendID, Err: err})
	})
	return nil
}

func (b *Bridge) sendText(ctx context.Context, l *login, p Portal, msg OutgoingMessage) error {
	var client *msnp.Client
	var err error
	for attempt := 0; ; attempt++ {
		client, err = l.connectedClient(ctx)
		if err != nil {
			return err
		}
		var cv *msnp.Conversation
		cv, err = l.conversation(ctx, client, p)
		if err != nil {
			return err
		}
		err = cv.SendText(ctx, cleanBody(msg.Text.Body), formatToMSN(msg.Text))
		// When the MSN session went down under the send, the message was
		// not accepted: wait for the reconnect and send it on the new
		// session rather than fail it.
		if err == nil || attempt >= 2 || ctx.Err() != nil || l.currentClient() == client {
			break
		}
		l.log.Info().Err(err).Msg("the MSN session ended during a send; sending again after the reconnect")
	}
	if msnp.CodeOf(err) == msnp.ErrUserNotOnline && p.Kind == PortalDirect && client.Protocol() >= msnp.MSNP13 {
		// The contact is offline: leave an offline message, which MSN
		// delivers when they next sign in.
		if oerr := client.SendOfflineMessage(ctx, p.Contact, cleanBody(msg.Text.Body)); oerr == nil {
			b.emit(l.user, Notice{Portal: p.ID, Text: p.Contact + " is offline; your message was left as an offline message and will reach them when they sign in."})
			return nil
		} else {
			l.log.Warn().Err(oerr).Msg("could not leave an offline message")
		}
	}
	return explainMSNError(err)
}

// SendTyping implements Core. Typing never opens a switchboard by itself.
func (b *Bridge) SendTyping(ctx context.Context, user UserID, id PortalID, active bool) error {
	if !active {
		return nil // MSN has no "stopped typing": it times out after ~6 s
	}
	// Typing is worth nothing late: do not wait for a reconnect (the
	// frontend calls this from its event loop, which must keep moving).
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return b.portalOp(ctx, user, id, func(cv *msnp.Conversation) error { return cv.SendTyping(ctx) })
}

// SendNudge implements Core.
func (b *Bridge) SendNudge(ctx context.Context, user UserID, id PortalID) error {
	return b.portalOp(ctx, user, id, func(cv *msnp.Conversation) error { return cv.SendNudge(ctx) })
}

// Invite implements Core: invites passport into the conversation. In a
// direct portal this starts a group conversation.
func (b *Bridge) Invite(ctx context.Context, user UserID, id PortalID, passport string) error {
	passport, err := normalizePassport(passport)
	if err != nil {
		return err
	}
	return b.portalOp(ctx, user, id, func(cv *msnp.Conversation) error { return explainMSNError(cv.Invite(ctx, passport)) })
}

// LeavePortal implements Core.
func (b *Bridge) LeavePortal(ctx context.Context, user UserID, id PortalID) error {
	return b.portalOp(ctx, user, id, func(cv *msnp.Conversation) error { return cv.Leave() })
}

func (b *Bridge) portalOp(ctx context.Context, user UserID, id PortalID, f func(*msnp.Conversation) error) error {
	l, err := b.loginFor(user)
	if err != nil {
		return err
	}
	p, err := b.portalOf(ctx, l, id)
	if err != nil {
		return err
	}
	return b.withClient(ctx, user, func(l *login, c *msnp.Client) error {
		cv, err := l.conversation(ctx, c, p)
		if err != nil {
			return err
		}
		return f(cv)
	})
}
