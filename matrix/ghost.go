package matrix

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"maunium.net/go/mautrix/id"
)

// Ghost users stand for MSN contacts. Their localparts carry the passport
// through a reversible escaping, so the bridge needs no table to map a ghost
// back to its contact and two passports never share a ghost.
//
// The escaping keeps a-z, 0-9, '.', '-' and '/' as they are; writes '_' as
// "__" and an upper-case letter X as "_x"; and writes every other byte
// (including '=' and each byte of a non-ASCII character) as "=xx" in
// lower-case hex. The result uses only a-z0-9._=-/, which every homeserver
// accepts in a localpart. Unescaping is strict: it accepts exactly what
// EscapePassport produces, so one ghost never decodes to a passport whose
// ghost is a different ID.

// maxPassportLen bounds passports: MSN allows 129 bytes; the escaped form
// may triple that and Matrix IDs must stay under 255 bytes.
const maxPassportLen = 129

// ErrNotGhost says a Matrix ID is not one of the bridge's ghosts.
var ErrNotGhost = errors.New("not a ghost of this bridge")

func keptAsIs(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '.' || b == '-' || b == '/'
}

// EscapePassport turns a passport into the localpart fragment of its ghost.
func EscapePassport(passport string) string {
	var sb strings.Builder
	sb.Grow(len(passport) * 2)
	for i := 0; i < len(passport); i++ {
		b := passport[i]
		switch {
		case keptAsIs(b):
			sb.WriteByte(b)
		case b == '_':
			sb.WriteString("__")
		case b >= 'A' && b <= 'Z':
			sb.WriteByte('_')
			sb.WriteByte(b + ('a' - 'A'))
		default:
			fmt.Fprintf(&sb, "=%02x", b)
		}
	}
	return sb.String()
}

// UnescapePassport reverses EscapePassport, refusing anything it would not
// have produced.
func UnescapePassport(escaped string) (string, error) {
	out := make([]byte, 0, len(escaped))
	for i := 0; i < len(escaped); i++ {
		b := escaped[i]
		switch {
		case keptAsIs(b):
			out = append(out, b)
		case b == '_':
			if i+1 >= len(escaped) {
				return "", fmt.Errorf("dangling '_' at the end of %q", escaped)
			}
			n := escaped[i+1]
			switch {
			case n == '_':
				out = append(out, '_')
			case n >= 'a' && n <= 'z':
				out = append(out, n-('a'-'A'))
			default:
				return "", fmt.Errorf("invalid escape _%c in %q", n, escaped)
			}
			i++
		case b == '=':
			if i+2 >= len(escaped) {
				return "", fmt.Errorf("truncated =xx escape in %q", escaped)
			}
			v, ok := lowerHexByte(escaped[i+1], escaped[i+2])
			if !ok {
				return "", fmt.Errorf("invalid =xx escape in %q", escaped)
			}
			if keptAsIs(v) || v == '_' || v >= 'A' && v <= 'Z' {
				return "", fmt.Errorf("needless escape =%02x in %q", v, escaped)
			}
			out = append(out, v)
			i += 2
		default:
			return "", fmt.Errorf("character %q cannot appear in a ghost localpart", b)
		}
	}
	return string(out), nil
}

func lowerHexByte(hi, lo byte) (byte, bool) {
	h, ok1 := hexVal(hi)
	l, ok2 := hexVal(lo)
	return h<<4 | l, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// ghostNamer maps passports to ghost MXIDs and back for one template and
// homeserver domain.
type ghostNamer struct {
	prefix, suffix string // around the escaped passport in the localpart
	domain         string
}

const defaultGhostTemplate = "msn_{{.}}"

func newGhostNamer(template, domain string) (ghostNamer, error) {
	if template == "" {
		template = defaultGhostTemplate
	}
	prefix, suffix, ok := strings.Cut(template, "{{.}}")
	if !ok || strings.Contains(suffix, "{{.}}") {
		return ghostNamer{}, fmt.Errorf("ghost_template %q must contain {{.}} exactly once", template)
	}
	if prefix == "" && suffix == "" {
		return ghostNamer{}, fmt.Errorf("ghost_template %q needs a fixed prefix or suffix to tell ghosts from people", template)
	}
	for _, part := range []string{prefix, suffix} {
		for i := 0; i < len(part); i++ {
			if !keptAsIs(part[i]) && part[i] != '_' && part[i] != '=' {
				return ghostNamer{}, fmt.Errorf("ghost_template %q: %q is not allowed in a localpart", template, part[i])
			}
		}
	}
	if domain == "" {
		return ghostNamer{}, errors.New("matrix domain is empty")
	}
	return ghostNamer{prefix: prefix, suffix: suffix, domain: domain}, nil
}

// GhostID is the Matrix ID of passport's ghost.
func (g ghostNamer) GhostID(passport string) id.UserID {
	return id.NewUserID(g.prefix+EscapePassport(passport)+g.suffix, g.domain)
}

// PassportFromGhost returns the passport a ghost stands for, or ErrNotGhost.
func (g ghostNamer) PassportFromGhost(mxid id.UserID) (string, error) {
	localpart, domain, err := mxid.Parse()
	if err != nil || domain != g.domain {
		return "", ErrNotGhost
	}
	if len(localpart) <= len(g.prefix)+len(g.suffix) ||
		!strings.HasPrefix(localpart, g.prefix) || !strings.HasSuffix(localpart, g.suffix) {
		return "", ErrNotGhost
	}
	escaped := localpart[len(g.prefix) : len(localpart)-len(g.suffix)]
	passport, err := UnescapePassport(escaped)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotGhost, err)
	}
	if len(passport) > maxPassportLen {
		return "", fmt.Errorf("%w: passport longer than %d bytes", ErrNotGhost, maxPassportLen)
	}
	return passport, nil
}

// userRegex is the registration namespace regex matching every ghost.
func (g ghostNamer) userRegex() string {
	return "^@" + regexp.QuoteMeta(g.prefix) + "[a-z0-9._=/-]+" + regexp.QuoteMeta(g.suffix) +
		":" + regexp.QuoteMeta(g.domain) + "$"
}

// maxDisplayNameRunes bounds ghost display names; Matrix allows 256 bytes
// of profile and MSN friendly names can be 387 bytes URL-encoded.
const maxDisplayNameRunes = 100

// Markup that MSN users put in friendly names: HTML-looking tags,
// Messenger Plus! BBCode ([b], [c=4], [/a]) and its "·$4" style colour
// codes. None of it means anything in a Matrix display name.
var (
	nameTagRe      = regexp.MustCompile(`</?[a-zA-Z][a-zA-Z0-9]*(\s[^<>]*)?/?>`)
	nameBBCodeRe   = regexp.MustCompile(`(?i)\[/?(b|i|u|s|c|a)(=[^\]]{0,16})?\]`)
	namePlusCodeRe = regexp.MustCompile(`·(\$(#[0-9a-fA-F]{6}|\d{1,2})?(,(#[0-9a-fA-F]{6}|\d{1,2}))?|[#&'@0])`)
)

// SanitizeDisplayName makes an MSN friendly name fit to show as a Matrix
// display name: markup (tags, Messenger Plus! codes) removed, control and
// formatting characters removed, whitespace collapsed and the length
// bounded. An empty result falls back to fallback.
func SanitizeDisplayName(name, fallback string) string {
	name = nameTagRe.ReplaceAllString(name, "")
	name = nameBBCodeRe.ReplaceAllString(name, "")
	name = namePlusCodeRe.ReplaceAllString(name, "")
	var sb strings.Builder
	space := false
	n := 0
	for _, r := range name {
		if r == unicode.ReplacementChar || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			if r == '\n' || r == '\t' || r == '\r' {
				space = sb.Len() > 0
			}
			continue
		}
		if unicode.IsSpace(r) {
			space = sb.Len() > 0
			continue
		}
		if n >= maxDisplayNameRunes {
			break
		}
		if space {
			sb.WriteByte(' ')
			n++
			space = false
		}
		sb.WriteRune(r)
		n++
	}
	out := strings.TrimSpace(sb.String())
	if out == "" {
		return fallback
	}
	return out
}
