package msnp

import (
	"bytes"
	"testing"
)

// FuzzPresenceLine feeds MSNP13–18 presence lines through the
// normalisation and the parsers: nothing may panic, and a line naming the
// account itself is never reported as a contact's.
func FuzzPresenceLine(f *testing.F) {
	for _, s := range []string{
		"NLN NLN 1:bob@example.com Bob 2788999212:48 0\r\n",
		"ILN 8 NLN bob@example.com 1 Bob 1986986028 0\r\n",
		"FLN 1:bob@example.com 0:0\r\n",
		"FLN bob@example.com 1 0\r\n",
		"UBX 1:alice@example.com 0\r\n",
		"UBX bob@example.com 1 14\r\n<Data></Data>",
		"NLN NLN 1: x 1\r\n",
		"ILN 1\r\n",
	} {
		f.Add(uint8(18), []byte(s))
		f.Add(uint8(15), []byte(s))
	}
	f.Fuzz(func(t *testing.T, ver uint8, line []byte) {
		cmd, err := NewReader(bytes.NewReader(line)).ReadCommand()
		if err != nil {
			return
		}
		c := &Client{passport: "alice@example.com"}
		norm, contact := c.normalizePresence(Protocol(13+int(ver)%6), cmd)
		if !contact {
			return
		}
		if norm == nil {
			t.Fatal("nil command for a contact")
		}
		if p, ok := parsePresence(norm); ok && p.Passport == "alice@example.com" {
			t.Fatalf("own account reported as a contact: %q", line)
		}
		_, _, _ = parseUBX(norm.Payload)
	})
}
