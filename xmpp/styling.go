package xmpp

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/msnbridge/msnbridge/bridge"
)

// MSN styles a whole message (one font, bold/italic/strike for all of it);
// XEP-0393 styles spans of text. Outgoing, each line of an MSN message is
// wrapped in the directives; incoming, only a body that is a single span
// from end to end becomes an MSN effect, and any other markup stays as
// the plain text it is.

// styleBody renders t's body with XEP-0393 directives for its effects.
func styleBody(t bridge.Text) string {
	open, close := "", ""
	if t.Bold {
		open, close = open+"*", "*"+close
	}
	if t.Italic {
		open, close = open+"_", "_"+close
	}
	if t.Strike {
		open, close = open+"~", "~"+close
	}
	if open == "" {
		return t.Body
	}
	lines := strings.Split(t.Body, "\n")
	for i, line := range lines {
		// A span may not start or end with whitespace, nor cross lines.
		trimmed := strings.TrimFunc(line, unicode.IsSpace)
		if trimmed == "" {
			continue
		}
		lead := line[:strings.Index(line, trimmed)]
		trail := line[len(lead)+len(trimmed):]
		lines[i] = lead + open + trimmed + close + trail
	}
	return strings.Join(lines, "\n")
}

// parseStyling reads a body that is entirely one styled span (possibly
// nested: *_text_*) into MSN effects.
func parseStyling(body string) bridge.Text {
	t := bridge.Text{Body: body}
	for {
		inner, d, ok := outerSpan(t.Body)
		if !ok {
			return t
		}
		switch d {
		case '*':
			if t.Bold {
				return t
			}
			t.Bold = true
		case '_':
			if t.Italic {
				return t
			}
			t.Italic = true
		case '~':
			if t.Strike {
				return t
			}
			t.Strike = true
		}
		t.Body = inner
	}
}

// outerSpan reports whether s is one span with directive d around inner.
func outerSpan(s string) (inner string, d byte, ok bool) {
	if len(s) < 3 {
		return "", 0, false
	}
	d = s[0]
	if (d != '*' && d != '_' && d != '~') || s[len(s)-1] != d {
		return "", 0, false
	}
	inner = s[1 : len(s)-1]
	// The directive inside would close the span early ("*a* and *b*"), and
	// spans do not cross lines or touch whitespace at their edges.
	if strings.IndexByte(inner, d) >= 0 || strings.ContainsAny(inner, "\r\n") {
		return "", 0, false
	}
	first, _ := utf8.DecodeRuneInString(inner)
	last, _ := utf8.DecodeLastRuneInString(inner)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return "", 0, false
	}
	return inner, d, true
}
