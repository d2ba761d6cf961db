package msnp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits on a MIME payload's header block. Real payloads carry fewer than
// twenty headers (the login profile is the longest) and no header line
// longer than the MSPAuth ticket; the limits only stop garbage.
const (
	MaxMessageHeaders    = 64
	MaxMessageHeaderLine = 4096
)

// ErrMalformedMessage is wrapped by every error ParseMessage returns.
var ErrMalformedMessage = errors.New("msnp: malformed MSG payload")

// MIMEHeader is one "Name: value" line of an MSG payload. Value is kept as
// it was on the wire (after the colon and its blank), parameters included.
type MIMEHeader struct {
	Name  string
	Value string
}

// Message is an MSG payload: an ordered MIME header block and a body.
// Headers keep their order and spelling so that Bytes renders a parsed
// payload back byte for byte.
type Message struct {
	Header []MIMEHeader
	Body   []byte
}

// ParseMessage splits an MSG payload into its headers and body. It accepts
// CRLF or bare LF line ends in the header block; a payload without the
// blank line is all headers. The body is kept as raw bytes (P2P bodies are
// binary); use Text for a valid UTF-8 string.
func ParseMessage(payload []byte) (*Message, error) {
	// A first pass finds the header block and counts its lines, so that the
	// headers are substrings of one string and one slice: three allocations
	// per message whatever its number of headers.
	end, lines, body := len(payload), 0, []byte(nil)
	for off := 0; off < len(payload); {
		i := bytes.IndexByte(payload[off:], '\n')
		if i < 0 {
			if len(payload)-off == 1 && payload[off] == '\r' {
				end = off // a lone CR at the end is a blank last line
			}
			lines++
			break
		}
		line := payload[off : off+i]
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			end, body = off, payload[off+i+1:]
			break
		}
		lines++
		off += i + 1
	}
	m := &Message{Body: body}
	if lines > 0 {
		m.Header = make([]MIMEHeader, 0, min(lines, MaxMessageHeaders))
	}
	rest := string(payload[:end])
	for rest != "" {
		i := strings.IndexByte(rest, '\n')
		var line string
		if i < 0 {
			line, rest = rest, ""
		} else {
			line, rest = rest[:i], rest[i+1:]
		}
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break
		}
		if len(line) > MaxMessageHeaderLine {
			return nil, fmt.Errorf("%w: header line of %d bytes, limit %d", ErrMalformedMessage, len(line), MaxMessageHeaderLine)
		}
		if len(m.Header) == MaxMessageHeaders {
			return nil, fmt.Errorf("%w: more than %d headers", ErrMalformedMessage, MaxMessageHeaders)
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return nil, fmt.Errorf("%w: header line %q has no name", ErrMalformedMessage, cut(line))
		}
		name := line[:colon]
		if strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: header name %q holds a blank", ErrMalformedMessage, cut(name))
		}
		value := line[colon+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		m.Header = append(m.Header, MIMEHeader{Name: name, Value: value})
	}
	return m, nil
}

// Get returns the value of the first header with this name, compared
// case-insensitively, or "".
func (m *Message) Get(name string) string {
	v, _ := m.Lookup(name)
	return v
}

// Lookup is Get that also reports whether the header is present.
func (m *Message) Lookup(name string) (string, bool) {
	for _, h := range m.Header {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// Set replaces the first header with this name, or appends one.
func (m *Message) Set(name, value string) {
	for i, h := range m.Header {
		if strings.EqualFold(h.Name, name) {
			m.Header[i].Value = value
			return
		}
	}
	m.Header = append(m.Header, MIMEHeader{Name: name, Value: value})
}

// Del removes every header with this name.
func (m *Message) Del(name string) {
	h := m.Header[:0]
	for _, x := range m.Header {
		if !strings.EqualFold(x.Name, name) {
			h = append(h, x)
		}
	}
	m.Header = h
}

// HeaderLen is the length in bytes of the rendered header block, the blank
// line included: len(m.Bytes()) - len(m.Body).
func (m *Message) HeaderLen() int {
	n := 2
	for _, h := range m.Header {
		n += len(h.Name) + 1 + 2
		if h.Value != "" {
			n += 1 + len(h.Value)
		}
	}
	return n
}

// Bytes renders the payload: "Name: value" lines ("Name:" when the value is
// empty, as the login profile has it), CRLF-terminated, a blank line, the
// body.
func (m *Message) Bytes() []byte {
	b := make([]byte, 0, m.HeaderLen()+len(m.Body))
	for _, h := range m.Header {
		b = append(b, h.Name...)
		b = append(b, ':')
		if h.Value != "" {
			b = append(b, ' ')
			b = append(b, h.Value...)
		}
		b = append(b, '\r', '\n')
	}
	b = append(b, '\r', '\n')
	return append(b, m.Body...)
}

// ContentType returns the media type of the Content-Type header, lower-cased
// and without parameters ("text/plain"), or "" when there is none.
func (m *Message) ContentType() string {
	ct := m.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// Text returns the body as UTF-8, each invalid byte sequence replaced by
// U+FFFD: peers' text is shown, not rejected.
func (m *Message) Text() string {
	return strings.ToValidUTF8(string(m.Body), "\uFFFD")
}

// Content types of switchboard payloads (FACTS.md §7).
const (
	ContentTypeText         = "text/plain"
	ContentTypeControl      = "text/x-msmsgscontrol"
	ContentTypeDatacast     = "text/x-msnmsgr-datacast"
	ContentTypeEmoticon     = "text/x-mms-emoticon"
	ContentTypeAnimEmoticon = "text/x-mms-animemoticon"
	ContentTypeP2P          = "application/x-msnmsgrp2p"
	ContentTypeInkGIF       = "image/gif"
	ContentTypeInkISF       = "application/x-ms-ink"
)

// MessageContent is what a switchboard payload means: one of *TextMessage,
// *TypingNotice, *Datacast, *EmoticonDeclaration, *P2PMessage, *InkMessage
// or *UnsupportedContent. Every payload classifies to exactly one of them;
// nothing is dropped silently.
type MessageContent interface {
	isMessageContent()
}

// TextMessage is an instant message.
type TextMessage struct {
	Text      string     // valid UTF-8
	Format    TextFormat // DefaultTextFormat when the header is absent
	HasFormat bool       // the payload carried X-MMS-IM-Format
	// P4Context is the per-message alternate sender name, if any.
	P4Context string
	// Emoticons are the custom emoticons declared just before this message;
	// Classify leaves it empty, a session fills it in.
	Emoticons []CustomEmoticon
}

// TypingNotice says that User is typing (or, with Recording, recording a
// voice clip).
type TypingNotice struct {
	User      string
	Recording bool
}

// Datacast IDs (FACTS.md §7.3).
const (
	DatacastNudge     = 1
	DatacastWink      = 2
	DatacastVoiceClip = 3
	DatacastAction    = 4
)

// Datacast is a text/x-msnmsgr-datacast payload: a nudge, wink, voice clip
// or action message. Fields keeps every body line's "Key: value" pair.
type Datacast struct {
	ID   int    // 0 when the ID line is missing or not a number
	Data string // the Data line (an MSNObject for winks and voice clips)
	// Fields holds all body lines in order, ID and Data included.
	Fields []MIMEHeader
}

// CustomEmoticon binds a shortcut typed in text to an MSNObject.
type CustomEmoticon struct {
	Shortcut  string
	MSNObject string // the <msnobj .../> XML as sent
}

// EmoticonDeclaration announces the custom emoticons of the next text.
type EmoticonDeclaration struct {
	Animated  bool
	Emoticons []CustomEmoticon
}

// P2PMessage is an MSNC1 P2P packet. Body is the 48-byte binary header,
// the data and the 4-byte footer, unparsed.
type P2PMessage struct {
	Src, Dest string
	Body      []byte
}

// InkMessage is handwriting, as a GIF or an ISF blob (base64 "base64:..."
// on the wire for ISF).
type InkMessage struct {
	ContentType string
	Body        []byte
}

// UnsupportedContent is any payload this package does not interpret; the
// bridge should tell the user something arrived that it cannot show.
type UnsupportedContent struct {
	ContentType string // as on the wire, parameters stripped, lower-cased
	Message     *Message
}

func (*TextMessage) isMessageContent()         {}
func (*TypingNotice) isMessageContent()        {}
func (*Datacast) isMessageContent()            {}
func (*EmoticonDeclaration) isMessageContent() {}
func (*P2PMessage) isMessageContent()          {}
func (*InkMessage) isMessageContent()          {}
func (*UnsupportedContent) isMessageContent()  {}

// Classify tells what the payload means. It never fails: a payload it
// cannot read is UnsupportedContent. A chunk of a chunked message should go
// through a ChunkAssembler first.
func (m *Message) Classify() MessageContent {
	switch ct := m.ContentType(); ct {
	case ContentTypeText:
		t := &TextMessage{Text: m.Text(), Format: DefaultTextFormat(), P4Context: validText(m.Get("P4-Context"))}
		if h, ok := m.Lookup("X-MMS-IM-Format"); ok {
			t.HasFormat = true
			t.Format, _ = ParseIMFormat(h) // tolerant: keep what parsed
		}
		return t
	case ContentTypeControl:
		if u, ok := m.Lookup("TypingUser"); ok {
			return &TypingNotice{User: validText(strings.TrimSpace(u))}
		}
		if u, ok := m.Lookup("RecordingUser"); ok {
			return &TypingNotice{User: validText(strings.TrimSpace(u)), Recording: true}
		}
		return &UnsupportedContent{ContentType: ct, Message: m}
	case ContentTypeDatacast:
		return parseDatacast(m.Text())
	case ContentTypeEmoticon, ContentTypeAnimEmoticon:
		return &EmoticonDeclaration{Animated: ct == ContentTypeAnimEmoticon, Emoticons: parseEmoticons(m.Text())}
	case ContentTypeP2P:
		return &P2PMessage{Src: m.Get("P2P-Src"), Dest: m.Get("P2P-Dest"), Body: m.Body}
	case ContentTypeInkGIF, ContentTypeInkISF:
		return &InkMessage{ContentType: ct, Body: m.Body}
	default:
		return &UnsupportedContent{ContentType: ct, Message: m}
	}
}

func parseDatacast(body string) *Datacast {
	d := &Datacast{}
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSuffix(line, "\r")
		k, v, ok := strings.Cut(line, ":")
		if !ok || len(d.Fields) == MaxMessageHeaders {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		d.Fields = append(d.Fields, MIMEHeader{Name: k, Value: v})
		switch {
		case strings.EqualFold(k, "ID") && d.ID == 0:
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				d.ID = n
			}
		case strings.EqualFold(k, "Data") && d.Data == "":
			d.Data = v
		}
	}
	return d
}

// maxEmoticons bounds one declaration; MSN clients send at most a handful.
const maxEmoticons = 64

func parseEmoticons(body string) []CustomEmoticon {
	f := strings.Split(body, "\t")
	var out []CustomEmoticon
	for i := 0; i+1 < len(f) && len(out) < maxEmoticons; i += 2 {
		sc, obj := f[i], strings.TrimSpace(f[i+1])
		if sc == "" || obj == "" {
			continue
		}
		out = append(out, CustomEmoticon{Shortcut: sc, MSNObject: obj})
	}
	return out
}

// NewTextMessage returns a text/plain message in UTF-8 with the format
// header, shaped like the transcripts' messages.
func NewTextMessage(text string, f TextFormat) *Message {
	return &Message{
		Header: []MIMEHeader{
			{"MIME-Version", "1.0"},
			{"Content-Type", "text/plain; charset=UTF-8"},
			{"X-MMS-IM-Format", f.Header()},
		},
		Body: []byte(text),
	}
}

// NewTypingMessage returns the typing notice for user (send it with
// AckNone every few seconds while the user types).
func NewTypingMessage(user string) *Message {
	return &Message{
		Header: []MIMEHeader{
			{"MIME-Version", "1.0"},
			{"Content-Type", ContentTypeControl},
			{"TypingUser", user},
		},
		Body: []byte("\r\n"),
	}
}

// NewDatacastMessage returns a datacast with this ID and, when data is not
// empty, a Data line.
func NewDatacastMessage(id int, data string) *Message {
	body := "ID: " + strconv.Itoa(id) + "\r\n"
	if data != "" {
		body += "Data: " + data + "\r\n"
	}
	return &Message{
		Header: []MIMEHeader{
			{"MIME-Version", "1.0"},
			{"Content-Type", ContentTypeDatacast},
		},
		Body: []byte(body + "\r\n"),
	}
}

// NewNudgeMessage returns a nudge, byte for byte as FACTS.md §7.3 has it.
func NewNudgeMessage() *Message { return NewDatacastMessage(DatacastNudge, "") }

// NewEmoticonMessage declares custom emoticons before the text using them.
func NewEmoticonMessage(animated bool, emoticons []CustomEmoticon) *Message {
	ct := ContentTypeEmoticon
	if animated {
		ct = ContentTypeAnimEmoticon
	}
	var b strings.Builder
	for _, e := range emoticons {
		b.WriteString(e.Shortcut)
		b.WriteByte('\t')
		b.WriteString(e.MSNObject)
		b.WriteByte('\t')
	}
	return &Message{
		Header: []MIMEHeader{
			{"MIME-Version", "1.0"},
			{"Content-Type", ct},
		},
		Body: []byte(b.String()),
	}
}

// Default ChunkAssembler limits. MSNPSharp cuts at 1400 bytes, so 64 chunks
// hold 89 KB of text: far beyond anything typed.
const (
	DefaultMaxChunks       = 64
	DefaultMaxChunkedBytes = 128 << 10
	DefaultMaxPendingChunk = 16
)

// ErrChunk is wrapped by the errors ChunkAssembler.Add returns for a chunk
// it refuses; the partial message is dropped.
var ErrChunk = errors.New("msnp: bad message chunk")

// ChunkAssembler reassembles chunked messages (Message-ID with Chunks: N on
// the first part and Chunk: i on the rest, FACTS.md §7.1). Memory is
// bounded by MaxPending partial messages of at most MaxBytes each; when a
// new message would exceed MaxPending the oldest partial one is dropped.
// It keeps no clock: the caller discards stale parts (Discard, Reset), for
// instance when the sender leaves the switchboard. Not safe for concurrent
// use; a switchboard's reader goroutine owns one.
type ChunkAssembler struct {
	MaxChunks  int // 0 means DefaultMaxChunks
	MaxBytes   int // 0 means DefaultMaxChunkedBytes
	MaxPending int // 0 means DefaultMaxPendingChunk

	pending []*partialMessage // oldest first
}

type partialMessage struct {
	sender, id string
	first      *Message
	parts      [][]byte
	have, size int
}

// Add takes one received payload from sender. A payload that is not a chunk
// comes straight back. A chunk returns nil until its message is complete,
// then the whole message: the first part's headers without Message-ID and
// Chunks, and the bodies concatenated in order.
func (a *ChunkAssembler) Add(sender string, m *Message) (*Message, error) {
	id, hasID := m.Lookup("Message-ID")
	nStr, isFirst := m.Lookup("Chunks")
	iStr, isLater := m.Lookup("Chunk")
	if !hasID || (!isFirst && !isLater) {
		return m, nil
	}
	maxChunks, maxBytes, maxPending := a.MaxChunks, a.MaxBytes, a.MaxPending
	if maxChunks <= 0 {
		maxChunks = DefaultMaxChunks
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxChunkedBytes
	}
	if maxPending <= 0 {
		maxPending = DefaultMaxPendingChunk
	}
	pi := a.find(sender, id)
	if isFirst {
		n, err := strconv.Atoi(strings.TrimSpace(nStr))
		if err != nil || n < 1 || n > maxChunks {
			a.drop(pi)
			return nil, fmt.Errorf("%w: Chunks: %q (limit %d)", ErrChunk, cut(nStr), maxChunks)
		}
		if pi >= 0 {
			a.drop(pi) // a restarted message replaces the old one
		}
		if len(m.Body) > maxBytes {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrChunk, len(m.Body), maxBytes)
		}
		if n == 1 {
			return unchunk(m, nil), nil
		}
		if len(a.pending) >= maxPending {
			a.drop(0)
		}
		p := &partialMessage{sender: sender, id: id, first: m, parts: make([][]byte, n), have: 1, size: len(m.Body)}
		a.pending = append(a.pending, p)
		return nil, nil
	}
	if pi < 0 {
		return nil, fmt.Errorf("%w: Chunk %q of unknown message %q", ErrChunk, cut(iStr), cut(id))
	}
	p := a.pending[pi]
	i, err := strconv.Atoi(strings.TrimSpace(iStr))
	if err != nil || i < 1 || i >= len(p.parts) || p.parts[i] != nil {
		a.drop(pi)
		return nil, fmt.Errorf("%w: Chunk: %q of %d", ErrChunk, cut(iStr), len(p.parts))
	}
	if p.size+len(m.Body) > maxBytes {
		a.drop(pi)
		return nil, fmt.Errorf("%w: message over %d bytes", ErrChunk, maxBytes)
	}
	p.parts[i] = m.Body
	if p.parts[i] == nil {
		p.parts[i] = []byte{}
	}
	p.have++
	p.size += len(m.Body)
	if p.have < len(p.parts) {
		return nil, nil
	}
	a.drop(pi)
	return unchunk(p.first, p.parts[1:]), nil
}

func unchunk(first *Message, rest [][]byte) *Message {
	out := &Message{Header: append([]MIMEHeader(nil), first.Header...)}
	out.Del("Message-ID")
	out.Del("Chunks")
	body := append([]byte(nil), first.Body...)
	for _, b := range rest {
		body = append(body, b...)
	}
	out.Body = body
	return out
}

func (a *ChunkAssembler) find(sender, id string) int {
	for i, p := range a.pending {
		if p.sender == sender && p.id == id {
			return i
		}
	}
	return -1
}

func (a *ChunkAssembler) drop(i int) {
	if i < 0 {
		return
	}
	copy(a.pending[i:], a.pending[i+1:])
	a.pending[len(a.pending)-1] = nil
	a.pending = a.pending[:len(a.pending)-1]
}

// Pending is the number of partial messages held.
func (a *ChunkAssembler) Pending() int { return len(a.pending) }

// Discard drops sender's partial messages (the sender left, or the caller
// decided they are stale).
func (a *ChunkAssembler) Discard(sender string) {
	for i := len(a.pending) - 1; i >= 0; i-- {
		if a.pending[i].sender == sender {
			a.drop(i)
		}
	}
}

// Reset drops every partial message.
func (a *ChunkAssembler) Reset() { a.pending = nil }
