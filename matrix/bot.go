package matrix

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"

	"github.com/msnbridge/msnbridge/bridge"
)

// handleManagementMessage runs a command typed in the user's management
// room, or takes the password a login is waiting for.
func (f *Frontend) handleManagementMessage(ctx context.Context, evt *event.Event, c *event.MessageEventContent) {
	mxid := evt.Sender
	user := userID(mxid)
	room := evt.RoomID
	reply := func(format string, args ...any) { f.sendBotNotice(ctx, room, fmt.Sprintf(format, args...)) }

	f.mu.Lock()
	passport, waiting := f.pendingLogin[mxid]
	if waiting {
		delete(f.pendingLogin, mxid)
	}
	f.mu.Unlock()
	if waiting {
		// The password must leave the room before anything else happens.
		if _, err := f.as.BotIntent().RedactEvent(ctx, room, evt.ID); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("could not redact a password message")
			reply("I could not delete your password message (%v). Please delete it yourself.", err)
		}
		password := c.Body
		if strings.EqualFold(strings.TrimSpace(password), "cancel") {
			reply("Login cancelled.")
			return
		}
		if err := f.core.Login(ctx, user, passport, password); err != nil {
			reply("Login as %s failed: %v", passport, err)
			return
		}
		reply("Signing in to MSN as %s…", passport)
		return
	}
	if c.MsgType != event.MsgText {
		reply("I only understand text commands. Say help for the list.")
		return
	}
	cmd, err := ParseCommand(c.Body)
	if err != nil {
		reply("%s", err.Error())
		return
	}
	switch cmd.Name {
	case "help":
		reply("%s", helpText())
	case "login":
		f.mu.Lock()
		f.pendingLogin[mxid] = cmd.Passport
		f.mu.Unlock()
		reply("Send your MSN password for %s as your next message in this room; I will delete it at once. (Say cancel to stop.)", cmd.Passport)
	case "cancel":
		reply("There was nothing to cancel.")
	case "logout":
		if err := f.core.Logout(ctx, user); err != nil {
			reply("Logout failed: %v", err)
			return
		}
		// The login and its display picture are gone: a new login gets
		// the Matrix avatar again.
		if err := f.core.SetFrontendValue(ctx, Kind, userDPKeyPrefix+mxid.String(), ""); err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("could not forget the display picture state")
		}
		reply("Signed out of MSN; the stored password is forgotten.")
	case "relogin":
		if err := f.core.Relogin(ctx, user); err != nil {
			reply("Could not sign in again: %v", err)
			return
		}
		reply("Signing in to MSN again…")
	case "status":
		st, err := f.core.Status(ctx, user)
		if err != nil {
			reply("Could not get your status: %v", err)
			return
		}
		reply("%s", describeStatus(st))
	case "contacts":
		contacts, err := f.core.Contacts(ctx, user)
		if err != nil {
			reply("Could not list your contacts: %v", err)
			return
		}
		for _, ct := range contacts {
			f.noteFriendlyName(ct.Passport, ct.FriendlyName)
			f.noteAvatar(ct.Passport, ct.Avatar)
		}
		reply("%s", describeContacts(contacts))
	case "add", "remove", "block", "unblock":
		calls := map[string]func(context.Context, bridge.UserID, string) error{
			"add": f.core.AddContact, "remove": f.core.RemoveContact,
			"block": f.core.BlockContact, "unblock": f.core.UnblockContact,
		}
		done := map[string]string{"add": "Added", "remove": "Removed", "block": "Blocked", "unblock": "Unblocked"}
		if err := calls[cmd.Name](ctx, user, cmd.Passport); err != nil {
			reply("Could not %s %s: %v", cmd.Name, cmd.Passport, err)
			return
		}
		reply("%s %s.", done[cmd.Name], cmd.Passport)
	case "presence":
		if err := f.core.SetStatus(ctx, user, cmd.Status); err != nil {
			reply("Could not set your status: %v", err)
			return
		}
		reply("Your MSN status is now %s.", cmd.Status)
	case "psm":
		if err := f.core.SetPersonalMessage(ctx, user, cmd.Text); err != nil {
			reply("Could not set your personal message: %v", err)
			return
		}
		if cmd.Text == "" {
			reply("Personal message cleared.")
		} else {
			reply("Personal message set.")
		}
	case "name":
		if err := f.core.SetFriendlyName(ctx, user, cmd.Text); err != nil {
			reply("Could not set your name: %v", err)
			return
		}
		reply("Your MSN name is now %s.", cmd.Text)
	case "chat":
		portal, err := f.core.DirectPortal(ctx, user, cmd.Passport)
		if err != nil {
			reply("Could not open a chat with %s: %v", cmd.Passport, err)
			return
		}
		room, err := f.ensurePortalRoom(ctx, user, portal)
		if err != nil {
			reply("Could not create the chat room: %v", err)
			return
		}
		reply("Chat with %s: https://matrix.to/#/%s (you are invited).", cmd.Passport, room)
	case "invite", "nudge":
		reply("Use !%s inside the chat room it is meant for.", cmd.Name)
	default:
		reply("I do not know %s. Say help for the list.", cmd.Name)
	}
}

func describeStatus(st bridge.LoginStatus) string {
	if st.Passport == "" {
		return "You are not signed in to MSN. Say login PASSPORT to sign in."
	}
	s := fmt.Sprintf("MSN account %s: %s", st.Passport, st.State)
	if st.State == bridge.LoginConnected {
		s += fmt.Sprintf(", status %s", st.Status)
		if st.Protocol != "" {
			s += ", protocol " + st.Protocol
		}
	}
	return s + "."
}

func describeContacts(contacts []bridge.Contact) string {
	if len(contacts) == 0 {
		return "You have no MSN contacts."
	}
	sorted := append([]bridge.Contact(nil), contacts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Passport < sorted[j].Passport })
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d contacts:", len(sorted))
	for _, c := range sorted {
		fmt.Fprintf(&sb, "\n• %s", c.Passport)
		if name := SanitizeDisplayName(c.FriendlyName, ""); name != "" && name != c.Passport {
			fmt.Fprintf(&sb, " (%s)", name)
		}
		fmt.Fprintf(&sb, " — %s", statusOrOffline(c.Status))
		if c.PersonalMessage != "" {
			fmt.Fprintf(&sb, ": %s", c.PersonalMessage)
		}
		var flags []string
		if c.Blocked {
			flags = append(flags, "blocked")
		}
		if c.Pending {
			flags = append(flags, "wants to add you")
		}
		if !c.OnContactList {
			flags = append(flags, "not on your list")
		}
		if len(flags) > 0 {
			fmt.Fprintf(&sb, " [%s]", strings.Join(flags, ", "))
		}
	}
	return sb.String()
}

func statusOrOffline(s bridge.Status) bridge.Status {
	if s == "" {
		return bridge.StatusOffline
	}
	return s
}
