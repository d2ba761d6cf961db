package bridge

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/msnbridge/msnbridge/msnp"
)

// statusToMSN and statusFromMSN translate between the core's status names
// and MSNP's three-letter codes.
var statusToMSN = map[Status]msnp.Status{
	StatusOnline:    msnp.StatusOnline,
	StatusBusy:      msnp.StatusBusy,
	StatusIdle:      msnp.StatusIdle,
	StatusBRB:       msnp.StatusBeRightBack,
	StatusAway:      msnp.StatusAway,
	StatusPhone:     msnp.StatusOnThePhone,
	StatusLunch:     msnp.StatusOutToLunch,
	StatusInvisible: msnp.StatusHidden,
}

func statusFromMSN(s msnp.Status) Status {
	for k, v := range statusToMSN {
		if v == s {
			return k
		}
	}
	return StatusOffline
}

// ParseStatus reads a status name as users type it ("online", "busy",
// "away", "brb", "phone", "lunch", "idle", "invisible").
func ParseStatus(s string) (Status, bool) {
	st := Status(strings.ToLower(strings.TrimSpace(s)))
	if st == "appear-offline" || st == "hidden" {
		st = StatusInvisible
	}
	_, ok := statusToMSN[st]
	return st, ok
}

// contactFromMSN converts msnp's view of a contact.
func contactFromMSN(c msnp.Contact) Contact {
	return Contact{
		Passport:        c.Passport,
		FriendlyName:    cleanText(c.FriendlyName, 387),
		PersonalMessage: cleanText(c.PersonalMessage, 512),
		Status:          statusFromMSN(c.Status),
		OnContactList:   c.Lists&msnp.FL != 0,
		Blocked:         c.Lists&msnp.BL != 0,
		Pending:         c.Lists&msnp.PL != 0,
		Groups:          append([]string(nil), c.Groups...),
	}
}

// textFromMSN converts a received MSN text and its format.
func textFromMSN(body string, f msnp.TextFormat) Text {
	t := Text{
		Body:      cleanBody(body),
		Font:      cleanText(f.Font, 64),
		Bold:      f.Bold,
		Italic:    f.Italic,
		Underline: f.Underline,
		Strike:    f.Strike,
	}
	if c := f.Color.HTML(); c != "#000000" {
		t.Color = c
	}
	return t
}

// formatToMSN gives the MSN format for an outgoing Text.
func formatToMSN(t Text) msnp.TextFormat {
	f := msnp.DefaultTextFormat()
	if t.Font != "" {
		f.Font = t.Font
	}
	f.Bold, f.Italic, f.Underline, f.Strike = t.Bold, t.Italic, t.Underline, t.Strike
	if c, ok := parseHTMLColor(t.Color); ok {
		f.Color = c
	}
	return f
}

func parseHTMLColor(s string) (msnp.RGB, bool) {
	if len(s) != 7 || s[0] != '#' {
		return msnp.RGB{}, false
	}
	var v [3]byte
	for i := 0; i < 3; i++ {
		hi, ok1 := hexVal(s[1+2*i])
		lo, ok2 := hexVal(s[2+2*i])
		if !ok1 || !ok2 {
			return msnp.RGB{}, false
		}
		v[i] = hi<<4 | lo
	}
	return msnp.RGB{R: v[0], G: v[1], B: v[2]}, true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// cleanText makes a one-line display string safe to show: valid UTF-8, no
// control or formatting characters that could spoof other text, at most
// max runes. Markup is not touched here: each frontend escapes for its own
// format.
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n >= max {
			break
		}
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			r = ' '
		case unicode.IsControl(r), isBidiOverride(r):
			continue
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// cleanBody keeps line breaks but drops other control characters.
func cleanBody(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

func isBidiOverride(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}
