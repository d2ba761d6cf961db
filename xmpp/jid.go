package xmpp

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// Contact JIDs are the MSN passport, lower-cased and escaped per XEP-0106,
// as the localpart at the gateway's domain: alice@hotmail.com becomes
// alice\40hotmail.com@msn.example.org. MSN passports are case-insensitive,
// so lower-casing loses nothing; everything else round-trips exactly.

// maxPassportLen bounds a passport; MSN itself allows far less, and a JID
// localpart may not exceed 1023 bytes after escaping (3 bytes per rune at worst).
const maxPassportLen = 320

var (
	errNotContactJID = errors.New("not a contact JID of this gateway")
	errBadPassport   = errors.New("passport cannot be written as a JID")
)

// NormalizePassport is the form the gateway keeps passports in.
func NormalizePassport(passport string) string { return strings.ToLower(passport) }

// ContactJID returns the JID standing for an MSN contact at domain.
func ContactJID(domain jid.JID, passport string) (jid.JID, error) {
	p := NormalizePassport(passport)
	if p == "" || len(p) > maxPassportLen || !utf8.ValidString(p) {
		return jid.JID{}, fmt.Errorf("%w: %q", errBadPassport, passport)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return jid.JID{}, fmt.Errorf("%w: control character in %q", errBadPassport, passport)
		}
	}
	j, err := jid.New(escapeLocal(p), domain.Domainpart(), "")
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %q: %v", errBadPassport, passport, err)
	}
	// PRECIS may map some runes (width, case folding beyond ToLower); a JID
	// that does not lead back to the same passport would mix contacts up.
	if back := unescapeLocal(j.Localpart()); back != p {
		return jid.JID{}, fmt.Errorf("%w: %q does not survive JID preparation", errBadPassport, passport)
	}
	return j, nil
}

// PassportOf returns the passport a contact JID at domain stands for. Only
// the canonical escaped form is accepted, so each contact has exactly one JID.
func PassportOf(domain, j jid.JID) (string, error) {
	if j.Domainpart() != domain.Domainpart() || j.Localpart() == "" {
		return "", fmt.Errorf("%w: %s", errNotContactJID, j)
	}
	p := unescapeLocal(j.Localpart())
	canonical, err := ContactJID(domain, p)
	if err != nil {
		return "", err
	}
	if !canonical.Equal(j.Bare()) {
		return "", fmt.Errorf("%w: %s is not in canonical form (use %s)", errNotContactJID, j, canonical)
	}
	return p, nil
}

// escapeLocal applies XEP-0106 escaping. mellium's jid.Escape mishandles
// non-ASCII input (it panics), so the gateway has its own. A backslash is
// always escaped, which keeps the mapping reversible and canonical.
func escapeLocal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(escapable, c) >= 0 {
			b.WriteByte('\\')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// unescapeLocal reverses escapeLocal; a backslash not starting one of the
// ten XEP-0106 sequences stays as it is.
func unescapeLocal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+2 < len(s) {
			if c, ok := unhexPair(s[i+1], s[i+2]); ok && strings.IndexByte(escapable, c) >= 0 {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

const (
	escapable = ` "&'/:<>@\`
	hexDigits = "0123456789abcdef"
)

// unhexPair decodes two lower-case hex digits (XEP-0106 sequences are
// lower-case; PRECIS lower-cases localparts anyway).
func unhexPair(hi, lo byte) (byte, bool) {
	h := strings.IndexByte(hexDigits, hi)
	l := strings.IndexByte(hexDigits, lo)
	if h < 0 || l < 0 {
		return 0, false
	}
	return byte(h<<4 | l), true
}

// parseBare parses a user's bare JID.
func parseBare(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, err
	}
	return j.Bare(), nil
}
