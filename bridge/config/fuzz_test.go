package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse: loading a configuration never panics, and a failure is always
// reported as Problems.
func FuzzParse(f *testing.F) {
	f.Add(Example)
	f.Add([]byte("msn:\n  server: a:1\n  protocols: [MSNP8, ~]\nmatrix: {enabled: true}\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("logging:\n  components: {msnp: debug, ? [x] : y}\n"))
	f.Add([]byte("msn:\n  dial_timeout: 0\n  client: !!binary aGk=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if cfg == nil {
			t.Fatal("nil config")
		}
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not Problems: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v", err)
		}
	})
}

// FuzzParseByteSize: a size never panics, is never negative, and what
// String writes for a whole unit reads back the same.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"0", "100MiB", "1 GB", "9223372036854775807", "8TiB", "-1k", "kib", "1.5M", " 7 b "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseByteSize(%q) = %d", s, n)
		}
		if out := n.String(); !strings.HasSuffix(out, " bytes") {
			back, err := ParseByteSize(out)
			if err != nil || back != n {
				t.Fatalf("%q -> %d -> %q -> %d, %v", s, n, out, back, err)
			}
		}
	})
}
