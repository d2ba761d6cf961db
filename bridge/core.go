package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/store"
)

// This file implements Core: what frontends ask on behalf of a user.

// Permission implements Core.
func (b *Bridge) Permission(user UserID) Permission { return b.perms.Of(user) }

func (b *Bridge) permitted(user UserID) error {
	if b.perms.Of(user) < PermissionUser {
		return ErrNotPermitted
	}
	return nil
}

// normalizePassport trims and lower-cases a passport and checks its shape.
func normalizePassport(p string) (string, error) {
	p = strings.ToLower(strings.TrimSpace(p))
	at := strings.IndexByte(p, '@')
	if at <= 0 || at == len(p)-1 || strings.ContainsAny(p, " \t\r\n\x00") || len(p) > 129 {
		return "", fmt.Errorf("%q is not an MSN passport (it looks like an e-mail address: name@example.com)", p)
	}
	return p, nil
}

// Login implements Core.
func (b *Bridge) Login(ctx context.Context, user UserID, passport, password string) error {
	if err := b.permitted(user); err != nil {
		return err
	}
	if !b.loginLimit.allow(user.String()) {
		return ErrRateLimited
	}
	passport, err := normalizePassport(passport)
	if err != nil {
		return err
	}
	if password == "" {
		return errors.New("the password is empty")
	}
	if b.store.Sealer() == nil {
		return errors.New("the bridge has no encryption key configured, so it cannot store passwords (bridge.encryption_key)")
	}
	if l := b.loginOf(user); l != nil {
		if l.passport != passport {
			return ErrAlreadyLogged
		}
		l.stop()
	}
	if _, err := b.store.Users.Ensure(ctx, user.storeID(), int(b.perms.Of(user))); err != nil {
		return err
	}
	rec, err := b.store.Logins.Put(ctx, store.Login{User: user.storeID(), Passport: passport, State: string(LoginConnecting)}, password)
	if err != nil {
		return err
	}
	l := b.newLogin(user, rec)
	b.mu.Lock()
	b.logins[user] = l
	b.mu.Unlock()
	l.start(b.ctx)
	return nil
}

// Logout implements Core.
func (b *Bridge) Logout(ctx context.Context, user UserID) error {
	b.mu.Lock()
	l := b.logins[user]
	delete(b.logins, user)
	b.mu.Unlock()
	if l == nil {
		return ErrNotLoggedIn
	}
	l.stop()
	if err := b.store.Logins.Delete(ctx, l.id); err != nil {
		return err
	}
	b.emit(user, LoginStateChange{State: LoginLoggedOut, Message: "Logged out of MSN; the stored password was deleted."})
	return nil
}

// Relogin implements Core.
func (b *Bridge) Relogin(ctx context.Context, user UserID) error {
	if err := b.permitted(user); err != nil {
		return err
	}
	if !b.loginLimit.allow(user.String()) {
		return ErrRateLimited
	}
	l := b.loginOf(user)
	if l == nil {
		rec, err := b.store.Logins.GetByUser(ctx, user.storeID())
		if err != nil {
			return ErrNotLoggedIn
		}
		l = b.newLogin(user, rec)
	} else {
		l.stop()
		rec, err := b.store.Logins.Get(ctx, l.id)
		if err != nil {
			return ErrNotLoggedIn
		}
		l = b.newLogin(user, rec)
	}
	b.mu.Lock()
	b.logins[user] = l
	b.mu.Unlock()
	l.start(b.ctx)
	return nil
}

// Status implements Core.
func (b *Bridge) Status(ctx context.Context, user UserID) (LoginStatus, error) {
	l := b.loginOf(user)
	if l == nil {
		return LoginStatus{}, ErrNotLoggedIn
	}
	st := LoginStatus{Passport: l.passport, State: l.currentState(), Status: StatusOffline}
	l.mu.Lock()
	client := l.client
	l.mu.Unlock()
	if client != nil && st.State == LoginConnected {
		st.Status = statusFromMSN(client.Status())
		st.Protocol = client.Protocol().String()
	}
	return st, nil
}

// Contacts implements Core: live when connected, from the store otherwise.
func (b *Bridge) Contacts(ctx context.Context, user UserID) ([]Contact, error) {
	l := b.loginOf(user)
	if l == nil {
		return nil, ErrNotLoggedIn
	}
	l.mu.Lock()
	client := l.client
	l.mu.Unlock()
	if client != nil && l.currentState() == LoginConnected {
		cs := client.Contacts()
		out := make([]Contact, 0, len(cs))
		for _, c := range cs {
			contact := contactFromMSN(c)
			l.mu.Lock()
			_, seen := l.seen[strings.ToLower(c.Passport)]
			avatar := l.avatarOfLocked(c.Passport)
			l.mu.Unlock()
			if !seen && c.MSNObject != "" {
				// Their presence is on its way: the client has it.
				avatar = b.contactAvatar(ctx, c.MSNObject)
			}
			contact.Avatar = avatar
			out = append(out, contact)
		}
		return out, nil
	}
	rows, err := b.store.Contacts.List(ctx, l.id)
	if err != nil {
		return nil, err
	}
	out := make([]Contact, 0, len(rows))
	// Each contact's last picture, as stored; while reconnecting, the last
	// session's events still stand (the store follows them, unless a
	// write failed).
	l.mu.Lock()
	avatars := make(map[string]string, len(rows))
	for _, r := range rows {
		avatars[r.Passport] = r.Avatar
		if c, ok := l.seen[r.Passport]; ok {
			avatars[r.Passport] = c.Avatar
		}
	}
	l.mu.Unlock()
	for _, r := range rows {
		out = append(out, Contact{
			Avatar:   avatars[r.Passport],
			Passport: r.Passport, FriendlyName: cleanText(r.FriendlyName, 387),
			PersonalMessage: cleanText(r.PersonalMessage, 512), Status: StatusOffline,
			OnContactList: r.ListBits&store.ListForward != 0, Blocked: r.ListBits&store.ListBlock != 0,
			Pending: r.ListBits&store.ListPending != 0, Groups: r.Groups,
		})
	}
	return out, nil
}

// withClient runs f with the user's connected client, waiting briefly for a
// reconnect in progress.
func (b *Bridge) withClient(ctx context.Context, user UserID, f func(*login, *msnp.Client) error) error {
	if err := b.permitted(user); err != nil {
		return err
	}
	l := b.loginOf(user)
	if l == nil {
		return ErrNotLoggedIn
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, err := l.connectedClient(wctx)
	if err != nil {
		return err
	}
	return f(l, client)
}

func (b *Bridge) contactOp(ctx context.Context, user UserID, passport string, kind ContactChangeKind, op func(*msnp.Client, context.Context, string) error) error {
	passport, err := normalizePassport(passport)
	if err != nil {
		return err
	}
	if !b.actionLimit.allow(user.String()) {
		return ErrRateLimited
	}
	return b.withClient(ctx, user, func(l *login, c *msnp.Client) error {
		if err := op(c, ctx, passport); err != nil {
			return explainMSNError(err)
		}
		contact := Contact{Passport: passport}
		if mc, ok := c.Contact(passport); ok {
			contact = contactFromMSN(mc)
			l.storeContact(mc)
		}
		contact.Avatar = l.avatarOf(passport)
		b.emit(user, ContactChange{Kind: kind, Contact: contact})
		return nil
	})
}

// AddContact implements Core. Someone who added the user first is accepted.
func (b *Bridge) AddContact(ctx context.Context, user UserID, passport string) error {
	return b.contactOp(ctx, user, passport, ContactAdded, func(c *msnp.Client, ctx context.Context, p string) error {
		if mc, ok := c.Contact(p); ok && mc.Lists&msnp.PL != 0 {
			return c.AcceptPending(ctx, p)
		}
		return c.AddContact(ctx, p)
	})
}

// RemoveContact implements Core.
func (b *Bridge) RemoveContact(ctx context.Context, user UserID, passport string) error {
	return b.contactOp(ctx, user, passport, ContactRemoved, (*msnp.Client).RemoveContact)
}

// BlockContact implements Core.
func (b *Bridge) BlockContact(ctx context.Context, user UserID, passport string) error {
	return b.contactOp(ctx, user, passport, ContactBlocked, (*msnp.Client).Block)
}

// UnblockContact implements Core.
func (b *Bridge) UnblockContact(ctx context.Context, user UserID, passport string) error {
	return b.contactOp(ctx, user, passport, ContactUnblocked, (*msnp.Client).Unblock)
}

// SetStatus implements Core. The status is remembered across reconnects.
// StatusOffline signs the account out of MSN but keeps the login; Relogin
// (or any other status) signs it back in.
func (b *Bridge) SetStatus(ctx context.Context, user UserID, status Status) error {
	if status == StatusOffline {
		l, err := b.loginFor(user)
		if err != nil {
			return err
		}
		// Stored before signing out: once MSN sees the account go, a
		// restart must already find it signed out on purpose, or it would
		// sign it back in.
		l.setState(ctx, LoginLoggedOut, "Signed out of MSN because you went offline; your login is kept.", "")
		l.stop()
		return nil
	}
	if l := b.loginOf(user); l != nil && l.currentState() == LoginLoggedOut {
		if err := b.Relogin(ctx, user); err != nil {
			return err
		}
	}
	ms, ok := statusToMSN[status]
	if !ok {
		return fmt.Errorf("%q is not a status you can set (online, busy, away, brb, phone, lunch, idle, invisible)", status)
	}
	return b.withClient(ctx, user, func(l *login, c *msnp.Client) error {
		l.mu.Lock()
		l.wantStatus = ms
		l.mu.Unlock()
		return explainMSNError(c.SetStatus(ctx, ms))
	})
}

// SetPersonalMessage implements Core.
func (b *Bridge) SetPersonalMessage(ctx context.Context, user UserID, text string) error {
	if !b.actionLimit.allow(user.String()) {
		return ErrRateLimited
	}
	return b.withClient(ctx, user, func(l *login, c *msnp.Client) error {
		return explainMSNError(c.SetPersonalMessage(ctx, cleanText(text, 256)))
	})
}

// SetFriendlyName implements Core.
func (b *Bridge) SetFriendlyName(ctx context.Context, user UserID, name string) error {
	name = cleanText(name, 387)
	if name == "" {
		return errors.New("the name is empty")
	}
	if !b.actionLimit.allow(user.String()) {
		return ErrRateLimited
	}
	return b.withClient(ctx, user, func(l *login, c *msnp.Client) error {
		return explainMSNError(c.SetFriendlyName(ctx, name))
	})
}

// explainMSNError turns MSN error codes into sentences for users.
func explainMSNError(err error) error {
	if err == nil {
		return nil
	}
	switch msnp.CodeOf(err) {
	case msnp.ErrInvalidUser, msnp.ErrInvalidPrincipal:
		return fmt.Errorf("MSN says there is no such account (%w)", err)
	case msnp.ErrAlreadyOnList:
		return fmt.Errorf("that contact is already on your list (%w)", err)
	case msnp.ErrNotOnList:
		return fmt.Errorf("that contact is not on your list (%w)", err)
	case msnp.ErrUserNotOnline:
		return fmt.Errorf("the contact is offline (%w)", err)
	case msnp.ErrChangingTooFast, msnp.ErrTooActive:
		return fmt.Errorf("MSN says you are changing things too fast; wait a moment (%w)", err)
	}
	return err
}

// loginFor returns the user's login or ErrNotLoggedIn.
func (b *Bridge) loginFor(user UserID) (*login, error) {
	if err := b.permitted(user); err != nil {
		return nil, err
	}
	l := b.loginOf(user)
	if l == nil {
		return nil, ErrNotLoggedIn
	}
	return l, nil
}

func portalFromStore(p store.Portal, members []string) Portal {
	out := Portal{ID: PortalID(p.ID), Room: p.Room, Members: members}
	if p.Kind == store.PortalGroup {
		out.Kind = PortalGroup
	} else {
		out.Kind = PortalDirect
		out.Contact = p.MSNKey
	}
	return out
}

// DirectPortal implements Core.
func (b *Bridge) DirectPortal(ctx context.Context, user UserID, passport string) (Portal, error) {
	l, err := b.loginFor(user)
	if err != nil {
		return Portal{}, err
	}
	passport, err = normalizePassport(passport)
	if err != nil {
		return Portal{}, err
	}
	p, _, err := b.store.Portals.GetOrCreateDirect(ctx, l.id, passport)
	if err != nil {
		return Portal{}, err
	}
	return portalFromStore(p, nil), nil
}

// portalOf loads a portal and checks that it belongs to the user's login.
func (b *Bridge) portalOf(ctx context.Context, l *login, id PortalID) (Portal, error) {
	p, err := b.store.Portals.Get(ctx, string(id))
	if errors.Is(err, store.ErrNotFound) || (err == nil && p.LoginID != l.id) {
		return Portal{}, ErrNoSuchPortal
	} else if err != nil {
		return Portal{}, err
	}
	var members []string
	if p.Kind == store.PortalGroup {
		if members, err = b.store.Portals.Members(ctx, p.ID); err != nil {
			return Portal{}, err
		}
	}
	return portalFromStore(p, members), nil
}

// Portal implements Core.
func (b *Bridge) Portal(ctx context.Context, user UserID, id PortalID) (Portal, error) {
	l, err := b.loginFor(user)
	if err != nil {
		return Portal{}, err
	}
	return b.portalOf(ctx, l, id)
}

// PortalByRoom implements Core.
func (b *Bridge) PortalByRoom(ctx context.Context, user UserID, room string) (Portal, error) {
	l, err := b.loginFor(user)
	if err != nil {
		return Portal{}, err
	}
	p, err := b.store.Portals.GetByRoom(ctx, l.id, room)
	if errors.Is(err, store.ErrNotFound) {
		return Portal{}, ErrNoSuchPortal
	} else if err != nil {
		return Portal{}, err
	}
	return b.portalOf(ctx, l, PortalID(p.ID))
}

// SetPortalRoom implements Core.
func (b *Bridge) SetPortalRoom(ctx context.Context, user UserID, id PortalID, room string) error {
	l, err := b.loginFor(user)
	if err != nil {
		return err
	}
	if _, err := b.portalOf(ctx, l, id); err != nil {
		return err
	}
	return b.store.Portals.SetRoom(ctx, string(id), room)
}

func managementRoomKey(user UserID) string { return "management_room/" + user.String() }

// ManagementRoom implements Core. Users without permission have none.
func (b *Bridge) ManagementRoom(ctx context.Context, user UserID) (string, error) {
	if err := b.permitted(user); err != nil {
		return "", err
	}
	room, err := b.store.KV.Get(ctx, managementRoomKey(user))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return room, err
}

// SetManagementRoom implements Core.
func (b *Bridge) SetManagementRoom(ctx context.Context, user UserID, room string) error {
	if err := b.permitted(user); err != nil {
		return err
	}
	if room == "" {
		return b.store.KV.Delete(ctx, managementRoomKey(user))
	}
	return b.store.KV.Set(ctx, managementRoomKey(user), room)
}
