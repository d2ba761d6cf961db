package matrix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/bridge"
)

// testPNG is a w×h PNG.
func testPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		img.Set(x, x%h, color.RGBA{R: 200, G: uint8(x), B: 40, A: 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFileMessageType(t *testing.T) {
	for mime, want := range map[string]event.MessageType{
		"image/png":                event.MsgImage,
		"IMAGE/JPEG":               event.MsgImage,
		"video/mp4":                event.MsgVideo,
		"audio/ogg; codecs=opus":   event.MsgAudio,
		"application/pdf":          event.MsgFile,
		"":                         event.MsgFile,
		"text/plain; charset=utf8": event.MsgFile,
	} {
		if got := fileMessageType(mime); got != want {
			t.Errorf("%q: %s, want %s", mime, got, want)
		}
	}
}

func TestFileContent(t *testing.T) {
	mxc := id.ContentURI{Homeserver: "example.org", FileID: "abc"}
	c := fileContent(bridge.File{Name: "cat.png", Size: 1234, MIME: "image/png"}, mxc, 64, 48)
	if c.MsgType != event.MsgImage || c.Body != "cat.png" || c.FileName != "cat.png" || c.URL != "mxc://example.org/abc" {
		t.Fatalf("content %+v", c)
	}
	if c.Info == nil || c.Info.MimeType != "image/png" || c.Info.Size != 1234 || c.Info.Width != 64 || c.Info.Height != 48 {
		t.Fatalf("info %+v", c.Info)
	}
	c = fileContent(bridge.File{Size: 3}, mxc, 0, 0)
	if c.MsgType != event.MsgFile || c.Body != "file" || c.Info.MimeType != "application/octet-stream" || c.Info.Width != 0 {
		t.Fatalf("nameless file: %+v %+v", c, c.Info)
	}
}

func TestImageSize(t *testing.T) {
	data := testPNG(t, 37, 21)
	r := bytes.NewReader(data)
	w, h, ok := imageSize(r)
	if !ok || w != 37 || h != 21 {
		t.Fatalf("imageSize = %d×%d %v", w, h, ok)
	}
	if pos, _ := r.Seek(0, 1); pos != 0 {
		t.Fatalf("reader left at %d, want rewound", pos)
	}
	if _, _, ok := imageSize(bytes.NewReader([]byte("not an image at all"))); ok {
		t.Fatal("garbage has a size")
	}
}

func TestCleanFileName(t *testing.T) {
	long := strings.Repeat("é", 150) + ".jpeg"
	for _, tc := range []struct {
		in   string
		typ  event.MessageType
		want string
	}{
		{"photo.jpg", event.MsgImage, "photo.jpg"},
		{"../../etc/passwd", event.MsgFile, "passwd"},
		{`C:\Users\bob\report.pdf`, event.MsgFile, "report.pdf"},
		{"a\x00b\u202ec.txt", event.MsgFile, "abc.txt"},
		{"", event.MsgImage, "image"},
		{"  ", event.MsgAudio, "audio"},
		{"/", event.MsgFile, "file"},
		{"..", event.MsgVideo, "video"},
	} {
		if got := cleanFileName(tc.in, tc.typ); got != tc.want {
			t.Errorf("cleanFileName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	got := cleanFileName(long, event.MsgImage)
	if len(got) > maxFileNameBytes || !strings.HasSuffix(got, ".jpeg") || !strings.HasPrefix(got, "é") {
		t.Errorf("long name cut to %q (%d bytes)", got, len(got))
	}
	if !strings.HasPrefix(strings.TrimSuffix(got, ".jpeg"), "éé") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("long name cut inside a character: %q", got)
	}
}

func TestIsFileMessage(t *testing.T) {
	msg := func(typ event.MessageType) *event.MessageEventContent {
		return &event.MessageEventContent{MsgType: typ, Body: "x", URL: "mxc://a/b"}
	}
	evt := &event.Event{Type: event.EventMessage}
	for _, typ := range []event.MessageType{event.MsgImage, event.MsgFile, event.MsgVideo, event.MsgAudio} {
		if !isFileMessage(evt, msg(typ)) {
			t.Errorf("%s is not a file", typ)
		}
	}
	if isFileMessage(evt, msg(event.MsgText)) {
		t.Error("text is a file")
	}
	edit := msg(event.MsgImage)
	edit.RelatesTo = &event.RelatesTo{Type: event.RelReplace, EventID: "$x"}
	if isFileMessage(evt, edit) {
		t.Error("an edit is a new file")
	}
	if isFileMessage(&event.Event{Type: event.EventSticker}, msg(event.MsgImage)) {
		t.Error("a sticker is a file transfer")
	}
}

func TestDeliveryNotice(t *testing.T) {
	f, err := New(testConfig(), newFakeCore(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	f.rememberFileSend("$file1", "cat.png")
	f.rememberFileSend("$file2", "doc.pdf")
	if text, failed := f.deliveryNotice(bridge.DeliveryResult{FrontendID: "$file1", Err: fmt.Errorf("wrapped: %w", bridge.ErrFileDeclined)}); !failed || !strings.Contains(text, "did not accept your file cat.png") {
		t.Errorf("declined file: %q %v", text, failed)
	}
	if text, failed := f.deliveryNotice(bridge.DeliveryResult{FrontendID: "$file2", Err: errors.New("switchboard closed")}); !failed || !strings.Contains(text, "file doc.pdf could not be delivered") || !strings.Contains(text, "switchboard closed") {
		t.Errorf("failed file: %q %v", text, failed)
	}
	// Each result is consumed: a later message with the same ID reads as a message.
	if text, _ := f.deliveryNotice(bridge.DeliveryResult{FrontendID: "$file1", Err: errors.New("boom")}); !strings.Contains(text, "Your message could not be delivered") {
		t.Errorf("message failure: %q", text)
	}
	f.rememberFileSend("$file3", "ok.txt")
	if _, failed := f.deliveryNotice(bridge.DeliveryResult{FrontendID: "$file3"}); failed {
		t.Error("success reported as a failure")
	}
	if _, ok := f.forgetFileSend("$file3"); ok {
		t.Error("a delivered file is still pending")
	}
	for i := range maxPendingFileSends + 10 {
		f.rememberFileSend(id.EventID(fmt.Sprintf("$many%d", i)), "x")
	}
	f.mu.Lock()
	n := len(f.fileSends)
	f.mu.Unlock()
	if n > maxPendingFileSends {
		t.Errorf("%d pending file sends kept, want at most %d", n, maxPendingFileSends)
	}
}

// The decisions that need no homeserver: an unchanged avatar is not
// applied again, a removed one clears the display picture once, and a user
// who never had one is left alone.
func TestUserDisplayPictureWithoutDownload(t *testing.T) {
	core := newFakeCore()
	f, err := New(testConfig(), core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	alice := id.UserID("@alice:example.org")
	key := Kind + "/" + userDPKeyPrefix + alice.String()

	f.userDisplayPicture(ctx, alice, id.ContentURI{})
	if n := core.count("SetDisplayPicture"); n != 0 {
		t.Fatalf("no avatar ever: %d SetDisplayPicture calls", n)
	}
	core.mu.Lock()
	core.values[key] = "alice@example.com mxc://example.org/pic"
	core.mu.Unlock()
	f.userDisplayPicture(ctx, alice, id.ContentURI{Homeserver: "example.org", FileID: "pic"})
	if n := core.count("SetDisplayPicture"); n != 0 {
		t.Fatalf("unchanged avatar applied again: %d calls", n)
	}
	f.userDisplayPicture(ctx, alice, id.ContentURI{})
	f.userDisplayPicture(ctx, alice, id.ContentURI{})
	core.mu.Lock()
	pics := append([]fakePicture(nil), core.pictures...)
	stored := core.values[key]
	core.mu.Unlock()
	if len(pics) != 1 || pics[0].Image != nil || pics[0].User != alice.String() {
		t.Fatalf("removing the avatar: %+v, want one clear", pics)
	}
	if stored != "alice@example.com " {
		t.Fatalf("stored %q after clearing", stored)
	}
	// Another account's picture is not this account's to clear.
	core.mu.Lock()
	core.values[key] = "old@example.com mxc://example.org/pic"
	core.mu.Unlock()
	f.userDisplayPicture(ctx, alice, id.ContentURI{})
	if n := core.count("SetDisplayPicture"); n != 1 {
		t.Fatalf("cleared a picture given to another account: %d calls", n)
	}
	// Users without permission are ignored.
	core.mu.Lock()
	core.perms["@eve:example.org"] = bridge.PermissionNone
	core.values[Kind+"/"+userDPKeyPrefix+"@eve:example.org"] = "alice@example.com mxc://example.org/pic"
	core.mu.Unlock()
	f.userDisplayPicture(ctx, "@eve:example.org", id.ContentURI{})
	if n := core.count("SetDisplayPicture"); n != 1 {
		t.Fatalf("a user without permission changed a picture: %d calls", n)
	}
}

// A picture already uploaded is reused by hash, without reading the cache
// or uploading again.
func TestAvatarMXCReusesUpload(t *testing.T) {
	core := newFakeCore()
	f, err := New(testConfig(), core, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	core.mu.Lock()
	core.values[Kind+"/"+avatarKeyPrefix+"abcd"] = "mxc://example.org/uploaded"
	core.mu.Unlock()
	mxc, err := f.avatarMXC(context.Background(), "abcd")
	if err != nil || mxc.String() != "mxc://example.org/uploaded" {
		t.Fatalf("avatarMXC = %v, %v", mxc, err)
	}
	if n := core.count("Avatar "); n != 0 {
		t.Fatalf("the cache was read %d times for an uploaded picture", n)
	}
	if _, err := f.avatarMXC(context.Background(), "ffff"); !errors.Is(err, bridge.ErrNoSuchMedia) {
		t.Fatalf("missing picture: %v, want ErrNoSuchMedia", err)
	}
}

func TestSetMaxFileSize(t *testing.T) {
	f, err := New(testConfig(), newFakeCore(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if got := f.fileSizeLimit(); got != DefaultMaxFileSize {
		t.Fatalf("default limit %d", got)
	}
	f.SetMaxFileSize(1234)
	if got := f.fileSizeLimit(); got != 1234 {
		t.Fatalf("limit %d, want 1234", got)
	}
	f.SetMaxFileSize(0)
	if got := f.fileSizeLimit(); got != DefaultMaxFileSize {
		t.Fatalf("limit %d after reset", got)
	}
	if err := tooLarge(3<<20, 1<<20); !strings.Contains(err.Error(), "3.0 MiB") || !strings.Contains(err.Error(), "1.0 MiB") {
		t.Errorf("tooLarge wording: %v", err)
	}
}

// oldMediaServer answers media downloads like a homeserver from before
// authenticated media (spec v1.11): the v1 endpoint is unknown, the legacy
// one serves the file. It is a unit test of the fallback only; the
// integration tests use Dendrite, which has both.
func oldMediaServer(t *testing.T, content []byte, hasV1 bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var v1Calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer as-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/_matrix/client/v1/media/download/example.org/abc":
			v1Calls.Add(1)
			if hasV1 {
				_, _ = w.Write(content)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
		case "/_matrix/media/v3/download/example.org/abc":
			_, _ = w.Write(content)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"errcode":"M_NOT_FOUND","error":"no such media"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &v1Calls
}

func TestDownloadFallsBackToLegacyMedia(t *testing.T) {
	content := []byte("the picture bytes")
	mxc := id.ContentURI{Homeserver: "example.org", FileID: "abc"}
	for _, hasV1 := range []bool{true, false} {
		srv, v1Calls := oldMediaServer(t, content, hasV1)
		cfg := testConfig()
		cfg.HomeserverURL = srv.URL
		f, err := New(cfg, newFakeCore(), zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.downloadBounded(context.Background(), mxc, 1024)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("v1 %v: downloaded %q, %v", hasV1, got, err)
		}
		if v1Calls.Load() != 1 {
			t.Errorf("v1 %v: authenticated media asked %d times, want first and once", hasV1, v1Calls.Load())
		}
		if _, err := f.downloadBounded(context.Background(), mxc, int64(len(content)-1)); !errors.Is(err, errTooLarge) {
			t.Errorf("v1 %v: a file over the limit gave %v", hasV1, err)
		}
		if _, err := f.downloadBounded(context.Background(), id.ContentURI{Homeserver: "example.org", FileID: "gone"}, 1024); !errors.Is(err, mautrix.MNotFound) {
			t.Errorf("v1 %v: missing media gave %v, want M_NOT_FOUND", hasV1, err)
		}
	}
}
