package matrix

import (
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/msnbridge/msnbridge/bridge"
)

func TestRenderHTMLEscapesHostileText(t *testing.T) {
	got := RenderHTML(bridge.Text{Body: `<script>alert("x")</script> & <img src=x onerror=y>`})
	want := `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img src=x onerror=y&gt;`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestRenderHTMLStyling(t *testing.T) {
	cases := []struct {
		in   bridge.Text
		want string
	}{
		{bridge.Text{Body: "hi"}, "hi"},
		{bridge.Text{Body: "a\nb\r\nc"}, "a<br>b<br>c"},
		{bridge.Text{Body: "hi", Bold: true, Italic: true, Underline: true, Strike: true},
			"<b><i><u><del>hi</del></u></i></b>"},
		{bridge.Text{Body: "red", Color: "#FF0000"},
			`<font color="#ff0000" data-mx-color="#ff0000">red</font>`},
		// A hostile colour never reaches an attribute.
		{bridge.Text{Body: "x", Color: `#000000" onmouseover="evil`}, "x"},
		{bridge.Text{Body: "x", Color: "red"}, "x"},
		{bridge.Text{Body: "<b>", Bold: true, Font: `Arial"><script>`}, "<b>&lt;b&gt;</b>"},
	}
	for _, c := range cases {
		if got := RenderHTML(c.in); got != c.want {
			t.Errorf("RenderHTML(%+v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestMatrixToMSN(t *testing.T) {
	hs := "https://matrix.example.org/"
	cases := []struct {
		name string
		in   *event.MessageEventContent
		want string
		ok   bool
	}{
		{"plain", &event.MessageEventContent{MsgType: event.MsgText, Body: "hello"}, "hello", true},
		{"html", &event.MessageEventContent{MsgType: event.MsgText, Body: "**hi** there",
			Format: event.FormatHTML, FormattedBody: "<b>hi</b> <i>there</i>"}, "**hi** _there_", true},
		{"link", &event.MessageEventContent{MsgType: event.MsgText, Body: "x",
			Format: event.FormatHTML, FormattedBody: `see <a href="https://e.org/">this</a>`}, "see [this](https://e.org/)", true},
		{"emote", &event.MessageEventContent{MsgType: event.MsgEmote, Body: "waves"}, "/me waves", true},
		{"edit", &event.MessageEventContent{MsgType: event.MsgText, Body: "* fixed",
			RelatesTo:  &event.RelatesTo{Type: event.RelReplace, EventID: "$old"},
			NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "fixed"}}, "* fixed", true},
		{"image", &event.MessageEventContent{MsgType: event.MsgImage, Body: "cat.png", URL: "mxc://example.org/abc123"},
			"sent an image cat.png: https://matrix.example.org/_matrix/media/v3/download/example.org/abc123", true},
		{"file with caption", &event.MessageEventContent{MsgType: event.MsgFile, Body: "look", FileName: "a.pdf", URL: "mxc://e.org/f"},
			"sent a file a.pdf: https://matrix.example.org/_matrix/media/v3/download/e.org/f\nlook", true},
		{"empty", &event.MessageEventContent{MsgType: event.MsgText, Body: "  "}, "", false},
	}
	for _, c := range cases {
		got, ok := MatrixToMSN(c.in, hs)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestHTMLToMSNDropsMarkup(t *testing.T) {
	got := HTMLToMSN("<p>line one</p><p>line <code>two</code></p><ul><li>a</li><li>b</li></ul><img src=x onerror=alert(1)>")
	for _, bad := range []string{"<", ">", "onerror"} {
		if strings.Contains(got, bad) {
			t.Errorf("HTMLToMSN kept %q: %q", bad, got)
		}
	}
	for _, want := range []string{"line one", "two", "a", "b"} {
		if !strings.Contains(got, want) {
			t.Errorf("HTMLToMSN lost %q: %q", want, got)
		}
	}
}

func TestMatrixToMSNTextUniformStyle(t *testing.T) {
	html := func(f string) *event.MessageEventContent {
		return &event.MessageEventContent{MsgType: event.MsgText, Body: "plain", Format: event.FormatHTML, FormattedBody: f}
	}
	cases := []struct {
		in   *event.MessageEventContent
		want bridge.Text
	}{
		{html("<b>all bold</b>"), bridge.Text{Body: "all bold", Bold: true}},
		{html(` <strong><em><font color="#FF0000">red</font></em></strong> `), bridge.Text{Body: "red", Bold: true, Italic: true, Color: "#ff0000"}},
		{html(`<span data-mx-color="#00ff00"><u><del>x</del></u></span>`), bridge.Text{Body: "x", Color: "#00ff00", Underline: true, Strike: true}},
		{html("<b>part</b> bold"), bridge.Text{Body: "**part** bold"}},
		{html(`<font color="javascript:x">y</font>`), bridge.Text{Body: "y"}},
		{&event.MessageEventContent{MsgType: event.MsgText, Body: "hi"}, bridge.Text{Body: "hi"}},
	}
	for _, c := range cases {
		got, ok := MatrixToMSNText(c.in, "https://hs")
		if !ok || got != c.want {
			t.Errorf("MatrixToMSNText(%q) = %+v, %v; want %+v", c.in.FormattedBody, got, ok, c.want)
		}
	}
}

func FuzzMatrixHTML(f *testing.F) {
	for _, s := range []string{"<b>x</b>", `<font color="#ff0000"><i>y</i></font>`, "<b><i><u><del><s>deep</s></del></u></i></b>", "<", "<b>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, formatted string) {
		c := &event.MessageEventContent{MsgType: event.MsgText, Body: "fallback", Format: event.FormatHTML, FormattedBody: formatted}
		got, ok := MatrixToMSNText(c, "https://hs")
		if !ok || got.Body == "" {
			t.Fatalf("nothing to send for %q", formatted)
		}
		if got.Color != "" && !colorRe.MatchString(got.Color) {
			t.Fatalf("colour %q from %q", got.Color, formatted)
		}
		// What comes back from MSN is escaped again.
		if out := RenderHTML(got); strings.Contains(out, "<script") {
			t.Fatalf("RenderHTML let a script tag through: %q", out)
		}
	})
}
