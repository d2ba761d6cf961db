// Package xmpp is the XMPP frontend: an XEP-0114 component (on
// mellium.im/xmpp) acting as an MSN transport (XEP-0100), with MSN contacts
// as JIDs at the gateway's domain (XEP-0106 escaped passports:
// alice\40hotmail.com@msn.example.org). It implements bridge.Frontend and
// talks to the core only through bridge.Core; bridge users are bare JIDs
// (bridge.UserID{Frontend: "xmpp", ID: "user@example.org"}).
//
// It owns: the component connection (reconnecting with capped, jittered
// backoff), registration (XEP-0077 with a XEP-0004 form, jabber:iq:gateway),
// service discovery, ad-hoc commands (XEP-0050), vcard-temp for contacts
// (with their display picture as PHOTO, announced by XEP-0153 hashes in
// presence), the user's own avatar as their MSN display picture
// (userpicture.go: XEP-0153 hash in their presence, vCard fetched from their
// server), files both ways (files.go: XEP-0363 uploads to the user's
// server or links to MediaHandler, with XEP-0066; users' links fetched for
// Core.SendFile), the mapping of presence and subscriptions both ways,
// one-to-one chat with chat states (XEP-0085), attention (XEP-0224, MSN
// nudges), receipts (XEP-0184, from the core's DeliveryResult) and XEP-0393
// styling for MSN's whole-message effects, and, where the server grants
// XEP-0356 roster privilege, roster names (MSN friendly names) and groups.
// It keeps only caches in memory (last contact presence for probes, the
// user's resources, portals, messages awaiting their DeliveryResult); the
// core is the authority.
//
// What the gateway expects of the core:
//   - Status returns Passport "" (or an error) for a user with no stored
//     login; such users get registration-required.
//   - Deliver may call back into Core.Portal (to resolve a portal's
//     contact), so the core must not hold its own locks while delivering.
//   - Presence events for every contact after login (and when Avatar
//     changes), ContactChange for list changes, and DeliveryResult for every
//     SendMessage and SendFile (the FrontendID it carries is the gateway's
//     own, unique per message).
//   - File events whose Media OpenMedia can read for a while (the links
//     the gateway gives out may point at it), and Avatar hashes that
//     Core.Avatar can read.
//   - SetDisplayPicture fails with ErrRateLimited or a context error only
//     when trying again later may work; any other error means the picture
//     cannot be used (the user is told once). FrontendValue keeps what was
//     applied ("userdp/<bare JID>" → "<passport> <hash>") across restarts.
//   - Deliver's errors are ErrNotConnected (retry later, in order) or wrap
//     bridge.ErrUndeliverable (the event can never be shown: drop it).
//   - With config.XMPP.SignOutWhenUnavailable, SetStatus(StatusOffline)
//     means "sign out but keep the login" (Status still reports it, as
//     LoginLoggedOut, after a restart), and Relogin signs back in.
//   - The gateway gives the core the user's status only while the MSN
//     session is connected (SetStatus would otherwise hold up the user's
//     stanzas); on LoginConnected it applies what the user's resources
//     said meanwhile and probes their presence.
//
// Group conversations are MUC rooms hosted by the gateway (muc.go, a
// XEP-0045 subset): the user gets a XEP-0249 invitation to
// group-<portal id>@<gateway> when a group portal first has something to
// show, and joins it. The core is asked for: Portal (Kind PortalGroup,
// Members) to resolve a room, SetPortalRoom (the room JID) once, Membership
// events for joins and leaves, SendMessage/SendTyping/SendNudge on the group
// portal (a nudge shows in the room as "/me sent a nudge!" with XEP-0224),
// Invite for a mediated invitation, and LeavePortal when the user's last
// resource leaves the room.
package xmpp
