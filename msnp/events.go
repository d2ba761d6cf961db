package msnp

import (
	"net/textproto"
	"time"
)

// Event is something the server told the client. Events reach the handler
// given to New one at a time, in the order the server sent them.
type Event interface{ isEvent() }

// PresenceSynced follows the initial presence dump that the first SetStatus
// triggers: every ContactPresence (and, MSNP11+, PersonalMessage) before it
// describes who was already online. It is sent once per login.
//
// The server sends the dump (ILN, each followed by UBX on MSNP11+) right
// after echoing the first CHG, then, on MSNP11+, an initial mail-data MSG.
// The end marker is that MSG or, whichever comes first, the QNG answering a
// PNG the client sends as soon as the echo arrives: the server handles
// commands in order, so the QNG cannot overtake the dump.
type PresenceSynced struct{}

// ContactPresence is a contact coming online or changing status, name,
// capabilities or display picture. Initial is true for the dump after the
// first SetStatus (ILN).
type ContactPresence struct {
	Passport     string
	Status       Status
	FriendlyName string
	ClientID     uint32
	ClientIDExt  uint32 // MSNP16+: the extended capabilities ("caps:ext")
	MSNObject    string // XML, unescaped; "" when none
	Initial      bool
}

// ContactOffline is a contact going offline (or appearing offline).
type ContactOffline struct{ Passport string }

// PersonalMessage is a contact's status text and current media (MSNP11+).
type PersonalMessage struct {
	Passport     string
	Text         string
	CurrentMedia string
}

// FriendlyNameChanged reports the account's own friendly name as the
// server now has it.
type FriendlyNameChanged struct{ Name string }

// AddedBy reports someone adding this account to their list (reverse list),
// live or, during Connect's contact-list sync, while the account was away.
// Accept with AcceptPending, refuse with DeclinePending.
type AddedBy struct {
	Passport string
	Name     string
}

// OfflineMessage is a message a contact left while the account was
// offline (MSNP15+). The client fetches it when the server announces it
// and deletes it from the server once the event is queued.
type OfflineMessage struct {
	From     string
	FromName string
	Text     string
	Time     time.Time
}

// RemovedBy reports someone removing this account from their list.
type RemovedBy struct{ Passport string }

// ServerNotice is a notification-server MSG from "Hotmail": maintenance
// warnings, mail and offline-message notifications. The login profile is
// not reported (it carries the session's credentials).
type ServerNotice struct {
	ContentType string // media type, without parameters
	Header      textproto.MIMEHeader
	Body        string
	// MaintenanceMinutes is set for application/x-msmsgssystemmessage:
	// the server goes down in that many minutes.
	MaintenanceMinutes int
}

// SwitchboardInvite is an invitation (RNG) to a switchboard session. Unless
// Config.ManualSwitchboards is set, the Client has already answered it and
// attached the switchboard to a Conversation: the event is for information.
type SwitchboardInvite struct {
	SessionID   string
	Addr        string
	Cookie      string
	Inviter     string
	InviterName string
}

// DisconnectReason says why a logged-in client lost its connection.
type DisconnectReason int

// Disconnect reasons.
const (
	// ReasonConnectionLost: the connection broke or stopped answering.
	ReasonConnectionLost DisconnectReason = iota
	// ReasonOtherLogin: the account logged in elsewhere (OUT OTH).
	// Do not reconnect automatically, or the two sessions will fight.
	ReasonOtherLogin
	// ReasonServerShutdown: the server is going down (OUT SSD).
	ReasonServerShutdown
	// ReasonLoggedOut: Close was called.
	ReasonLoggedOut
)

func (r DisconnectReason) String() string {
	switch r {
	case ReasonOtherLogin:
		return "other-login"
	case ReasonServerShutdown:
		return "server-shutdown"
	case ReasonLoggedOut:
		return "logged-out"
	}
	return "connection-lost"
}

// Disconnected is the last event of a session that Connect established.
type Disconnected struct {
	Reason DisconnectReason
	Err    error // the cause, nil after Close
}

func (PresenceSynced) isEvent()      {}
func (ContactPresence) isEvent()     {}
func (ContactOffline) isEvent()      {}
func (PersonalMessage) isEvent()     {}
func (FriendlyNameChanged) isEvent() {}
func (AddedBy) isEvent()             {}
func (RemovedBy) isEvent()           {}
func (OfflineMessage) isEvent()      {}
func (ServerNotice) isEvent()        {}
func (SwitchboardInvite) isEvent()   {}
func (Disconnected) isEvent()        {}
