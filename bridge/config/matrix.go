package config

import (
	"regexp"
	"strings"
)

// ghostPlaceholder stands for the escaped passport in GhostTemplate.
const ghostPlaceholder = "{{.}}"

// ghostTemplateParts splits GhostTemplate around its single placeholder.
func (m Matrix) ghostTemplateParts() (prefix, suffix string, ok bool) {
	if strings.Count(m.GhostTemplate, ghostPlaceholder) != 1 {
		return "", "", false
	}
	prefix, suffix, _ = strings.Cut(m.GhostTemplate, ghostPlaceholder)
	return prefix, suffix, true
}

// GhostLocalpart makes a ghost's localpart from an already escaped passport
// (the matrix frontend owns the escaping).
func (m Matrix) GhostLocalpart(escapedPassport string) string {
	return strings.Replace(m.GhostTemplate, ghostPlaceholder, escapedPassport, 1)
}

// GhostUserRegex is the appservice users namespace for ghosts, e.g.
// `@msn_.*:example\.org`.
func (m Matrix) GhostUserRegex() string {
	pre, suf, _ := m.ghostTemplateParts()
	return "@" + regexp.QuoteMeta(pre) + ".*" + regexp.QuoteMeta(suf) + ":" + regexp.QuoteMeta(m.Domain)
}

// BotUserID is the bridge bot's Matrix user ID.
func (m Matrix) BotUserID() string {
	return "@" + m.BotLocalpart + ":" + m.Domain
}
