package msnp

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Protocol is an MSNP protocol version, e.g. MSNP12.
type Protocol int

// The protocol versions this client speaks.
const (
	MSNP8  Protocol = 8
	MSNP9  Protocol = 9
	MSNP10 Protocol = 10
	MSNP11 Protocol = 11
	MSNP12 Protocol = 12
	MSNP13 Protocol = 13
	MSNP14 Protocol = 14
	MSNP15 Protocol = 15
	MSNP16 Protocol = 16
	MSNP17 Protocol = 17
	MSNP18 Protocol = 18
)

// String returns the wire name, e.g. "MSNP12".
func (p Protocol) String() string { return "MSNP" + strconv.Itoa(int(p)) }

// ParseProtocol reads "MSNP12" (or "12").
func ParseProtocol(s string) (Protocol, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(strings.ToUpper(s), "MSNP"))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("msnp: invalid protocol %q", s)
	}
	p := Protocol(n)
	if dialectFor(p) == nil {
		return 0, fmt.Errorf("msnp: protocol %s is not supported", p)
	}
	return p, nil
}

// SupportedProtocols lists the versions this client speaks, best first:
// MSNP18 (SSO, the address book, MPOP beside the user's own Messenger),
// then MSNP15, then the Tweener versions for servers that offer less.
// MSNP13, 14 (Tweener login, the list in the address book), 16 and 17 are
// spoken too when asked for (Config.Protocols).
func SupportedProtocols() []Protocol {
	return []Protocol{MSNP18, MSNP15, MSNP12, MSNP11, MSNP10, MSNP9, MSNP8}
}

// tweenerProtocols are the defaults for a Config without an RSTURL.
func tweenerProtocols() []Protocol { return []Protocol{MSNP12, MSNP11, MSNP10, MSNP9, MSNP8} }

// Capability bits of the client id sent with CHG (FACTS.md §5.2).
const (
	CapMultiPacket uint32 = 0x20
	CapBot         uint32 = 0x20000
	CapVersion70   uint32 = 0x40000000
)

// DefaultClientID is what the client advertises unless told otherwise: the
// MSN 7.0 version nibble (Escargot's basic capabilities) and, honestly, the
// bot bit. A non-zero version nibble is what peers read as "speaks
// MSNObject P2P" (MSNC1+, FACTS.md §5.2; libpurple tries P2P only with
// clientid & 0xF0000000): display pictures and file transfers work in both
// directions through the switchboard (p2psession.go). It claims no ink,
// webcam, winks or voice clips, and, sending no extended capabilities on
// MSNP16+, never P2Pv2 (0x20 there), so WLM 2009 speaks P2P v1 with us.
const DefaultClientID = CapVersion70 | CapBot

// ClientInfo is what CVR tells the server about the client.
type ClientInfo struct {
	Locale  string // LCID in hex, e.g. "0x0409"
	OSType  string // "winnt", "win", "mac"
	OSVer   string
	Arch    string
	Name    string // client name, e.g. "MSNMSGR"
	Version string // client version, echoed back by Escargot
	Brand   string // "msmsgs"
}

// DefaultClientInfo poses as MSN Messenger 7.5 on Windows XP, a client
// every Tweener-era server accepts.
var DefaultClientInfo = ClientInfo{
	Locale: "0x0409", OSType: "winnt", OSVer: "5.1", Arch: "i386",
	Name: "MSNMSGR", Version: "7.5.0324", Brand: "msmsgs",
}

// Config configures a Client. Server and one of NexusURL or LoginURL are
// required for MSNP8–12; RSTURL for MSNP15–18.
type Config struct {
	// Server is the notification server's host:port.
	Server string
	// NexusURL is the Passport nexus (…/rdr/pprdr.asp or …/nexus-mock)
	// that names the login server. Ignored when LoginURL is set.
	NexusURL string
	// LoginURL is the Passport 1.4 login URL, skipping the nexus.
	LoginURL string
	// RSTURL is the SSO token service (…/RST.srf) for MSNP15–18.
	RSTURL string
	// SOAPBaseURL is where the address book (/abservice/…), OIM and
	// storage services live; empty means RSTURL's scheme and host, as on
	// Escargot.
	SOAPBaseURL string
	// MachineGUID names this endpoint on MSNP16+ ("{…}" or bare); empty
	// means a fresh one per Client (read it with Client.MachineGUID and
	// store it per login so that reconnects reuse it).
	MachineGUID string
	// EndpointName names this endpoint to the account's other clients on
	// MSNP16+ (WLM lists it under "signed in at"); empty sends none.
	EndpointName string
	// OnlyEndpoint asks that the account's other endpoints be signed out
	// at login (MSNP16+). Not implemented yet: see Client.Connect.
	OnlyEndpoint bool
	// Protocols lists the versions to offer, preferred first. Empty means
	// SupportedProtocols(), without the SSO versions when RSTURL is empty.
	Protocols []Protocol
	// ClientInfo is sent in CVR; zero fields take DefaultClientInfo's.
	ClientInfo ClientInfo
	// ClientID is the capability word sent with CHG; 0 means DefaultClientID.
	ClientID uint32
	// HTTPClient does the Passport requests; nil means a client with a
	// 30-second timeout.
	HTTPClient *http.Client
	// DialTimeout bounds each TCP connect; 0 means 30 s.
	DialTimeout time.Duration
	// KeepaliveInterval is the time between PNGs. 0 follows the server's
	// QNG hint (a little under it), 50 s until the first QNG.
	KeepaliveInterval time.Duration
	// KeepaliveTimeout is how long a PNG may go unanswered before the
	// connection is declared dead; 0 means 30 s.
	KeepaliveTimeout time.Duration
	// OnRoundTrip, when set, is called with the time from each PNG to its
	// QNG: the server's round-trip time, for monitoring. It runs on the
	// connection's reader, so it must return quickly.
	OnRoundTrip func(time.Duration)
	// Logger receives debug protocol traces, secrets redacted. The zero
	// value logs nothing.
	Logger zerolog.Logger
	// MaxQueuedEvents bounds the events waiting for the handler; past it
	// the connection is closed (the handler is stuck). 0 means 10000.
	MaxQueuedEvents int
	// SwitchboardTimeout bounds one attempt at getting a conversation's
	// message through: XFR, connecting, CAL and the invitee's JOI, and the
	// ACK; and answering an invitation. 0 means 30 s.
	SwitchboardTimeout time.Duration
	// ManualSwitchboards turns off answering invitations (RNG): they are
	// only reported as SwitchboardInvite, for a caller that drives
	// switchboards itself. By default the Client answers every invitation
	// and attaches it to a Conversation (see Client.Chat).
	ManualSwitchboards bool
}

func (c *Config) clientInfo() ClientInfo {
	ci, d := c.ClientInfo, DefaultClientInfo
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&ci.Locale, d.Locale)
	def(&ci.OSType, d.OSType)
	def(&ci.OSVer, d.OSVer)
	def(&ci.Arch, d.Arch)
	def(&ci.Name, d.Name)
	def(&ci.Version, d.Version)
	def(&ci.Brand, d.Brand)
	return ci
}

func (c *Config) clientID() uint32 {
	if c.ClientID == 0 {
		return DefaultClientID
	}
	return c.ClientID
}

func (c *Config) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
