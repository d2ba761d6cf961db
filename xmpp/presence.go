package xmpp

import (
	"github.com/msnbridge/msnbridge/bridge"
)

// showOf maps an MSN status to XMPP presence: type "unavailable" or an
// available presence with this <show/> ("" means plain available).
func showOf(s bridge.Status) (typ, show string) {
	switch s {
	case bridge.StatusOnline:
		return "", ""
	case bridge.StatusBusy, bridge.StatusPhone:
		return "", "dnd"
	case bridge.StatusAway, bridge.StatusBRB, bridge.StatusLunch:
		return "", "away"
	case bridge.StatusIdle:
		return "", "xa"
	default: // offline, invisible (never a contact's), unknown
		return "unavailable", ""
	}
}

// statusOfShow maps a user's <show/> to the MSN status to set.
func statusOfShow(show string) bridge.Status {
	switch show {
	case "dnd":
		return bridge.StatusBusy
	case "away", "xa":
		return bridge.StatusAway
	default: // "", "chat", anything unknown
		return bridge.StatusOnline
	}
}

// contactPresence is the presence stanza showing contact c to user.
func (g *Gateway) contactPresence(user string, c bridge.Contact) (outPresence, error) {
	from, err := g.ContactJID(c.Passport)
	if err != nil {
		return outPresence{}, err
	}
	typ, show := showOf(c.Status)
	p := outPresence{Type: typ, Show: show, From: from.String(), To: user}
	if c.PersonalMessage != "" {
		p.Status = c.PersonalMessage
	}
	if typ == "" {
		// XEP-0153: clients fetch the vCard (PHOTO) when the hash is new.
		p.Avatar = &vcardUpdate{}
		switch {
		case c.Avatar != "":
			p.Avatar.Photo = &c.Avatar
		case g.state.avatarGone(user, c.Passport):
			p.Avatar.Photo = new(string)
		}
	}
	return p, nil
}

// subscribeRequest asks user to add contact c to their roster (XEP-0172
// nick included, so the roster shows the friendly name).
func (g *Gateway) subscribeRequest(user string, c bridge.Contact) error {
	from, err := g.ContactJID(c.Passport)
	if err != nil {
		return err
	}
	p := outPresence{Type: "subscribe", From: from.String(), To: user}
	if c.FriendlyName != "" {
		p.Nick = &nick{Value: c.FriendlyName}
	}
	return g.send(p)
}

// gatewayPresence is the gateway's own presence to user: available while
// their MSN session is connected.
func (g *Gateway) gatewayPresence(user bridge.UserID) outPresence {
	p := outPresence{From: g.domain.String(), To: user.ID}
	st, ok := g.loginStatus(user)
	switch {
	case !ok:
		p.Type = "unavailable"
	case st.State == bridge.LoginConnected:
		_, p.Show = showOf(st.Status)
		p.Status = "Connected as " + st.Passport
	default:
		p.Type = "unavailable"
		p.Status = "MSN: " + string(st.State)
	}
	return p
}

func (g *Gateway) handlePresence(st *inStanza) {
	user := st.user
	if g.isRoomJID(st.to) {
		g.handleRoomPresence(st)
		return
	}
	switch st.typ() {
	case "error":
		g.log.Debug().Str("user", user.ID).Str("to", st.to.String()).Msg("presence error from user")
	case "probe":
		g.answerProbe(st)
	case "subscribe":
		g.handleSubscribe(st)
	case "subscribed":
		g.handleSubscribed(st)
	case "unsubscribe":
		g.handleUnsubscribe(st)
	case "unsubscribed":
		// The user refused a contact's request or dropped the gateway:
		// MSN has nothing matching; the contact list stays as it is.
	case "", "unavailable":
		if st.toGateway() {
			g.handleAvailability(st)
		}
		if st.typ() == "" {
			// Their avatar may come in any copy of their broadcast.
			g.noteUserPhoto(st)
		}
	}
}

func (g *Gateway) answerProbe(st *inStanza) {
	user := st.user
	if g.core.Permission(user) == bridge.PermissionNone {
		_ = g.send(outPresence{Type: "unavailable", From: st.to.Bare().String(), To: user.ID})
		return
	}
	if st.toGateway() {
		_ = g.send(g.gatewayPresence(user))
		return
	}
	passport, err := PassportOf(g.domain, st.to)
	if err != nil {
		_ = g.send(outPresence{Type: "unavailable", From: st.to.Bare().String(), To: user.ID})
		return
	}
	c, ok := g.state.contact(user.ID, passport)
	if !ok {
		c = bridge.Contact{Passport: passport, Status: bridge.StatusOffline}
	}
	if p, err := g.contactPresence(user.ID, c); err == nil {
		_ = g.send(p)
	}
}

func (g *Gateway) handleSubscribe(st *inStanza) {
	user := st.user
	if st.toGateway() {
		if e := g.authorize(user, false); e != nil {
			g.replyError(st, e)
			return
		}
		_ = g.send(outPresence{Type: "subscribed", From: g.domain.String(), To: user.ID})
		_ = g.send(g.gatewayPresence(user))
		return
	}
	if e := g.authorize(user, true); e != nil {
		g.replyError(st, e)
		return
	}
	passport, err := PassportOf(g.domain, st.to)
	if err != nil {
		g.replyError(st, newErr(errModify, "jid-malformed", err.Error()))
		return
	}
	if c, ok := g.onList(user, passport); !ok || c.Pending {
		ctx, cancel := g.coreCtx()
		err := g.core.AddContact(ctx, user, passport)
		cancel()
		if err != nil {
			g.log.Info().Err(err).Str("user", user.ID).Str("contact", passport).Msg("adding contact failed")
			_ = g.send(outPresence{Type: "unsubscribed", From: st.to.Bare().String(), To: user.ID, Status: "MSN refused: " + err.Error()})
			return
		}
	}
	_ = g.send(outPresence{Type: "subscribed", From: st.to.Bare().String(), To: user.ID})
	if c, ok := g.state.contact(user.ID, passport); ok {
		if p, err := g.contactPresence(user.ID, c); err == nil {
			_ = g.send(p)
		}
	}
}

// onList reports whether passport is on the user's forward list, asking
// the core when the cache does not know.
func (g *Gateway) onList(user bridge.UserID, passport string) (bridge.Contact, bool) {
	if c, ok := g.state.contact(user.ID, passport); ok && c.OnContactList {
		return c, true
	}
	ctx, cancel := g.coreCtx()
	defer cancel()
	contacts, err := g.core.Contacts(ctx, user)
	if err != nil {
		return bridge.Contact{}, false
	}
	for _, c := range contacts {
		if NormalizePassport(c.Passport) == passport {
			return c, c.OnContactList
		}
	}
	return bridge.Contact{}, false
}

func (g *Gateway) handleSubscribed(st *inStanza) {
	if st.toGateway() {
		return
	}
	user := st.user
	if g.authorize(user, true) != nil {
		return
	}
	passport, err := PassportOf(g.domain, st.to)
	if err != nil {
		return
	}
	// Approving a contact who added the user accepts them on MSN too.
	if c, ok := g.state.contact(user.ID, passport); ok && c.Pending && !c.OnContactList {
		ctx, cancel := g.coreCtx()
		defer cancel()
		if err := g.core.AddContact(ctx, user, passport); err != nil {
			g.log.Info().Err(err).Str("user", user.ID).Str("contact", passport).Msg("accepting contact failed")
		}
	}
}

func (g *Gateway) handleUnsubscribe(st *inStanza) {
	user := st.user
	if st.toGateway() {
		_ = g.send(outPresence{Type: "unsubscribed", From: g.domain.String(), To: user.ID})
		return
	}
	if e := g.authorize(user, true); e != nil {
		g.replyError(st, e)
		return
	}
	passport, err := PassportOf(g.domain, st.to)
	if err != nil {
		g.replyError(st, newErr(errModify, "jid-malformed", err.Error()))
		return
	}
	ctx, cancel := g.coreCtx()
	err = g.core.RemoveContact(ctx, user, passport)
	cancel()
	if err != nil {
		g.log.Info().Err(err).Str("user", user.ID).Str("contact", passport).Msg("removing contact failed")
	}
	g.state.removeContact(user.ID, passport)
	_ = g.send(outPresence{Type: "unsubscribed", From: st.to.Bare().String(), To: user.ID})
}

// handleAvailability turns the user's presence to the gateway into an MSN
// status: the most available of their resources.
func (g *Gateway) handleAvailability(st *inStanza) {
	user := st.user
	if g.core.Permission(user) == bridge.PermissionNone {
		return
	}
	status := bridge.StatusOffline
	if st.typ() == "" {
		status = statusOfShow(st.Child("", "show").Text())
	}
	before, after := g.state.setResource(user.ID, st.from.Resourcepart(), status)
	g.log.Debug().Str("user", user.ID).Str("resource", st.from.Resourcepart()).Str("before", string(before)).Str("after", string(after)).Msg("user availability")
	// No early return when the combined status is unchanged: the core may
	// not have taken it yet (a presence that arrived before the user's
	// login was loaded, or the answer to the probe sent when it
	// connected). What the core was last given is the test.
	login, ok := g.loginStatus(user)
	if !ok {
		return
	}
	ctx, cancel := g.coreCtx()
	defer cancel()
	if after == bridge.StatusOffline {
		// The login's own state says whether it is signed out already (a
		// sign-in started since is not in what the core was last given).
		if g.cfg.SignOutWhenUnavailable && login.State != bridge.LoginLoggedOut {
			if err := g.core.SetStatus(ctx, user, bridge.StatusOffline); err != nil {
				g.log.Info().Err(err).Str("user", user.ID).Msg("signing out failed")
				return
			}
			g.state.applyStatus(user.ID, bridge.StatusOffline)
		}
		return
	}
	cameBack := before == bridge.StatusOffline || login.State == bridge.LoginLoggedOut
	if cameBack && g.cfg.SignOutWhenUnavailable && login.State != bridge.LoginConnected && login.State != bridge.LoginConnecting {
		if err := g.core.Relogin(ctx, user); err != nil {
			g.log.Info().Err(err).Str("user", user.ID).Msg("signing back in failed")
		}
		// A new session starts from "online": the status is given again
		// once it connects.
		g.state.applyStatus(user.ID, "")
	}
	if login.State != bridge.LoginConnected {
		// Setting a status waits for the MSN session, which would hold up
		// this user's stanzas meanwhile; the gateway probes the user's
		// presence when the session connects, and applies it then.
		return
	}
	if g.state.appliedStatus(user.ID) != after {
		if err := g.core.SetStatus(ctx, user, after); err != nil {
			g.log.Info().Err(err).Str("user", user.ID).Str("status", string(after)).Msg("setting status failed")
			return
		}
		g.state.applyStatus(user.ID, after)
	}
}

// applyStatus gives the core the user's combined status, if it has not
// had it yet and their MSN session is connected.
func (g *Gateway) applyStatus(user bridge.UserID) {
	status := g.state.combinedStatus(user.ID)
	if status == bridge.StatusOffline || g.state.appliedStatus(user.ID) == status {
		return
	}
	if login, ok := g.loginStatus(user); !ok || login.State != bridge.LoginConnected {
		return
	}
	ctx, cancel := g.coreCtx()
	defer cancel()
	if err := g.core.SetStatus(ctx, user, status); err != nil {
		g.log.Info().Err(err).Str("user", user.ID).Str("status", string(status)).Msg("setting status failed")
		return
	}
	g.state.applyStatus(user.ID, status)
}
