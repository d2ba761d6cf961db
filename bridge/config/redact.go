package config

import (
	"encoding/json"
	"net/url"
	"regexp"

	"github.com/rs/zerolog"
)

// RedactedText replaces every non-empty secret with this.
const RedactedText = "REDACTED"

// Redacted returns a copy of c fit for logs: the appservice tokens, the
// component secret, the encryption key and any password in the database URI
// are replaced by "REDACTED".
func (c Config) Redacted() Config {
	r := c
	r.origins = nil
	redact(&r.Matrix.ASToken)
	redact(&r.Matrix.HSToken)
	redact(&r.XMPP.Secret)
	redact(&r.Bridge.EncryptionKey)
	redact(&r.HTTP.ProvisioningSecret)
	r.Database.URI = RedactURI(r.Database.URI)
	// Copy the maps so that the caller's config is never aliased.
	r.MSN.Protocols = append([]string(nil), c.MSN.Protocols...)
	r.Logging.Components = copyMap(c.Logging.Components)
	r.Bridge.Permissions = copyMap(c.Bridge.Permissions)
	return r
}

func redact(s *string) {
	if *s != "" {
		*s = RedactedText
	}
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// keywordPassword matches password=... in a key/value connection string
// (postgres "host=x password=y"), quoted or not.
var keywordPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)`)

// RedactURI hides the password of a database URI: the userinfo password of
// a URL (postgres://user:pw@host/db) and password=... parameters, both in
// key/value strings and in query strings.
func RedactURI(uri string) string {
	if u, err := url.Parse(uri); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), RedactedText)
			uri = u.String()
		}
	}
	return keywordPassword.ReplaceAllString(uri, "${1}"+RedactedText)
}

// String shows the configuration as JSON with its secrets redacted, so that
// printing a Config with %v cannot leak them.
func (c Config) String() string {
	b, err := json.Marshal(c)
	if err != nil {
		return "config: " + err.Error()
	}
	return string(b)
}

// plainConfig has Config's fields without its methods, so that MarshalJSON
// does not call itself.
type plainConfig Config

// MarshalJSON encodes the redacted configuration: logging a Config with
// zerolog's Interface, or encoding it anywhere, cannot leak secrets.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(plainConfig(c.Redacted()))
}

// MarshalZerologObject logs the redacted configuration, for
// log.Info().Object("config", cfg).
func (c Config) MarshalZerologObject(e *zerolog.Event) {
	b, err := c.MarshalJSON()
	if err != nil {
		e.Err(err)
		return
	}
	e.RawJSON("settings", b)
}
