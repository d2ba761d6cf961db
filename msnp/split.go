package msnp

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// SplitText cuts body into parts that each fit, with headersLen bytes of
// headers, into a max-byte MSG payload (use SwitchboardMaxMessage). It
// cuts on UTF-8 character boundaries, preferring just after a newline,
// then after a blank, when one lies in the second half of a part. The
// parts concatenate to body; none is empty; an empty body gives none. An
// invalid byte in body counts as one character, so the parts are valid
// UTF-8 exactly when body is.
func SplitText(headersLen int, body string, max int) ([]string, error) {
	budget := max - headersLen
	if budget < utf8.UTFMax {
		return nil, fmt.Errorf("msnp: %d bytes of headers leave no room for text in a %d-byte message", headersLen, max)
	}
	var parts []string
	for len(body) > 0 {
		if len(body) <= budget {
			parts = append(parts, body)
			break
		}
		n := cutPoint(body, budget)
		parts = append(parts, body[:n])
		body = body[n:]
	}
	return parts, nil
}

// cutPoint returns where to end the next part: 0 < n <= budget < len(s).
func cutPoint(s string, budget int) int {
	window := s[:budget]
	for _, sep := range []string{"\n", " "} {
		if i := strings.LastIndex(window, sep); i >= budget/2 {
			return i + 1
		}
	}
	// Back up to the start of the character that straddles the budget. Go
	// at most UTFMax-1 bytes: an invalid run of continuation bytes is cut
	// anywhere, each of its bytes being a "character" of its own.
	n := budget
	for k := 0; k < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(s[n]); k++ {
		n--
	}
	if utf8.RuneStart(s[n]) && n > 0 {
		return n
	}
	return budget
}

// TextMessages renders text as one or more complete text/plain payloads
// in format f, each at most max bytes (SwitchboardMaxMessage unless the
// caller knows better). It is NewTextMessage(text, f).Split(max).
func TextMessages(text string, f TextFormat, max int) ([][]byte, error) {
	return NewTextMessage(text, f).Split(max)
}

// Split renders m as payloads of at most max bytes each: m itself when it
// fits, else copies of its headers (P4-Context and the format included, so
// each part shows alone) around consecutive pieces of its body, cut with
// SplitText. The body must be text; a binary body would be cut anywhere.
func (m *Message) Split(max int) ([][]byte, error) {
	hl := m.HeaderLen()
	if hl+len(m.Body) <= max {
		return [][]byte{m.Bytes()}, nil
	}
	parts, err := SplitText(hl, string(m.Body), max)
	if err != nil {
		return nil, err
	}
	part := &Message{Header: m.Header}
	out := make([][]byte, len(parts))
	for i, p := range parts {
		part.Body = []byte(p)
		out[i] = part.Bytes()
	}
	return out, nil
}
