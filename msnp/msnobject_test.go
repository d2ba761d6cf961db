package msnp

import (
	"errors"
	"strings"
	"testing"
)

func TestMSNObjectRoundTrip(t *testing.T) {
	o := NewMSNObject("alice@example.com", MSNObjectDisplayPicture, "TFR2C2.tmp", "", []byte("picture bytes"))
	if o.Size != 13 || o.SHA1D == "" || o.SHA1C != o.ComputeSHA1C() {
		t.Fatalf("NewMSNObject = %+v", o)
	}
	s := o.String()
	if !strings.HasPrefix(s, "<msnobj ") || !strings.HasSuffix(s, "/>") || !strings.Contains(s, `Friendly="AAA="`) {
		t.Fatalf("String() = %s", s)
	}
	back, err := ParseMSNObject(s)
	if err != nil {
		t.Fatal(err)
	}
	if back != o {
		t.Fatalf("round trip %+v -> %+v", o, back)
	}
	// A tampered field no longer matches the checksum.
	back.Location = "other.tmp"
	if back.ComputeSHA1C() == o.SHA1C {
		t.Fatal("SHA1C did not change with the location")
	}
}

func TestParseMSNObject(t *testing.T) {
	// As clients send it, with a non-empty friendly name.
	in := `<msnobj Creator="bob@example.com" Size="22731" Type="3" Location="TFR2C2.tmp" Friendly="SABpAAAA" SHA1D="trC8SlFx2sWQxZMIBAWSEnXc8oQ=" SHA1C="U32o6bosZzluJq82eAtMpx5dIEI="/>`
	o, err := ParseMSNObject(in)
	if err != nil {
		t.Fatal(err)
	}
	if o.Creator != "bob@example.com" || o.Size != 22731 || o.Type != 3 || o.Friendly != "Hi" || o.SHA1D != "trC8SlFx2sWQxZMIBAWSEnXc8oQ=" {
		t.Fatalf("ParseMSNObject = %+v", o)
	}
	for _, none := range []string{"", "0", "<msnobj/>"} {
		if o, err := ParseMSNObject(none); err != nil || o != (MSNObject{}) {
			t.Errorf("ParseMSNObject(%q) = %+v, %v", none, o, err)
		}
	}
	for _, bad := range []string{"<msnobj Size=\"-1\"/>", "<msnobj Type=\"x\"/>", "not xml", "<other/>", strings.Repeat("x", 5000)} {
		if _, err := ParseMSNObject(bad); !errors.Is(err, ErrBadMSNObject) {
			t.Errorf("ParseMSNObject(%q): %v, want ErrBadMSNObject", bad, err)
		}
	}
}

func FuzzParseMSNObject(f *testing.F) {
	f.Add(`<msnobj Creator="a@b" Size="1" Type="3" Location="x" Friendly="AAA=" SHA1D="a" SHA1C="b"/>`)
	f.Add("<msnobj/>")
	f.Add(`<msnobj Friendly="SABpAAAA"/>`)
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseMSNObject(s)
		if err != nil {
			return
		}
		// Whatever parses renders to something that parses the same.
		back, err := ParseMSNObject(o.String())
		if err != nil {
			t.Fatalf("re-parsing %q: %v", o.String(), err)
		}
		if o.Friendly == back.Friendly && back != o && o != (MSNObject{}) {
			t.Fatalf("round trip %+v -> %+v", o, back)
		}
	})
}
