package bridge

import (
	"context"
	"errors"
	"io"
	"time"
)

// This file is the contract between the core and its frontends (matrix/,
// xmpp/). Frontends implement Frontend and call the core through Core; none
// of these types knows Matrix or XMPP. Additions are fine; changes to what
// exists must be made in every frontend at once.

// UserID is a bridge user as their frontend knows them: the frontend's kind
// ("matrix", "xmpp") and its own identifier (an MXID, a bare JID).
type UserID struct {
	Frontend string
	ID       string
}

func (u UserID) String() string { return u.Frontend + ":" + u.ID }

// Permission is what a user may do with the bridge.
type Permission int

const (
	PermissionNone  Permission = iota // may not use the bridge
	PermissionUser                    // may log in an MSN account and chat
	PermissionAdmin                   // may also use admin commands
)

// Status is an MSN presence state, named for people rather than by its
// three-letter code.
type Status string

const (
	StatusOnline    Status = "online"    // NLN
	StatusBusy      Status = "busy"      // BSY
	StatusIdle      Status = "idle"      // IDL
	StatusBRB       Status = "brb"       // BRB
	StatusAway      Status = "away"      // AWY
	StatusPhone     Status = "phone"     // PHN
	StatusLunch     Status = "lunch"     // LUN
	StatusInvisible Status = "invisible" // HDN, only ever the user's own
	StatusOffline   Status = "offline"   // FLN
)

// Contact is one MSN contact of a user's account.
type Contact struct {
	Passport        string
	FriendlyName    string
	PersonalMessage string
	Status          Status
	OnContactList   bool // on the forward list (FL)
	Blocked         bool // on the block list (BL)
	Pending         bool // added the user, not yet accepted or declined
	Groups          []string
	// Avatar is the hex SHA-1 of the contact's display picture as the core
	// has it cached (Core.Avatar reads it), or "" when they have none or it
	// is not fetched yet. A Presence event reports a change; the same
	// picture always has the same Avatar, whoever shows it. It is the
	// picture they last showed: it stays while they are offline and across
	// restarts of the bridge (the store keeps it), until they show another
	// or none.
	Avatar string
}

// PortalID is the core's stable name for a conversation. It survives
// restarts and switchboard reconnects.
type PortalID string

// PortalKind tells a one-to-one conversation from a multi-party one.
type PortalKind int

const (
	PortalDirect PortalKind = iota
	PortalGroup
)

// Portal is a conversation as the frontends see it.
type Portal struct {
	ID      PortalID
	Kind    PortalKind
	Contact string   // the other side of a direct portal
	Members []string // the MSN participants of a group portal, the user excluded
	// Room is the frontend's own handle for the portal (a room ID, a MUC
	// JID), empty until the frontend sets it with Core.SetPortalRoom.
	Room string
}

// Text is a message body with the styling MSN can carry: one font, one
// colour and effects for the whole message.
type Text struct {
	Body      string
	Font      string
	Color     string // "#rrggbb", or "" for the default
	Bold      bool
	Italic    bool
	Underline bool
	Strike    bool
}

// Event is something a frontend shows its user. Each type below is one.
type Event interface{ isEvent() }

// Message is a message in a portal. Sender is the contact's passport, or ""
// when the user sent it from another MSN client (FromSelf).
type Message struct {
	Portal   PortalID
	Sender   string
	FromSelf bool
	MSNID    string // the core's id for the message, for de-duplication
	Text     Text
	Time     time.Time
}

// Typing says a contact started or stopped typing.
type Typing struct {
	Portal PortalID
	Sender string
	Active bool
}

// Nudge is an MSN nudge (buzz) from a contact.
type Nudge struct {
	Portal PortalID
	Sender string
}

// Presence is a contact's new status, personal message or name.
type Presence struct {
	Contact Contact
}

// ContactChangeKind says what happened to a contact.
type ContactChangeKind string

const (
	ContactAdded      ContactChangeKind = "added"       // the user added them
	ContactRemoved    ContactChangeKind = "removed"     // the user removed them
	ContactBlocked    ContactChangeKind = "blocked"     // the user blocked them
	ContactUnblocked  ContactChangeKind = "unblocked"   // the user unblocked them
	ContactAddedYou   ContactChangeKind = "added_you"   // they added the user
	ContactRemovedYou ContactChangeKind = "removed_you" // they removed the user
)

// ContactChange reports a change to the contact list.
type ContactChange struct {
	Kind    ContactChangeKind
	Contact Contact
}

// Membership says a participant joined or left a group portal.
type Membership struct {
	Portal   PortalID
	Passport string
	Name     string
	Joined   bool
}

// DeliveryResult ends every Core.SendMessage: accepted by the MSN server
// (Err nil; "accepted" is all MSN promises) or failed with a reason.
type DeliveryResult struct {
	Portal     PortalID
	FrontendID string // the id the frontend passed to SendMessage
	Err        error
}

// LoginState is the state of the user's MSN session.
type LoginState string

const (
	LoginConnecting     LoginState = "connecting"
	LoginConnected      LoginState = "connected"
	LoginBadCredentials LoginState = "bad_credentials"
	LoginElsewhere      LoginState = "signed_in_elsewhere"
	LoginServerDown     LoginState = "server_down"
	LoginLoggedOut      LoginState = "logged_out"
)

// LoginStateChange reports a new login state with a human explanation.
type LoginStateChange struct {
	State   LoginState
	Message string
}

// Notice is a human-readable remark, in a portal or (Portal "") to the user
// directly: what could not be bridged, and why.
type Notice struct {
	Portal PortalID
	Text   string
}

// MediaID names a file the core holds in its media store (Core.OpenMedia
// reads it). It is unguessable: a frontend may put it in a URL.
type MediaID string

// File is a file a contact sent (an MSN file transfer), already received
// whole into the core's media store. MIME is sniffed from the content and
// the name.
type File struct {
	Portal   PortalID
	Sender   string
	FromSelf bool
	MSNID    string
	Name     string
	Size     int64
	MIME     string
	Media    MediaID
	Time     time.Time
}

func (Message) isEvent()          {}
func (File) isEvent()             {}
func (Typing) isEvent()           {}
func (Nudge) isEvent()            {}
func (Presence) isEvent()         {}
func (ContactChange) isEvent()    {}
func (Membership) isEvent()       {}
func (DeliveryResult) isEvent()   {}
func (LoginStateChange) isEvent() {}
func (Notice) isEvent()           {}

// ErrUndeliverable is wrapped by a Frontend.Deliver error that retrying will
// not cure (the portal's room is gone, the event makes no sense to the
// frontend). The core drops such an event, logging why, instead of holding
// up the user's queue behind it.
var ErrUndeliverable = errors.New("event cannot be delivered")

// ErrFileDeclined is the DeliveryResult error of a file the contact
// declined (or let time out unanswered).
var ErrFileDeclined = errors.New("the contact declined the file")

// Frontend is implemented by matrix/ and xmpp/.
type Frontend interface {
	// Kind is the frontend's name, the Frontend field of its UserIDs.
	Kind() string
	// Deliver shows ev to user and returns the frontend's id for what it
	// created (an event ID, a stanza id), or "" when there is none. An
	// error means the frontend cannot take events now (its server is
	// down): the core keeps the event queued and delivers it again later,
	// in order.
	Deliver(ctx context.Context, user UserID, ev Event) (string, error)
}

// OutgoingMessage is a message a user sends to MSN from a frontend.
type OutgoingMessage struct {
	FrontendID string // the frontend's id for it, echoed in DeliveryResult
	Text       Text
}

// OutgoingFile is a file a user sends to MSN from a frontend. Data is read
// once, during SendFile, and never past Size bytes (more is an error).
type OutgoingFile struct {
	FrontendID string // the frontend's id for it, echoed in DeliveryResult
	Name       string
	Size       int64
	MIME       string
	Data       io.Reader
}

// Media is an open file of the core's media store.
type Media struct {
	io.ReadSeekCloser
	Name    string
	Size    int64
	MIME    string
	ModTime time.Time
}

// LoginStatus answers Core.Status.
type LoginStatus struct {
	Passport string
	State    LoginState
	Status   Status
	Protocol string // e.g. MSNP12
}

// Core is what frontends ask of the bridge. Every call is made on behalf of
// one user and touches only that user's login, contacts and portals.
type Core interface {
	Permission(user UserID) Permission

	// Login stores the credentials and signs in; progress arrives as
	// LoginStateChange events. Logout signs out and forgets the login.
	Login(ctx context.Context, user UserID, passport, password string) error
	Logout(ctx context.Context, user UserID) error
	Relogin(ctx context.Context, user UserID) error
	// Status fails with ErrNotLoggedIn for a user with no stored login. A
	// login signed out with SetStatus(StatusOffline) is still reported,
	// in state LoginLoggedOut, across restarts too.
	Status(ctx context.Context, user UserID) (LoginStatus, error)

	Contacts(ctx context.Context, user UserID) ([]Contact, error)
	AddContact(ctx context.Context, user UserID, passport string) error
	RemoveContact(ctx context.Context, user UserID, passport string) error
	BlockContact(ctx context.Context, user UserID, passport string) error
	UnblockContact(ctx context.Context, user UserID, passport string) error

	// SetStatus waits (up to 30 s, or ctx) for a sign-in under way, and
	// fails at once when the login cannot connect. StatusOffline signs
	// out but keeps the login; any other status signs it back in.
	SetStatus(ctx context.Context, user UserID, status Status) error
	SetPersonalMessage(ctx context.Context, user UserID, text string) error
	SetFriendlyName(ctx context.Context, user UserID, name string) error

	// DirectPortal returns the one-to-one portal with passport, creating it.
	DirectPortal(ctx context.Context, user UserID, passport string) (Portal, error)
	// Portal looks a portal up by its id, PortalByRoom by its frontend room.
	Portal(ctx context.Context, user UserID, id PortalID) (Portal, error)
	PortalByRoom(ctx context.Context, user UserID, room string) (Portal, error)
	// SetPortalRoom records the frontend's handle for a portal.
	SetPortalRoom(ctx context.Context, user UserID, id PortalID, room string) error
	Invite(ctx context.Context, user UserID, id PortalID, passport string) error
	LeavePortal(ctx context.Context, user UserID, id PortalID) error

	// SendMessage queues a message; its DeliveryResult event follows.
	SendMessage(ctx context.Context, user UserID, id PortalID, msg OutgoingMessage) error
	SendTyping(ctx context.Context, user UserID, id PortalID, active bool) error
	SendNudge(ctx context.Context, user UserID, id PortalID) error
	// SendFile copies f into the media store (refusing more than the
	// configured bridge.files.max_size) and offers it to the direct
	// portal's contact as an MSN file transfer; it returns once the copy is
	// stored. Its DeliveryResult event follows when the contact has
	// received it all, declined it (ErrFileDeclined) or the transfer failed.
	// Group portals refuse files (MSN transfers are one-to-one).
	SendFile(ctx context.Context, user UserID, id PortalID, f OutgoingFile) error
	// OpenMedia opens a file of the media store (a File event's Media). The
	// id is the capability: any holder may read it, until it expires
	// (bridge.files.retention).
	OpenMedia(ctx context.Context, id MediaID) (*Media, error)

	// Avatar returns a cached display picture by its hash (Contact.Avatar):
	// the image bytes and their MIME type. ErrNoSuchMedia when it is not cached.
	Avatar(ctx context.Context, hash string) (data []byte, mime string, err error)
	// SetDisplayPicture makes image (PNG, JPEG or GIF; it is converted to a
	// 96×96 PNG) the user's MSN display picture, now and at every later
	// sign-in; nil clears it.
	SetDisplayPicture(ctx context.Context, user UserID, image []byte) error

	// FrontendValue and SetFrontendValue keep small strings for a frontend
	// across restarts, namespaced by its kind (e.g. which uploaded media
	// URI holds which avatar hash). "" means unset.
	FrontendValue(ctx context.Context, frontend, key string) (string, error)
	SetFrontendValue(ctx context.Context, frontend, key, value string) error

	// ManagementRoom returns the frontend room where the user talks to the
	// bridge's bot ("" when there is none yet); SetManagementRoom records
	// it so that it survives restarts.
	ManagementRoom(ctx context.Context, user UserID) (string, error)
	SetManagementRoom(ctx context.Context, user UserID, room string) error
}
