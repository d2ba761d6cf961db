package xmpp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/msnbridge/msnbridge/bridge"
)

type noStore struct {
	XMLName xml.Name `xml:"urn:xmpp:hints no-store"`
}

// undeliverable wraps bridge.ErrUndeliverable: the core drops the event
// (logging why) instead of retrying it forever ahead of the user's others.
func undeliverable(format string, args ...any) error {
	return fmt.Errorf("xmpp: %w: %s", bridge.ErrUndeliverable, fmt.Sprintf(format, args...))
}

// Deliver implements bridge.Frontend: it shows ev to user as stanzas. It
// returns ErrNotConnected (and the core retries) while the component is
// down, and an error wrapping bridge.ErrUndeliverable for events that can
// never be shown (the core drops those).
func (g *Gateway) Deliver(ctx context.Context, user bridge.UserID, ev bridge.Event) (string, error) {
	if user.Frontend != Kind {
		return "", undeliverable("event for %s, a user of another frontend", user)
	}
	to, err := jid.Parse(user.ID)
	if err != nil || to.Localpart() == "" {
		return "", undeliverable("event for %q, which is not a user's JID", user.ID)
	}
	user.ID = to.Bare().String()
	g.mu.Lock()
	connected := g.sess != nil
	g.mu.Unlock()
	if !connected {
		return "", ErrNotConnected
	}
	switch e := ev.(type) {
	case bridge.Message:
		return g.deliverMessage(ctx, user, e)
	case bridge.File:
		return g.deliverFile(ctx, user, e)
	case bridge.Typing:
		return "", g.deliverTyping(ctx, user, e)
	case bridge.Nudge:
		return g.deliverNudge(ctx, user, e)
	case bridge.Presence:
		if old, ok := g.state.contact(user.ID, NormalizePassport(e.Contact.Passport)); ok && old.FriendlyName != e.Contact.FriendlyName && e.Contact.FriendlyName != "" {
			g.pushRosterItem(user.ID, e.Contact)
		}
		g.state.setPresence(user.ID, e.Contact)
		p, err := g.contactPresence(user.ID, e.Contact)
		if err != nil {
			return "", undeliverable("presence of a contact without a JID: %v", err)
		}
		return "", g.send(p)
	case bridge.ContactChange:
		return "", g.deliverContactChange(user, e)
	case bridge.DeliveryResult:
		return "", g.deliverResult(user, e)
	case bridge.LoginStateChange:
		return "", g.deliverLoginState(user, e)
	case bridge.Notice:
		return g.deliverNotice(ctx, user, e)
	case bridge.Membership:
		return g.deliverMembership(ctx, user, e)
	default:
		return "", undeliverable("unknown event %T", ev)
	}
}

// portalOf finds a portal, from the cache or the core.
func (g *Gateway) portalOf(ctx context.Context, user bridge.UserID, id bridge.PortalID) (bridge.Portal, error) {
	if p, ok := g.state.portal(user.ID, id); ok {
		return p, nil
	}
	p, err := g.core.Portal(ctx, user, id)
	if err != nil {
		return bridge.Portal{}, err
	}
	g.state.setPortal(user.ID, p)
	return p, nil
}

func (g *Gateway) deliverMessage(ctx context.Context, user bridge.UserID, m bridge.Message) (string, error) {
	body := styleBody(m.Text)
	sender := m.Sender
	portal, perr := g.portalOf(ctx, user, m.Portal)
	switch {
	case perr == nil && portal.Kind == bridge.PortalGroup:
		return g.deliverGroupMessage(ctx, user, portal, m)
	case m.FromSelf:
		if perr != nil {
			if errors.Is(perr, bridge.ErrNoSuchPortal) || errors.Is(perr, bridge.ErrNotLoggedIn) {
				return "", undeliverable("a message sent elsewhere in a portal that is gone: %v", perr)
			}
			return "", fmt.Errorf("portal of a message sent elsewhere: %w", perr)
		}
		sender = portal.Contact
		body = "[you, from another MSN client] " + body
	}
	from, err := g.ContactJID(sender)
	if err != nil {
		return "", undeliverable("message from a sender without a JID: %v", err)
	}
	id := newID()
	msg := outMessage{ID: id, Type: "chat", From: from.String(), To: user.ID, Body: body}
	if !m.FromSelf {
		msg.Extra = append(msg.Extra, el(nsChatStates, "active"))
	}
	if !m.Time.IsZero() {
		msg.Extra = append(msg.Extra, delay{Stamp: m.Time.UTC().Format("2006-01-02T15:04:05.000Z"), From: g.domain.String()})
	}
	if err := g.sendCtx(ctx, msg); err != nil {
		return "", err
	}
	return id, nil
}

type delay struct {
	XMLName xml.Name `xml:"urn:xmpp:delay delay"`
	Stamp   string   `xml:"stamp,attr"`
	From    string   `xml:"from,attr,omitempty"`
}

func (g *Gateway) deliverTyping(ctx context.Context, user bridge.UserID, t bridge.Typing) error {
	if p, err := g.portalOf(ctx, user, t.Portal); err == nil && p.Kind == bridge.PortalGroup {
		return g.deliverGroupTyping(ctx, user, p, t)
	}
	from, err := g.ContactJID(t.Sender)
	if err != nil {
		return undeliverable("typing from a sender without a JID: %v", err)
	}
	state := "paused"
	if t.Active {
		state = "composing"
	}
	return g.send(outMessage{Type: "chat", From: from.String(), To: user.ID,
		Extra: []any{el(nsChatStates, state), noStore{}}})
}

func (g *Gateway) deliverNudge(ctx context.Context, user bridge.UserID, n bridge.Nudge) (string, error) {
	if p, err := g.portalOf(ctx, user, n.Portal); err == nil && p.Kind == bridge.PortalGroup {
		if id, shown, err := g.deliverGroupNudge(ctx, user, p, n); shown {
			return id, err
		}
	}
	from, err := g.ContactJID(n.Sender)
	if err != nil {
		return "", undeliverable("nudge from a sender without a JID: %v", err)
	}
	name := n.Sender
	if c, ok := g.state.contact(user.ID, NormalizePassport(n.Sender)); ok && c.FriendlyName != "" {
		name = c.FriendlyName
	}
	id := newID()
	// The body is for clients without XEP-0224.
	err = g.send(outMessage{ID: id, Type: "chat", From: from.String(), To: user.ID,
		Body: name + " sent you a nudge!", Extra: []any{el(nsAttention, "attention")}})
	if err != nil {
		return "", err
	}
	return id, nil
}

func (g *Gateway) deliverContactChange(user bridge.UserID, c bridge.ContactChange) error {
	switch c.Kind {
	case bridge.ContactAdded, bridge.ContactAddedYou:
		if _, err := g.ContactJID(c.Contact.Passport); err != nil {
			return undeliverable("contact without a JID: %v", err)
		}
		g.state.setContact(user.ID, c.Contact)
		g.pushRosterItem(user.ID, c.Contact)
		return g.subscribeRequest(user.ID, c.Contact)
	case bridge.ContactRemoved:
		g.state.removeContact(user.ID, c.Contact.Passport)
		from, err := g.ContactJID(c.Contact.Passport)
		if err != nil {
			return undeliverable("contact without a JID: %v", err)
		}
		for _, typ := range []string{"unavailable", "unsubscribe", "unsubscribed"} {
			if err := g.send(outPresence{Type: typ, From: from.String(), To: user.ID}); err != nil {
				return err
			}
		}
		return nil
	case bridge.ContactBlocked, bridge.ContactUnblocked, bridge.ContactRemovedYou:
		// Blocking is between the user and MSN; the roster stays as it is.
		g.state.setContact(user.ID, c.Contact)
		return nil
	}
	return nil
}

func (g *Gateway) deliverResult(user bridge.UserID, r bridge.DeliveryResult) error {
	p, ok := g.state.takePending(user.ID, r.FrontendID)
	if !ok {
		return nil
	}
	if r.Err == nil {
		if !p.receipt {
			return nil
		}
		return g.send(outMessage{Type: "chat", From: p.from, To: p.to, Extra: []any{receiptReceived{ID: p.id}}})
	}
	if p.file != "" {
		cond := "recipient-unavailable"
		if errors.Is(r.Err, bridge.ErrFileDeclined) {
			cond = "not-acceptable"
		}
		return g.send(outMessage{ID: p.id, Type: "error", From: p.from, To: p.to,
			Error: newErr(errCancel, cond, fmt.Sprintf("MSN did not deliver the file %q: %v", p.file, r.Err))})
	}
	return g.send(outMessage{ID: p.id, Type: "error", From: p.from, To: p.to,
		Error: newErr(errCancel, "recipient-unavailable", "MSN did not deliver the message: "+r.Err.Error())})
}

func (g *Gateway) deliverLoginState(user bridge.UserID, s bridge.LoginStateChange) error {
	switch s.State {
	case bridge.LoginConnected:
		if err := g.send(g.gatewayPresence(user)); err != nil {
			return err
		}
		// The avatar the answer announces is checked against this login
		// (it may be another MSN account than the last one).
		g.userLoginChanged(user)
		// Ask for the user's presence: after a restart of the bridge the
		// gateway knows none of their resources, and the new MSN session
		// must take the status they have on XMPP, not "online".
		if err := g.send(outPresence{Type: "probe", From: g.domain.String(), To: user.ID}); err != nil {
			return err
		}
		// What the user's resources already said, while the session was
		// not connected, is applied now (in order with their stanzas).
		g.queue.push(user.ID, func() { g.applyStatus(user) })
		return g.syncRoster(user)
	case bridge.LoginConnecting:
		return nil
	}
	status := s.Message
	if status == "" {
		status = "MSN: " + string(s.State)
	}
	if err := g.send(outPresence{Type: "unavailable", From: g.domain.String(), To: user.ID, Status: status}); err != nil {
		return err
	}
	g.allOffline(user)
	if s.State != bridge.LoginLoggedOut && s.Message != "" {
		return g.send(outMessage{Type: "chat", From: g.domain.String(), To: user.ID, Body: s.Message})
	}
	return nil
}

// allOffline shows every known contact of user as offline (the MSN session
// is gone, so nothing is known about them).
func (g *Gateway) allOffline(user bridge.UserID) {
	for _, c := range g.state.userContacts(user.ID) {
		if c.Status == bridge.StatusOffline {
			continue
		}
		c.Status = bridge.StatusOffline
		g.state.setContact(user.ID, c)
		if p, err := g.contactPresence(user.ID, c); err == nil {
			_ = g.send(p)
		}
	}
}

func (g *Gateway) deliverNotice(ctx context.Context, user bridge.UserID, n bridge.Notice) (string, error) {
	body := n.Text
	if n.Portal != "" {
		if p, err := g.portalOf(ctx, user, n.Portal); err == nil {
			if id, shown, err := g.deliverGroupNotice(ctx, user, p, n); shown {
				return id, err
			}
			who := p.Contact
			if p.Kind == bridge.PortalGroup {
				who = "group chat with " + strings.Join(p.Members, ", ")
			}
			body = "[" + who + "] " + body
		}
	}
	id := newID()
	if err := g.send(outMessage{ID: id, Type: "chat", From: g.domain.String(), To: user.ID, Body: body}); err != nil {
		return "", err
	}
	return id, nil
}

// syncRoster offers every contact on the user's MSN list as a roster
// subscription (XEP-0100 §4.1 "contact list import"). For contacts the user
// already approved, the server answers "subscribed" by itself and the user
// sees nothing, so repeating this on each login is harmless.
func (g *Gateway) syncRoster(user bridge.UserID) error {
	ctx, cancel := g.coreCtx()
	contacts, err := g.core.Contacts(ctx, user)
	cancel()
	if err != nil {
		g.log.Info().Err(err).Str("user", user.ID).Msg("contact list unavailable for roster sync")
		return nil
	}
	for _, c := range contacts {
		if !c.OnContactList {
			continue
		}
		if _, known := g.state.contact(user.ID, NormalizePassport(c.Passport)); !known {
			g.state.setContact(user.ID, c)
		}
		g.pushRosterItem(user.ID, c)
		if err := g.subscribeRequest(user.ID, c); err != nil && errors.Is(err, ErrNotConnected) {
			return err
		}
	}
	return nil
}
