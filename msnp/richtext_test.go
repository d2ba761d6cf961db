package msnp

import (
	"errors"
	"testing"
)

func TestParseIMFormat(t *testing.T) {
	cases := []struct {
		in   string
		want TextFormat
	}{
		{"FN=Arial; EF=; CO=0; CS=0; PF=22", TextFormat{Font: "Arial", PitchFamily: 0x22}},
		{"FN=Segoe%20UI; EF=BI; CO=ff0000; CS=0; PF=22", TextFormat{Font: "Segoe UI", Bold: true, Italic: true, Color: RGB{B: 0xff}, PitchFamily: 0x22}},
		{"FN=MS%20Shell%20Dlg; EF=SU; CO=ff; CS=86; PF=0; RL=1", TextFormat{Font: "MS Shell Dlg", Underline: true, Strike: true, Color: RGB{R: 0xff}, Charset: 0x86, RightToLeft: true}},
		{"co=8040; fn=x; ZZ=unknown; ef=b", TextFormat{Font: "x", Bold: true, Color: RGB{R: 0x40, G: 0x80}, PitchFamily: 0x22}},
		{"", TextFormat{PitchFamily: 0x22}},
		{"FN=Arial; EF=; CO=; CS=; PF=", TextFormat{Font: "Arial", PitchFamily: 0x22}},
		{"FN=%E3%83%A1%E3%82%A4%E3%83%AA%E3%82%AA", TextFormat{Font: "メイリオ", PitchFamily: 0x22}},
	}
	for _, c := range cases {
		got, err := ParseIMFormat(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseIMFormat(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestParseIMFormatTolerant(t *testing.T) {
	got, err := ParseIMFormat("FN=Arial; EF=B; CO=zz; CS=1000; PF=22")
	if !errors.Is(err, ErrBadIMFormat) {
		t.Errorf("err = %v, want ErrBadIMFormat", err)
	}
	if want := (TextFormat{Font: "Arial", Bold: true, PitchFamily: 0x22}); got != want {
		t.Errorf("format with bad fields = %+v, want %+v", got, want)
	}
	if _, err := ParseIMFormat("CO=1000000"); err == nil {
		t.Error("a colour over 24 bits was accepted")
	}
}

func TestIMFormatHeader(t *testing.T) {
	f := TextFormat{Font: "Segoe UI", Bold: true, Italic: true, Color: RGB{B: 0xff}, PitchFamily: 0x22}
	if got := f.Header(); got != "FN=Segoe%20UI; EF=BI; CO=ff0000; CS=0; PF=22" {
		t.Errorf("Header = %q", got)
	}
	f = TextFormat{Font: "Arial", Color: RGB{R: 0xff}, RightToLeft: true, Charset: 0x86}
	if got := f.Header(); got != "FN=Arial; EF=; CO=ff; CS=86; PF=0; RL=1" {
		t.Errorf("Header = %q", got)
	}
	if got := (RGB{R: 0xff, G: 0x08}).HTML(); got != "#ff0800" {
		t.Errorf("HTML = %q", got)
	}
	if got := DefaultTextFormat().Header(); got != "FN=Arial; EF=; CO=0; CS=0; PF=22" {
		t.Errorf("default Header = %q", got)
	}
}

func TestIMFormatRoundTrip(t *testing.T) {
	for _, f := range []TextFormat{
		{Font: "Comic Sans MS", Underline: true, Strike: true, Color: RGB{1, 2, 3}, Charset: 1, PitchFamily: 0x31},
		{Font: "メイリオ; =%x", Color: RGB{0xff, 0xff, 0xff}, RightToLeft: true},
		{Font: "", Color: RGB{0, 0, 1}},
		{Font: "Tahoma", Bold: true, Italic: true, Underline: true, Strike: true, Color: RGB{0x12, 0, 0x34}, Charset: 0xff, PitchFamily: 0xff},
	} {
		got, err := ParseIMFormat(f.Header())
		if err != nil || got != f {
			t.Errorf("round trip of %+v via %q = %+v, %v", f, f.Header(), got, err)
		}
	}
}

func FuzzParseIMFormat(f *testing.F) {
	f.Add("FN=Arial; EF=; CO=0; CS=0; PF=22")
	f.Add("FN=Segoe%20UI; EF=BIUS; CO=ff0000; CS=86; PF=0; RL=1")
	f.Add("FN=%zz;;==;CO=;")
	f.Fuzz(func(t *testing.T, h string) {
		tf, _ := ParseIMFormat(h)
		// Whatever was read renders to a header that reads back the same,
		// except for a font that was not valid UTF-8 (already replaced).
		got, err := ParseIMFormat(tf.Header())
		if err != nil || got != tf {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", h, tf, tf.Header(), got, err)
		}
	})
}
