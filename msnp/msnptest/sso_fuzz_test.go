package msnptest

import (
	"strings"
	"testing"
)

// FuzzSOAPInputs feeds the server's own SOAP-side parsers (the RST
// request and Store2's MIME content): bad input is refused, never a
// panic.
func FuzzSOAPInputs(f *testing.F) {
	f.Add(`<Envelope><Username>a@b</Username><Password>p</Password><Address>messengerclear.live.com</Address></Envelope>`)
	f.Add("MIME-Version: 1.0\nX-OIM-Sequence-Num: 1\n\naGVsbG8=")
	f.Add("\n\n" + strings.Repeat("A", 80))
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := parseRST(strings.NewReader(s)); err == nil && len(r.addresses) > len(s) {
			t.Fatalf("%d addresses from %d bytes", len(r.addresses), len(s))
		}
		if hdr, text, err := parseOIMContent(s); err == nil && (hdr == nil || len(text) > len(s)) {
			t.Fatalf("content %q parsed to %v %q", s, hdr, text)
		}
	})
}
