package xmpp

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/msnbridge/msnbridge/bridge"
)

func sha1Hex(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestAdvertisedPhoto(t *testing.T) {
	h := sha1Hex([]byte("pic"))
	cases := []struct {
		stanza string
		hash   string
		ok     bool
	}{
		{`<presence><x xmlns='vcard-temp:x:update'><photo>` + h + `</photo></x></presence>`, h, true},
		{`<presence><x xmlns='vcard-temp:x:update'><photo> ` + strings.ToUpper(h) + "\n</photo></x></presence>", h, true},
		{`<presence><x xmlns='vcard-temp:x:update'><photo/></x></presence>`, "", true},
		{`<presence><x xmlns='vcard-temp:x:update'/></presence>`, "", false},
		{`<presence><show>away</show></presence>`, "", false},
		{`<presence><x xmlns='jabber:x:other'><photo>` + h + `</photo></x></presence>`, "", false},
		{`<presence><x xmlns='vcard-temp:x:update'><photo>not-a-hash</photo></x></presence>`, "", false},
		{`<presence><x xmlns='vcard-temp:x:update'><photo>` + h[:39] + `z</photo></x></presence>`, "", false},
		{`<presence><x xmlns='vcard-temp:x:update'><photo>` + h + `00</photo></x></presence>`, "", false},
	}
	for _, c := range cases {
		hash, ok := advertisedPhoto(decodeNode(t, c.stanza))
		if hash != c.hash || ok != c.ok {
			t.Errorf("advertisedPhoto(%s) = %q, %v; want %q, %v", c.stanza, hash, ok, c.hash, c.ok)
		}
	}
}

// vcardResult is the server's answer holding a PHOTO with data.
func vcardResult(t *testing.T, data []byte) *node {
	t.Helper()
	b64 := base64.StdEncoding.EncodeToString(data)
	// Folded over lines, as many clients write vCards.
	var folded strings.Builder
	for len(b64) > 76 {
		folded.WriteString(b64[:76] + "\r\n ")
		b64 = b64[76:]
	}
	folded.WriteString(b64)
	return decodeNode(t, `<iq type='result'><vCard xmlns='vcard-temp'><FN>A</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>`+
		folded.String()+`</BINVAL></PHOTO></vCard></iq>`)
}

func TestUserPhoto(t *testing.T) {
	pic := bytes.Repeat([]byte("\x89PNG picture "), 100)
	h := sha1Hex(pic)
	got, err := userPhoto(vcardResult(t, pic), h)
	if err != nil || !bytes.Equal(got, pic) {
		t.Fatalf("userPhoto: %d bytes, %v", len(got), err)
	}
	if _, err := userPhoto(vcardResult(t, pic), sha1Hex([]byte("other"))); !errors.Is(err, errPhotoMismatch) {
		t.Errorf("another hash: %v, want errPhotoMismatch", err)
	}
	for _, none := range []string{`<iq type='result'/>`, `<iq type='result'><vCard xmlns='vcard-temp'/></iq>`,
		`<iq type='result'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE></PHOTO></vCard></iq>`} {
		if _, err := userPhoto(decodeNode(t, none), h); !errors.Is(err, errPhotoMismatch) {
			t.Errorf("%s: %v, want errPhotoMismatch", none, err)
		}
	}
	bad := []struct{ stanza, want string }{
		{`<iq type='result'><vCard xmlns='vcard-temp'><PHOTO><EXTVAL>https://x.org/a.png</EXTVAL></PHOTO></vCard></iq>`, "EXTVAL"},
		{`<iq type='result'><vCard xmlns='vcard-temp'><PHOTO><BINVAL>!!!notbase64</BINVAL></PHOTO></vCard></iq>`, "base64"},
		{`<iq type='result'><vCard xmlns='vcard-temp'><PHOTO><BINVAL>` + strings.Repeat("A", maxUserPhotoBase64+4) + `</BINVAL></PHOTO></vCard></iq>`, "too large"},
	}
	for _, b := range bad {
		_, err := userPhoto(decodeNode(t, b.stanza), h)
		if err == nil || errors.Is(err, errPhotoMismatch) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%.80s: %v, want an error about %s", b.stanza, err, b.want)
		}
	}
}

// pictureCore is a core with logins, frontend values and a record of the
// display pictures set.
type pictureCore struct {
	nilCore
	mu       sync.Mutex
	logins   map[string]string // user → passport
	values   map[string]string
	pictures [][]byte // what SetDisplayPicture got, in order (nil: cleared)
	setErr   error
}

func newPictureCore() *pictureCore {
	return &pictureCore{logins: map[string]string{}, values: map[string]string{}}
}

func (c *pictureCore) Permission(u bridge.UserID) bridge.Permission {
	if strings.HasPrefix(u.ID, "stranger@") {
		return bridge.PermissionNone
	}
	return bridge.PermissionUser
}

func (c *pictureCore) Status(_ context.Context, u bridge.UserID) (bridge.LoginStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bridge.LoginStatus{Passport: c.logins[u.ID], State: bridge.LoginConnected}, nil
}

func (c *pictureCore) FrontendValue(_ context.Context, frontend, key string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.values[frontend+"/"+key], nil
}

func (c *pictureCore) SetFrontendValue(_ context.Context, frontend, key, value string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.values[frontend+"/"+key] = value
	return nil
}

func (c *pictureCore) SetDisplayPicture(_ context.Context, _ bridge.UserID, image []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.setErr != nil {
		return c.setErr
	}
	c.pictures = append(c.pictures, image)
	return nil
}

func (c *pictureCore) taken() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.pictures...)
}

// vcardServer stands in for the users' servers: it answers vCard requests
// with each user's current picture and logs the requests.
type vcardServer struct {
	mu      sync.Mutex
	photos  map[string][]byte
	fetched []string // "<bare> <sha1 of what it served>"
	at      []time.Time
}

func (s *vcardServer) fetch(t *testing.T) func(context.Context, string) (*node, error) {
	return func(_ context.Context, bare string) (*node, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		pic := s.photos[bare]
		s.fetched = append(s.fetched, bare+" "+sha1Hex(pic))
		s.at = append(s.at, time.Now())
		if pic == nil {
			return decodeNode(t, `<iq type='result'><vCard xmlns='vcard-temp'/></iq>`), nil
		}
		return vcardResult(t, pic), nil
	}
}

func (s *vcardServer) set(bare string, pic []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.photos[bare] = pic
}

func (s *vcardServer) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.fetched...)
}

// presenceWithPhoto is what the gateway receives from user: an available
// presence announcing hash (nil: no XEP-0153 at all).
func presenceWithPhoto(t *testing.T, user string, hash *string) *inStanza {
	s := `<presence>`
	if hash != nil {
		s += `<x xmlns='vcard-temp:x:update'><photo>` + *hash + `</photo></x>`
	}
	s += `</presence>`
	return &inStanza{node: decodeNode(t, s), from: jid.MustParse(user + "/pc"), to: jid.MustParse(`bob\40x.org@msn.example.org`),
		user: bridge.UserID{Frontend: Kind, ID: user}}
}

// TestUserPicture: the avatar a user announces becomes their display
// picture once per hash and account, checked against the hash; a picture
// that cannot be used is remembered; removing the avatar clears it.
func TestUserPicture(t *testing.T) {
	const alice = "alice@example.org"
	core := newPictureCore()
	core.logins[alice] = "alice@hotmail.com"
	srv := &vcardServer{photos: map[string][]byte{}}
	newGateway := func() *Gateway {
		g := newMediaGateway(t, core, false)
		g.fetchVCard = srv.fetch(t)
		g.userPictureInterval = 0
		return g
	}
	g := newGateway()
	// note hands a presence to the gateway and waits until its worker,
	// if it started one, is done.
	note := func(g *Gateway, user string, hash *string) {
		t.Helper()
		g.noteUserPhoto(presenceWithPhoto(t, user, hash))
		g.userPics.running.Wait()
	}
	picA := []byte("\x89PNG picture A")
	picB := []byte("\x89PNG picture B")
	hA, hB := sha1Hex(picA), sha1Hex(picB)
	srv.set(alice, picA)

	note(g, alice, &hA)
	if p := core.taken(); len(p) != 1 || !bytes.Equal(p[0], picA) {
		t.Fatalf("pictures %q, want A", p)
	}
	if v := core.values["xmpp/userdp/"+alice]; v != "alice@hotmail.com "+hA {
		t.Errorf("remembered %q", v)
	}
	// Every contact gets a copy of the presence: one fetch.
	note(g, alice, &hA)
	note(g, alice, &hA)
	note(g, alice, nil) // no XEP-0153 says nothing
	if f := srv.log(); len(f) != 1 {
		t.Errorf("fetches %v, want one", f)
	}
	// After a restart, what was applied is not fetched again.
	g = newGateway()
	note(g, alice, &hA)
	if f := srv.log(); len(f) != 1 || len(core.taken()) != 1 {
		t.Errorf("after a restart: fetches %v, %d pictures", f, len(core.taken()))
	}

	// A new avatar is fetched and taken.
	srv.set(alice, picB)
	note(g, alice, &hB)
	if p := core.taken(); len(p) != 2 || !bytes.Equal(p[1], picB) {
		t.Fatalf("pictures %q, want A, B", p)
	}

	// A hash the vCard does not match (the avatar changed again) is not
	// taken, nor remembered.
	hC := sha1Hex([]byte("picture C"))
	note(g, alice, &hC)
	if len(core.taken()) != 2 || core.values["xmpp/userdp/"+alice] != "alice@hotmail.com "+hB {
		t.Errorf("a mismatching photo was taken: %d pictures, %q", len(core.taken()), core.values["xmpp/userdp/"+alice])
	}
	if f := srv.log(); len(f) != 3 {
		t.Errorf("fetches %v", f)
	}

	// No avatar any more: the picture is cleared, once.
	empty := ""
	note(g, alice, &empty)
	note(g, alice, &empty)
	if p := core.taken(); len(p) != 3 || p[2] != nil {
		t.Fatalf("pictures %q, want A, B, cleared", p)
	}
	if f := srv.log(); len(f) != 3 {
		t.Errorf("clearing fetched: %v", f)
	}

	// A new MSN login gets the picture again, once it connects.
	note(g, alice, &hB) // the old login's picture again
	core.mu.Lock()
	core.logins[alice] = "alice2@hotmail.com"
	core.mu.Unlock()
	note(g, alice, &hB) // known: not even looked up
	if len(core.taken()) != 4 || len(srv.log()) != 4 {
		t.Fatalf("pictures %q before the new login connected", core.taken())
	}
	g.userLoginChanged(bridge.UserID{Frontend: Kind, ID: alice})
	note(g, alice, &hB)
	if p := core.taken(); len(p) != 5 || !bytes.Equal(p[4], picB) {
		t.Fatalf("pictures %q, want B for the new login", p)
	}

	// A picture the core cannot use is reported and remembered: not
	// fetched again for the same hash.
	core.setErr = errors.New("not an image")
	hA2 := hA
	srv.set(alice, picA)
	note(g, alice, &hA2)
	g = newGateway()
	note(g, alice, &hA2)
	if f := srv.log(); len(f) != 6 {
		t.Errorf("fetches %v, want one for the refused picture", f)
	}
	if v := core.values["xmpp/userdp/"+alice]; v != "alice2@hotmail.com "+hA {
		t.Errorf("refused picture remembered as %q", v)
	}
	core.setErr = nil

	// Unregistered users and users without permission are ignored, and
	// a user who registers later still gets their picture.
	const carol = "carol@example.org"
	srv.set(carol, picA)
	note(g, carol, &hA)
	note(g, "stranger@example.org", &hA)
	if f := srv.log(); len(f) != 6 {
		t.Errorf("fetched for users without a login: %v", f)
	}
	g.userPics.mu.Lock()
	if len(g.userPics.users) != 1 {
		t.Errorf("users remembered: %v", g.userPics.users)
	}
	g.userPics.mu.Unlock()
	core.mu.Lock()
	core.logins[carol] = "carol@hotmail.com"
	core.mu.Unlock()
	note(g, carol, &hA)
	if f := srv.log(); len(f) != 7 || f[6] != carol+" "+hA {
		t.Errorf("fetches %v, want carol's picture", f)
	}

	// Logging out forgets the state: a new login takes the picture again.
	g.forgetUserPicture(context.Background(), bridge.UserID{Frontend: Kind, ID: carol})
	if v := core.values["xmpp/userdp/"+carol]; v != "" {
		t.Errorf("state kept after logout: %q", v)
	}
	note(g, carol, &hA)
	if f := srv.log(); len(f) != 8 {
		t.Errorf("fetches %v, want carol's picture again", f)
	}
}

// TestUserPictureRateLimit: changes faster than the interval are spaced
// by it, and only the latest of them is fetched.
func TestUserPictureRateLimit(t *testing.T) {
	const alice = "alice@example.org"
	core := newPictureCore()
	core.logins[alice] = "alice@hotmail.com"
	srv := &vcardServer{photos: map[string][]byte{}}
	g := newMediaGateway(t, core, false)
	g.fetchVCard = srv.fetch(t)
	const interval = 300 * time.Millisecond
	g.userPictureInterval = interval
	pics := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	hashes := []string{sha1Hex(pics[0]), sha1Hex(pics[1]), sha1Hex(pics[2])}
	srv.set(alice, pics[0])
	g.noteUserPhoto(presenceWithPhoto(t, alice, &hashes[0]))
	g.userPics.running.Wait()
	// Two changes at once: the worker waits out the interval, then
	// takes the latest.
	srv.set(alice, pics[2])
	g.noteUserPhoto(presenceWithPhoto(t, alice, &hashes[1]))
	g.noteUserPhoto(presenceWithPhoto(t, alice, &hashes[2]))
	g.userPics.running.Wait()
	f := srv.log()
	if len(f) != 2 || f[0] != alice+" "+hashes[0] || f[1] != alice+" "+hashes[2] {
		t.Fatalf("fetches %v, want one then three", f)
	}
	srv.mu.Lock()
	gap := srv.at[1].Sub(srv.at[0])
	srv.mu.Unlock()
	if gap < interval {
		t.Errorf("second fetch %v after the first, want at least %v", gap, interval)
	}
	if p := core.taken(); len(p) != 2 || !bytes.Equal(p[1], pics[2]) {
		t.Errorf("pictures %q", p)
	}
	// Clearing fetches nothing: it does not wait for the interval.
	g.userPictureInterval = time.Hour
	empty := ""
	g.noteUserPhoto(presenceWithPhoto(t, alice, &empty))
	done := make(chan struct{})
	go func() { g.userPics.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("clearing the picture waited for the fetch interval")
	}
	if p := core.taken(); len(p) != 3 || p[2] != nil {
		t.Errorf("pictures %q, want one, three, cleared", p)
	}
}

// TestUserPictureFetchesBounded: many users announcing pictures at once
// (the first start of a gateway with many users) fetch a few at a time.
func TestUserPictureFetchesBounded(t *testing.T) {
	core := newPictureCore()
	g := newMediaGateway(t, core, false)
	pic := []byte("picture")
	hash := sha1Hex(pic)
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	var mu sync.Mutex
	active, most, total := 0, 0, 0
	g.fetchVCard = func(context.Context, string) (*node, error) {
		mu.Lock()
		active++
		total++
		most = max(most, active)
		mu.Unlock()
		entered <- struct{}{}
		<-release
		mu.Lock()
		active--
		mu.Unlock()
		return vcardResult(t, pic), nil
	}
	const users = maxPictureFetches + 2
	for i := range users {
		u := string(rune('a'+i)) + "@example.org"
		core.mu.Lock()
		core.logins[u] = u
		core.mu.Unlock()
		g.noteUserPhoto(presenceWithPhoto(t, u, &hash))
	}
	for range maxPictureFetches {
		<-entered
	}
	select {
	case <-entered:
		t.Errorf("more than %d fetches at once", maxPictureFetches)
	default:
	}
	close(release)
	g.userPics.running.Wait()
	if most > maxPictureFetches || total != users || len(core.taken()) != users {
		t.Errorf("at most %d at once, %d fetches, %d pictures; want ≤%d, %d, %d", most, total, len(core.taken()), maxPictureFetches, users, users)
	}
}

// TestUserPictureCopiesDuringFetch: copies of the presence that arrive
// while its hash is being fetched do not fetch it again, even when the
// fetch fails.
func TestUserPictureCopiesDuringFetch(t *testing.T) {
	const alice = "alice@example.org"
	core := newPictureCore()
	core.logins[alice] = "alice@hotmail.com"
	g := newMediaGateway(t, core, false)
	g.userPictureInterval = 0
	hash := sha1Hex([]byte("announced"))
	entered, release := make(chan struct{}, 4), make(chan struct{})
	var fetches atomic.Int32
	g.fetchVCard = func(context.Context, string) (*node, error) {
		fetches.Add(1)
		entered <- struct{}{}
		<-release
		return vcardResult(t, []byte("another picture")), nil // does not match
	}
	g.noteUserPhoto(presenceWithPhoto(t, alice, &hash))
	<-entered
	for range 3 {
		g.noteUserPhoto(presenceWithPhoto(t, alice, &hash))
	}
	close(release)
	g.userPics.running.Wait()
	if n := fetches.Load(); n != 1 || len(core.taken()) != 0 {
		t.Errorf("%d fetches, %d pictures; want 1, 0", n, len(core.taken()))
	}
}

// FuzzUserPhoto: whatever a presence or a vCard result holds, reading the
// avatar neither panics nor returns data other than the announced picture.
func FuzzUserPhoto(f *testing.F) {
	h := sha1Hex([]byte("pic"))
	f.Add(`<presence><x xmlns='vcard-temp:x:update'><photo>`+h+`</photo></x></presence>`,
		`<iq><vCard xmlns='vcard-temp'><PHOTO><BINVAL>cGlj</BINVAL></PHOTO></vCard></iq>`)
	f.Add(`<presence><x xmlns='vcard-temp:x:update'><photo/></x></presence>`, `<iq/>`)
	f.Add(`<presence/>`, `<iq><vCard xmlns='vcard-temp'><PHOTO><BINVAL>c G\nl j</BINVAL><EXTVAL>x</EXTVAL></PHOTO></vCard></iq>`)
	f.Fuzz(func(t *testing.T, presence, result string) {
		p, r := &node{}, &node{}
		if xml.Unmarshal([]byte(presence), p) != nil || xml.Unmarshal([]byte(result), r) != nil {
			return
		}
		hash, ok := advertisedPhoto(p)
		if !ok || hash == "" {
			return
		}
		if data, err := userPhoto(r, hash); err == nil && sha1Hex(data) != hash {
			t.Fatalf("photo of hash %s returned for %s", sha1Hex(data), hash)
		}
	})
}
