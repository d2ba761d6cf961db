package xmpp

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/xmpp/internal/dom"
)

func TestShowOf(t *testing.T) {
	cases := map[bridge.Status][2]string{
		bridge.StatusOnline:    {"", ""},
		bridge.StatusBusy:      {"", "dnd"},
		bridge.StatusPhone:     {"", "dnd"},
		bridge.StatusAway:      {"", "away"},
		bridge.StatusBRB:       {"", "away"},
		bridge.StatusLunch:     {"", "away"},
		bridge.StatusIdle:      {"", "xa"},
		bridge.StatusOffline:   {"unavailable", ""},
		bridge.StatusInvisible: {"unavailable", ""},
		"bogus":                {"unavailable", ""},
	}
	for st, want := range cases {
		typ, show := showOf(st)
		if typ != want[0] || show != want[1] {
			t.Errorf("showOf(%s) = %q, %q; want %q, %q", st, typ, show, want[0], want[1])
		}
	}
}

func TestStatusOfShow(t *testing.T) {
	cases := map[string]bridge.Status{
		"": bridge.StatusOnline, "chat": bridge.StatusOnline, "dnd": bridge.StatusBusy,
		"away": bridge.StatusAway, "xa": bridge.StatusAway, "nonsense": bridge.StatusOnline,
	}
	for show, want := range cases {
		if got := statusOfShow(show); got != want {
			t.Errorf("statusOfShow(%q) = %s, want %s", show, got, want)
		}
	}
}

func TestCombineResources(t *testing.T) {
	var s state
	s.init()
	steps := []struct {
		res    string
		status bridge.Status
		after  bridge.Status
	}{
		{"phone", bridge.StatusAway, bridge.StatusAway},
		{"pc", bridge.StatusBusy, bridge.StatusBusy},
		{"laptop", bridge.StatusOnline, bridge.StatusOnline},
		{"laptop", bridge.StatusOffline, bridge.StatusBusy},
		{"pc", bridge.StatusOffline, bridge.StatusAway},
		{"phone", bridge.StatusOffline, bridge.StatusOffline},
	}
	for i, st := range steps {
		if _, after := s.setResource("u@x", st.res, st.status); after != st.after {
			t.Fatalf("step %d: combined %s, want %s", i, after, st.after)
		}
	}
	if len(s.knownUsers()) != 0 {
		t.Errorf("a user with no resources is still known: %v", s.knownUsers())
	}
}

func TestStyleBody(t *testing.T) {
	cases := []struct {
		in   bridge.Text
		want string
	}{
		{bridge.Text{Body: "plain *not bold*"}, "plain *not bold*"},
		{bridge.Text{Body: "hi", Bold: true}, "*hi*"},
		{bridge.Text{Body: "hi", Bold: true, Italic: true, Strike: true}, "*_~hi~_*"},
		{bridge.Text{Body: "  two\n\nlines ", Italic: true}, "  _two_\n\n_lines_ "},
		{bridge.Text{Body: "x", Underline: true}, "x"}, // XEP-0393 has no underline
	}
	for _, c := range cases {
		if got := styleBody(c.in); got != c.want {
			t.Errorf("styleBody(%+v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseStyling(t *testing.T) {
	cases := []struct {
		in   string
		want bridge.Text
	}{
		{"hello", bridge.Text{Body: "hello"}},
		{"*hello world*", bridge.Text{Body: "hello world", Bold: true}},
		{"*_~x~_*", bridge.Text{Body: "x", Bold: true, Italic: true, Strike: true}},
		{"_*both*_", bridge.Text{Body: "both", Bold: true, Italic: true}},
		{"*a* and *b*", bridge.Text{Body: "*a* and *b*"}},
		{"* spaced *", bridge.Text{Body: "* spaced *"}},
		{"*two\nlines*", bridge.Text{Body: "*two\nlines*"}},
		{"**", bridge.Text{Body: "**"}},
		{"***", bridge.Text{Body: "***"}},
		{"*_*x*_*", bridge.Text{Body: "*_*x*_*"}},
		{"2*3=6*", bridge.Text{Body: "2*3=6*"}},
	}
	for _, c := range cases {
		if got := parseStyling(c.in); got != c.want {
			t.Errorf("parseStyling(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
	// What the gateway writes, it reads back.
	for _, tx := range []bridge.Text{{Body: "x y", Bold: true}, {Body: "z", Italic: true, Strike: true}} {
		if got := parseStyling(styleBody(tx)); got != tx {
			t.Errorf("round trip of %+v gave %+v", tx, got)
		}
	}
}

func decodeNode(t *testing.T, s string) *node {
	t.Helper()
	n := &node{}
	if err := xml.Unmarshal([]byte(s), n); err != nil {
		t.Fatalf("decoding %s: %v", s, err)
	}
	return n
}

func TestParseRegistration(t *testing.T) {
	cases := []struct {
		xml      string
		want     registration
		wantCond string
	}{
		{`<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>
			<field var='FORM_TYPE'><value>jabber:iq:register</value></field>
			<field var='passport'><value> alice@hotmail.com </value></field>
			<field var='password'><value>p&amp;ss w0rd</value></field></x></query>`,
			registration{passport: "alice@hotmail.com", password: "p&ss w0rd"}, ""},
		{`<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>
			<field var='username'><value>bob@x.org</value></field>
			<field var='password'><value>pw</value></field></x></query>`,
			registration{passport: "bob@x.org", password: "pw"}, ""},
		{`<query xmlns='jabber:iq:register'><username>carol@x.org</username><password>pw</password></query>`,
			registration{passport: "carol@x.org", password: "pw"}, ""},
		{`<query xmlns='jabber:iq:register'><remove/></query>`, registration{remove: true}, ""},
		{`<query xmlns='jabber:iq:register'><username>carol@x.org</username></query>`, registration{}, "not-acceptable"},
		{`<query xmlns='jabber:iq:register'><username>nobody</username><password>pw</password></query>`, registration{}, "not-acceptable"},
		{`<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='cancel'/></query>`, registration{}, "bad-request"},
		{`<query xmlns='jabber:iq:register'/>`, registration{}, "not-acceptable"},
	}
	for i, c := range cases {
		got, e := parseRegistration(decodeNode(t, c.xml))
		if c.wantCond != "" {
			if e == nil || e.Cond.XMLName.Local != c.wantCond {
				t.Errorf("case %d: error %v, want %s", i, e, c.wantCond)
			}
			continue
		}
		if e != nil || got != c.want {
			t.Errorf("case %d: %+v, %v; want %+v", i, got, e, c.want)
		}
	}
}

func TestNodeLimits(t *testing.T) {
	deep := strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100)
	if err := xml.Unmarshal([]byte(deep), &node{}); err == nil {
		t.Error("a 100-deep stanza was accepted")
	}
	wide := "<a>" + strings.Repeat("<b/>", dom.MaxNodes+1) + "</a>"
	if err := xml.Unmarshal([]byte(wide), &node{}); err == nil {
		t.Error("a stanza with too many elements was accepted")
	}
}

// TestHostileTextIsEscaped: bodies, nicks and statuses go through
// encoding/xml, so markup in them stays text.
func TestHostileTextIsEscaped(t *testing.T) {
	hostile := `</body><body>x</body></message><iq type='set'><query xmlns='jabber:iq:roster'/></iq><![CDATA[ & ]]>`
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	err := enc.Encode(outMessage{Type: "chat", From: "a@b", To: "c@d", Body: hostile, Extra: []any{el(nsChatStates, "active")}})
	if err == nil {
		err = enc.Encode(outPresence{Type: "subscribe", From: "a@b", To: "c@d", Status: hostile, Nick: &nick{Value: hostile}})
	}
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&buf)
	var msg node
	if err := d.Decode(&msg); err != nil {
		t.Fatal(err)
	}
	if len(msg.All("", "body")) != 1 || msg.Child("", "body").Text() != hostile {
		t.Errorf("body not preserved as text: %+v", msg.Children)
	}
	if msg.Child(nsChatStates, "active") == nil {
		t.Error("chat state missing")
	}
	var pres node
	if err := d.Decode(&pres); err != nil {
		t.Fatal(err)
	}
	if pres.Child("", "status").Text() != hostile || pres.Child(nsNick, "nick").Text() != hostile {
		t.Errorf("presence text not preserved: %+v", pres.Children)
	}
	if tok, err := d.Token(); err == nil {
		t.Errorf("trailing element after the two stanzas: %v", tok)
	}
}

func TestSerialQueueOrderAndBound(t *testing.T) {
	var q serialQueue
	done := make(chan int, 10)
	block := make(chan struct{})
	q.push("u", func() { <-block })
	for i := range 5 {
		q.push("u", func() { done <- i })
	}
	// The queue holds one running and five waiting; fill it to the bound.
	n := 0
	for q.push("u", func() {}) {
		n++
		if n > maxQueued {
			t.Fatal("queue is unbounded")
		}
	}
	close(block)
	for want := range 5 {
		if got := <-done; got != want {
			t.Fatalf("ran %d, want %d", got, want)
		}
	}
}

// FuzzParseStyling: parsing never panics, only ever strips directives, and
// what the gateway writes for a parsed text parses back to the same text.
func FuzzParseStyling(f *testing.F) {
	for _, s := range []string{"*b*", "_*x*_", "*a* b *c*", "~\u00a0x~", "*\n*", "***"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		tx := parseStyling(body)
		if len(tx.Body) > len(body) || !strings.Contains(body, tx.Body) {
			t.Fatalf("parseStyling(%q) = %+v: body not a part of the input", body, tx)
		}
		if again := parseStyling(styleBody(tx)); again != tx {
			t.Fatalf("parseStyling(styleBody(%+v)) = %+v", tx, again)
		}
	})
}

// FuzzStanza: any XML a server could route to the gateway decodes within
// bounds or fails cleanly, and the payload parsers never panic on it.
func FuzzStanza(f *testing.F) {
	f.Add(`<iq type='set'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='passport'><value>a@b</value></field><field var='password'><value>p</value></field></x></query></iq>`)
	f.Add(`<message><body>hi</body><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`)
	f.Add(`<iq><query xmlns='jabber:iq:register'><remove/></query></iq>`)
	f.Add(`<iq type='result'><slot xmlns='urn:xmpp:http:upload:0'><put url='https://u/p'><header name='Authorization'>B</header></put><get url='https://u/g'/></slot></iq>`)
	f.Add(`<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='urn:xmpp:http:upload:0'/><x xmlns='jabber:x:data'><field var='FORM_TYPE'><value>urn:xmpp:http:upload:0</value></field><field var='max-file-size'><value>99</value></field></x></query></iq>`)
	f.Add(`<message><body>https://u/a.png</body><x xmlns='jabber:x:oob'><url>https://u/a.png</url></x></message>`)
	f.Add(`<iq type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`)
	f.Fuzz(func(t *testing.T, s string) {
		n := &node{}
		if err := xml.Unmarshal([]byte(s), n); err != nil {
			return
		}
		if slot, err := parseSlot(n); err == nil && (slot.PutURL == nil || slot.GetURL == nil) {
			t.Fatalf("a slot without URLs: %+v", slot)
		}
		if svc := parseUploadInfo("u", n.First()); svc != nil && svc.maxSize < 0 {
			t.Fatalf("negative limit: %+v", svc)
		}
		// An explicit (jabber:x:oob) link of another scheme is refused later,
		// to the user; a bare one must already be http(s).
		if link, explicit := fileLink(&inStanza{node: n}); link != "" && !explicit {
			if _, err := httpURL(link); err != nil {
				t.Fatalf("fileLink gave %q: %v", link, err)
			}
		}
		if name := safeFileName(n.Child("", "body").Text()); name == "" || strings.ContainsAny(name, "/\\\x00") || len(name) > maxFileName {
			t.Fatalf("safeFileName gave %q", name)
		}
		_ = errorOf(n)
		if q := n.First(); q != nil {
			_, _ = parseRegistration(q)
			if x := q.Child(nsData, "x"); x != nil {
				_ = formValues(x)
			}
		}
		_ = parseStyling(n.Child("", "body").Text())
	})
}
