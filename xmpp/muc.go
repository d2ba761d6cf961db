package xmpp

import (
	"context"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/msnbridge/msnbridge/bridge"
)

// Multi-party MSN switchboards are shown as MUC rooms (a XEP-0045 subset)
// hosted by the gateway itself: one room per group portal, at
// group-<portal id>@<gateway domain>. The user is the room's only XMPP
// occupant; the other occupants are the MSN participants, named by their
// friendly names. Rooms are not created by users: a room exists because the
// core has a group portal, and the user learns of it by a XEP-0249 direct
// invitation when the portal first has something to show.

const (
	nsMUC        = "http://jabber.org/protocol/muc"
	nsMUCUser    = "http://jabber.org/protocol/muc#user"
	nsConference = "jabber:x:conference"

	// Room localparts. A contact JID's localpart always holds "\40" (every
	// passport has an @), so neither prefix can be mistaken for a contact.
	roomPrefix    = "group-"  // followed by a portal id made of safe characters
	roomHexPrefix = "groupx-" // followed by the hex of any other portal id

	// maxBacklog bounds the messages kept for a room the user has not
	// joined yet; older ones are dropped.
	maxBacklog = 100
	// maxPortalIDLen bounds portal ids written into JIDs (hex doubles them).
	maxPortalIDLen = 256
)

var errNotRoomJID = errors.New("not a group chat room of this gateway")

// roomFeatures are what a room answers to disco#info: only what works.
var roomFeatures = []string{nsDiscoInfo, nsMUC, "muc_temporary", "muc_unmoderated", "muc_nonanonymous", nsPing}

// RoomJID returns the room JID of a group portal at domain.
func RoomJID(domain jid.JID, id bridge.PortalID) (jid.JID, error) {
	s := string(id)
	if s == "" || len(s) > maxPortalIDLen {
		return jid.JID{}, fmt.Errorf("xmpp: portal id %q cannot name a room", s)
	}
	local := roomPrefix + s
	if !safeRoomID(s) {
		local = roomHexPrefix + hex.EncodeToString([]byte(s))
	}
	return jid.New(local, domain.Domainpart(), "")
}

// PortalOfRoom returns the portal id a room JID at domain stands for.
func PortalOfRoom(domain, room jid.JID) (bridge.PortalID, error) {
	if room.Domainpart() != domain.Domainpart() {
		return "", fmt.Errorf("%w: %s", errNotRoomJID, room)
	}
	local := room.Localpart()
	switch {
	case strings.HasPrefix(local, roomHexPrefix):
		b, err := hex.DecodeString(local[len(roomHexPrefix):])
		if err != nil || len(b) == 0 || len(b) > maxPortalIDLen || safeRoomID(string(b)) {
			// A safe id has only one JID, the plain one.
			return "", fmt.Errorf("%w: %s", errNotRoomJID, room)
		}
		return bridge.PortalID(b), nil
	case strings.HasPrefix(local, roomPrefix):
		id := local[len(roomPrefix):]
		if id == "" || len(id) > maxPortalIDLen || !safeRoomID(id) {
			return "", fmt.Errorf("%w: %s", errNotRoomJID, room)
		}
		return bridge.PortalID(id), nil
	}
	return "", fmt.Errorf("%w: %s", errNotRoomJID, room)
}

// isRoomJID says whether j names a room of this gateway (bare or with a nick).
func (g *Gateway) isRoomJID(j jid.JID) bool {
	_, err := PortalOfRoom(g.domain, j)
	return err == nil
}

// safeRoomID says whether id can be a localpart as it is: characters JID
// preparation leaves alone and that never need XEP-0106 escaping.
func safeRoomID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return id != ""
}

// occupantNicks names the MSN participants of a room: their friendly name,
// or their passport when they have none or it cannot be a nickname. Members
// whose names collide get " (passport)" appended, all of them, so that
// nobody's nick depends on who was listed first. taken holds nicks already
// in use (the user's), which members must not get either.
func occupantNicks(domain jid.JID, members []string, names map[string]string, taken map[string]bool) map[string]string {
	base := make(map[string]string, len(members))
	count := make(map[string]int)
	for _, m := range members {
		p := NormalizePassport(m)
		if _, dup := base[p]; dup || p == "" {
			continue
		}
		n := validNick(domain, strings.TrimSpace(names[p]))
		if n == "" {
			n = p
		}
		base[p] = n
		count[n]++
	}
	out := make(map[string]string, len(base))
	for p, n := range base {
		if count[n] > 1 || taken[n] {
			n = disambiguate(domain, n, p)
		}
		out[p] = n
	}
	return out
}

// disambiguate makes a nick unique by the passport, which is unique.
func disambiguate(domain jid.JID, n, passport string) string {
	if n == passport {
		return passport
	}
	if v := validNick(domain, n+" ("+passport+")"); v != "" {
		return v
	}
	return passport
}

// validNick returns n if it can be the resourcepart of a room JID, else "".
func validNick(domain jid.JID, n string) string {
	if n == "" || len(n) > 512 {
		return ""
	}
	j, err := jid.New("room", domain.Domainpart(), n)
	if err != nil || j.Resourcepart() != n {
		return ""
	}
	return n
}

// mucRoom is the gateway's view of one room for one user.
type mucRoom struct {
	mu        sync.Mutex // held while the room's stanzas are built and sent, to keep them in order
	portal    bridge.PortalID
	room      jid.JID
	invited   bool
	occupants map[string]string // passport -> nick
	names     map[string]string // passport -> friendly name learnt from Membership events
	joined    map[string]string // the user's full JID -> their nick
	backlog   []bridge.Message
	gone      bool // the user left; the next event makes a new room
}

// mucState holds every user's rooms.
type mucState struct {
	mu    sync.Mutex
	rooms map[string]*mucRoom // user+portal id -> room
}

// room returns the user's room of portal id, or makes one with create
// (when not nil). create runs without the lock (it calls the core); if two
// callers race, the first room stored wins.
func (s *mucState) room(user string, id bridge.PortalID, create func() (*mucRoom, error)) (*mucRoom, error) {
	k := key(user, string(id))
	s.mu.Lock()
	r, ok := s.rooms[k]
	s.mu.Unlock()
	if ok || create == nil {
		return r, nil
	}
	r, err := create()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.rooms[k]; ok {
		return old, nil
	}
	if s.rooms == nil {
		s.rooms = make(map[string]*mucRoom)
	}
	s.rooms[k] = r
	return r, nil
}

func (s *mucState) forget(user string, id bridge.PortalID, r *mucRoom) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[key(user, string(id))] == r {
		delete(s.rooms, key(user, string(id)))
	}
}

// lockedRoom is mucRoomOf with the room's lock held, never a room the user
// has just left.
func (g *Gateway) lockedRoom(ctx context.Context, user bridge.UserID, p bridge.Portal) (*mucRoom, error) {
	for {
		r, err := g.mucRoomOf(ctx, user, p)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		if !r.gone {
			return r, nil
		}
		r.mu.Unlock()
	}
}

// mucRoomOf returns the room of a group portal, creating it (and recording
// its JID with the core) the first time.
func (g *Gateway) mucRoomOf(ctx context.Context, user bridge.UserID, p bridge.Portal) (*mucRoom, error) {
	return g.muc.room(user.ID, p.ID, func() (*mucRoom, error) {
		room, err := RoomJID(g.domain, p.ID)
		if err != nil {
			return nil, err
		}
		if p.Room != room.String() {
			if err := g.core.SetPortalRoom(ctx, user, p.ID, room.String()); err != nil {
				g.log.Info().Err(err).Str("user", user.ID).Str("room", room.String()).Msg("room not recorded with the core")
			}
		}
		r := &mucRoom{portal: p.ID, room: room, names: make(map[string]string), joined: make(map[string]string)}
		r.occupants = occupantNicks(g.domain, p.Members, g.memberNames(user, r, p.Members), nil)
		return r, nil
	})
}

// memberNames gathers friendly names: from the contact list, else from
// the room's Membership events.
func (g *Gateway) memberNames(user bridge.UserID, r *mucRoom, members []string) map[string]string {
	out := make(map[string]string, len(members))
	for _, m := range members {
		p := NormalizePassport(m)
		if c, ok := g.state.contact(user.ID, p); ok && c.FriendlyName != "" {
			out[p] = c.FriendlyName
		} else if n := r.names[p]; n != "" {
			out[p] = n
		}
	}
	return out
}

// userNicks is the set of nicks the user holds in r (under r.mu).
func (r *mucRoom) userNicks() map[string]bool {
	out := make(map[string]bool, len(r.joined))
	for _, n := range r.joined {
		out[n] = true
	}
	return out
}

// addOccupant names a participant not yet in the room (under r.mu) and
// reports the nick and whether they are new.
func (g *Gateway) addOccupant(user bridge.UserID, r *mucRoom, passport string) (string, bool) {
	p := NormalizePassport(passport)
	if n, ok := r.occupants[p]; ok {
		return n, false
	}
	taken := r.userNicks()
	for _, n := range r.occupants {
		taken[n] = true
	}
	n := occupantNicks(g.domain, []string{p}, g.memberNames(user, r, []string{p}), taken)[p]
	r.occupants[p] = n
	return n, true
}

// inviteIfNeeded sends the XEP-0249 invitation once per room (under r.mu).
func (g *Gateway) inviteIfNeeded(ctx context.Context, user bridge.UserID, r *mucRoom) error {
	if r.invited || len(r.joined) > 0 {
		return nil
	}
	names := r.sortedNicks()
	reason := "MSN group chat with " + strings.Join(names, ", ")
	err := g.sendCtx(ctx, outMessage{ID: newID(), From: g.domain.String(), To: user.ID,
		Body:  reason + ". Join " + r.room.String() + " to take part.",
		Extra: []any{directInvite{JID: r.room.String(), Reason: reason}}})
	if err != nil {
		return err
	}
	r.invited = true
	return nil
}

// byNick lists the occupants ordered by nick (under r.mu).
func (r *mucRoom) byNick() [][2]string {
	out := make([][2]string, 0, len(r.occupants))
	for p, n := range r.occupants {
		out = append(out, [2]string{p, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][1] < out[j][1] })
	return out
}

func (r *mucRoom) sortedNicks() []string {
	out := make([]string, 0, len(r.occupants))
	for _, n := range r.occupants {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// groupPortal resolves a portal and checks it is a group.
func (g *Gateway) groupPortal(ctx context.Context, user bridge.UserID, id bridge.PortalID) (bridge.Portal, error) {
	p, err := g.portalOf(ctx, user, id)
	if err != nil {
		return p, err
	}
	if p.Kind != bridge.PortalGroup {
		return p, fmt.Errorf("portal %s is not a group chat", id)
	}
	return p, nil
}

// deliverGroupMessage shows a message of a group portal in its room, or
// keeps it (and invites the user) until the user joins.
func (g *Gateway) deliverGroupMessage(ctx context.Context, user bridge.UserID, p bridge.Portal, m bridge.Message) (string, error) {
	r, err := g.lockedRoom(ctx, user, p)
	if err != nil {
		g.log.Warn().Err(err).Str("portal", string(p.ID)).Msg("group portal without a room; message dropped")
		return "", fmt.Errorf("%w: %v", bridge.ErrUndeliverable, err)
	}
	defer r.mu.Unlock()
	if len(r.joined) == 0 {
		// Invite first: when that fails the core delivers m again, and it
		// must not then be kept twice.
		if err := g.inviteIfNeeded(ctx, user, r); err != nil {
			return "", err
		}
		if len(r.backlog) >= maxBacklog {
			r.backlog = r.backlog[1:]
		}
		r.backlog = append(r.backlog, m)
		return "", nil
	}
	return g.sendGroupMessage(ctx, user, r, m, false)
}

// sendGroupMessage sends m to every joined resource (under r.mu).
func (g *Gateway) sendGroupMessage(ctx context.Context, user bridge.UserID, r *mucRoom, m bridge.Message, history bool) (string, error) {
	var senderNick string
	if !m.FromSelf {
		n, isNew := g.addOccupant(user, r, m.Sender)
		if isNew {
			if err := g.sendOccupant(ctx, r, NormalizePassport(m.Sender), n, ""); err != nil {
				return "", err
			}
		}
		senderNick = n
	}
	id := newID()
	for full, own := range r.joined {
		nick := senderNick
		if m.FromSelf {
			nick = own
		}
		msg := outMessage{ID: id, Type: "groupchat", From: r.room.String() + "/" + nick, To: full, Body: styleBody(m.Text)}
		if history && !m.Time.IsZero() {
			msg.Extra = append(msg.Extra, delay{Stamp: m.Time.UTC().Format("2006-01-02T15:04:05.000Z"), From: r.room.String()})
		}
		if err := g.sendCtx(ctx, msg); err != nil {
			return "", err
		}
	}
	return id, nil
}

// deliverGroupTyping shows a participant typing in a joined room; typing
// alone neither invites the user nor is kept for later.
func (g *Gateway) deliverGroupTyping(ctx context.Context, user bridge.UserID, p bridge.Portal, t bridge.Typing) error {
	r, _ := g.muc.room(user.ID, p.ID, nil)
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	nick, ok := r.occupants[NormalizePassport(t.Sender)]
	if !ok {
		return nil
	}
	state := "paused"
	if t.Active {
		state = "composing"
	}
	for full := range r.joined {
		if err := g.sendCtx(ctx, outMessage{Type: "groupchat", From: r.room.String() + "/" + nick, To: full,
			Extra: []any{el(nsChatStates, state), noStore{}}}); err != nil {
			return err
		}
	}
	return nil
}

// joinedRoom returns p's room, locked, when some resource of user is in
// it, or nil.
func (g *Gateway) joinedRoom(user bridge.UserID, p bridge.Portal) *mucRoom {
	r, _ := g.muc.room(user.ID, p.ID, nil)
	if r == nil {
		return nil
	}
	r.mu.Lock()
	if len(r.joined) == 0 {
		r.mu.Unlock()
		return nil
	}
	return r
}

// deliverGroupNudge shows a participant's nudge in the room as a /me
// message (XEP-0245) carrying XEP-0224 attention, when the user is in the
// room; shown is false otherwise and the nudge goes the one-to-one way.
func (g *Gateway) deliverGroupNudge(ctx context.Context, user bridge.UserID, p bridge.Portal, n bridge.Nudge) (id string, shown bool, err error) {
	r := g.joinedRoom(user, p)
	if r == nil {
		return "", false, nil
	}
	defer r.mu.Unlock()
	nick, isNew := g.addOccupant(user, r, n.Sender)
	if isNew {
		if err := g.sendOccupant(ctx, r, NormalizePassport(n.Sender), nick, ""); err != nil {
			return "", true, err
		}
	}
	id = newID()
	for full := range r.joined {
		if err := g.sendCtx(ctx, outMessage{ID: id, Type: "groupchat", From: r.room.String() + "/" + nick, To: full,
			Body: "/me sent a nudge!", Extra: []any{el(nsAttention, "attention")}}); err != nil {
			return "", true, err
		}
	}
	return id, true, nil
}

// deliverGroupNotice shows a notice about a group portal in its room, as
// a message from the room itself, when the user is in it; shown is false
// otherwise and the notice goes the usual way.
func (g *Gateway) deliverGroupNotice(ctx context.Context, user bridge.UserID, p bridge.Portal, n bridge.Notice) (id string, shown bool, err error) {
	if p.Kind != bridge.PortalGroup {
		return "", false, nil
	}
	r := g.joinedRoom(user, p)
	if r == nil {
		return "", false, nil
	}
	defer r.mu.Unlock()
	id = newID()
	for full := range r.joined {
		if err := g.sendCtx(ctx, outMessage{ID: id, Type: "groupchat", From: r.room.String(), To: full, Body: n.Text}); err != nil {
			return "", true, err
		}
	}
	return id, true, nil
}

// sendOccupant sends an occupant's presence to every joined resource
// (typ "" for available, "unavailable") (under r.mu).
func (g *Gateway) sendOccupant(ctx context.Context, r *mucRoom, passport, nick, typ string) error {
	for full := range r.joined {
		if err := g.sendCtx(ctx, g.occupantPresence(r.room, passport, nick, full, typ)); err != nil {
			return err
		}
	}
	return nil
}

// occupantPresence shows an MSN participant. The room is non-anonymous:
// the item carries the participant's contact JID, so that clients can
// tell who is who and open a one-to-one chat.
func (g *Gateway) occupantPresence(room jid.JID, passport, nick, to, typ string) mucPresence {
	real := ""
	if j, err := g.ContactJID(passport); err == nil {
		real = j.String()
	}
	return mucPresence{Type: typ, From: room.String() + "/" + nick, To: to,
		X: &mucUserX{Items: []mucItem{{Affiliation: "none", Role: roleOf(typ), JID: real}}}}
}

func roleOf(typ string) string {
	if typ == "unavailable" {
		return "none"
	}
	return "participant"
}

// deliverMembership shows a participant joining or leaving.
func (g *Gateway) deliverMembership(ctx context.Context, user bridge.UserID, e bridge.Membership) (string, error) {
	p, err := g.groupPortal(ctx, user, e.Portal)
	if err != nil {
		g.log.Info().Err(err).Str("portal", string(e.Portal)).Msg("membership of an unknown portal; dropped")
		return "", fmt.Errorf("%w: %v", bridge.ErrUndeliverable, err)
	}
	passport := NormalizePassport(e.Passport)
	// Keep the cached portal's member list current, for rooms made later.
	members := make([]string, 0, len(p.Members)+1)
	for _, m := range p.Members {
		if NormalizePassport(m) != passport {
			members = append(members, m)
		}
	}
	if e.Joined {
		members = append(members, e.Passport)
	}
	p.Members = members
	g.state.setPortal(user.ID, p)

	r, err := g.lockedRoom(ctx, user, p)
	if err != nil {
		return "", fmt.Errorf("%w: %v", bridge.ErrUndeliverable, err)
	}
	defer r.mu.Unlock()
	if e.Name != "" {
		r.names[passport] = e.Name
	}
	if len(r.joined) == 0 {
		// Nobody has seen the nicks yet: name everyone afresh with what is
		// now known. Once the user is in, nicks stay as they were shown.
		r.occupants = occupantNicks(g.domain, p.Members, g.memberNames(user, r, p.Members), nil)
	}
	if e.Joined {
		n, isNew := g.addOccupant(user, r, passport)
		if isNew && len(r.joined) > 0 {
			return "", g.sendOccupant(ctx, r, passport, n, "")
		}
		return "", g.inviteIfNeeded(ctx, user, r)
	}
	n, ok := r.occupants[passport]
	if !ok {
		return "", nil
	}
	delete(r.occupants, passport)
	return "", g.sendOccupant(ctx, r, passport, n, "unavailable")
}

// handleRoomPresence is the user joining (available presence to room/nick)
// or leaving (unavailable) a room.
func (g *Gateway) handleRoomPresence(st *inStanza) {
	user := st.user
	switch st.typ() {
	case "", "unavailable", "error":
	default:
		return // subscriptions and probes mean nothing for a room
	}
	id, _ := PortalOfRoom(g.domain, st.to)
	full := st.from.String()
	if st.typ() != "" {
		g.leaveRoom(st, id, full)
		return
	}
	nick := st.to.Resourcepart()
	if nick == "" {
		g.replyError(st, newErr(errModify, "jid-malformed", "join the room as room/nickname"))
		return
	}
	if e := g.authorize(user, true); e != nil {
		g.replyError(st, e)
		return
	}
	ctx, cancel := g.coreCtx()
	defer cancel()
	p, err := g.groupPortal(ctx, user, id)
	if err != nil {
		g.replyError(st, newErr(errCancel, "item-not-found", "no such MSN group chat"))
		return
	}
	r, err := g.lockedRoom(ctx, user, p)
	if err != nil {
		g.replyError(st, newErr(errCancel, "item-not-found", err.Error()))
		return
	}
	defer r.mu.Unlock()
	if own, ok := r.joined[full]; ok {
		if own != nick {
			// XEP-0045 §7.6: a refused nick change is an error from the new nick.
			g.replyError(st, newErr(errCancel, "not-acceptable", "nicknames cannot be changed in MSN group chats; you are "+own))
			return
		}
		_ = g.send(selfPresence(r.room, own, full, "")) // a presence update
		return
	}
	given := nick
	taken := make(map[string]bool, len(r.occupants))
	for _, n := range r.occupants {
		taken[n] = true
	}
	for taken[nick] {
		nick += " (you)"
	}
	if validNick(g.domain, nick) == "" {
		g.replyError(st, newErr(errModify, "not-acceptable", "nickname not usable"))
		return
	}
	r.joined[full] = nick
	for _, o := range r.byNick() {
		if err := g.send(g.occupantPresence(r.room, o[0], o[1], full, "")); err != nil {
			return
		}
	}
	// 100: the room is non-anonymous; 110: this is you; 210: renamed.
	codes := []string{"100", "110"}
	if nick != given {
		codes = append(codes, "210")
	}
	if err := g.send(selfPresence(r.room, nick, full, "", codes...)); err != nil {
		return
	}
	backlog := r.backlog
	r.backlog = nil
	for _, m := range backlog {
		if _, err := g.sendGroupMessage(ctx, user, r, m, true); err != nil {
			return
		}
	}
	// The subject comes last: clients take it as the end of the join.
	_ = g.send(outMessage{ID: newID(), Type: "groupchat", From: r.room.String(), To: full,
		Extra: []any{subject{Value: "MSN group chat with " + strings.Join(r.sortedNicks(), ", ")}}})
}

// leaveRoom handles unavailable (or error) presence from one of the user's
// resources; when the last one leaves, the user leaves the switchboard.
func (g *Gateway) leaveRoom(st *inStanza, id bridge.PortalID, full string) {
	user := st.user
	r, _ := g.muc.room(user.ID, id, nil)
	if r == nil {
		if st.typ() == "unavailable" {
			_ = g.send(selfPresence(st.to.Bare(), st.to.Resourcepart(), full, "unavailable", "110"))
		}
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	own, ok := r.joined[full]
	if !ok {
		return
	}
	delete(r.joined, full)
	if st.typ() == "unavailable" {
		_ = g.send(selfPresence(r.room, own, full, "unavailable", "110"))
	}
	if len(r.joined) > 0 {
		return
	}
	r.gone = true
	g.muc.forget(user.ID, id, r)
	ctx, cancel := g.coreCtx()
	defer cancel()
	if err := g.core.LeavePortal(ctx, user, id); err != nil {
		g.log.Info().Err(err).Str("user", user.ID).Str("portal", string(id)).Msg("leaving the group chat failed")
	}
}

// selfPresence is the user's own presence in the room, sent to their
// resource to (status codes default to just 110, "this is you").
func selfPresence(room jid.JID, nick, to, typ string, codes ...string) mucPresence {
	if len(codes) == 0 {
		codes = []string{"110"}
	}
	x := &mucUserX{Items: []mucItem{{Affiliation: "none", Role: roleOf(typ), JID: to}}}
	for _, c := range codes {
		x.Status = append(x.Status, mucStatus{Code: c})
	}
	return mucPresence{Type: typ, From: room.String() + "/" + nick, To: to, X: x}
}

// closeRooms tells every joined resource it is out of its rooms (status
// 332, system shutdown) and forgets the rooms: a restarted gateway knows of
// no one in them, and clients rejoin on their own.
func (g *Gateway) closeRooms() { g.dropRooms("", "110", "332") }

// closeUserRooms takes an unregistered user out of their rooms (status
// 321, no longer a member).
func (g *Gateway) closeUserRooms(user string) { g.dropRooms(user, "110", "321") }

// dropRooms forgets user's rooms (every user's, for ""), telling each
// joined resource with these status codes.
func (g *Gateway) dropRooms(user string, codes ...string) {
	var rooms []*mucRoom
	g.muc.mu.Lock()
	for k, r := range g.muc.rooms {
		if user == "" || strings.HasPrefix(k, user+"\x00") {
			rooms = append(rooms, r)
			delete(g.muc.rooms, k)
		}
	}
	g.muc.mu.Unlock()
	for _, r := range rooms {
		r.mu.Lock()
		for full, nick := range r.joined {
			_ = g.send(selfPresence(r.room, nick, full, "unavailable", codes...))
		}
		r.joined = map[string]string{}
		r.gone = true
		r.mu.Unlock()
	}
}

// handleRoomMessage takes the user's groupchat messages and mediated
// invitations to a room.
func (g *Gateway) handleRoomMessage(st *inStanza) {
	user := st.user
	typ := st.typ()
	if typ == "error" {
		// A resource that bounces room messages is gone (XEP-0045 §18.1).
		if id, err := PortalOfRoom(g.domain, st.to); err == nil {
			g.leaveRoom(st, id, st.from.String())
		}
		return
	}
	if e := g.authorize(user, true); e != nil {
		g.replyError(st, e)
		return
	}
	id, _ := PortalOfRoom(g.domain, st.to)
	if x := st.Child(nsMUCUser, "x"); x != nil && x.Child("", "invite") != nil && typ != "groupchat" {
		g.roomInvite(st, id, x)
		return
	}
	if typ != "groupchat" {
		g.replyError(st, newErr(errModify, "not-acceptable", "private messages in MSN group chats are not supported; write to the contact directly"))
		return
	}
	r, _ := g.muc.room(user.ID, id, nil)
	if r == nil {
		g.replyError(st, newErr(errModify, "not-acceptable", "join the room first"))
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	nick, joined := r.joined[st.from.String()]
	if !joined || st.to.Resourcepart() != "" {
		g.replyError(st, newErr(errModify, "not-acceptable", "join the room first"))
		return
	}
	body := st.Child("", "body").Text()
	ctx, cancel := g.coreCtx()
	defer cancel()
	if st.Child(nsAttention, "attention") != nil {
		// XEP-0224 in the room: a nudge to the MSN group chat.
		if err := g.core.SendNudge(ctx, user, id); err != nil {
			g.replyError(st, newErr(errWait, "recipient-unavailable", "nudge not sent: "+err.Error()))
			return
		}
		if strings.TrimSpace(body) == "" {
			return
		}
	}
	if strings.TrimSpace(body) == "" {
		// Chat states: MSN has typing notifications, nothing else.
		active := st.Child(nsChatStates, "composing") != nil
		if active || st.Child(nsChatStates, "paused") != nil || st.Child(nsChatStates, "active") != nil {
			if err := g.core.SendTyping(ctx, user, id, active); err != nil {
				g.log.Debug().Err(err).Str("user", user.ID).Msg("typing not sent")
			}
		}
		return
	}
	text := bridge.Text{Body: body}
	if st.Child(nsStyling, "unstyled") == nil {
		text = parseStyling(body)
	}
	fid := newID()
	g.state.addPending(user.ID, fid, pendingMessage{to: st.from.String(), from: r.room.String(), id: st.Attr("id"), at: time.Now()})
	if err := g.core.SendMessage(ctx, user, id, bridge.OutgoingMessage{FrontendID: fid, Text: text}); err != nil {
		g.state.takePending(user.ID, fid)
		g.replyError(st, newErr(errWait, "recipient-unavailable", "not sent: "+err.Error()))
		return
	}
	// A MUC reflects every message to all occupants, the sender included,
	// with the sender's id, which is how clients know it went out.
	sid := st.Attr("id")
	if sid == "" {
		sid = fid
	}
	for full := range r.joined {
		_ = g.send(outMessage{ID: sid, Type: "groupchat", From: r.room.String() + "/" + nick, To: full, Body: body})
	}
}

// roomInvite passes a mediated invitation on to MSN.
func (g *Gateway) roomInvite(st *inStanza, id bridge.PortalID, x *node) {
	user := st.user
	ctx, cancel := g.coreCtx()
	defer cancel()
	if _, err := g.groupPortal(ctx, user, id); err != nil {
		g.replyError(st, newErr(errCancel, "item-not-found", "no such MSN group chat"))
		return
	}
	for _, inv := range x.All("", "invite") {
		to, err := jid.Parse(inv.Attr("to"))
		if err != nil {
			g.replyError(st, newErr(errModify, "jid-malformed", "invite whom?"))
			return
		}
		passport, err := PassportOf(g.domain, to)
		if err != nil {
			g.replyError(st, newErr(errModify, "not-acceptable", "only MSN contacts ("+"passport\\40domain@"+g.domain.String()+") can be invited"))
			return
		}
		if err := g.core.Invite(ctx, user, id, passport); err != nil {
			g.replyError(st, newErr(errWait, "recipient-unavailable", "invitation not sent: "+err.Error()))
			return
		}
	}
}

// handleRoomIQ answers disco and ping for a room and its occupants.
func (g *Gateway) handleRoomIQ(st *inStanza) {
	payload := st.First()
	if st.typ() != "get" || payload == nil {
		if st.typ() == "set" {
			g.replyError(st, newErr(errCancel, "service-unavailable", ""))
		}
		return
	}
	id, _ := PortalOfRoom(g.domain, st.to)
	ns, local := payload.Name.Space, payload.Name.Local
	switch {
	case ns == nsPing && local == "ping":
		// XEP-0410 self-ping: answered only for occupants.
		if st.to.Resourcepart() != "" {
			r, _ := g.muc.room(st.user.ID, id, nil)
			joined := false
			if r != nil {
				r.mu.Lock()
				_, joined = r.joined[st.from.String()]
				r.mu.Unlock()
			}
			if !joined {
				g.replyError(st, newErr(errModify, "not-acceptable", "not in the room"))
				return
			}
		}
		g.iqResult(st, nil)
	case ns == nsDiscoInfo && local == "query" && st.to.Resourcepart() == "" && payload.Attr("node") == "":
		if e := g.authorize(st.user, true); e != nil {
			g.replyError(st, e)
			return
		}
		ctx, cancel := g.coreCtx()
		defer cancel()
		if _, err := g.groupPortal(ctx, st.user, id); err != nil {
			g.replyError(st, newErr(errCancel, "item-not-found", "no such MSN group chat"))
			return
		}
		g.iqResult(st, discoInfo{
			Identities: []discoIdentity{{Category: "conference", Type: "text", Name: "MSN group chat"}},
			Features:   features(roomFeatures),
		})
	case ns == nsDiscoItems && local == "query":
		g.iqResult(st, discoItems{})
	default:
		g.replyError(st, newErr(errCancel, "service-unavailable", ""))
	}
}

// MUC stanzas.

type mucPresence struct {
	XMLName xml.Name  `xml:"presence"`
	Type    string    `xml:"type,attr,omitempty"`
	From    string    `xml:"from,attr"`
	To      string    `xml:"to,attr"`
	X       *mucUserX `xml:",omitempty"`
}

type mucUserX struct {
	XMLName xml.Name    `xml:"http://jabber.org/protocol/muc#user x"`
	Items   []mucItem   `xml:"item"`
	Status  []mucStatus `xml:"status"`
}

type mucItem struct {
	Affiliation string `xml:"affiliation,attr"`
	Role        string `xml:"role,attr"`
	JID         string `xml:"jid,attr,omitempty"`
}

type mucStatus struct {
	Code string `xml:"code,attr"`
}

type directInvite struct {
	XMLName xml.Name `xml:"jabber:x:conference x"`
	JID     string   `xml:"jid,attr"`
	Reason  string   `xml:"reason,attr,omitempty"`
}

type subject struct {
	XMLName xml.Name `xml:"subject"`
	Value   string   `xml:",chardata"`
}
