package msnp

import (
	"strings"
	"testing"
	"unsafe"
)

// within reports whether s's bytes lie inside line's.
func within(s, line string) bool {
	if s == "" || line == "" {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(line)))
	return p >= lo && p < lo+uintptr(len(line))
}

// TestPresenceDoesNotPinLine: a contact keeps its status for as long as the
// client lives, so the status must not be a substring of the presence line
// (which would keep the line's bytes alive with it); bench/scale measures
// what that costs at 10,000 accounts.
func TestPresenceDoesNotPinLine(t *testing.T) {
	c, err := NewReader(strings.NewReader("NLN AWY bob@example.com Bob 2788999212:48 0\r\n")).ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := parsePresence(c)
	if !ok || p.Status != StatusAway {
		t.Fatalf("parsePresence = %+v, %v", p, ok)
	}
	if within(string(p.Status), c.Name) || within(string(p.Status), c.Args[0]) {
		t.Fatal("the status is a substring of the presence line")
	}
	// An unknown status is kept, copied.
	c, _ = NewReader(strings.NewReader("NLN XYZ bob@example.com Bob 0\r\n")).ReadCommand()
	p, ok = parsePresence(c)
	if !ok || p.Status != "XYZ" || within(string(p.Status), c.Args[0]) {
		t.Fatalf("unknown status %q (ok %v) not copied", p.Status, ok)
	}
}
