// Package config defines the bridge's configuration file: its sections,
// defaults, strict YAML loading, validation and environment overrides.
// Every other package receives its section from here.
package config

import "time"

// Config is the whole configuration file.
type Config struct {
	MSN      MSN      `yaml:"msn"`
	Matrix   Matrix   `yaml:"matrix"`
	XMPP     XMPP     `yaml:"xmpp"`
	Database Database `yaml:"database"`
	Logging  Logging  `yaml:"logging"`
	Bridge   Bridge   `yaml:"bridge"`
	HTTP     HTTP     `yaml:"http"`

	// origins records where each key's value came from (a file line or
	// an environment variable) so that Validate can point at it.
	origins map[string]origin
}

// MSN says how to reach the MSN (revival) service. Every host and URL is
// configurable: revival servers move.
type MSN struct {
	// Server is the notification (or dispatch) server, host:port.
	Server string `yaml:"server"`
	// NexusURL is the Passport nexus (pprdr.asp) asked for the login URL.
	NexusURL string `yaml:"nexus_url"`
	// LoginURL, when set, skips the nexus and is used for Tweener logins.
	LoginURL string `yaml:"login_url"`
	// RSTURL is the SSO token service (RST.srf) for MSNP15+.
	RSTURL string `yaml:"rst_url"`
	// SOAPBaseURL is where the address book, OIM and storage services live.
	SOAPBaseURL string `yaml:"soap_base_url"`
	// Protocols lists the dialects to offer, in order of preference,
	// e.g. [MSNP18, MSNP15, MSNP12].
	Protocols []string `yaml:"protocols"`
	// Client describes the client to the server (CVR and capabilities).
	Client MSNClient `yaml:"client"`
	TLS    TLS       `yaml:"tls"`
	// DialTimeout bounds connecting and logging in.
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// MSNClient is what the bridge says it is in CVR.
type MSNClient struct {
	LocaleID string `yaml:"locale_id"` // e.g. 0x0409
	OSType   string `yaml:"os_type"`
	OSVer    string `yaml:"os_version"`
	Arch     string `yaml:"arch"`
	Name     string `yaml:"name"`
	Version  string `yaml:"version"`
	Brand    string `yaml:"brand"`
}

// TLS settings for the HTTPS login and SOAP endpoints.
type TLS struct {
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	CAFile             string `yaml:"ca_file"`
}

// Matrix configures the application-service frontend.
type Matrix struct {
	Enabled bool `yaml:"enabled"`
	// HomeserverURL is how the bridge reaches the homeserver's client API.
	HomeserverURL string `yaml:"homeserver_url"`
	// Domain is the homeserver's server name (the part after ':' in IDs).
	Domain string `yaml:"domain"`
	// Listen is the address the appservice HTTP server binds, host:port.
	Listen string `yaml:"listen"`
	// PublicURL is how the homeserver reaches the appservice.
	PublicURL string `yaml:"public_url"`
	// ID is the registration's id.
	ID             string `yaml:"id"`
	BotLocalpart   string `yaml:"bot_localpart"`
	BotDisplayname string `yaml:"bot_displayname"`
	ASToken        string `yaml:"as_token"`
	HSToken        string `yaml:"hs_token"`
	// GhostTemplate makes a ghost's localpart from the escaped passport;
	// "{{.}}" stands for it. Default "msn_{{.}}".
	GhostTemplate string `yaml:"ghost_template"`
	// SyncEphemeral says the homeserver does not push typing notifications
	// to appservices (MSC2409; Dendrite does not): the bot then follows
	// them with its own /sync.
	SyncEphemeral bool `yaml:"sync_ephemeral"`
	// PresenceToMSN lets a user's Matrix presence set their MSN status:
	// online → online, unavailable (idle) → away. Going offline on Matrix
	// leaves MSN as it is: clients drop offline all the time.
	PresenceToMSN bool `yaml:"presence_to_msn"`
}

// XMPP configures the component frontend.
type XMPP struct {
	Enabled bool `yaml:"enabled"`
	// JID is the component's domain, e.g. msn.example.org.
	JID string `yaml:"jid"`
	// Server is the XMPP server's component port, host:port.
	Server string `yaml:"server"`
	Secret string `yaml:"secret"`
	// Name is the gateway's name in service discovery. Default "MSN Transport".
	Name string `yaml:"name"`
	// SignOutWhenUnavailable signs the user's MSN account out (status
	// offline) when their last XMPP resource goes offline, and back in when
	// one comes online. Default false: MSN keeps the last status.
	SignOutWhenUnavailable bool `yaml:"sign_out_when_unavailable"`
	// AllowPrivateURLs lets the gateway fetch files users link to (to send
	// them to MSN) from loopback, private and link-local addresses. Default
	// false: a user's link must not reach into the bridge's own network.
	AllowPrivateURLs bool `yaml:"allow_private_urls"`
}

// Database configures the store.
type Database struct {
	Type         string `yaml:"type"` // sqlite3 or postgres
	URI          string `yaml:"uri"`
	MaxOpenConns int    `yaml:"max_open_conns"`
	MaxIdleConns int    `yaml:"max_idle_conns"`
}

// Logging configures zerolog.
type Logging struct {
	Level  string `yaml:"level"`  // trace, debug, info, warn, error
	Format string `yaml:"format"` // console or json
	// Components overrides the level per component ("msnp", "matrix", ...).
	Components map[string]string `yaml:"components"`
}

// Bridge holds the core's settings.
type Bridge struct {
	// Permissions maps a Matrix user ID, a Matrix server name, an XMPP
	// bare JID, an XMPP domain or "*" to a level: "admin", "user" or "none".
	Permissions map[string]string `yaml:"permissions"`
	// EncryptionKey encrypts stored MSN passwords (AES-256-GCM). Base64 of
	// 32 bytes. Usually given as MSNBRIDGE_BRIDGE_ENCRYPTION_KEY.
	EncryptionKey string `yaml:"encryption_key"`
	// Files configures file transfers (both ways) and the media directory.
	Files Files `yaml:"files"`
	// DisplayPictures configures contacts' display pictures.
	DisplayPictures DisplayPictures `yaml:"display_pictures"`
}

// Files configures MSN file transfers and the media directory that holds
// them: files from MSN wait there for the frontends (a Matrix upload, an
// XMPP link), files to MSN are copied there while they are offered.
type Files struct {
	// Dir is the media directory; relative to the working directory.
	Dir string `yaml:"dir"`
	// MaxSize is the largest file accepted either way; a larger one is
	// declined and the user told. 0 turns file transfer off.
	MaxSize ByteSize `yaml:"max_size"`
	// Retention is how long a received file stays readable (and its links
	// valid) before it is deleted.
	Retention time.Duration `yaml:"retention"`
}

// DisplayPictures configures contacts' display pictures, fetched over MSN
// P2P and cached once per content.
type DisplayPictures struct {
	// Enabled fetches contacts' display pictures and reports them to the
	// frontends (ghost avatars, vCard photos).
	Enabled bool `yaml:"enabled"`
	// MaxSize is the largest picture fetched; larger ones are ignored.
	MaxSize ByteSize `yaml:"max_size"`
}

// HTTP configures the operator's HTTP listener: Prometheus metrics, health
// checks and the provisioning API. It is off until Listen is set.
type HTTP struct {
	// Listen is the address to serve on, host:port; empty: no listener.
	Listen string `yaml:"listen"`
	// Metrics serves /metrics (Prometheus). /health and /ready are always
	// served on the listener.
	Metrics bool `yaml:"metrics"`
	// Provisioning serves the provisioning API under /_msnbridge/provision/v1/.
	Provisioning bool `yaml:"provisioning"`
	// ProvisioningSecret is the bearer token the provisioning API demands.
	// Usually given as MSNBRIDGE_HTTP_PROVISIONING_SECRET.
	ProvisioningSecret string `yaml:"provisioning_secret"`
	// PublicURL is how XMPP users' clients reach this listener (directly or
	// through a reverse proxy), e.g. https://msn.example.org. When set, the
	// listener serves files from MSN under /media/ and the XMPP gateway
	// offers them as links there when the XMPP server has no HTTP upload
	// service (XEP-0363). Empty: no such links.
	PublicURL string `yaml:"public_url"`
}
