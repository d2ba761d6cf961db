package bridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/store"
)

func testMediaStore(t *testing.T, maxSize int64) *mediaStore {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite3", filepath.Join(t.TempDir(), "b.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	dir := filepath.Join(t.TempDir(), "media")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return &mediaStore{dir: dir, maxSize: maxSize, retention: time.Hour, st: st, log: zerolog.Nop()}
}

var owner = UserID{Frontend: "matrix", ID: "@alice:example.org"}

func TestMediaStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	m := testMediaStore(t, 1<<20)
	data := bytes.Repeat([]byte("GIF89a but not really; "), 100)
	p, err := m.create(int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	// Written in pieces, as a transfer writes it.
	for i := 0; i < len(data); i += 700 {
		if _, err := p.Write(data[i:min(i+700, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	// Not visible under a real id before commit.
	entries, _ := os.ReadDir(m.dir)
	if len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), tmpPrefix) {
		t.Fatalf("while writing, the directory holds %v", entries)
	}
	mf, err := p.commit(ctx, owner, "../../etc/holiday.gif")
	if err != nil {
		t.Fatal(err)
	}
	if !validMediaID(mf.ID) || mf.Name != "holiday.gif" || mf.Size != int64(len(data)) || mf.MIME != "image/gif" {
		t.Fatalf("committed %+v", mf)
	}
	md, err := m.open(ctx, MediaID(mf.ID))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(md)
	_ = md.Close()
	if !bytes.Equal(got, data) || md.Name != "holiday.gif" || md.Size != int64(len(data)) || md.MIME != "image/gif" {
		t.Fatalf("opened %q %+v", got[:10], md)
	}
	entries, _ = os.ReadDir(m.dir)
	if len(entries) != 1 || entries[0].Name() != mf.ID {
		t.Fatalf("after commit, the directory holds %v", entries)
	}

	for _, bad := range []MediaID{"", "../b.db", MediaID(strings.ToUpper(mf.ID)), MediaID(newMediaID())} {
		if _, err := m.open(ctx, bad); !errors.Is(err, ErrNoSuchMedia) {
			t.Errorf("open(%q) = %v, want ErrNoSuchMedia", bad, err)
		}
	}
}

func TestMediaStoreRefusesMoreThanItsLimit(t *testing.T) {
	m := testMediaStore(t, 1<<20)
	p, err := m.create(10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, errTooLarge) {
		t.Fatalf("write past the limit: %v", err)
	}
	p.abort()
	if entries, _ := os.ReadDir(m.dir); len(entries) != 0 {
		t.Fatalf("abort left %v", entries)
	}
	off := testMediaStore(t, 0)
	if _, err := off.create(10); !errors.Is(err, ErrFilesDisabled) {
		t.Fatalf("create with files off: %v", err)
	}
}

func TestMediaSweepDeletesExpired(t *testing.T) {
	ctx := context.Background()
	m := testMediaStore(t, 1<<20)
	save := func(name string, age time.Duration) store.MediaFile {
		p, err := m.create(100)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = p.Write([]byte(name))
		mf, err := p.commit(ctx, owner, name)
		if err != nil {
			t.Fatal(err)
		}
		if age > 0 {
			// Age it in the index, the retention's clock.
			if err := m.st.Media.Delete(ctx, mf.ID); err != nil {
				t.Fatal(err)
			}
			mf.CreatedAt = time.Now().Add(-age)
			if err := m.st.Media.Put(ctx, mf); err != nil {
				t.Fatal(err)
			}
		}
		return mf
	}
	old := save("old.txt", 2*time.Hour)
	fresh := save("fresh.txt", 0)
	// An expired file is unreadable even before the sweep runs.
	if _, err := m.open(ctx, MediaID(old.ID)); !errors.Is(err, ErrNoSuchMedia) {
		t.Fatalf("open of an expired file: %v", err)
	}
	staleTmp := filepath.Join(m.dir, tmpPrefix+"crashed")
	liveTmp := filepath.Join(m.dir, tmpPrefix+"receiving")
	for _, f := range []string{staleTmp, liveTmp} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(staleTmp, time.Now().Add(-48*time.Hour), time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err := m.sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(m.dir, old.ID)); !os.IsNotExist(err) {
		t.Fatalf("expired file still on disk: %v", err)
	}
	if _, err := m.st.Media.Get(ctx, old.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired file still indexed: %v", err)
	}
	if _, err := os.Stat(staleTmp); !os.IsNotExist(err) {
		t.Fatal("a temporary file a crash left behind was kept")
	}
	if _, err := os.Stat(liveTmp); err != nil {
		t.Fatal("a file being received was deleted")
	}
	md, err := m.open(ctx, MediaID(fresh.ID))
	if err != nil {
		t.Fatalf("fresh file: %v", err)
	}
	_ = md.Close()
}

func TestSniffMIME(t *testing.T) {
	pngHead := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	for _, tc := range []struct {
		head       []byte
		name, want string
	}{
		{pngHead, "photo.png", "image/png"},
		{pngHead, "photo.txt", "image/png"}, // content wins for images
		{[]byte("hello there"), "notes.txt", "text/plain; charset=utf-8"},
		{[]byte("hello there"), "page.html", "text/html; charset=utf-8"},
		{[]byte("PK\x03\x04rest"), "report.pdf", "application/pdf"},
		{[]byte{0, 1, 2, 3, 0xff}, "binary.txt", "application/octet-stream"},
		{[]byte{0, 1, 2, 3, 0xff}, "noext", "application/octet-stream"},
		{[]byte("%PDF-1.4"), "x", "application/pdf"},
	} {
		if got := sniffMIME(tc.head, tc.name); got != tc.want {
			t.Errorf("sniffMIME(%q, %q) = %q, want %q", tc.head, tc.name, got, tc.want)
		}
	}
}

func TestCleanFileName(t *testing.T) {
	for in, want := range map[string]string{
		"photo.jpg": "photo.jpg", "../../etc/passwd": "passwd", `C:\Users\bob\cat.png`: "cat.png",
		"": "file", "..": "file", "a/": "file", "evil\u202Egpj.exe": "evilgpj.exe", "tab\tname": "tab name",
	} {
		if got := cleanFileName(in); got != want {
			t.Errorf("cleanFileName(%q) = %q, want %q", in, got, want)
		}
	}
}

func encodeTest(t *testing.T, format string, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{R: 200, G: 30, B: 30, A: 255})
		}
	}
	var b bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&b, img)
	case "jpeg":
		err = jpeg.Encode(&b, img, nil)
	case "gif":
		err = gif.Encode(&b, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestMakeDisplayPicture(t *testing.T) {
	for _, tc := range []struct {
		format string
		w, h   int
		// the opaque area the picture must cover, centred
		ow, oh int
	}{
		{"png", 300, 150, 96, 48},
		{"jpeg", 40, 80, 48, 96},
		{"gif", 10, 10, 96, 96},
		{"png", 96, 96, 96, 96},
	} {
		t.Run(fmt.Sprintf("%s_%dx%d", tc.format, tc.w, tc.h), func(t *testing.T) {
			out, err := makeDisplayPicture(encodeTest(t, tc.format, tc.w, tc.h))
			if err != nil {
				t.Fatal(err)
			}
			img, format, err := image.Decode(bytes.NewReader(out))
			if err != nil || format != "png" {
				t.Fatalf("output is %s: %v", format, err)
			}
			if img.Bounds() != image.Rect(0, 0, 96, 96) {
				t.Fatalf("output is %v", img.Bounds())
			}
			x0, y0 := (96-tc.ow)/2, (96-tc.oh)/2
			alpha := func(x, y int) uint32 { _, _, _, a := img.At(x, y).RGBA(); return a }
			if a := alpha(48, 48); a != 0xffff {
				t.Errorf("centre alpha %x, want opaque", a)
			}
			if r, _, _, _ := img.At(48, 48).RGBA(); r>>8 < 180 {
				t.Errorf("centre colour %v lost the red", img.At(48, 48))
			}
			if x0 > 1 && alpha(0, 48) != 0 {
				t.Errorf("left margin not transparent")
			}
			if y0 > 1 && alpha(48, 0) != 0 {
				t.Errorf("top margin not transparent")
			}
			if x0 > 1 && alpha(x0+1, 48) != 0xffff {
				t.Errorf("picture's left edge not opaque at x=%d", x0+1)
			}
		})
	}
}

func TestMakeDisplayPictureRefuses(t *testing.T) {
	// A tiny PNG that claims 100000×100000 pixels must be refused from its
	// header, before anything is allocated for its pixels.
	bomb := encodeTest(t, "png", 1, 1)
	hdr := bytes.Index(bomb, []byte("IHDR"))
	copy(bomb[hdr+4:], []byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})
	binary.BigEndian.PutUint32(bomb[hdr+17:], crc32.ChecksumIEEE(bomb[hdr:hdr+17]))
	if _, err := makeDisplayPicture(bomb); err == nil || !strings.Contains(err.Error(), "pixels") {
		t.Fatalf("decompression bomb: %v", err)
	}
	if _, err := makeDisplayPicture([]byte("<svg/>")); err == nil {
		t.Fatal("SVG accepted")
	}
	if _, err := makeDisplayPicture(make([]byte, maxPictureInput+1)); err == nil {
		t.Fatal("oversized input accepted")
	}
	if _, err := makeDisplayPicture(encodeTest(t, "png", 5000, 1)[:60]); err == nil {
		t.Fatal("truncated PNG accepted")
	}
}

func TestFileAndDeclinedQueueEncoding(t *testing.T) {
	f := File{Portal: "p", Sender: "bob@example.com", MSNID: "m", Name: "a.png", Size: 3, MIME: "image/png",
		Media: "00112233445566778899aabbccddeeff", Time: time.UnixMilli(1_700_000_000_000).UTC()}
	b, err := encodeEvent(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEvent(b)
	if err != nil || !reflect.DeepEqual(got, f) {
		t.Fatalf("file round trip: %#v, %v", got, err)
	}
	// Frontends test for a declined file with errors.Is: that must
	// survive the queue.
	wrapped := fmt.Errorf("%w: no answer", ErrFileDeclined)
	b, err = encodeEvent(DeliveryResult{Portal: "p", FrontendID: "$f", Err: wrapped})
	if err != nil {
		t.Fatal(err)
	}
	got, err = decodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	d := got.(DeliveryResult)
	if !errors.Is(d.Err, ErrFileDeclined) || d.Err.Error() != wrapped.Error() {
		t.Fatalf("declined result after the queue: %v (is declined: %v)", d.Err, errors.Is(d.Err, ErrFileDeclined))
	}
	b, _ = encodeEvent(DeliveryResult{Portal: "p", Err: errors.New("other")})
	got, _ = decodeEvent(b)
	if errors.Is(got.(DeliveryResult).Err, ErrFileDeclined) {
		t.Fatal("an unrelated error became ErrFileDeclined")
	}
}

// The directory is made with the first file, and a sweep before that is
// not an error.
func TestMediaDirMadeOnFirstFile(t *testing.T) {
	m := testMediaStore(t, 100)
	m.dir = filepath.Join(t.TempDir(), "not", "yet")
	if n, err := m.sweep(context.Background()); err != nil || n != 0 {
		t.Fatalf("sweep without the directory = %d, %v", n, err)
	}
	p, err := m.create(10)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = p.Write([]byte("x"))
	if _, err := p.commit(context.Background(), owner, "x"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(m.dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("media directory: %v, %v", fi, err)
	}
}

// FuzzMakeDisplayPicture: whatever a user gives as their picture, the core
// answers an error or a 96×96 PNG, never a panic or a huge allocation (the
// decoders only run once the header's size is checked).
func FuzzMakeDisplayPicture(f *testing.F) {
	img := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	for _, enc := range []func(io.Writer) error{
		func(w io.Writer) error { return png.Encode(w, img) },
		func(w io.Writer) error { return jpeg.Encode(w, img, nil) },
		func(w io.Writer) error { return gif.Encode(w, img, nil) },
	} {
		var b bytes.Buffer
		if err := enc(&b); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Add([]byte("GIF89a\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := makeDisplayPicture(data)
		if err != nil {
			return
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(out))
		if err != nil || format != "png" || cfg.Width != DisplayPictureSize || cfg.Height != DisplayPictureSize {
			t.Fatalf("output: %s %dx%d, %v", format, cfg.Width, cfg.Height, err)
		}
	})
}

// TestAvatarCachedIsRemembered: once the store has a picture, presence
// after presence does not ask it again (pictures are never removed); a
// picture it does not have is asked every time.
func TestAvatarCachedIsRemembered(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite3", filepath.Join(t.TempDir(), "b.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const have, missing = "0123456789abcdef0123456789abcdef01234567", "89abcdef0123456789abcdef0123456789abcdef"
	if err := st.Avatars.Put(ctx, store.Avatar{Hash: have, Data: []byte("png"), MIME: "image/png", FetchedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	f := &avatarFetcher{b: &Bridge{store: st}}
	if !f.cached(ctx, have) || f.cached(ctx, missing) {
		t.Fatal("cached disagrees with the store")
	}
	st.Close() // from here on, only what is remembered answers
	if !f.cached(ctx, have) {
		t.Error("a cached picture was asked of the store again")
	}
	if f.cached(ctx, missing) {
		t.Error("a picture the store never had counts as cached")
	}
}
