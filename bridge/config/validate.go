package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Validate checks every value and returns all problems found as Problems,
// each pointing at the line (or environment variable) that set the value.
func (c *Config) Validate() error {
	v := validator{c: c}
	v.msn()
	v.matrix()
	v.xmpp()
	v.database()
	v.logging()
	v.bridge()
	v.http()
	return v.ps.err()
}

type validator struct {
	c  *Config
	ps Problems
}

func (v *validator) add(path, format string, args ...any) {
	p := Problem{Path: path, Msg: fmt.Sprintf(format, args...)}
	// Point at the key, or at the nearest enclosing key that was written.
	for q := path; q != ""; {
		if o, ok := v.c.origins[q]; ok {
			p.Line, p.Env = o.line, o.env
			break
		}
		i := strings.LastIndexAny(q, ".[")
		if i < 0 {
			break
		}
		q = q[:i]
	}
	v.ps = append(v.ps, p)
}

func (v *validator) required(path, value string) bool {
	if strings.TrimSpace(value) == "" {
		v.add(path, "required (or set %s)", EnvName(path))
		return false
	}
	return true
}

// hostPort checks a host:port; an empty host (every interface) is only
// allowed where the bridge listens.
func (v *validator) hostPort(path, value string, needHost bool) {
	if !v.required(path, value) {
		return
	}
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		v.add(path, "expected host:port, got %q", value)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.add(path, "port must be 1-65535, got %q", port)
	}
	if host == "" && needHost {
		v.add(path, "needs a host name before the port, got %q", value)
	}
}

func (v *validator) url(path, value string, required bool) {
	if value == "" {
		if required {
			v.required(path, value)
		}
		return
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(path, "expected an http:// or https:// URL, got %q", value)
	}
}

func (v *validator) msn() {
	m := v.c.MSN
	v.hostPort("msn.server", m.Server, true)
	v.url("msn.nexus_url", m.NexusURL, false)
	v.url("msn.login_url", m.LoginURL, false)
	v.url("msn.rst_url", m.RSTURL, false)
	v.url("msn.soap_base_url", m.SOAPBaseURL, false)
	if len(m.Protocols) == 0 {
		v.add("msn.protocols", "needs at least one protocol, e.g. [%s]", strings.Join(DefaultProtocols, ", "))
	}
	seen := map[string]bool{}
	for i, p := range m.Protocols {
		path := fmt.Sprintf("msn.protocols[%d]", i)
		name := p
		switch {
		case !slices.Contains(KnownProtocols, name):
			v.add(path, "unknown protocol %q; known: %s", p, strings.Join(KnownProtocols, ", "))
		case seen[name]:
			v.add(path, "%s listed twice", name)
		}
		seen[name] = true
	}
	// A Tweener login needs the nexus or a direct login URL; SSO needs RST.
	tweener, sso := false, false
	for name := range seen {
		n, _ := strconv.Atoi(strings.TrimPrefix(name, "MSNP"))
		if n >= 15 {
			sso = true
		} else if n > 0 {
			tweener = true
		}
	}
	if tweener && m.NexusURL == "" && m.LoginURL == "" {
		v.add("msn.nexus_url", "MSNP8-12 need nexus_url or login_url")
	}
	if sso {
		v.url("msn.rst_url", m.RSTURL, true)
		v.url("msn.soap_base_url", m.SOAPBaseURL, true)
	}
	c := m.Client
	for _, kv := range [][2]string{
		{"msn.client.locale_id", c.LocaleID}, {"msn.client.os_type", c.OSType},
		{"msn.client.os_version", c.OSVer}, {"msn.client.arch", c.Arch},
		{"msn.client.name", c.Name}, {"msn.client.version", c.Version},
		{"msn.client.brand", c.Brand},
	} {
		// CVR is space-separated: a value with a space would shift every
		// argument after it.
		if v.required(kv[0], kv[1]) && strings.ContainsAny(kv[1], " \t\r\n") {
			v.add(kv[0], "must not contain spaces")
		}
	}
	if m.DialTimeout <= 0 {
		v.add("msn.dial_timeout", "must be positive")
	}
}

// localpartChars are the characters allowed in a Matrix user localpart.
var localpartChars = regexp.MustCompile(`^[a-z0-9._=/+-]*$`)

func (v *validator) matrix() {
	m := v.c.Matrix
	if m.GhostTemplate != "" {
		pre, suf, ok := m.ghostTemplateParts()
		if !ok {
			v.add("matrix.ghost_template", `must contain "{{.}}" exactly once, e.g. "msn_{{.}}"`)
		} else if !localpartChars.MatchString(pre + suf) {
			v.add("matrix.ghost_template", "may only use a-z, 0-9 and ._=/+- around {{.}}")
		} else if pre == "" && suf == "" {
			v.add("matrix.ghost_template", "needs a prefix or suffix, or ghosts would take every user name")
		}
	}
	if m.BotLocalpart != "" && !localpartChars.MatchString(m.BotLocalpart) {
		v.add("matrix.bot_localpart", "may only use a-z, 0-9 and ._=/+-")
	}
	if m.Domain != "" && strings.ContainsAny(m.Domain, "@/ ") {
		v.add("matrix.domain", "expected a server name such as example.org, got %q", m.Domain)
	}
	v.url("matrix.homeserver_url", m.HomeserverURL, false)
	v.url("matrix.public_url", m.PublicURL, false)
	if m.Listen != "" {
		v.hostPort("matrix.listen", m.Listen, false)
	}
	if !m.Enabled {
		return
	}
	v.required("matrix.homeserver_url", m.HomeserverURL)
	v.required("matrix.domain", m.Domain)
	v.required("matrix.listen", m.Listen)
	v.required("matrix.public_url", m.PublicURL)
	v.required("matrix.id", m.ID)
	v.required("matrix.bot_localpart", m.BotLocalpart)
	v.required("matrix.as_token", m.ASToken)
	v.required("matrix.hs_token", m.HSToken)
	v.required("matrix.ghost_template", m.GhostTemplate)
}

func (v *validator) xmpp() {
	x := v.c.XMPP
	if x.Server != "" {
		v.hostPort("xmpp.server", x.Server, true)
	}
	if x.JID != "" && strings.ContainsAny(x.JID, "@/ ") {
		v.add("xmpp.jid", "expected a bare domain such as msn.example.org, got %q", x.JID)
	}
	if !x.Enabled {
		return
	}
	v.required("xmpp.jid", x.JID)
	v.required("xmpp.server", x.Server)
	v.required("xmpp.secret", x.Secret)
}

func (v *validator) database() {
	d := v.c.Database
	switch d.Type {
	case "sqlite3", "postgres":
	default:
		v.add("database.type", "expected sqlite3 or postgres, got %q", d.Type)
	}
	v.required("database.uri", d.URI)
	if d.MaxOpenConns < 0 {
		v.add("database.max_open_conns", "must not be negative")
	}
	if d.MaxIdleConns < 0 {
		v.add("database.max_idle_conns", "must not be negative")
	}
}

var logLevels = []string{"trace", "debug", "info", "warn", "error"}

func (v *validator) logging() {
	l := v.c.Logging
	if !slices.Contains(logLevels, l.Level) {
		v.add("logging.level", "expected one of %s, got %q", strings.Join(logLevels, ", "), l.Level)
	}
	if l.Format != "console" && l.Format != "json" {
		v.add("logging.format", "expected console or json, got %q", l.Format)
	}
	for _, name := range sortedKeys(l.Components) {
		path := "logging.components." + name
		if !slices.Contains(Components, name) {
			v.add(path, "unknown component; known: %s", strings.Join(Components, ", "))
		}
		if !slices.Contains(logLevels, l.Components[name]) {
			v.add(path, "expected one of %s, got %q", strings.Join(logLevels, ", "), l.Components[name])
		}
	}
}

var permissionLevels = []string{"admin", "user", "none"}

func (v *validator) bridge() {
	b := v.c.Bridge
	for _, who := range sortedKeys(b.Permissions) {
		if !slices.Contains(permissionLevels, b.Permissions[who]) {
			v.add("bridge.permissions."+who, "expected admin, user or none, got %q", b.Permissions[who])
		}
	}
	if b.EncryptionKey != "" {
		key, err := base64.StdEncoding.DecodeString(b.EncryptionKey)
		if err != nil || len(key) != 32 {
			// Never echo the key: it is a secret.
			v.add("bridge.encryption_key", "must be the base64 of 32 bytes (e.g. `openssl rand -base64 32`)")
		}
	}
	f := b.Files
	if f.MaxSize > 0 {
		v.required("bridge.files.dir", f.Dir)
		if f.Retention < time.Minute {
			v.add("bridge.files.retention", "must be at least 1m: frontends need time to fetch a file, got %s", f.Retention)
		}
	}
	if f.MaxSize < 0 {
		v.add("bridge.files.max_size", "must not be negative")
	}
	d := b.DisplayPictures
	if d.MaxSize < 0 || (d.Enabled && d.MaxSize == 0) {
		v.add("bridge.display_pictures.max_size", "must be positive when display pictures are enabled, e.g. 1MiB")
	}
	// Pictures are cached in the database and handed around whole.
	if d.MaxSize > MaxDisplayPictureSize {
		v.add("bridge.display_pictures.max_size", "must be at most %s (display pictures are kept in the database), got %s", MaxDisplayPictureSize, d.MaxSize)
	}
}

// MaxDisplayPictureSize bounds bridge.display_pictures.max_size. MSN
// clients send pictures of tens of kilobytes.
const MaxDisplayPictureSize = 16 * MiB

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// MinSecretLength is the shortest provisioning secret accepted: it is the
// only thing between the network and every user's MSN login.
const MinSecretLength = 16

func (v *validator) http() {
	h := v.c.HTTP
	if h.Listen != "" {
		v.hostPort("http.listen", h.Listen, false)
	}
	v.url("http.public_url", h.PublicURL, false)
	if h.ProvisioningSecret != "" && len(h.ProvisioningSecret) < MinSecretLength {
		// Never echo the secret.
		v.add("http.provisioning_secret", "must be at least %d characters (e.g. `openssl rand -hex 32`)", MinSecretLength)
	}
	if !h.Provisioning {
		return
	}
	if h.Listen == "" {
		v.add("http.provisioning", "needs http.listen: the API is served on that listener (or set %s)", EnvName("http.listen"))
	}
	v.required("http.provisioning_secret", h.ProvisioningSecret)
}
