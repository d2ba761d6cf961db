package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/store"
)

// This file is the media directory (bridge.files.dir): files received from
// MSN wait there for the frontends, files to MSN are copied there while
// they are offered. The bytes are on disk, streamed in and out; the store
// indexes them. A file becomes visible only whole: it is written under a
// temporary name and renamed.

// ErrFilesDisabled is returned when bridge.files.max_size is 0.
var ErrFilesDisabled = errors.New("file transfer is turned off on this bridge")

// errTooLarge is wrapped when a file is larger than allowed.
var errTooLarge = errors.New("the file is too large")

// tmpPrefix starts the names of files still being written.
const tmpPrefix = ".tmp-"

// mediaStore is the media directory and its index.
type mediaStore struct {
	dir       string
	maxSize   int64 // 0: file transfer is off
	retention time.Duration
	st        *store.Store
	log       zerolog.Logger
}

func newMediaID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// validMediaID tells an id newMediaID could have made from anything else,
// before it reaches the store or the file system.
func validMediaID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// pendingMedia is a file being written into the media directory. It
// refuses to grow past its limit.
type pendingMedia struct {
	m     *mediaStore
	f     *os.File
	n     int64
	limit int64
	head  []byte // the first bytes, for sniffing the type
}

// create starts a new file of at most limit bytes.
func (m *mediaStore) create(limit int64) (*pendingMedia, error) {
	if m.maxSize <= 0 {
		return nil, ErrFilesDisabled
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return nil, fmt.Errorf("the media directory cannot take the file: %w", err)
	}
	f, err := os.CreateTemp(m.dir, tmpPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("the media directory cannot take the file: %w", err)
	}
	return &pendingMedia{m: m, f: f, limit: limit}, nil
}

func (p *pendingMedia) Write(b []byte) (int, error) {
	if p.n+int64(len(b)) > p.limit {
		return 0, fmt.Errorf("%w: more than %s", errTooLarge, HumanSize(p.limit))
	}
	if len(p.head) < 512 {
		p.head = append(p.head, b[:min(len(b), 512-len(p.head))]...)
	}
	n, err := p.f.Write(b)
	p.n += int64(n)
	return n, err
}

// abort deletes the partial file.
func (p *pendingMedia) abort() {
	_ = p.f.Close()
	_ = os.Remove(p.f.Name())
}

// commit makes the file whole under its id and indexes it.
func (p *pendingMedia) commit(ctx context.Context, owner UserID, name string) (store.MediaFile, error) {
	if err := p.f.Sync(); err != nil {
		p.abort()
		return store.MediaFile{}, fmt.Errorf("writing the file: %w", err)
	}
	if err := p.f.Close(); err != nil {
		_ = os.Remove(p.f.Name())
		return store.MediaFile{}, fmt.Errorf("writing the file: %w", err)
	}
	id := newMediaID()
	if err := os.Rename(p.f.Name(), filepath.Join(p.m.dir, id)); err != nil {
		_ = os.Remove(p.f.Name())
		return store.MediaFile{}, fmt.Errorf("writing the file: %w", err)
	}
	name = cleanFileName(name)
	mf := store.MediaFile{ID: id, Owner: owner.storeID(), Name: name, Size: p.n,
		MIME: sniffMIME(p.head, name), Path: id, CreatedAt: time.Now()}
	if err := p.m.st.Media.Put(ctx, mf); err != nil {
		_ = os.Remove(filepath.Join(p.m.dir, id))
		return store.MediaFile{}, err
	}
	return mf, nil
}

// open opens an indexed file that has not expired.
func (m *mediaStore) open(ctx context.Context, id MediaID) (*Media, error) {
	if !validMediaID(string(id)) {
		return nil, ErrNoSuchMedia
	}
	mf, err := m.st.Media.Get(ctx, string(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSuchMedia
	} else if err != nil {
		return nil, err
	}
	if m.expired(mf) || mf.Path != filepath.Base(mf.Path) {
		return nil, ErrNoSuchMedia
	}
	f, err := os.Open(filepath.Join(m.dir, mf.Path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoSuchMedia
	} else if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &Media{ReadSeekCloser: f, Name: mf.Name, Size: fi.Size(), MIME: mf.MIME, ModTime: mf.CreatedAt}, nil
}

func (m *mediaStore) expired(mf store.MediaFile) bool {
	return time.Since(mf.CreatedAt) > m.retention
}

// remove deletes a file and its index entry.
func (m *mediaStore) remove(ctx context.Context, mf store.MediaFile) error {
	if mf.Path == filepath.Base(mf.Path) && mf.Path != "" {
		if err := os.Remove(filepath.Join(m.dir, mf.Path)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := m.st.Media.Delete(ctx, mf.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// sweep deletes the files older than the retention, and temporary files
// a crash left behind. It returns how many indexed files it deleted.
func (m *mediaStore) sweep(ctx context.Context) (int, error) {
	deleted := 0
	for {
		batch, err := m.st.Media.CreatedBefore(ctx, time.Now().Add(-m.retention), 100)
		if err != nil {
			return deleted, err
		}
		for _, mf := range batch {
			if err := m.remove(ctx, mf); err != nil {
				return deleted, err
			}
			deleted++
		}
		if len(batch) < 100 {
			break
		}
	}
	entries, err := os.ReadDir(m.dir)
	if errors.Is(err, os.ErrNotExist) {
		return deleted, nil // no file was ever stored
	} else if err != nil {
		return deleted, err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		// No transfer runs for a day: this one's process died.
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
			_ = os.Remove(filepath.Join(m.dir, e.Name()))
		}
	}
	return deleted, nil
}

// runSweeper sweeps now and then until ctx ends.
func (m *mediaStore) runSweeper(ctx context.Context) {
	every := min(max(m.retention/10, time.Minute), time.Hour)
	for {
		if n, err := m.sweep(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn().Err(err).Msg("could not delete expired files from the media directory")
		} else if n > 0 {
			m.log.Info().Int("files", n).Msg("deleted expired files from the media directory")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// cleanFileName makes a name from MSN or a frontend safe to show and to
// put in a URL path segment: no directories, no control characters.
func cleanFileName(name string) string {
	name = strings.ReplaceAll(cleanText(name, 200), "\\", "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	if name == "" || name == "." || name == ".." {
		return "file"
	}
	return name
}

// sniffMIME gives a file's type from its first bytes and its name. The
// content decides for what it recognises as media (so an image named
// .txt is still an image); otherwise the extension, which knows office
// formats that look like plain zip or text.
func sniffMIME(head []byte, name string) string {
	sniffed := http.DetectContentType(head)
	byExt := mime.TypeByExtension(strings.ToLower(filepath.Ext(name)))
	for _, p := range []string{"image/", "audio/", "video/", "application/pdf"} {
		if strings.HasPrefix(sniffed, p) {
			return sniffed
		}
	}
	if byExt == "" {
		return sniffed
	}
	if strings.HasPrefix(byExt, "text/") && sniffed == "application/octet-stream" {
		return sniffed // binary bytes named as text
	}
	return byExt
}

// HumanSize writes a size for people ("2.0 MiB"), for the core's notices
// and the frontends' messages alike.
func HumanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// OpenMedia implements Core.
func (b *Bridge) OpenMedia(ctx context.Context, id MediaID) (*Media, error) {
	return b.media.open(ctx, id)
}

func frontendKey(frontend, key string) string { return "frontend/" + frontend + "/" + key }

// FrontendValue implements Core.
func (b *Bridge) FrontendValue(ctx context.Context, frontend, key string) (string, error) {
	if frontend == "" || key == "" {
		return "", errors.New("bridge: a frontend value needs a frontend and a key")
	}
	v, err := b.store.KV.Get(ctx, frontendKey(frontend, key))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return v, err
}

// SetFrontendValue implements Core; "" deletes the value.
func (b *Bridge) SetFrontendValue(ctx context.Context, frontend, key, value string) error {
	if frontend == "" || key == "" {
		return errors.New("bridge: a frontend value needs a frontend and a key")
	}
	if value == "" {
		return b.store.KV.Delete(ctx, frontendKey(frontend, key))
	}
	return b.store.KV.Set(ctx, frontendKey(frontend, key), value)
}
