package msnp

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Payloads copied from transcripts/twn_msnp12.txt, sso_msnp18.txt and
// misc.txt, and the shapes of FACTS.md §7.
var transcriptPayloads = []string{
	"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Arial; EF=; CO=0; CS=0; PF=22\r\n\r\nHello Bob via TWN/MSNP12",
	"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Arial; EF=; CO=0; CS=0; PF=22\r\n\r\nHi Alice (MSNP18)",
	"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinitialmdatanotification; charset=UTF-8\r\n\r\nMail-Data: <MD><E><I>0</I><IU>0</IU><O>0</O><OU>0</OU></E><Q><QTM>409600</QTM><QNM>204800</QNM></Q></MD>\r\n",
	"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsprofile; charset=UTF-8\r\nLoginTime: 1795546065\r\nEmailEnabled: 0\r\npreferredEmail:\r\ncountry:\r\nKid: 0\r\n\r\n",
	"MIME-Version: 1.0\r\nContent-Type: text/x-msnmsgr-datacast\r\n\r\nID: 1\r\n\r\n",
	"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: me@x\r\n\r\n\r\n",
}

func TestParseMessageRoundTrip(t *testing.T) {
	for _, p := range transcriptPayloads {
		m, err := ParseMessage([]byte(p))
		if err != nil {
			t.Fatalf("ParseMessage(%q): %v", p, err)
		}
		if got := string(m.Bytes()); got != p {
			t.Errorf("round trip:\n got %q\nwant %q", got, p)
		}
		if m.HeaderLen() != len(p)-len(m.Body) {
			t.Errorf("HeaderLen %d, want %d", m.HeaderLen(), len(p)-len(m.Body))
		}
	}
}

func TestMessageHeaders(t *testing.T) {
	m, err := ParseMessage([]byte(transcriptPayloads[0]))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Get("content-TYPE"); got != "text/plain; charset=UTF-8" {
		t.Errorf("Get = %q", got)
	}
	if m.ContentType() != "text/plain" {
		t.Errorf("ContentType = %q", m.ContentType())
	}
	if _, ok := m.Lookup("P4-Context"); ok {
		t.Error("Lookup found an absent header")
	}
	m.Set("x-mms-im-format", "FN=X")
	if m.Header[2].Name != "X-MMS-IM-Format" || m.Header[2].Value != "FN=X" {
		t.Errorf("Set did not replace in place: %+v", m.Header)
	}
	m.Set("P4-Context", "Carol")
	m.Del("mime-version")
	if len(m.Header) != 3 || m.Header[0].Name != "Content-Type" || m.Header[2].Name != "P4-Context" {
		t.Errorf("headers after Set/Del: %+v", m.Header)
	}
}

func TestParseMessageLenient(t *testing.T) {
	m, err := ParseMessage([]byte("MIME-Version: 1.0\nContent-Type: text/plain\n\nline1\r\nline2"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Get("Content-Type") != "text/plain" || string(m.Body) != "line1\r\nline2" {
		t.Errorf("LF-only payload: %+v %q", m.Header, m.Body)
	}
	m, err = ParseMessage([]byte("MIME-Version: 1.0\r\nContent-Type: text/plain"))
	if err != nil || len(m.Header) != 2 || m.Body != nil {
		t.Errorf("headers only: %+v, %v", m, err)
	}
	m, err = ParseMessage(nil)
	if err != nil || len(m.Header) != 0 {
		t.Errorf("empty payload: %+v, %v", m, err)
	}
}

func TestParseMessageGarbage(t *testing.T) {
	cases := map[string]string{
		"no colon":     "hello world\r\n\r\nbody",
		"empty name":   ": value\r\n\r\n",
		"blank name":   "Content Type: x\r\n\r\n",
		"long line":    "X: " + strings.Repeat("a", MaxMessageHeaderLine) + "\r\n\r\n",
		"many headers": strings.Repeat("X: y\r\n", MaxMessageHeaders+1) + "\r\n",
	}
	for name, p := range cases {
		if _, err := ParseMessage([]byte(p)); !errors.Is(err, ErrMalformedMessage) {
			t.Errorf("%s: err = %v, want ErrMalformedMessage", name, err)
		}
	}
	if _, err := ParseMessage([]byte(strings.Repeat("X: y\r\n", MaxMessageHeaders) + "\r\n")); err != nil {
		t.Errorf("exactly MaxMessageHeaders headers: %v", err)
	}
}

func classify(t *testing.T, p string) MessageContent {
	t.Helper()
	m, err := ParseMessage([]byte(p))
	if err != nil {
		t.Fatalf("ParseMessage(%q): %v", p, err)
	}
	return m.Classify()
}

func TestClassifyText(t *testing.T) {
	c := classify(t, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Segoe%20UI; EF=BI; CO=ff0000; CS=0; PF=22\r\nP4-Context: Carol\r\n\r\nHi \xff there")
	tm, ok := c.(*TextMessage)
	if !ok {
		t.Fatalf("got %T", c)
	}
	if tm.Text != "Hi \uFFFD there" {
		t.Errorf("Text = %q (invalid UTF-8 must become U+FFFD)", tm.Text)
	}
	if !tm.HasFormat || tm.Format.Font != "Segoe UI" || !tm.Format.Bold || !tm.Format.Italic || tm.Format.Color != (RGB{B: 0xff}) {
		t.Errorf("Format = %+v", tm.Format)
	}
	if tm.P4Context != "Carol" {
		t.Errorf("P4Context = %q", tm.P4Context)
	}
	c = classify(t, "MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN\r\n\r\nx")
	if tm, ok := c.(*TextMessage); !ok || tm.HasFormat || tm.Format != DefaultTextFormat() {
		t.Errorf("text without format: %#v", c)
	}
}

func TestClassifyOthers(t *testing.T) {
	c := classify(t, "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: bob@example.com\r\n\r\n\r\n")
	if tn, ok := c.(*TypingNotice); !ok || tn.User != "bob@example.com" || tn.Recording {
		t.Errorf("typing: %#v", c)
	}
	c = classify(t, "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nRecordingUser: bob@example.com\r\n\r\n\r\n")
	if tn, ok := c.(*TypingNotice); !ok || !tn.Recording {
		t.Errorf("recording: %#v", c)
	}
	for id, want := range map[string]int{"1": DatacastNudge, "2": DatacastWink, "3": DatacastVoiceClip, "4": DatacastAction, "7": 7, "x": 0} {
		c = classify(t, "MIME-Version: 1.0\r\nContent-Type: text/x-msnmsgr-datacast\r\n\r\nID: "+id+"\r\nData: <msnobj Type=\"8\"/>\r\n\r\n")
		d, ok := c.(*Datacast)
		if !ok || d.ID != want || d.Data != `<msnobj Type="8"/>` || len(d.Fields) != 2 {
			t.Errorf("datacast %s: %#v", id, c)
		}
	}
	c = classify(t, "MIME-Version: 1.0\r\nContent-Type: text/x-mms-animemoticon\r\n\r\n:cat:\t<msnobj Type=\"2\" A=\"1\"/>\t(x)\t<msnobj Type=\"2\" A=\"2\"/>\t")
	if e, ok := c.(*EmoticonDeclaration); !ok || !e.Animated || len(e.Emoticons) != 2 ||
		e.Emoticons[0] != (CustomEmoticon{":cat:", `<msnobj Type="2" A="1"/>`}) || e.Emoticons[1].Shortcut != "(x)" {
		t.Errorf("emoticons: %#v", c)
	}
	c = classify(t, "MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: bob@x;{guid}\r\n\r\n\x00\x01\x02")
	if p, ok := c.(*P2PMessage); !ok || p.Dest != "bob@x;{guid}" || !bytes.Equal(p.Body, []byte{0, 1, 2}) {
		t.Errorf("p2p: %#v", c)
	}
	c = classify(t, "MIME-Version: 1.0\r\nContent-Type: application/x-ms-ink\r\n\r\nbase64:AAA")
	if i, ok := c.(*InkMessage); !ok || i.ContentType != ContentTypeInkISF || string(i.Body) != "base64:AAA" {
		t.Errorf("ink: %#v", c)
	}
	c = classify(t, "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinvite; charset=UTF-8\r\n\r\nInvitation-Command: INVITE\r\n")
	if u, ok := c.(*UnsupportedContent); !ok || u.ContentType != "text/x-msmsgsinvite" || u.Message == nil {
		t.Errorf("unsupported: %#v", c)
	}
	c = classify(t, "MIME-Version: 1.0\r\n\r\n")
	if u, ok := c.(*UnsupportedContent); !ok || u.ContentType != "" {
		t.Errorf("no content type: %#v", c)
	}
}

func TestConstructors(t *testing.T) {
	if got := string(NewNudgeMessage().Bytes()); got != "MIME-Version: 1.0\r\nContent-Type: text/x-msnmsgr-datacast\r\n\r\nID: 1\r\n\r\n" {
		t.Errorf("nudge = %q", got)
	}
	if got := string(NewTypingMessage("me@x").Bytes()); got != "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: me@x\r\n\r\n\r\n" {
		t.Errorf("typing = %q", got)
	}
	if got := string(NewTextMessage("Hello Bob via TWN/MSNP12", DefaultTextFormat()).Bytes()); got != transcriptPayloads[0] {
		t.Errorf("text = %q", got)
	}
	em := []CustomEmoticon{{":cat:", `<msnobj Type="2"/>`}}
	m, _ := ParseMessage(NewEmoticonMessage(false, em).Bytes())
	if e, ok := m.Classify().(*EmoticonDeclaration); !ok || e.Animated || len(e.Emoticons) != 1 || e.Emoticons[0] != em[0] {
		t.Errorf("emoticon round trip: %#v", m.Classify())
	}
}

func chunk(id string, first bool, n int, body string) *Message {
	m := &Message{Header: []MIMEHeader{{"MIME-Version", "1.0"}}}
	if first {
		m.Header = append(m.Header, MIMEHeader{"Content-Type", "text/plain; charset=UTF-8"}, MIMEHeader{"Message-ID", id}, MIMEHeader{"Chunks", fmt.Sprint(n)})
	} else {
		m.Header = append(m.Header, MIMEHeader{"Message-ID", id}, MIMEHeader{"Chunk", fmt.Sprint(n)})
	}
	m.Body = []byte(body)
	return m
}

func TestChunkAssembler(t *testing.T) {
	var a ChunkAssembler
	plain := NewTextMessage("x", DefaultTextFormat())
	if got, err := a.Add("bob", plain); err != nil || got != plain {
		t.Fatalf("non-chunk: %v %v", got, err)
	}
	// "€" (3 bytes) is cut between chunks; it must come back whole.
	euro := "€"
	steps := []*Message{chunk("{A}", true, 3, "one "+euro[:1]), chunk("{A}", false, 2, "three"), chunk("{A}", false, 1, euro[1:]+" two ")}
	for i, c := range steps[:2] {
		if got, err := a.Add("bob", c); got != nil || err != nil {
			t.Fatalf("chunk %d: %v %v", i, got, err)
		}
	}
	// Another sender's chunk with the same id is a different message.
	if got, err := a.Add("carol", chunk("{A}", false, 1, "zzz")); got != nil || err == nil {
		t.Errorf("foreign chunk: %v %v", got, err)
	}
	got, err := a.Add("bob", steps[2])
	if err != nil || got == nil {
		t.Fatalf("last chunk: %v %v", got, err)
	}
	tm, ok := got.Classify().(*TextMessage)
	if !ok || tm.Text != "one € two three" {
		t.Errorf("reassembled: %#v", got.Classify())
	}
	if _, ok := got.Lookup("Chunks"); ok || got.Get("Message-ID") != "" {
		t.Errorf("chunk headers left: %+v", got.Header)
	}
	if a.Pending() != 0 {
		t.Errorf("Pending = %d", a.Pending())
	}
}

func TestChunkAssemblerMissingChunkNeverYields(t *testing.T) {
	a := ChunkAssembler{MaxPending: 4}
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("{%d}", i)
		if got, err := a.Add("bob", chunk(id, true, 3, "a")); got != nil || err != nil {
			t.Fatalf("first: %v %v", got, err)
		}
		if got, err := a.Add("bob", chunk(id, false, 2, "c")); got != nil || err != nil {
			t.Fatalf("third: %v %v", got, err)
		}
		if a.Pending() > 4 {
			t.Fatalf("Pending = %d over MaxPending", a.Pending())
		}
	}
	// The oldest were evicted; a late chunk of one of them is an error.
	if got, err := a.Add("bob", chunk("{0}", false, 1, "b")); got != nil || !errors.Is(err, ErrChunk) {
		t.Errorf("late chunk of evicted message: %v %v", got, err)
	}
	// A still-pending one completes.
	if got, err := a.Add("bob", chunk("{99}", false, 1, "b")); err != nil || got == nil || string(got.Body) != "abc" {
		t.Errorf("completion: %v %v", got, err)
	}
	a.Discard("bob")
	if a.Pending() != 0 {
		t.Errorf("Pending after Discard = %d", a.Pending())
	}
}

func TestChunkAssemblerLimits(t *testing.T) {
	a := ChunkAssembler{MaxChunks: 4, MaxBytes: 10}
	if _, err := a.Add("bob", chunk("{A}", true, 5, "a")); !errors.Is(err, ErrChunk) {
		t.Errorf("too many chunks: %v", err)
	}
	if _, err := a.Add("bob", chunk("{A}", true, 0, "a")); !errors.Is(err, ErrChunk) {
		t.Errorf("zero chunks: %v", err)
	}
	a.Add("bob", chunk("{B}", true, 3, "123456"))
	if _, err := a.Add("bob", chunk("{B}", false, 1, "78901")); !errors.Is(err, ErrChunk) || a.Pending() != 0 {
		t.Errorf("over MaxBytes: %v, pending %d", err, a.Pending())
	}
	a.Add("bob", chunk("{C}", true, 3, "1"))
	if _, err := a.Add("bob", chunk("{C}", false, 3, "2")); !errors.Is(err, ErrChunk) {
		t.Errorf("index out of range: %v", err)
	}
	a.Add("bob", chunk("{D}", true, 3, "1"))
	a.Add("bob", chunk("{D}", false, 1, "2"))
	if _, err := a.Add("bob", chunk("{D}", false, 1, "2")); !errors.Is(err, ErrChunk) {
		t.Errorf("duplicate chunk: %v", err)
	}
	if got, err := a.Add("bob", chunk("{E}", true, 1, "solo")); err != nil || string(got.Body) != "solo" {
		t.Errorf("Chunks: 1: %v %v", got, err)
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, p := range transcriptPayloads {
		f.Add([]byte(p))
	}
	f.Add([]byte("MIME-Version: 1.0\r\nContent-Type: text/x-mms-emoticon\r\n\r\na\tb\t\tc"))
	f.Add([]byte("Message-ID: {x}\r\nChunks: 2\r\n\r\nab"))
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := ParseMessage(p)
		if err != nil {
			if !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("error not ErrMalformedMessage: %v", err)
			}
			return
		}
		if len(m.Header) > MaxMessageHeaders {
			t.Fatalf("%d headers", len(m.Header))
		}
		if m.Classify() == nil {
			t.Fatal("Classify returned nil")
		}
		// Rendering and parsing again is stable.
		b := m.Bytes()
		m2, err := ParseMessage(b)
		if err != nil {
			t.Fatalf("reparse of %q: %v", b, err)
		}
		if !bytes.Equal(m2.Bytes(), b) {
			t.Fatalf("unstable: %q vs %q", m2.Bytes(), b)
		}
		var a ChunkAssembler
		a.Add("x", m)
	})
}

// parseMessageOneByOne is ParseMessage as first written, one string per
// header name and value: the reference FuzzParseMessageSameAsReference holds
// the three-allocation version to.
func parseMessageOneByOne(payload []byte) (*Message, error) {
	m := &Message{}
	rest := payload
	for {
		if len(rest) == 0 {
			return m, nil
		}
		i := bytes.IndexByte(rest, '\n')
		var line []byte
		if i < 0 {
			line, rest = rest, nil
		} else {
			line, rest = rest[:i], rest[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			if i < 0 {
				return m, nil
			}
			m.Body = rest
			return m, nil
		}
		if len(line) > MaxMessageHeaderLine {
			return nil, fmt.Errorf("%w: header line of %d bytes, limit %d", ErrMalformedMessage, len(line), MaxMessageHeaderLine)
		}
		if len(m.Header) == MaxMessageHeaders {
			return nil, fmt.Errorf("%w: more than %d headers", ErrMalformedMessage, MaxMessageHeaders)
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, fmt.Errorf("%w: header line %q has no name", ErrMalformedMessage, cut(string(line)))
		}
		name := string(line[:colon])
		if strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: header name %q holds a blank", ErrMalformedMessage, cut(name))
		}
		value := line[colon+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		m.Header = append(m.Header, MIMEHeader{Name: name, Value: string(value)})
	}
}

func FuzzParseMessageSameAsReference(f *testing.F) {
	for _, p := range transcriptPayloads {
		f.Add([]byte(p))
	}
	f.Add([]byte("A: b\r\n\r"))
	f.Add([]byte("A: b\r\n\r\n"))
	f.Add([]byte("A: b\n\nbody\r\n\r\nmore"))
	f.Add([]byte("A b\r\n\r\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		got, err := ParseMessage(p)
		want, werr := parseMessageOneByOne(p)
		if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			t.Fatalf("error %v, reference %v", err, werr)
		}
		if err != nil {
			return
		}
		if (got.Body == nil) != (want.Body == nil) || !bytes.Equal(got.Body, want.Body) {
			t.Fatalf("body %q, reference %q", got.Body, want.Body)
		}
		if len(got.Header) != len(want.Header) {
			t.Fatalf("headers %q, reference %q", got.Header, want.Header)
		}
		for i := range got.Header {
			if got.Header[i] != want.Header[i] {
				t.Fatalf("headers %q, reference %q", got.Header, want.Header)
			}
		}
	})
}
