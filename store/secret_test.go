package store

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func TestSealerRoundTrip(t *testing.T) {
	s := testSealer(t, 1)
	for _, plain := range [][]byte{{}, []byte("hunter2"), bytes.Repeat([]byte("x"), 4096)} {
		sealed := s.Seal(plain)
		if len(plain) > 0 && bytes.Contains(sealed, plain) {
			t.Fatal("sealed data contains the plaintext")
		}
		got, err := s.Open(sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("Open(Seal(%q)) = %q, %v", plain, got, err)
		}
	}
	a, b := s.Seal([]byte("same")), s.Seal([]byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical: nonce reused")
	}
}

func TestSealerTamper(t *testing.T) {
	s := testSealer(t, 1)
	sealed := s.Seal([]byte("hunter2"))
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := s.Open(bad); err == nil {
			t.Fatalf("flipping a bit of byte %d went unnoticed", i)
		} else if i >= 5 && !errors.Is(err, ErrTampered) {
			// bytes 1-4 are the key id: flipping them reads as a wrong key
			t.Fatalf("byte %d: got %v, want ErrTampered", i, err)
		}
	}
	for _, n := range []int{0, 1, sealHeader, len(sealed) - 1} {
		if _, err := s.Open(sealed[:n]); !errors.Is(err, ErrTampered) {
			t.Fatalf("truncated to %d: got %v, want ErrTampered", n, err)
		}
	}
}

func TestSealerWrongKey(t *testing.T) {
	sealed := testSealer(t, 1).Seal([]byte("hunter2"))
	if _, err := testSealer(t, 2).Open(sealed); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("got %v, want ErrWrongKey", err)
	}
}

func TestNewSealerKeys(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := NewSealer(make([]byte, n)); !errors.Is(err, ErrBadKey) {
			t.Errorf("%d-byte key: got %v, want ErrBadKey", n, err)
		}
	}
	key := testKey(7)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		s, err := NewSealerBase64(" " + enc.EncodeToString(key) + "\n")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := testSealer(t, 7).Open(s.Seal([]byte("x"))); err != nil {
			t.Fatalf("base64 key differs from raw key: %v", err)
		}
	}
	if _, err := NewSealerBase64("not base64!"); !errors.Is(err, ErrBadKey) {
		t.Fatalf("got %v, want ErrBadKey", err)
	}
	if _, err := NewSealerBase64(base64.StdEncoding.EncodeToString(make([]byte, 16))); !errors.Is(err, ErrBadKey) {
		t.Fatalf("short key: got %v, want ErrBadKey", err)
	}
	g1, g2 := GenerateKey(), GenerateKey()
	if g1 == g2 {
		t.Fatal("GenerateKey repeated itself")
	}
	if _, err := NewSealerBase64(g1); err != nil {
		t.Fatalf("generated key rejected: %v", err)
	}
}

func FuzzSealerOpen(f *testing.F) {
	s, err := NewSealer(testKey(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.Seal([]byte("hunter2")))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if plain, err := s.Open(data); err == nil {
			// Only our own seals may open; re-sealing must round-trip.
			if got, err := s.Open(s.Seal(plain)); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("re-seal round trip failed: %v", err)
			}
		}
	})
}
