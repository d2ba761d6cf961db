package msnp

import (
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"
)

func checkSplit(t *testing.T, headersLen int, body string, max int) []string {
	t.Helper()
	parts, err := SplitText(headersLen, body, max)
	if err != nil {
		t.Fatalf("SplitText(%d, %d bytes, %d): %v", headersLen, len(body), max, err)
	}
	if strings.Join(parts, "") != body {
		t.Fatalf("parts do not concatenate to the body")
	}
	valid := utf8.ValidString(body)
	for i, p := range parts {
		if p == "" {
			t.Fatalf("part %d is empty", i)
		}
		if headersLen+len(p) > max {
			t.Fatalf("part %d: %d+%d bytes over %d", i, headersLen, len(p), max)
		}
		if valid && !utf8.ValidString(p) {
			t.Fatalf("part %d is not valid UTF-8: %q", i, p)
		}
	}
	return parts
}

func TestSplitTextPrefersBreaks(t *testing.T) {
	body := strings.Repeat("word ", 10) + "\n" + strings.Repeat("x", 20)
	parts := checkSplit(t, 10, body, 10+40)
	if len(parts) != 2 || parts[0] != strings.Repeat("word ", 8) {
		t.Errorf("parts = %q", parts)
	}
	parts = checkSplit(t, 0, "a long line\nline two and more", 20)
	if parts[0] != "a long line\n" {
		t.Errorf("newline not preferred: %q", parts)
	}
	if parts := checkSplit(t, 0, "", 10); len(parts) != 0 {
		t.Errorf("empty body gave %q", parts)
	}
	if parts := checkSplit(t, 5, "short", 10); len(parts) != 1 {
		t.Errorf("short body gave %q", parts)
	}
	if _, err := SplitText(8, "x", 10); err == nil {
		t.Error("no room for a character was not an error")
	}
}

func TestSplitTextProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := []string{"a", "b", " ", "\n", "é", "€", "😀", "ก", "\r\n"}
	for n := 0; n < 300; n++ {
		var b strings.Builder
		for l := rng.Intn(3000); b.Len() < l; {
			b.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		checkSplit(t, rng.Intn(200), b.String(), 200+4+rng.Intn(1500))
	}
	// The worst case for boundaries: nothing but 4-byte characters and a
	// budget that is not a multiple of 4.
	checkSplit(t, 0, strings.Repeat("😀", 500), 7)
	// Invalid UTF-8 still splits, concatenates and fits.
	checkSplit(t, 0, strings.Repeat("\x80\xbf\xff", 100), 5)
}

func TestTextMessages(t *testing.T) {
	text := strings.Repeat("Grüße aus Köln, ", 300)
	f := TextFormat{Font: "Segoe UI", Bold: true, Color: RGB{R: 0xff}}
	payloads, err := TextMessages(text, f, SwitchboardMaxMessage)
	if err != nil {
		t.Fatal(err)
	}
	if len(payloads) < 3 {
		t.Fatalf("%d payloads for %d bytes", len(payloads), len(text))
	}
	var got strings.Builder
	for i, p := range payloads {
		if len(p) > SwitchboardMaxMessage {
			t.Errorf("payload %d is %d bytes", i, len(p))
		}
		m, err := ParseMessage(p)
		if err != nil {
			t.Fatal(err)
		}
		tm, ok := m.Classify().(*TextMessage)
		if !ok || tm.Format != f {
			t.Fatalf("payload %d: %#v", i, m.Classify())
		}
		got.WriteString(tm.Text)
	}
	if got.String() != text {
		t.Error("payload texts do not concatenate to the text")
	}
}

func FuzzSplitText(f *testing.F) {
	f.Add(0, "hello world", 8)
	f.Add(100, strings.Repeat("😀 ", 50), 120)
	f.Add(3, "\xe2\x82", 7)
	f.Fuzz(func(t *testing.T, headersLen int, body string, max int) {
		if headersLen < 0 || headersLen > 4096 || max > 1<<16 {
			return
		}
		if _, err := SplitText(headersLen, body, max); err != nil {
			if max-headersLen >= utf8.UTFMax {
				t.Fatalf("error with room to spare: %v", err)
			}
			return
		}
		checkSplit(t, headersLen, body, max)
	})
}

func TestMessageSplitKeepsHeaders(t *testing.T) {
	m := NewTextMessage(strings.Repeat("ab ", 1000), DefaultTextFormat())
	m.Set("P4-Context", "Matrix Carol")
	payloads, err := m.Split(SwitchboardMaxMessage)
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	for i, p := range payloads {
		if len(p) > SwitchboardMaxMessage {
			t.Errorf("payload %d is %d bytes", i, len(p))
		}
		pm, err := ParseMessage(p)
		if err != nil {
			t.Fatal(err)
		}
		if tm := pm.Classify().(*TextMessage); tm.P4Context != "Matrix Carol" || !tm.HasFormat {
			t.Errorf("payload %d lost headers: %+v", i, pm.Header)
		}
		body.Write(pm.Body)
	}
	if body.String() != string(m.Body) {
		t.Error("bodies do not concatenate to the original")
	}
	short := NewTextMessage("hi", DefaultTextFormat())
	if p, err := short.Split(SwitchboardMaxMessage); err != nil || len(p) != 1 || string(p[0]) != string(short.Bytes()) {
		t.Errorf("short message: %q, %v", p, err)
	}
	// An empty text still gives one (empty) message, not none.
	if p, err := NewTextMessage("", DefaultTextFormat()).Split(SwitchboardMaxMessage); err != nil || len(p) != 1 {
		t.Errorf("empty message: %q, %v", p, err)
	}
}
