package bridge

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // display pictures users give come as PNG, JPEG or GIF
	_ "image/jpeg"
	"image/png"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/image/draw"

	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/store"
)

// This file is display pictures: contacts' (fetched over MSN P2P, cached
// by content in the store, reported as Contact.Avatar) and the user's own
// (made a 96×96 PNG, kept in the store, applied at every sign-in).

// avatarFetchesPerLogin bounds the P2P fetches one login runs at once: each
// is a switchboard session with the contact, and a sign-in can announce
// hundreds of pictures at once.
const avatarFetchesPerLogin = 2

// avatarFetchTimeout bounds one fetch, from the INVITE to the last byte.
const avatarFetchTimeout = 2 * time.Minute

// avatarHash is the hex SHA-1 an msnobj promises its data has (its SHA1D,
// which is base64), or "" when obj is not a display picture the bridge
// fetches.
func avatarHash(obj msnp.MSNObject) string {
	if obj.Type != msnp.MSNObjectDisplayPicture || obj.Size <= 0 {
		return ""
	}
	sum, err := base64.StdEncoding.DecodeString(obj.SHA1D)
	if err != nil || len(sum) != sha1.Size {
		return ""
	}
	return hex.EncodeToString(sum)
}

// avatarWaiter is a login that wants a picture for one of its contacts.
type avatarWaiter struct {
	l        *login
	client   *msnp.Client
	passport string
	obj      msnp.MSNObject
}

// avatarFailure is a contact whose picture could not be fetched, and when
// to try again.
type avatarFailure struct {
	hash  string
	n     int
	until time.Time
}

// avatarFetcher fetches each picture once, whichever logins want it, and
// backs off from contacts whose pictures fail.
type avatarFetcher struct {
	b       *Bridge
	enabled bool
	maxSize int64
	fetches atomic.Int64 // fetches started, for tests
	running atomic.Int64 // fetches talking to MSN now
	peak    atomic.Int64 // the most running at once, for tests
	backoff time.Duration

	known      sync.Map // hashes the store has; see cached
	knownCount atomic.Int64

	mu       sync.Mutex
	inflight map[string][]avatarWaiter // by hash; the first waiter fetches
	failures map[string]avatarFailure  // by login id and passport
}

func newAvatarFetcher(b *Bridge, c config.DisplayPictures) *avatarFetcher {
	return &avatarFetcher{b: b, enabled: c.Enabled && c.MaxSize > 0, maxSize: int64(c.MaxSize), backoff: 30 * time.Second,
		inflight: map[string][]avatarWaiter{}, failures: map[string]avatarFailure{}}
}

// wanted is the hash of the picture obj names when the bridge shows it.
func (f *avatarFetcher) wanted(obj msnp.MSNObject) string {
	if !f.enabled || obj.Size > f.maxSize {
		return ""
	}
	return avatarHash(obj)
}

// cached reports whether the picture with hash is in the cache.
func (f *avatarFetcher) cached(ctx context.Context, hash string) bool {
	// Every presence with a picture asks (a sign-in's ILN burst, every
	// status change): pictures are never removed from the store, so a yes
	// is remembered and the store asked only until then.
	if _, ok := f.known.Load(hash); ok {
		return true
	}
	ok, err := f.b.store.Avatars.Has(ctx, hash)
	if err == nil && ok && f.knownCount.Load() < maxKnownAvatars {
		if _, dup := f.known.LoadOrStore(hash, struct{}{}); !dup {
			f.knownCount.Add(1)
		}
	}
	return err == nil && ok
}

// maxKnownAvatars bounds avatarFetcher.known (40-odd bytes a picture);
// past it, the store is asked.
const maxKnownAvatars = 1 << 16

func failureKey(l *login, passport string) string { return fmt.Sprintf("%d/%s", l.id, passport) }

// request makes sure the picture hash reaches w's login: at once when it is
// cached (from another login's fetch, say), after a fetch otherwise, never
// while the contact is backed off.
func (f *avatarFetcher) request(w avatarWaiter, hash string) {
	f.mu.Lock()
	if ws, ok := f.inflight[hash]; ok {
		f.inflight[hash] = append(ws, w)
		f.mu.Unlock()
		return
	}
	if fl, ok := f.failures[failureKey(w.l, w.passport)]; ok && fl.hash == hash && time.Now().Before(fl.until) {
		f.mu.Unlock()
		return
	}
	// Checked under the lock: a fetch stores its picture and leaves
	// inflight under it too, so no request falls between the two and
	// fetches the same picture again.
	ctx, cancel := context.WithTimeout(f.b.ctx, 5*time.Second)
	have := f.cached(ctx, hash)
	cancel()
	if have {
		f.mu.Unlock()
		w.l.avatarArrived(w.passport, hash)
		return
	}
	f.inflight[hash] = []avatarWaiter{w}
	f.mu.Unlock()
	f.fetches.Add(1)
	f.b.wg.Add(1)
	go func() {
		defer f.b.wg.Done()
		f.fetch(w, hash)
	}()
}

// cappedBuffer takes at most max bytes.
type cappedBuffer struct {
	bytes.Buffer
	max int64
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if int64(c.Len()+len(p)) > c.max {
		return 0, msnp.ErrP2PTooLarge
	}
	return c.Buffer.Write(p)
}

func (f *avatarFetcher) fetch(w avatarWaiter, hash string) {
	l := w.l
	ctx, cancel := context.WithTimeout(f.b.ctx, avatarFetchTimeout)
	defer cancel()
	err := func() error {
		select {
		case l.fetchSlots <- struct{}{}:
			defer func() { <-l.fetchSlots }()
		case <-ctx.Done():
			return ctx.Err()
		}
		n := f.running.Add(1)
		defer f.running.Add(-1)
		for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
		}
		limit := min(w.obj.Size, f.maxSize)
		buf := &cappedBuffer{max: limit}
		if err := w.client.FetchMSNObject(ctx, w.passport, w.obj, buf, limit); err != nil {
			return err
		}
		sum := sha1.Sum(buf.Bytes())
		if hex.EncodeToString(sum[:]) != hash {
			return msnp.ErrP2PCorrupt
		}
		mimeType := http.DetectContentType(buf.Bytes())
		if !strings.HasPrefix(mimeType, "image/") {
			return fmt.Errorf("the picture is not an image (%s)", mimeType)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer scancel()
		return f.b.store.Avatars.Put(sctx, store.Avatar{Hash: hash, Data: buf.Bytes(), MIME: mimeType, FetchedAt: time.Now()})
	}()
	f.mu.Lock()
	waiters := f.inflight[hash]
	delete(f.inflight, hash)
	key := failureKey(l, w.passport)
	var fl avatarFailure
	if err == nil {
		delete(f.failures, key)
	} else {
		fl = f.failures[key]
		if fl.hash != hash {
			fl = avatarFailure{hash: hash}
		}
		fl.n++
		fl.until = time.Now().Add(min(f.backoff<<min(fl.n-1, 7), time.Hour))
		f.failures[key] = fl
	}
	f.mu.Unlock()
	if err != nil {
		l.log.Info().Err(err).Str("contact", w.passport).Int("attempt", fl.n).Msg("could not fetch a display picture; will retry later")
		// Nothing else may ask again (a contact who does not change their
		// status), so the retry is scheduled; it gives up after a few.
		if fl.n < maxAvatarAttempts {
			time.AfterFunc(time.Until(fl.until), func() { l.retryAvatar(w.passport, w.obj, hash) })
		}
		// Others who waited for the same picture (another login, another
		// contact showing the same one) ask the contact they see: they
		// may answer.
		for _, o := range waiters {
			if o.l != l || o.passport != w.passport {
				f.request(o, hash)
			}
		}
		return
	}
	for _, o := range waiters {
		o.l.avatarArrived(o.passport, hash)
	}
}

// maxAvatarAttempts is how many times one picture is tried for a contact
// before only a presence change asks for it again.
const maxAvatarAttempts = 6

// retryAvatar asks again for a picture whose fetch failed, through the
// session of the moment, if the contact still shows it.
func (l *login) retryAvatar(passport string, obj msnp.MSNObject, hash string) {
	if l.b.ctx.Err() != nil || l.currentState() != LoginConnected {
		return
	}
	client := l.currentClient()
	l.mu.Lock()
	want, have := l.avatarWant[passport], l.seen[passport].Avatar
	l.mu.Unlock()
	if client == nil || want != hash || have == hash {
		return
	}
	l.b.avatars.request(avatarWaiter{l: l, client: client, passport: passport, obj: obj}, hash)
}

// avatarArrived reports a contact's picture once it is cached, if it is
// still the one they show.
func (l *login) avatarArrived(passport, hash string) {
	if l.b.loginOf(l.user) != l {
		return // logged out or replaced while the picture was fetched
	}
	l.presenceMu.Lock()
	defer l.presenceMu.Unlock()
	l.mu.Lock()
	c, ok := l.seen[passport]
	if !ok || l.avatarWant[passport] != hash || c.Avatar == hash {
		l.mu.Unlock()
		return
	}
	c.Avatar = hash
	l.seen[passport] = c
	l.mu.Unlock()
	// Under presenceMu, like storeSeen: the store keeps the picture of
	// the contact's last event.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := l.b.store.Contacts.SetAvatar(ctx, l.id, passport, hash)
	cancel()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		l.log.Warn().Err(err).Msg("could not store a contact's picture")
	}
	l.b.emit(l.user, Presence{Contact: c})
}

// contactAvatar is the Avatar a contact showing msnobj has now: its hash
// when the picture is cached, "" otherwise.
func (b *Bridge) contactAvatar(ctx context.Context, msnobj string) string {
	if msnobj == "" {
		return ""
	}
	obj, err := msnp.ParseMSNObject(msnobj)
	if err != nil {
		return ""
	}
	if hash := b.avatars.wanted(obj); hash != "" && b.avatars.cached(ctx, hash) {
		return hash
	}
	return ""
}

// Avatar implements Core.
func (b *Bridge) Avatar(ctx context.Context, hash string) ([]byte, string, error) {
	hash = strings.ToLower(hash)
	if len(hash) != 2*sha1.Size {
		return nil, "", ErrNoSuchMedia
	}
	a, err := b.store.Avatars.Get(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", ErrNoSuchMedia
	} else if err != nil {
		return nil, "", err
	}
	return a.Data, a.MIME, nil
}

// Limits on pictures users give as their display picture: the encoded
// file, and the decoded image (checked from the header before decoding, so
// that a small file cannot claim gigabytes of pixels).
const (
	maxPictureInput  = 16 << 20
	maxPicturePixels = 4096 * 4096
	maxPictureSide   = 16384
	// DisplayPictureSize is the side of the square PNG display pictures
	// the bridge makes: what MSN clients show and send themselves.
	DisplayPictureSize = 96
)

// makeDisplayPicture turns a PNG, JPEG or GIF into a 96×96 PNG: scaled to
// fit, aspect ratio kept, centred on a transparent background.
func makeDisplayPicture(data []byte) ([]byte, error) {
	if len(data) > maxPictureInput {
		return nil, fmt.Errorf("the picture is %s; the most the bridge takes is %s", HumanSize(int64(len(data))), HumanSize(maxPictureInput))
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, errors.New("the picture is not a PNG, JPEG or GIF image the bridge can read")
	}
	if format != "png" && format != "jpeg" && format != "gif" {
		return nil, fmt.Errorf("the picture is %s; the bridge takes PNG, JPEG or GIF", format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxPictureSide || cfg.Height > maxPictureSide ||
		int64(cfg.Width)*int64(cfg.Height) > maxPicturePixels {
		return nil, fmt.Errorf("the picture is %d×%d pixels; the most the bridge takes is %d pixels", cfg.Width, cfg.Height, maxPicturePixels)
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("the picture cannot be read: %w", err)
	}
	sb := src.Bounds()
	w, h := DisplayPictureSize, DisplayPictureSize
	if sb.Dx() > sb.Dy() {
		h = max(1, (sb.Dy()*DisplayPictureSize+sb.Dx()/2)/sb.Dx())
	} else if sb.Dy() > sb.Dx() {
		w = max(1, (sb.Dx()*DisplayPictureSize+sb.Dy()/2)/sb.Dy())
	}
	dst := image.NewNRGBA(image.Rect(0, 0, DisplayPictureSize, DisplayPictureSize))
	x0, y0 := (DisplayPictureSize-w)/2, (DisplayPictureSize-h)/2
	draw.CatmullRom.Scale(dst, image.Rect(x0, y0, x0+w, y0+h), src, sb, draw.Src, nil)
	var out bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&out, dst); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// SetDisplayPicture implements Core.
func (b *Bridge) SetDisplayPicture(ctx context.Context, user UserID, img []byte) error {
	if err := b.permitted(user); err != nil {
		return err
	}
	if !b.actionLimit.allow(user.String()) {
		return ErrRateLimited
	}
	var pic []byte
	if len(img) > 0 {
		var err error
		if pic, err = makeDisplayPicture(img); err != nil {
			return err
		}
	}
	if _, err := b.store.Users.Ensure(ctx, user.storeID(), int(b.perms.Of(user))); err != nil {
		return err
	}
	l := b.loginOf(user)
	if l == nil {
		return b.store.DisplayPictures.Set(ctx, user.storeID(), pic)
	}
	l.pictureMu.Lock()
	defer l.pictureMu.Unlock()
	if err := b.store.DisplayPictures.Set(ctx, user.storeID(), pic); err != nil {
		return err
	}
	// A session under way takes it now (msnp sends it with its next CHG,
	// or at once when online); a later one at its sign-in.
	if c := l.currentClient(); c != nil {
		// The picture is kept whatever MSN says now: a session that cannot
		// send it (it is going down) is followed by one that does.
		if _, err := c.SetDisplayPicture(ctx, pic); err != nil {
			l.log.Warn().Err(err).Msg("MSN did not take the user's display picture now; it is applied at the next sign-in")
		}
	}
	return nil
}

// applyDisplayPicture gives a new session the user's display picture, so
// that the first CHG carries it.
func (l *login) applyDisplayPicture(ctx context.Context, client *msnp.Client) {
	l.pictureMu.Lock()
	defer l.pictureMu.Unlock()
	pic, err := l.b.store.DisplayPictures.Get(ctx, l.user.storeID())
	if errors.Is(err, store.ErrNotFound) {
		return
	} else if err != nil {
		l.log.Warn().Err(err).Msg("could not read the user's display picture")
		return
	}
	if _, err := client.SetDisplayPicture(ctx, pic); err != nil {
		l.log.Warn().Err(err).Msg("MSN did not take the user's display picture")
	}
}
