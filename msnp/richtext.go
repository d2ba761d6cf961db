package msnp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RGB is a colour as red, green and blue bytes.
type RGB struct{ R, G, B uint8 }

// HTML renders the colour as "#rrggbb".
func (c RGB) HTML() string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// TextFormat is the font and style of a text message, carried in its
// X-MMS-IM-Format header (FACTS.md §7.1).
type TextFormat struct {
	Font                            string
	Bold, Italic, Underline, Strike bool
	Color                           RGB
	Charset                         uint8 // CS, a Windows charset code (hex on the wire)
	PitchFamily                     uint8 // PF, Windows pitch and family (hex on the wire)
	RightToLeft                     bool
}

// DefaultTextFormat is what a message without the header is shown with,
// and what the transcripts' clients send: Arial, black, ANSI charset,
// variable-pitch Swiss family.
func DefaultTextFormat() TextFormat {
	return TextFormat{Font: "Arial", PitchFamily: 0x22}
}

// ErrBadIMFormat is wrapped by ParseIMFormat's errors.
var ErrBadIMFormat = errors.New("msnp: bad X-MMS-IM-Format")

// ParseIMFormat reads an X-MMS-IM-Format header value. It is tolerant, as
// peers are: unknown keys are ignored, missing ones keep the default
// (DefaultTextFormat with an empty font), and an unreadable value of a
// known key leaves that field at its default. The error reports the first
// unreadable value; the returned format is usable either way.
func ParseIMFormat(header string) (TextFormat, error) {
	f := TextFormat{}
	f.PitchFamily = DefaultTextFormat().PitchFamily
	var firstErr error
	bad := func(k, v string) {
		if firstErr == nil {
			firstErr = fmt.Errorf("%w: %s=%q", ErrBadIMFormat, k, cut(v))
		}
	}
	for _, field := range strings.Split(header, ";") {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			if strings.TrimSpace(field) != "" {
				bad(strings.TrimSpace(field), "")
			}
			continue
		}
		k, v = strings.ToUpper(strings.TrimSpace(k)), strings.TrimSpace(v)
		if v == "" && k != "FN" {
			continue // "CO=" from a sloppy client means "the default"
		}
		switch k {
		case "FN":
			f.Font = validText(Unescape(v))
		case "EF":
			for _, c := range strings.ToUpper(v) {
				switch c {
				case 'B':
					f.Bold = true
				case 'I':
					f.Italic = true
				case 'U':
					f.Underline = true
				case 'S':
					f.Strike = true
				}
			}
		case "CO":
			n, err := strconv.ParseUint(v, 16, 32)
			if err != nil || n > 0xffffff {
				bad(k, v)
				continue
			}
			// BGR: the low byte is red.
			f.Color = RGB{R: uint8(n), G: uint8(n >> 8), B: uint8(n >> 16)}
		case "CS":
			n, err := strconv.ParseUint(v, 16, 8)
			if err != nil {
				bad(k, v)
				continue
			}
			f.Charset = uint8(n)
		case "PF":
			n, err := strconv.ParseUint(v, 16, 8)
			if err != nil {
				bad(k, v)
				continue
			}
			f.PitchFamily = uint8(n)
		case "RL":
			f.RightToLeft = v == "1"
		}
	}
	return f, firstErr
}

// Header renders the format as an X-MMS-IM-Format value:
// "FN=Segoe%20UI; EF=BI; CO=ff0000; CS=0; PF=22", plus "; RL=1" for
// right-to-left text. The colour is BGR hex without leading zeros.
func (f TextFormat) Header() string {
	var b strings.Builder
	b.WriteString("FN=")
	b.WriteString(escapeFont(f.Font))
	b.WriteString("; EF=")
	if f.Bold {
		b.WriteByte('B')
	}
	if f.Italic {
		b.WriteByte('I')
	}
	if f.Underline {
		b.WriteByte('U')
	}
	if f.Strike {
		b.WriteByte('S')
	}
	b.WriteString("; CO=")
	b.WriteString(strconv.FormatUint(uint64(f.Color.B)<<16|uint64(f.Color.G)<<8|uint64(f.Color.R), 16))
	b.WriteString("; CS=")
	b.WriteString(strconv.FormatUint(uint64(f.Charset), 16))
	b.WriteString("; PF=")
	b.WriteString(strconv.FormatUint(uint64(f.PitchFamily), 16))
	if f.RightToLeft {
		b.WriteString("; RL=1")
	}
	return b.String()
}

// escapeFont percent-encodes a font name like MSN clients do (spaces as
// %20, non-ASCII as UTF-8 bytes), and also the header's own separators.
func escapeFont(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) || c == ';' || c == '=' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
