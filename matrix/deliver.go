package matrix

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/bridge"
)

// Deliver implements bridge.Frontend: it shows ev to user in Matrix. An
// error means the homeserver did not take it; the core retries later.
func (f *Frontend) Deliver(ctx context.Context, user bridge.UserID, ev bridge.Event) (string, error) {
	if user.Frontend != Kind {
		return "", fmt.Errorf("matrix: cannot deliver to a %q user", user.Frontend)
	}
	mxid := id.UserID(user.ID)
	if _, _, err := mxid.Parse(); err != nil {
		return "", fmt.Errorf("matrix: bad user ID %q: %w", user.ID, err)
	}
	switch e := ev.(type) {
	case bridge.Message:
		return f.deliverMessage(ctx, user, e)
	case bridge.Typing:
		return "", f.deliverTyping(ctx, user, e)
	case bridge.Nudge:
		return f.deliverNudge(ctx, user, e)
	case bridge.File:
		return f.deliverFile(ctx, user, e)
	case bridge.Presence:
		return "", f.deliverPresence(ctx, e.Contact)
	case bridge.ContactChange:
		f.noteFriendlyName(e.Contact.Passport, e.Contact.FriendlyName)
		return f.notifyUser(ctx, mxid, describeContactChange(e))
	case bridge.Membership:
		return "", f.deliverMembership(ctx, user, e)
	case bridge.DeliveryResult:
		f.sendMessageStatus(ctx, user, e)
		text, failed := f.deliveryNotice(e)
		if !failed {
			return "", nil
		}
		return f.notice(ctx, user, e.Portal, text)
	case bridge.LoginStateChange:
		if e.State == bridge.LoginConnected {
			f.followUserAvatar(mxid)
		}
		text := "MSN: " + describeLoginState(e.State)
		if e.Message != "" {
			text += " — " + e.Message
		}
		return f.notifyUser(ctx, mxid, text)
	case bridge.Notice:
		return f.notice(ctx, user, e.Portal, e.Text)
	case nil:
		return "", errors.New("matrix: nil event")
	default:
		return "", fmt.Errorf("matrix: unknown event type %T", ev)
	}
}

func describeLoginState(s bridge.LoginState) string {
	switch s {
	case bridge.LoginConnecting:
		return "connecting…"
	case bridge.LoginConnected:
		return "signed in."
	case bridge.LoginBadCredentials:
		return "the passport or password is wrong."
	case bridge.LoginElsewhere:
		return "signed out because you signed in somewhere else."
	case bridge.LoginServerDown:
		return "the MSN server cannot be reached."
	case bridge.LoginLoggedOut:
		return "signed out."
	}
	return string(s)
}

func describeContactChange(e bridge.ContactChange) string {
	who := e.Contact.Passport
	if name := SanitizeDisplayName(e.Contact.FriendlyName, ""); name != "" && name != who {
		who = fmt.Sprintf("%s (%s)", name, e.Contact.Passport)
	}
	switch e.Kind {
	case bridge.ContactAdded:
		return "Added " + who + " to your contacts."
	case bridge.ContactRemoved:
		return "Removed " + who + " from your contacts."
	case bridge.ContactBlocked:
		return "Blocked " + who + "."
	case bridge.ContactUnblocked:
		return "Unblocked " + who + "."
	case bridge.ContactAddedYou:
		return who + " added you to their contacts. Say add " + e.Contact.Passport + " to add them back, or block " + e.Contact.Passport + "."
	case bridge.ContactRemovedYou:
		return who + " removed you from their contacts."
	}
	return who + ": " + string(e.Kind)
}

func (f *Frontend) noteFriendlyName(passport, name string) {
	if passport == "" || name == "" {
		return
	}
	f.mu.Lock()
	f.friendlyNames[strings.ToLower(passport)] = name
	f.mu.Unlock()
}

// friendlyName is the best name known for passport, asking the core's
// contact list when the bridge has not heard one yet.
func (f *Frontend) friendlyName(ctx context.Context, user bridge.UserID, passport string) string {
	key := strings.ToLower(passport)
	f.mu.Lock()
	name, ok := f.friendlyNames[key]
	f.mu.Unlock()
	if ok {
		return name
	}
	if contacts, err := f.core.Contacts(ctx, user); err == nil {
		for _, c := range contacts {
			f.noteFriendlyName(c.Passport, c.FriendlyName)
			f.noteAvatar(c.Passport, c.Avatar)
			if strings.EqualFold(c.Passport, passport) && c.FriendlyName != "" {
				name = c.FriendlyName
			}
		}
	}
	if name == "" {
		name = passport
	}
	// Remember even the fallback, so that a stranger's messages do not
	// fetch the contact list every time; Presence events correct it.
	f.mu.Lock()
	if _, ok := f.friendlyNames[key]; !ok {
		f.friendlyNames[key] = name
	}
	f.mu.Unlock()
	return name
}

// ghost returns passport's ghost, registered and with its display name
// up to date.
func (f *Frontend) ghost(ctx context.Context, passport, friendlyName string) (*appservice.IntentAPI, error) {
	mxid := f.ghosts.GhostID(passport)
	intent := f.as.Intent(mxid)
	if err := intent.EnsureRegistered(ctx); err != nil {
		return nil, fmt.Errorf("register ghost %s: %w", mxid, err)
	}
	name := SanitizeDisplayName(friendlyName, passport)
	f.mu.Lock()
	current := f.ghostNames[mxid]
	f.mu.Unlock()
	if current != name {
		if err := intent.SetDisplayName(ctx, name); err != nil {
			return nil, fmt.Errorf("set display name of %s: %w", mxid, err)
		}
		f.mu.Lock()
		f.ghostNames[mxid] = name
		f.mu.Unlock()
	}
	f.syncGhostAvatar(ctx, intent, passport)
	return intent, nil
}

// ensurePortalRoom returns the portal's room, creating it on first use: a
// private direct room made by the contact's ghost, or a group room made by
// the bot with every participant's ghost. The user and the bot are
// invited; the bot joins so that it can post notices and follow typing.
func (f *Frontend) ensurePortalRoom(ctx context.Context, user bridge.UserID, portal bridge.Portal) (id.RoomID, error) {
	f.createMu.Lock()
	defer f.createMu.Unlock()
	// Look again under the lock: another event may have made the room.
	if fresh, err := f.core.Portal(ctx, user, portal.ID); err == nil {
		portal = fresh
	}
	mxid := id.UserID(user.ID)
	if portal.Room != "" {
		room := id.RoomID(portal.Room)
		return room, nil
	}
	var creator *appservice.IntentAPI
	req := &mautrix.ReqCreateRoom{
		Visibility: "private",
		Preset:     "private_chat",
		Invite:     []id.UserID{mxid, f.bot},
	}
	users := map[id.UserID]int{f.bot: 100}
	var members []*appservice.IntentAPI
	switch portal.Kind {
	case bridge.PortalDirect:
		if portal.Contact == "" {
			return "", errors.New("direct portal without a contact")
		}
		name := SanitizeDisplayName(f.friendlyName(ctx, user, portal.Contact), portal.Contact)
		ghost, err := f.ghost(ctx, portal.Contact, name)
		if err != nil {
			return "", err
		}
		creator = ghost
		req.Name = name
		req.IsDirect = true
		users[ghost.UserID] = 100
	default:
		creator = f.as.BotIntent()
		req.Invite = []id.UserID{mxid} // the bot creates; ghosts join below
		var names []string
		for _, p := range portal.Members {
			name := SanitizeDisplayName(f.friendlyName(ctx, user, p), p)
			ghost, err := f.ghost(ctx, p, name)
			if err != nil {
				return "", err
			}
			names = append(names, name)
			members = append(members, ghost)
			users[ghost.UserID] = 50
		}
		req.Name = "MSN: " + strings.Join(names, ", ")
		if len(req.Name) > 200 {
			req.Name = req.Name[:200]
		}
	}
	users[creator.UserID] = 100
	req.PowerLevelOverride = &event.PowerLevelsEventContent{Users: users}
	resp, err := creator.CreateRoom(ctx, req)
	if err != nil {
		return "", fmt.Errorf("create room: %w", err)
	}
	room := resp.RoomID
	if creator.UserID != f.bot {
		if err := f.as.BotIntent().EnsureJoined(ctx, room); err != nil {
			f.log.Warn().Err(err).Stringer("room_id", room).Msg("bot could not join the portal")
		}
	}
	for _, g := range members {
		if err := g.EnsureJoined(ctx, room); err != nil {
			f.log.Warn().Err(err).Stringer("ghost", g.UserID).Msg("ghost could not join the group portal")
		}
	}
	if err := f.core.SetPortalRoom(ctx, user, portal.ID, room.String()); err != nil {
		return "", fmt.Errorf("record portal room: %w", err)
	}
	return room, nil
}

// portalRoom looks the portal up and makes its room when create is set.
// It returns "" without error when the portal has no room and create is
// false.
func (f *Frontend) portalRoom(ctx context.Context, user bridge.UserID, pid bridge.PortalID, create bool) (id.RoomID, bridge.Portal, error) {
	portal, err := f.core.Portal(ctx, user, pid)
	if err != nil {
		return "", portal, fmt.Errorf("matrix: portal %s: %w", pid, err)
	}
	if portal.Room != "" {
		return id.RoomID(portal.Room), portal, nil
	}
	if !create {
		return "", portal, nil
	}
	room, err := f.ensurePortalRoom(ctx, user, portal)
	return room, portal, err
}

func (f *Frontend) senderPassport(portal bridge.Portal, sender string) string {
	if sender != "" {
		return sender
	}
	return portal.Contact
}

func (f *Frontend) deliverMessage(ctx context.Context, user bridge.UserID, m bridge.Message) (string, error) {
	room, portal, err := f.portalRoom(ctx, user, m.Portal, true)
	if err != nil {
		return "", err
	}
	send := mautrix.ReqSendEvent{Timestamp: m.Time.UnixMilli()}
	if m.Time.IsZero() {
		send.Timestamp = time.Now().UnixMilli()
	}
	if m.MSNID != "" {
		// The core may deliver a message again after a crash between the
		// send and its bookkeeping; the same transaction ID makes the
		// homeserver answer with the first event instead of a duplicate.
		send.TransactionID = "msn-" + m.MSNID
	}
	if m.FromSelf {
		// Without double puppeting the user's own messages from another
		// MSN client come from the bot, marked as such.
		content := messageContent(m.Text)
		content.MsgType = event.MsgNotice
		content.Body = "You (from another MSN client): " + content.Body
		content.FormattedBody = "<i>You (from another MSN client):</i> " + content.FormattedBody
		bot := f.as.BotIntent()
		if err := bot.EnsureJoined(ctx, room); err != nil {
			return "", err
		}
		resp, err := bot.SendMessageEvent(ctx, room, event.EventMessage, content, send)
		if err != nil {
			return "", err
		}
		return resp.EventID.String(), nil
	}
	sender := f.senderPassport(portal, m.Sender)
	if sender == "" {
		return "", errors.New("matrix: message without a sender")
	}
	ghost, err := f.ghost(ctx, sender, f.friendlyName(ctx, user, sender))
	if err != nil {
		return "", err
	}
	if err := ghost.EnsureJoined(ctx, room); err != nil {
		return "", err
	}
	resp, err := ghost.SendMessageEvent(ctx, room, event.EventMessage, messageContent(m.Text), send)
	if err != nil {
		return "", err
	}
	return resp.EventID.String(), nil
}

func (f *Frontend) deliverTyping(ctx context.Context, user bridge.UserID, t bridge.Typing) error {
	room, portal, err := f.portalRoom(ctx, user, t.Portal, false)
	if err != nil || room == "" {
		return err // no room yet: nobody to show typing to
	}
	sender := f.senderPassport(portal, t.Sender)
	if sender == "" {
		return nil
	}
	ghost := f.as.Intent(f.ghosts.GhostID(sender))
	if err := ghost.EnsureJoined(ctx, room); err != nil {
		return err
	}
	_, err = ghost.UserTyping(ctx, room, t.Active, 30*time.Second)
	return err
}

func (f *Frontend) deliverNudge(ctx context.Context, user bridge.UserID, n bridge.Nudge) (string, error) {
	room, portal, err := f.portalRoom(ctx, user, n.Portal, true)
	if err != nil {
		return "", err
	}
	sender := f.senderPassport(portal, n.Sender)
	if sender == "" {
		return "", errors.New("matrix: nudge without a sender")
	}
	ghost, err := f.ghost(ctx, sender, f.friendlyName(ctx, user, sender))
	if err != nil {
		return "", err
	}
	if err := ghost.EnsureJoined(ctx, room); err != nil {
		return "", err
	}
	resp, err := ghost.SendMessageEvent(ctx, room, event.EventMessage, &event.MessageEventContent{
		MsgType: event.MsgEmote,
		Body:    "sent a nudge",
	})
	if err != nil {
		return "", err
	}
	return resp.EventID.String(), nil
}

// PresenceStatusMessage is the Matrix status_msg for a contact: the exact
// MSN status (Matrix presence has only online/unavailable/offline) and
// the personal message.
func PresenceStatusMessage(c bridge.Contact) string {
	s := string(statusOrOffline(c.Status))
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	if c.PersonalMessage != "" {
		s += " — " + c.PersonalMessage
	}
	return s
}

func matrixPresence(s bridge.Status) event.Presence {
	switch s {
	case bridge.StatusOnline:
		return event.PresenceOnline
	case bridge.StatusOffline, bridge.StatusInvisible, "":
		return event.PresenceOffline
	}
	return event.PresenceUnavailable
}

func (f *Frontend) deliverPresence(ctx context.Context, c bridge.Contact) error {
	if c.Passport == "" {
		return errors.New("matrix: presence without a passport")
	}
	f.noteFriendlyName(c.Passport, c.FriendlyName)
	f.noteAvatar(c.Passport, c.Avatar)
	name := c.FriendlyName
	if name == "" {
		f.mu.Lock()
		name = f.friendlyNames[strings.ToLower(c.Passport)]
		f.mu.Unlock()
	}
	ghost, err := f.ghost(ctx, c.Passport, name)
	if err != nil {
		return err
	}
	err = ghost.SetPresence(ctx, mautrix.ReqPresence{
		Presence:  matrixPresence(c.Status),
		StatusMsg: PresenceStatusMessage(c),
	})
	if err != nil {
		// Presence is decoration; homeservers may have it switched off.
		f.log.Debug().Err(err).Str("passport", c.Passport).Msg("presence not set")
	}
	return nil
}

func (f *Frontend) deliverMembership(ctx context.Context, user bridge.UserID, m bridge.Membership) error {
	if m.Passport == "" {
		return errors.New("matrix: membership without a passport")
	}
	f.noteFriendlyName(m.Passport, m.Name)
	room, _, err := f.portalRoom(ctx, user, m.Portal, m.Joined)
	if err != nil || room == "" {
		return err
	}
	ghost, err := f.ghost(ctx, m.Passport, f.friendlyName(ctx, user, m.Passport))
	if err != nil {
		return err
	}
	if m.Joined {
		return ghost.EnsureJoined(ctx, room)
	}
	_, err = ghost.LeaveRoom(ctx, room)
	if errors.Is(err, mautrix.MForbidden) {
		return nil // was not in the room
	}
	return err
}

// notice shows text in the portal's room, or in the user's management
// room when there is no portal or it has no room.
func (f *Frontend) notice(ctx context.Context, user bridge.UserID, pid bridge.PortalID, text string) (string, error) {
	if pid != "" {
		room, _, err := f.portalRoom(ctx, user, pid, false)
		if err == nil && room != "" {
			return f.botNotice(ctx, room, text)
		}
	}
	return f.notifyUser(ctx, id.UserID(user.ID), text)
}

// notifyUser posts text in the user's management room, creating one (a
// direct chat from the bot) when the user has none.
func (f *Frontend) notifyUser(ctx context.Context, mxid id.UserID, text string) (string, error) {
	room := f.managementRoom(ctx, mxid)
	if room == "" {
		resp, err := f.as.BotIntent().CreateRoom(ctx, &mautrix.ReqCreateRoom{
			Visibility: "private",
			Preset:     "trusted_private_chat",
			Invite:     []id.UserID{mxid},
			IsDirect:   true,
			Name:       "MSN bridge",
		})
		if err != nil {
			return "", fmt.Errorf("matrix: create management room: %w", err)
		}
		room = resp.RoomID
		if err := f.core.SetManagementRoom(ctx, userID(mxid), room.String()); err != nil {
			return "", fmt.Errorf("matrix: record management room: %w", err)
		}
		f.rememberManagementRoom(mxid, room)
	}
	return f.botNotice(ctx, room, text)
}

func (f *Frontend) botNotice(ctx context.Context, room id.RoomID, text string) (string, error) {
	bot := f.as.BotIntent()
	if err := bot.EnsureJoined(ctx, room); err != nil {
		return "", err
	}
	resp, err := bot.SendNotice(ctx, room, text)
	if err != nil {
		return "", err
	}
	return resp.EventID.String(), nil
}

// sendMessageStatus reports a message's fate as a message-status event
// (com.beeper.message_send_status, MSC2153's successor) that clients which
// know it show on the message itself; others ignore it. Best effort: the
// notice on failure is what every client shows.
func (f *Frontend) sendMessageStatus(ctx context.Context, user bridge.UserID, d bridge.DeliveryResult) {
	if !strings.HasPrefix(d.FrontendID, "$") {
		return
	}
	room, _, err := f.portalRoom(ctx, user, d.Portal, false)
	if err != nil || room == "" {
		return
	}
	content := &event.BeeperMessageStatusEventContent{
		Network:   "msn",
		RelatesTo: event.RelatesTo{Type: event.RelReference, EventID: id.EventID(d.FrontendID)},
		Status:    event.MessageStatusSuccess,
	}
	if d.Err != nil {
		content.Status = event.MessageStatusRetriable
		content.Reason = event.MessageStatusGenericError
		content.Message = d.Err.Error()
	}
	if _, err := f.as.BotIntent().SendMessageEvent(ctx, room, event.BeeperMessageStatus, content); err != nil {
		f.log.Debug().Err(err).Msg("could not send a message status")
	}
}
