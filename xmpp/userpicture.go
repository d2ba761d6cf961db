package xmpp

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/msnbridge/msnbridge/bridge"
)

// The user's own avatar becomes their MSN display picture.
//
// XMPP clients announce their avatar with XEP-0153: a vcard-temp:x:update
// <photo/> in every available presence, holding the hex SHA-1 of the picture
// in their vCard (empty: no picture). The gateway receives the user's
// presence (to itself and to each contact JID, and from servers granting
// XEP-0356 presence privilege), so when the hash is one it has not applied
// to this MSN account it asks the user's server for their vCard, checks the
// PHOTO against the hash and gives it to Core.SetDisplayPicture.
//
// XEP-0084 (PEP avatars) is not watched separately: a component gets no PEP
// notifications without XEP-0356 "iq"/PEP support, which the mod_privilege
// of Prosody 0.12 does not forward. Prosody's mod_vcard_legacy bridges the
// two anyway: it adds the XEP-0153 hash of a user's PEP avatar to their
// presence and serves that avatar as the PHOTO of their vCard, so a
// PEP-only client (Conversations, Dino) reaches MSN through the same path.
//
// What was applied is remembered per user as "<passport> <hash>" in the
// core's frontend values (userPictureKeyPrefix), so that a restart does not
// fetch it again and a new MSN login gets the picture. A picture that cannot
// be used (too large, not an image) is remembered too and reported to the
// user once.

const (
	// userPictureKeyPrefix + bare JID → "<passport> <hash>" last applied.
	userPictureKeyPrefix = "userdp/"
	// maxUserPhotoBase64 bounds the BINVAL the gateway decodes. Servers
	// bound stanzas well below this (Prosody: 256 KiB from clients); the
	// core shrinks the picture to 96×96 anyway.
	maxUserPhotoBase64 = 8 << 20
	// defaultUserPictureInterval is the least time between two vCard
	// fetches for one user: a client changing its avatar in a loop costs
	// one fetch per interval, and only the latest hash is fetched.
	defaultUserPictureInterval = 10 * time.Second
	// userPictureRetry is how long a hash whose fetch failed (no answer, an
	// error, a photo not matching its hash) is left alone before a later
	// presence tries it again.
	userPictureRetry = time.Minute
	// maxPictureFetches bounds the vCard fetches under way at once over
	// all users (a first start with many users, each announcing a hash).
	maxPictureFetches = 4
)

// userPictures tracks, per user, the advertised hash waiting to be applied
// and the last one handled, with at most one worker per user.
type userPictures struct {
	mu      sync.Mutex
	users   map[string]*userPicture // bare JID →
	running sync.WaitGroup          // workers, for Run to wait on
	slots   chan struct{}           // one per fetch under way (maxPictureFetches)
}

type userPicture struct {
	want    string // the latest hash advertised, when pending
	pending bool
	busy    bool // a worker runs for this user
	// applying is the hash the worker is applying now, while inFlight.
	applying string
	inFlight bool

	done      string    // the last hash handled
	doneValid bool      // done is meaningful
	gen       int       // bumped when the login changes: a result under way is stale
	doneUntil time.Time // zero: for good; else retry done after this
	last      time.Time // when the last vCard fetch was made (rate limit)
}

// advertisedPhoto reads XEP-0153 from a presence: ok is false when the
// presence says nothing (no element, no <photo/>: the client is not ready
// to tell, or a malformed hash); hash "" means the user has no picture.
func advertisedPhoto(n *node) (hash string, ok bool) {
	x := n.Child(nsVCardX, "x")
	if x == nil {
		return "", false
	}
	p := x.Child("", "photo")
	if p == nil {
		return "", false
	}
	hash = strings.ToLower(strings.TrimSpace(p.Text()))
	if hash == "" {
		return "", true
	}
	if len(hash) != 2*sha1.Size {
		return "", false
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return "", false
	}
	return hash, true
}

// noteUserPhoto looks at an available presence of the user for their
// avatar, and starts (or updates) the user's worker when it is new.
func (g *Gateway) noteUserPhoto(st *inStanza) {
	hash, ok := advertisedPhoto(st.node)
	if !ok {
		return
	}
	p := &g.userPics
	p.mu.Lock()
	u := p.users[st.user.ID]
	if u != nil && ((u.pending && u.want == hash) || (!u.pending && u.inFlight && u.applying == hash) ||
		(!u.pending && u.doneValid && u.done == hash && (u.doneUntil.IsZero() || time.Now().Before(u.doneUntil)))) {
		p.mu.Unlock()
		return // every contact gets a copy of the same presence
	}
	p.mu.Unlock()
	// Users who may not use the gateway are not even remembered (with
	// XEP-0356 presence privilege, every user of the server sends here).
	if g.core.Permission(st.user) < bridge.PermissionUser {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.users == nil {
		p.users = make(map[string]*userPicture)
	}
	if u = p.users[st.user.ID]; u == nil {
		u = &userPicture{}
		p.users[st.user.ID] = u
	}
	u.want, u.pending = hash, true
	if !u.busy {
		u.busy = true
		p.running.Add(1)
		go g.userPictureWorker(st.user, u)
	}
}

// userLoginChanged makes the next hash the user announces be checked
// against the core again, even one handled already: it was handled for
// another (or no) MSN login. Called when a login connects.
func (g *Gateway) userLoginChanged(user bridge.UserID) {
	p := &g.userPics
	p.mu.Lock()
	defer p.mu.Unlock()
	if u := p.users[user.ID]; u != nil {
		u.doneValid = false
		u.gen++
	}
}

// forgetUserPicture drops what is known of the user's picture: their login
// is gone, and a new one gets the picture again.
func (g *Gateway) forgetUserPicture(ctx context.Context, user bridge.UserID) {
	g.userLoginChanged(user)
	if err := g.core.SetFrontendValue(ctx, Kind, userPictureKeyPrefix+user.ID, ""); err != nil {
		g.log.Debug().Err(err).Str("user", user.ID).Msg("could not forget the display picture state")
	}
}

// userPictureWorker applies the user's advertised hashes one at a time, no
// more often than the interval, the latest one only.
func (g *Gateway) userPictureWorker(user bridge.UserID, u *userPicture) {
	defer g.userPics.running.Done()
	p := &g.userPics
	defer func() {
		// A bug here must not take the whole frontend down.
		if r := recover(); r != nil {
			g.log.Error().Interface("panic", r).Str("user", user.ID).Msg("display picture worker panicked")
			p.mu.Lock()
			u.busy, u.pending, u.inFlight = false, false, false
			p.mu.Unlock()
		}
	}()
	g.mu.Lock()
	runCtx := g.ctx
	g.mu.Unlock()
	for {
		p.mu.Lock()
		if !u.pending || runCtx.Err() != nil {
			u.busy = false
			if !u.pending && !u.doneValid && p.users[user.ID] == u {
				delete(p.users, user.ID) // nothing worth keeping
			}
			p.mu.Unlock()
			return
		}
		// Only fetches are spaced out: clearing the picture asks nothing
		// of the user's server (and the core limits its own calls).
		if wait := g.userPictureInterval - time.Since(u.last); u.want != "" && !u.last.IsZero() && wait > 0 {
			p.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-runCtx.Done():
				t.Stop()
			}
			continue // a newer hash may have come meanwhile
		}
		hash, gen := u.want, u.gen
		u.pending = false
		u.applying, u.inFlight = hash, true
		p.mu.Unlock()

		outcome, fetched := g.applyUserPicture(user, hash)

		p.mu.Lock()
		u.inFlight = false
		if fetched {
			u.last = time.Now()
		}
		switch {
		case u.gen != gen:
			// The login changed meanwhile: what was done is not known
			// to hold for the new one.
		case outcome == pictureNoLogin:
			u.doneValid = false // a login later takes the same hash
		case outcome == pictureFailed:
			u.done, u.doneValid, u.doneUntil = hash, true, time.Now().Add(userPictureRetry)
		default:
			u.done, u.doneValid, u.doneUntil = hash, true, time.Time{}
		}
		p.mu.Unlock()
	}
}

type pictureOutcome int

const (
	pictureHandled pictureOutcome = iota // applied, already applied, or refused for good
	pictureNoLogin                       // the user has no MSN login
	pictureFailed                        // try again later
)

// errPhotoMismatch: the vCard's PHOTO is not the picture the presence
// announced (it changed again meanwhile, or the server is wrong).
var errPhotoMismatch = errors.New("the vCard's photo does not match the hash in presence")

// applyUserPicture makes the picture with this hash ("" for none) the
// user's MSN display picture, unless it already is. fetched says whether
// it asked the user's server for their vCard (what the rate limit counts).
func (g *Gateway) applyUserPicture(user bridge.UserID, hash string) (outcome pictureOutcome, fetched bool) {
	ctx, cancel := g.coreCtx()
	defer cancel()
	log := g.log.With().Str("user", user.ID).Str("hash", hash).Logger()
	st, err := g.core.Status(ctx, user)
	if err != nil || st.Passport == "" {
		return pictureNoLogin, false
	}
	key := userPictureKeyPrefix + user.ID
	want := st.Passport + " " + hash
	stored, err := g.core.FrontendValue(ctx, Kind, key)
	if err != nil {
		log.Warn().Err(err).Msg("could not read the user's display picture state")
		return pictureFailed, false
	}
	if stored == want {
		return pictureHandled, false
	}
	if hash == "" && !strings.HasPrefix(stored, st.Passport+" ") {
		// No avatar, and none ever given to this account: leave whatever
		// picture the account has alone.
		return pictureHandled, false
	}
	remember := func() {
		if err := g.core.SetFrontendValue(ctx, Kind, key, want); err != nil {
			log.Warn().Err(err).Msg("could not remember the user's display picture")
		}
	}
	// A picture the bridge cannot use is reported once and remembered;
	// transient failures are only logged and tried again later.
	refuse := func(err error) {
		log.Info().Err(err).Msg("the user's avatar cannot be their display picture")
		remember()
		msg := outMessage{Type: "chat", From: g.domain.String(), To: user.ID,
			Body: "Your XMPP avatar could not become your MSN display picture: " + err.Error()}
		if err := g.sendCtx(ctx, msg); err != nil {
			log.Debug().Err(err).Msg("could not tell the user")
		}
	}
	var data []byte
	if hash != "" {
		r, err := g.fetchPictureVCard(ctx, user.ID)
		if err != nil {
			log.Warn().Err(err).Msg("could not fetch the user's vCard")
			return pictureFailed, true
		}
		data, err = userPhoto(r, hash)
		switch {
		case errors.Is(err, errPhotoMismatch):
			log.Info().Err(err).Msg("the user's avatar is not taken")
			return pictureFailed, true
		case err != nil:
			refuse(err)
			return pictureHandled, true
		}
	}
	if err := g.core.SetDisplayPicture(ctx, user, data); errors.Is(err, bridge.ErrRateLimited) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		log.Warn().Err(err).Msg("could not set the user's display picture")
		return pictureFailed, hash != ""
	} else if err != nil {
		refuse(err)
		return pictureHandled, hash != ""
	}
	remember()
	log.Debug().Msg("display picture follows the XMPP avatar")
	return pictureHandled, hash != ""
}

// fetchPictureVCard is fetchVCard, waiting for a free slot first.
func (g *Gateway) fetchPictureVCard(ctx context.Context, bare string) (*node, error) {
	p := &g.userPics
	p.mu.Lock()
	if p.slots == nil {
		p.slots = make(chan struct{}, maxPictureFetches)
	}
	slots := p.slots
	p.mu.Unlock()
	select {
	case slots <- struct{}{}:
		defer func() { <-slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.fetchVCard(ctx, bare)
}

// requestVCard asks the user's server for their vCard (as the gateway; the
// answer must come from the user's bare JID).
func (g *Gateway) requestVCard(ctx context.Context, bare string) (*node, error) {
	return g.request(ctx, bare, vcard{})
}

// userPhoto returns the PHOTO of a vCard result, checked against the
// hash the user's presence announced.
func userPhoto(iq *node, hash string) ([]byte, error) {
	photo := iq.Child(nsVCard, "vCard").Child("", "PHOTO")
	if photo == nil {
		return nil, fmt.Errorf("%w (it has none)", errPhotoMismatch)
	}
	b64 := photo.Child("", "BINVAL").Text()
	if b64 == "" {
		if photo.Child("", "EXTVAL") != nil {
			return nil, errors.New("a photo given as a link (EXTVAL) is not supported")
		}
		return nil, fmt.Errorf("%w (it has none)", errPhotoMismatch)
	}
	if len(b64) > maxUserPhotoBase64 {
		return nil, fmt.Errorf("the photo is too large (%d bytes of base64; at most %d)", len(b64), maxUserPhotoBase64)
	}
	// vCards fold base64 over lines.
	b64 = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, b64)
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("the photo is not valid base64: %w", err)
	}
	sum := sha1.Sum(data)
	if hex.EncodeToString(sum[:]) != hash {
		return nil, errPhotoMismatch
	}
	return data, nil
}
