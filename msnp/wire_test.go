package msnp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unsafe"
)

func TestReadCommands(t *testing.T) {
	in := "VER 1 MSNP12\r\n" +
		"LST N=bob@example.com F=bob@example.com C=fe26 11 1 \r\n" +
		"MSG Hotmail Hotmail 5\r\nhello" +
		"UBX alice@example.com 0\r\n" +
		"QRY 7\r\n" +
		"QNG 60\r\n" +
		"ADL 8 OK\r\n" +
		"NOT 3\r\nabc" +
		"911 4\r\n"
	r := NewReader(strings.NewReader(in))
	want := []struct {
		name    string
		args    string
		payload string
		trid    int64 // -1: none
	}{
		{"VER", "1 MSNP12", "", 1},
		{"LST", "N=bob@example.com F=bob@example.com C=fe26 11 1", "", -1},
		{"MSG", "Hotmail Hotmail", "hello", -1},
		{"UBX", "alice@example.com", "", -1},
		{"QRY", "7", "", 7},
		{"QNG", "60", "", -1},
		{"ADL", "8 OK", "", 8},
		{"NOT", "", "abc", -1},
		{"911", "4", "", 4},
	}
	for i, w := range want {
		c, err := r.ReadCommand()
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if c.Name != w.name || strings.Join(c.Args, " ") != w.args || string(c.Payload) != w.payload {
			t.Errorf("command %d = %q %q %q, want %q %q %q", i, c.Name, c.Args, c.Payload, w.name, w.args, w.payload)
		}
		trid, ok := c.TrID()
		if (w.trid < 0) == ok || (ok && int64(trid) != w.trid) {
			t.Errorf("command %d TrID = %d, %v; want %d", i, trid, ok, w.trid)
		}
	}
	if w := want[3]; w.name == "UBX" {
		// A zero-length payload is present, not absent.
	}
	if _, err := r.ReadCommand(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

func TestReadErrorReply(t *testing.T) {
	c, err := NewReader(strings.NewReader("911 4\r\n")).ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	se := c.Err()
	if !errors.Is(se, ErrAuthentication) || CodeOf(se) != ErrAuthFailed {
		t.Fatalf("Err() = %v, want authentication failure", se)
	}
	if !strings.Contains(se.Error(), "911 authentication failed") {
		t.Fatalf("message %q does not name the code", se.Error())
	}
}

func TestReadLimits(t *testing.T) {
	r := NewReader(strings.NewReader(strings.Repeat("A", 100) + "\r\n"))
	r.MaxLineLength = 50
	_, err := r.ReadCommand()
	if !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("long line: %v", err)
	}
	r = NewReader(strings.NewReader("MSG a b 99999999\r\n"))
	r.MaxPayloadSize = 1000
	_, err = r.ReadCommand()
	if !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("large payload: %v", err)
	}
	_, err = NewReader(strings.NewReader("MSG a b 10\r\nshort")).ReadCommand()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short payload: %v", err)
	}
	for _, bad := range []string{"\r\n", "lowercase 1\r\n", "TOOLONG 1\r\n", "  \r\n"} {
		if _, err := NewReader(strings.NewReader(bad)).ReadCommand(); !errors.Is(err, ErrMalformedLine) {
			t.Errorf("%q: %v, want ErrMalformedLine", bad, err)
		}
	}
}

// TestReadInto checks ReadInto against Read on the same stream, the
// reuse of its buffer (the documented contract: strings are valid until the
// next call), and that errors and payloads do not alias that buffer.
func TestReadInto(t *testing.T) {
	in := "ILN 6 NLN alice@example.com Alice 0 %3Cmsnobj%2F%3E\r\n" +
		"UBX 1:alice@example.com 5\r\nhello" +
		"NLN NLN 1:bob@example.com Bob 2788999212:48 0\r\n" +
		strings.Repeat("X", 5000) + "\r\n"
	ri := NewReader(strings.NewReader(in))
	rr := NewReader(strings.NewReader(in))
	var into, ref Command
	var prevName string
	var prevPayload []byte
	for i := 0; i < 3; i++ {
		if err := ri.ReadInto(&into); err != nil {
			t.Fatalf("ReadInto %d: %v", i, err)
		}
		if err := rr.Read(&ref); err != nil {
			t.Fatalf("Read %d: %v", i, err)
		}
		if into.String() != ref.String() || !bytes.Equal(into.Payload, ref.Payload) {
			t.Fatalf("command %d: ReadInto %q, Read %q", i, into.String(), ref.String())
		}
		if i == 1 {
			prevName, prevPayload = strings.Clone(into.Args[0]), into.Payload
		}
	}
	// The payload read before is untouched by later reads: it is the caller's.
	if string(prevPayload) != "hello" || prevName != "1:alice@example.com" {
		t.Fatalf("kept payload %q, cloned arg %q", prevPayload, prevName)
	}
	// The buffer is reused: the third command's name sits where the
	// first's did, which is why callers must clone what they keep.
	if unsafe.StringData(into.Name) != &ri.line[0] {
		t.Fatal("ReadInto did not read into its reused buffer")
	}
	var pe *ProtocolError
	err := ri.ReadInto(&into)
	if !errors.As(err, &pe) || !errors.Is(err, ErrMalformedLine) {
		t.Fatalf("5000-byte name: %v, want ErrMalformedLine", err)
	}
	ri2 := NewReader(strings.NewReader("lower case\r\nQNG 60\r\n"))
	err = ri2.ReadInto(&into)
	if !errors.As(err, &pe) {
		t.Fatalf("bad line: %v", err)
	}
	quoted := pe.Line
	if err := ri2.ReadInto(&into); err != nil || into.Name != "QNG" {
		t.Fatalf("after a bad line: %v %q", err, into.Name)
	}
	if quoted != "lower case" {
		t.Fatalf("the error's quoted line changed to %q: it aliases the buffer", quoted)
	}
	if err := ri.ReadInto(&into); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

func TestWriteCommand(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	if err := w.WriteCommand(&Command{Name: "MSG", Args: []string{"3", "N"}, Payload: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteCommand(NewCommand("CHG", 4, "NLN", "0")); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "MSG 3 N 2\r\nhiCHG 4 NLN 0\r\n"; got != want {
		t.Fatalf("wrote %q, want %q", got, want)
	}
	if err := w.WriteCommand(NewCommand("PRP", 5, "MFN", "has space")); err == nil {
		t.Fatal("an argument with a blank was written")
	}
}

func TestEscape(t *testing.T) {
	for _, s := range []string{"", "plain", "a b%c", "Ünïcödé 😀", "line\r\nbreak", "%zz"} {
		e := Escape(s)
		if strings.ContainsAny(e, " \r\n\t") {
			t.Errorf("Escape(%q) = %q holds a blank", s, e)
		}
		if got := Unescape(e); got != s {
			t.Errorf("Unescape(Escape(%q)) = %q", s, got)
		}
	}
	if got := Unescape("bad%zz%4"); got != "bad%zz%4" {
		t.Errorf("lenient Unescape = %q", got)
	}
	if got := Unescape("Bob%20Smith"); got != "Bob Smith" {
		t.Errorf("Unescape = %q", got)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("VER 1 MSNP12\r\nMSG Hotmail Hotmail 5\r\nhello"))
	f.Add([]byte("LST N=a F=b C=c 11 1 \r\nUBX a 3\r\nabc"))
	f.Add([]byte("241 5 4\r\nabcd"))
	f.Add([]byte("QRY 10\r\nQNG 60\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		r.MaxLineLength = 512
		r.MaxPayloadSize = 4096
		ri := NewReader(bytes.NewReader(data))
		ri.MaxLineLength, ri.MaxPayloadSize = r.MaxLineLength, r.MaxPayloadSize
		var out bytes.Buffer
		w := NewWriter(&out)
		for i := 0; i < 100; i++ {
			c, err := r.ReadCommand()
			if err != nil {
				return
			}
			if len(c.Payload) > 4096 {
				t.Fatalf("payload of %d bytes over the limit", len(c.Payload))
			}
			// ReadInto reads the same stream to the same commands; its
			// strings are compared before the next call invalidates them.
			var into Command
			if err := ri.ReadInto(&into); err != nil {
				t.Fatalf("ReadInto failed where ReadCommand read %q: %v", c.String(), err)
			}
			if into.String() != c.String() || !bytes.Equal(into.Payload, c.Payload) {
				t.Fatalf("ReadInto read %q, ReadCommand %q", into.String(), c.String())
			}
			// Whatever was read re-encodes to something that reads back the same.
			out.Reset()
			if err := w.WriteCommand(c); err != nil {
				continue
			}
			c2, err := NewReader(bytes.NewReader(out.Bytes())).ReadCommand()
			if err != nil {
				t.Fatalf("re-reading %q: %v", out.Bytes(), err)
			}
			if c2.String() != c.String() || !bytes.Equal(c2.Payload, c.Payload) {
				t.Fatalf("round trip %q -> %q", c.String(), c2.String())
			}
		}
	})
}
