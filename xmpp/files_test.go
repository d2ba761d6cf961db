package xmpp

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmpp/jid"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
)

// mediaCore is a core holding media and pictures in memory and recording
// the files given to SendFile.
type mediaCore struct {
	nilCore
	media    map[bridge.MediaID]bridge.Media
	data     map[bridge.MediaID][]byte
	avatars  map[string][]byte
	sendErr  error
	mu       sync.Mutex
	sent     []bridge.OutgoingFile
	sentData [][]byte
}

func (c *mediaCore) Permission(bridge.UserID) bridge.Permission { return bridge.PermissionUser }

func (c *mediaCore) OpenMedia(_ context.Context, id bridge.MediaID) (*bridge.Media, error) {
	m, ok := c.media[id]
	if !ok {
		return nil, bridge.ErrNoSuchMedia
	}
	m.ReadSeekCloser = nopCloser{bytes.NewReader(c.data[id])}
	return &m, nil
}

func (c *mediaCore) Avatar(_ context.Context, hash string) ([]byte, string, error) {
	d, ok := c.avatars[hash]
	if !ok {
		return nil, "", bridge.ErrNoSuchMedia
	}
	return d, "image/png", nil
}

func (c *mediaCore) SendFile(_ context.Context, _ bridge.UserID, _ bridge.PortalID, f bridge.OutgoingFile) error {
	if c.sendErr != nil {
		return c.sendErr
	}
	// Like the core: never more than Size bytes, and all of them.
	data, err := io.ReadAll(io.LimitReader(f.Data, f.Size+1))
	if err != nil {
		return err
	}
	if int64(len(data)) != f.Size {
		return errors.New("size mismatch")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, f)
	c.sentData = append(c.sentData, data)
	return nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func newMediaGateway(t *testing.T, core bridge.Core, allowPrivate bool) *Gateway {
	t.Helper()
	g, err := New(config.XMPP{JID: "msn.example.org", Server: "127.0.0.1:5347", Secret: "s", AllowPrivateURLs: allowPrivate}, core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestMediaHandler(t *testing.T) {
	modTime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	core := &mediaCore{
		media: map[bridge.MediaID]bridge.Media{
			"abc123": {Name: "photo of us.jpg", Size: 10, MIME: "image/jpeg", ModTime: modTime},
			"html1":  {Name: "page.html", Size: 13, MIME: "text/html; charset=utf-8", ModTime: modTime},
		},
		data: map[bridge.MediaID][]byte{"abc123": []byte("0123456789"), "html1": []byte("<script>x</sc")},
	}
	g := newMediaGateway(t, core, false)
	if _, err := g.MediaHandler("ftp://x"); err == nil {
		t.Error("an ftp public URL was accepted")
	}
	h, err := g.MediaHandler("https://bridge.example.org/msn/")
	if err != nil {
		t.Fatal(err)
	}
	link := mediaURL(g.publicURL(), "abc123", "photo of us.jpg")
	if link != "https://bridge.example.org/msn/media/abc123/photo%20of%20us.jpg" {
		t.Fatalf("media URL %s", link)
	}
	get := func(method, path string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := get("GET", "/media/abc123/photo%20of%20us.jpg")
	if w.Code != 200 || w.Body.String() != "0123456789" {
		t.Fatalf("GET: %d %q", w.Code, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); ct != "image/jpeg" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := w.Header().Get("Content-Disposition"); cd != `inline; filename="photo of us.jpg"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
	w = get("GET", "/media/abc123/x.jpg", "Range", "bytes=2-4")
	if w.Code != http.StatusPartialContent || w.Body.String() != "234" {
		t.Errorf("range: %d %q", w.Code, w.Body.String())
	}
	w = get("HEAD", "/media/abc123/x.jpg")
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "10" {
		t.Errorf("HEAD: %d %q %q", w.Code, w.Body.String(), w.Header().Get("Content-Length"))
	}
	w = get("GET", "/media/html1/page.html")
	if cd := w.Header().Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") || w.Header().Get("Content-Type") != "text/html" {
		t.Errorf("HTML is served as %q, %q; want an attachment", w.Header().Get("Content-Type"), cd)
	}
	for _, p := range []string{"/media/", "/media/abc123/", "/media/abc123", "/media/nope/x.jpg", "/media/..%2F..%2Fetc/passwd", "/media/a%20b/x"} {
		if w := get("GET", p); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
	if w := get("PUT", "/media/abc123/x.jpg"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", w.Code)
	}
}

func TestSafeFileName(t *testing.T) {
	cases := map[string]string{
		"photo.jpg":              "photo.jpg",
		"../../etc/passwd":       ".._.._etc_passwd",
		"a\\b\x00c\nd":           "a_b_c_d",
		"  ":                     "file",
		"..":                     "file",
		"\xff\xfe.png":           "_.png",
		strings.Repeat("é", 150): strings.Repeat("é", 100),
	}
	for in, want := range cases {
		if got := safeFileName(in); got != want {
			t.Errorf("safeFileName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFileLink(t *testing.T) {
	cases := []struct {
		stanza   string
		link     string
		explicit bool
	}{
		{`<message><body>https://up.example.org/a/b/cat.jpg</body><x xmlns='jabber:x:oob'><url>https://up.example.org/a/b/cat.jpg</url></x></message>`, "https://up.example.org/a/b/cat.jpg", true},
		{`<message><body>look</body><x xmlns='jabber:x:oob'><url> http://x.org/f </url></x></message>`, "http://x.org/f", true},
		{`<message><body>https://up.example.org/a/cat.jpg</body></message>`, "https://up.example.org/a/cat.jpg", false},
		{`<message><body>https://example.org/</body></message>`, "", false},
		{`<message><body>https://example.org/news/article.html</body></message>`, "", false},
		{`<message><body>see https://up.example.org/a/cat.jpg</body></message>`, "", false},
		{`<message><body>ftp://up.example.org/cat.jpg</body></message>`, "", false},
		{`<message><body>hello.jpg</body></message>`, "", false},
	}
	for _, c := range cases {
		st := &inStanza{node: decodeNode(t, c.stanza)}
		link, explicit := fileLink(st)
		if link != c.link || explicit != c.explicit {
			t.Errorf("fileLink(%s) = %q, %v; want %q, %v", c.stanza, link, explicit, c.link, c.explicit)
		}
	}
}

func TestParseUploadInfo(t *testing.T) {
	q := decodeNode(t, `<query xmlns='http://jabber.org/protocol/disco#info'>
		<identity category='store' type='file'/><feature var='urn:xmpp:http:upload:0'/>
		<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>
		<field var='max-file-size'><value>5242880</value></field></x></query>`)
	svc := parseUploadInfo("upload.example.org", q)
	if svc == nil || svc.jid != "upload.example.org" || svc.maxSize != 5242880 {
		t.Fatalf("service %+v", svc)
	}
	q = decodeNode(t, `<query xmlns='http://jabber.org/protocol/disco#info'><feature var='urn:xmpp:http:upload:0'/></query>`)
	if svc := parseUploadInfo("u", q); svc == nil || svc.maxSize != 0 {
		t.Errorf("no limit: %+v", svc)
	}
	q = decodeNode(t, `<query xmlns='http://jabber.org/protocol/disco#info'><feature var='http://jabber.org/protocol/muc'/></query>`)
	if svc := parseUploadInfo("conference", q); svc != nil {
		t.Errorf("a MUC service taken for upload: %+v", svc)
	}
}

func TestParseSlot(t *testing.T) {
	iq := decodeNode(t, `<iq type='result'><slot xmlns='urn:xmpp:http:upload:0'>
		<put url='https://up.example.org/put/1/a.jpg'><header name='Authorization'>Bearer t0k</header><header name='Host'>evil</header><header name='cookie'>c=1</header></put>
		<get url='https://up.example.org/get/1/a.jpg'/></slot></iq>`)
	s, err := parseSlot(iq)
	if err != nil {
		t.Fatal(err)
	}
	if s.PutURL.String() != "https://up.example.org/put/1/a.jpg" || s.GetURL.String() != "https://up.example.org/get/1/a.jpg" {
		t.Errorf("URLs %s %s", s.PutURL, s.GetURL)
	}
	if s.Header.Get("Authorization") != "Bearer t0k" || s.Header.Get("Cookie") != "c=1" || s.Header.Get("Host") != "" {
		t.Errorf("headers %v", s.Header)
	}
	for _, bad := range []string{
		`<iq type='result'/>`,
		`<iq><slot xmlns='urn:xmpp:http:upload:0'><put url='file:///etc/passwd'/><get url='https://x/y'/></slot></iq>`,
		`<iq><slot xmlns='urn:xmpp:http:upload:0'><put url='https://x/y'/><get url='javascript:alert(1)'/></slot></iq>`,
	} {
		if _, err := parseSlot(decodeNode(t, bad)); err == nil {
			t.Errorf("slot accepted: %s", bad)
		}
	}
}

func TestAvatarInPresence(t *testing.T) {
	g := newMediaGateway(t, &mediaCore{}, false)
	const user = "u@example.org"
	encode := func(c bridge.Contact) string {
		g.state.setPresence(user, c)
		p, err := g.contactPresence(user, c)
		if err != nil {
			t.Fatal(err)
		}
		b, err := xml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	bob := bridge.Contact{Passport: "bob@x.org", Status: bridge.StatusOnline}
	if got := encode(bob); !strings.Contains(got, `<x xmlns="vcard-temp:x:update"></x>`) {
		t.Errorf("unknown picture: %s", got)
	}
	bob.Avatar = "0a1b"
	if got := encode(bob); !strings.Contains(got, `<x xmlns="vcard-temp:x:update"><photo>0a1b</photo></x>`) {
		t.Errorf("picture: %s", got)
	}
	bob.Avatar = ""
	if got := encode(bob); !strings.Contains(got, `<x xmlns="vcard-temp:x:update"><photo></photo></x>`) {
		t.Errorf("picture removed: %s", got)
	}
	bob.Status = bridge.StatusOffline
	if got := encode(bob); strings.Contains(got, "vcard-temp") {
		t.Errorf("unavailable presence with a photo: %s", got)
	}
	// Other events do not speak for the picture.
	bob.Status, bob.Avatar = bridge.StatusOnline, "0a1b"
	encode(bob)
	bob.Avatar = ""
	g.state.setContact(user, bob)
	if c, _ := g.state.contact(user, "bob@x.org"); c.Avatar != "0a1b" || g.state.avatarGone(user, "bob@x.org") {
		t.Errorf("a contact change without a picture dropped it: %+v", c)
	}
}

func TestVCardPhoto(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\nfake")
	g := newMediaGateway(t, &mediaCore{avatars: map[string][]byte{"h1": png, "big": make([]byte, maxPhoto+1)}}, false)
	p := g.photo("h1")
	if p == nil || p.Type != "image/png" || p.BinVal != "iVBORw0KGgpmYWtl" {
		t.Fatalf("photo %+v", p)
	}
	if g.photo("") != nil || g.photo("unknown") != nil || g.photo("big") != nil {
		t.Error("a photo for no, an unknown or a too large picture")
	}
}

func TestIQWaitersCheckSender(t *testing.T) {
	var w iqWaiters
	ch := w.add("id1", "upload.example.org")
	if w.deliver(jid.MustParse("mallory@example.org"), decodeNode(t, `<iq id='id1' type='result'/>`)) {
		t.Fatal("an answer from another JID was taken")
	}
	if !w.deliver(jid.MustParse("upload.example.org"), decodeNode(t, `<iq id='id1' type='error'><error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no</text></error></iq>`)) {
		t.Fatal("the answer was not taken")
	}
	if e := errorOf(<-ch); e.Condition != "forbidden" || e.Text != "no" || e.Type != "auth" {
		t.Errorf("error %+v", e)
	}
	if w.deliver(jid.MustParse("upload.example.org"), decodeNode(t, `<iq id='id1' type='result'/>`)) {
		t.Error("a second answer was taken")
	}
}

// TestSendLinked: a linked file is fetched and reaches Core.SendFile whole,
// with its name and type; links into the bridge's network are refused
// unless allowed, and so are redirects away from http(s).
func TestSendLinked(t *testing.T) {
	payload := bytes.Repeat([]byte("msn"), 5000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/up/abc/holiday%20pic.png", "/up/abc/holiday pic.png":
			w.Header().Set("Content-Type", "image/png")
			w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
			_, _ = w.Write(payload)
		case "/chunked.bin":
			_, _ = w.Write(payload)
		case "/named":
			w.Header().Set("Content-Disposition", `attachment; filename="report.pdf"`)
			w.Header().Set("Content-Type", "application/pdf")
			_, _ = w.Write(payload[:10])
		case "/page.jpg":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte("<html>a page about a picture</html>"))
		case "/ftp":
			http.Redirect(w, r, "ftp://example.org/x", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	st := &inStanza{node: decodeNode(t, `<message id='m1'/>`), from: jid.MustParse("u@example.org/pc"),
		to: jid.MustParse(`bob\40x.org@msn.example.org`), user: bridge.UserID{Frontend: Kind, ID: "u@example.org"}}
	portal := bridge.Portal{ID: "p1", Contact: "bob@x.org"}
	ctx := context.Background()

	core := &mediaCore{}
	g := newMediaGateway(t, core, true)
	if err := g.sendLinked(ctx, st, portal, srv.URL+"/up/abc/holiday%20pic.png", false); err != nil {
		t.Fatal(err)
	}
	if err := g.sendLinked(ctx, st, portal, srv.URL+"/named", true); err != nil {
		t.Fatal(err)
	}
	if len(core.sent) != 2 {
		t.Fatalf("%d files sent", len(core.sent))
	}
	if f := core.sent[0]; f.Name != "holiday pic.png" || f.MIME != "image/png" || f.Size != int64(len(payload)) || !bytes.Equal(core.sentData[0], payload) || f.FrontendID == "" {
		t.Errorf("first file %+v", f)
	}
	if f := core.sent[1]; f.Name != "report.pdf" || f.MIME != "application/pdf" {
		t.Errorf("second file %+v", f)
	}
	if p, ok := g.state.takePending(st.user.ID, core.sent[0].FrontendID); !ok || p.file != "holiday pic.png" || p.id != "m1" {
		t.Errorf("pending %+v %v", p, ok)
	}
	for _, bad := range []string{srv.URL + "/missing.png", srv.URL + "/ftp", srv.URL + "/chunked.bin"} {
		if err := g.sendLinked(ctx, st, portal, bad, true); err == nil {
			t.Errorf("%s: sent", bad)
		}
	}
	// A bare link in a body that is a web page, or broken, is no file: the
	// caller sends it as text.
	for _, page := range []string{srv.URL + "/page.jpg", srv.URL + "/missing.png"} {
		if err := g.sendLinked(ctx, st, portal, page, false); !errors.Is(err, errNotAFile) {
			t.Errorf("bare link %s: %v, want errNotAFile", page, err)
		}
	}
	if err := g.sendLinked(ctx, st, portal, srv.URL+"/page.jpg", true); err != nil {
		t.Errorf("an explicit link to HTML is still a file: %v", err)
	}
	core.sendErr = errors.New("file too large")
	if err := g.sendLinked(ctx, st, portal, srv.URL+"/named", true); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("core refusal: %v", err)
	}

	strict := newMediaGateway(t, &mediaCore{}, false)
	err := strict.sendLinked(ctx, st, portal, srv.URL+"/named", true)
	if !errors.Is(err, errPrivateAddress) {
		t.Errorf("loopback link: %v, want errPrivateAddress", err)
	}
}
