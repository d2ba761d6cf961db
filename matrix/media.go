package matrix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // DecodeConfig learns the formats MSN clients send
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/bridge"
)

// This file carries pictures and files between MSN and Matrix: contacts'
// display pictures become their ghosts' avatars, the user's Matrix avatar
// becomes their MSN display picture, MSN file transfers become m.image /
// m.file events and Matrix media in a direct portal become MSN transfers.
// The bytes themselves live in the core (its avatar cache and media store)
// and in the homeserver's media repository; the frontend only moves them.

// DefaultMaxFileSize bounds a file a Matrix user sends to MSN when
// SetMaxFileSize was not called. The core applies its own
// bridge.files.max_size as well.
const DefaultMaxFileSize = 100 << 20

// maxUserAvatarSize bounds the user's Matrix avatar the bridge downloads
// to make their display picture: MSN shows 96×96, so anything bigger than
// this is not a sensible avatar.
const maxUserAvatarSize = 8 << 20

// frontend-value keys (Core.FrontendValue, namespace "matrix").
const (
	avatarKeyPrefix = "avatar/" // + picture hash → mxc of its upload
	userDPKeyPrefix = "userdp/" // + MXID → "passport mxc" last made the display picture
)

// fileTransferTime bounds downloading a Matrix file and handing it to
// the core.
const fileTransferTime = 5 * time.Minute

// SetMaxFileSize bounds the files a Matrix user may send to MSN (the
// core's bridge.files.max_size is the natural value); n <= 0 restores
// DefaultMaxFileSize. Call it before Start.
func (f *Frontend) SetMaxFileSize(n int64) {
	if n <= 0 {
		n = DefaultMaxFileSize
	}
	f.mu.Lock()
	f.maxFileSize = n
	f.mu.Unlock()
}

func (f *Frontend) fileSizeLimit() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxFileSize <= 0 {
		return DefaultMaxFileSize
	}
	return f.maxFileSize
}

// noteAvatar records the display picture the core last reported for a
// contact, so that whichever path sets their ghost up next gives it that
// avatar.
func (f *Frontend) noteAvatar(passport, hash string) {
	if passport == "" {
		return
	}
	f.mu.Lock()
	f.contactAvatars[strings.ToLower(passport)] = hash
	f.mu.Unlock()
}

// syncGhostAvatar makes the ghost's avatar the contact's display picture
// as last reported, when the bridge knows one and the ghost does not have
// it yet. An avatar is decoration: failures are logged, never returned,
// and the next Presence tries again.
func (f *Frontend) syncGhostAvatar(ctx context.Context, intent *appservice.IntentAPI, passport string) {
	f.mu.Lock()
	hash, known := f.contactAvatars[strings.ToLower(passport)]
	current, set := f.ghostAvatars[intent.UserID]
	f.mu.Unlock()
	if !known || (set && current == hash) {
		return
	}
	log := f.log.With().Stringer("ghost", intent.UserID).Str("avatar", hash).Logger()
	var mxc id.ContentURI
	if hash != "" {
		var err error
		mxc, err = f.avatarMXC(ctx, hash)
		if err != nil {
			log.Warn().Err(err).Msg("could not upload a contact's display picture")
			return
		}
	}
	// intent.SetAvatarURL compares with the profile first, so a restart
	// (which forgets ghostAvatars) costs one profile read per ghost, not a
	// new avatar event in every room.
	if err := intent.SetAvatarURL(ctx, mxc); err != nil {
		log.Warn().Err(err).Msg("could not set a ghost's avatar")
		return
	}
	f.mu.Lock()
	f.ghostAvatars[intent.UserID] = hash
	f.mu.Unlock()
}

// avatarMXC returns the media URI of a cached display picture, uploading
// it on first use: once per picture, whoever shows it and across restarts.
func (f *Frontend) avatarMXC(ctx context.Context, hash string) (id.ContentURI, error) {
	f.avatarMu.Lock()
	defer f.avatarMu.Unlock()
	key := avatarKeyPrefix + hash
	if stored, err := f.core.FrontendValue(ctx, Kind, key); err != nil {
		return id.ContentURI{}, fmt.Errorf("read stored avatar: %w", err)
	} else if stored != "" {
		if mxc, err := id.ParseContentURI(stored); err == nil && !mxc.IsEmpty() {
			return mxc, nil
		}
	}
	data, mimeType, err := f.core.Avatar(ctx, hash)
	if err != nil {
		return id.ContentURI{}, fmt.Errorf("display picture %s: %w", hash, err)
	}
	if mimeType == "" {
		mimeType = http.DetectContentType(data)
	}
	resp, err := f.as.BotIntent().UploadMedia(ctx, mautrix.ReqUploadMedia{
		ContentBytes: data,
		ContentType:  mimeType,
		FileName:     "avatar" + extensionFor(mimeType),
	})
	if err != nil {
		return id.ContentURI{}, fmt.Errorf("upload: %w", err)
	}
	if err := f.core.SetFrontendValue(ctx, Kind, key, resp.ContentURI.String()); err != nil {
		// The upload is good; the next one would just be a duplicate.
		f.log.Warn().Err(err).Msg("could not remember an uploaded avatar")
	}
	return resp.ContentURI, nil
}

func extensionFor(mimeType string) string {
	switch mimeType {
	case "image/png":
		return ".png"
	case "image/jpeg":
		return ".jpg"
	case "image/gif":
		return ".gif"
	}
	if exts, _ := mime.ExtensionsByType(mimeType); len(exts) > 0 {
		return exts[0]
	}
	return ""
}

// fileMessageType is the Matrix msgtype for a file of this MIME type.
func fileMessageType(mimeType string) event.MessageType {
	major, _, _ := strings.Cut(strings.ToLower(mimeType), "/")
	switch major {
	case "image":
		return event.MsgImage
	case "video":
		return event.MsgVideo
	case "audio":
		return event.MsgAudio
	}
	return event.MsgFile
}

// fileContent is the Matrix event content for an MSN file uploaded as mxc.
// width and height are 0 when unknown.
func fileContent(file bridge.File, mxc id.ContentURI, width, height int) *event.MessageEventContent {
	name := file.Name
	if name == "" {
		name = "file"
	}
	mimeType := file.MIME
	if mimeType == "" {
		mimeType = "application/octet-stream"
	}
	return &event.MessageEventContent{
		MsgType:  fileMessageType(mimeType),
		Body:     name,
		FileName: name,
		URL:      mxc.CUString(),
		Info: &event.FileInfo{
			MimeType: mimeType,
			Size:     int(file.Size),
			Width:    width,
			Height:   height,
		},
	}
}

// imageSize reads an image's dimensions from its header and rewinds.
// ok is false for what the standard decoders do not know.
func imageSize(r io.ReadSeeker) (width, height int, ok bool) {
	cfg, _, err := image.DecodeConfig(r)
	if _, serr := r.Seek(0, io.SeekStart); serr != nil {
		return 0, 0, false
	}
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
		return 0, 0, false
	}
	return cfg.Width, cfg.Height, true
}

// deliverFile uploads a file a contact sent and posts it in the portal as
// the contact's ghost (the bot for the user's own files from another
// client, as for text).
func (f *Frontend) deliverFile(ctx context.Context, user bridge.UserID, file bridge.File) (string, error) {
	room, portal, err := f.portalRoom(ctx, user, file.Portal, true)
	if err != nil {
		return "", err
	}
	mxc, width, height, err := f.uploadMedia(ctx, file)
	if errors.Is(err, bridge.ErrNoSuchMedia) {
		// Expired or gone: retrying cannot bring it back; say so instead.
		who := file.Sender
		if who == "" {
			who = portal.Contact
		}
		return f.botNotice(ctx, room, fmt.Sprintf("%s sent the file %s, but it is no longer available.", who, file.Name))
	} else if err != nil {
		return "", err
	}
	content := fileContent(file, mxc, width, height)
	send := mautrix.ReqSendEvent{Timestamp: file.Time.UnixMilli()}
	if file.Time.IsZero() {
		send.Timestamp = time.Now().UnixMilli()
	}
	if file.MSNID != "" {
		send.TransactionID = "msn-" + file.MSNID
	}
	var intent *appservice.IntentAPI
	if file.FromSelf {
		intent = f.as.BotIntent()
		content.Body = "You (from another MSN client): " + content.Body
	} else {
		sender := f.senderPassport(portal, file.Sender)
		if sender == "" {
			return "", errors.New("matrix: file without a sender")
		}
		intent, err = f.ghost(ctx, sender, f.friendlyName(ctx, user, sender))
		if err != nil {
			return "", err
		}
	}
	if err := intent.EnsureJoined(ctx, room); err != nil {
		return "", err
	}
	resp, err := intent.SendMessageEvent(ctx, room, event.EventMessage, content, send)
	if err != nil {
		return "", err
	}
	return resp.EventID.String(), nil
}

// uploadMedia puts a file of the core's media store into the homeserver's
// media repository. A File event delivered again after a crash uploads
// again, but its transaction ID still yields the first event; the bridge
// keeps no per-file record that would grow with every file.
func (f *Frontend) uploadMedia(ctx context.Context, file bridge.File) (mxc id.ContentURI, width, height int, err error) {
	m, err := f.core.OpenMedia(ctx, file.Media)
	if err != nil {
		return mxc, 0, 0, err
	}
	defer m.Close()
	mimeType := file.MIME
	if mimeType == "" {
		mimeType = m.MIME
	}
	if fileMessageType(mimeType) == event.MsgImage {
		width, height, _ = imageSize(m)
	}
	name := file.Name
	if name == "" {
		name = m.Name
	}
	if mimeType == "" {
		mimeType = "application/octet-stream"
	}
	resp, err := f.as.BotIntent().UploadMedia(ctx, mautrix.ReqUploadMedia{
		Content:       io.LimitReader(m, m.Size),
		ContentLength: m.Size,
		ContentType:   mimeType,
		FileName:      name,
	})
	if err != nil {
		return mxc, 0, 0, fmt.Errorf("matrix: upload %s: %w", name, err)
	}
	return resp.ContentURI, width, height, nil
}

// isFileMessage says whether a Matrix message is a new file (not an edit
// of one), which goes to MSN as a file transfer rather than as text.
func isFileMessage(evt *event.Event, c *event.MessageEventContent) bool {
	if evt.Type != event.EventMessage || c.NewContent != nil ||
		(c.RelatesTo != nil && c.RelatesTo.Type == event.RelReplace) {
		return false
	}
	switch c.MsgType {
	case event.MsgImage, event.MsgFile, event.MsgVideo, event.MsgAudio:
		return true
	}
	return false
}

// maxFileNameBytes bounds the name offered to MSN.
const maxFileNameBytes = 200

// cleanFileName makes a Matrix file name fit to offer over MSN: the last
// path element, without control characters, bounded in length.
func cleanFileName(name string, msgType event.MessageType) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(strings.TrimSpace(name))
	name = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if len(name) > maxFileNameBytes {
		ext := path.Ext(name)
		if len(ext) > 16 {
			ext = ""
		}
		cut := maxFileNameBytes - len(ext)
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + ext
	}
	if name == "" || name == "." || name == "/" || name == ".." {
		switch msgType {
		case event.MsgImage:
			return "image"
		case event.MsgVideo:
			return "video"
		case event.MsgAudio:
			return "audio"
		}
		return "file"
	}
	return name
}

// errNotDirect refuses files in group portals before downloading them;
// the core refuses them too (MSN transfers are one-to-one).
var errNotDirect = errors.New("MSN sends files only in one-to-one chats")

// forwardFile offers a Matrix user's file to the portal's MSN contact: it
// streams the media from the homeserver into Core.SendFile, bounded by
// the size limit. The transfer's outcome arrives later as a DeliveryResult;
// a refusal here is reported the same way.
func (f *Frontend) forwardFile(ctx context.Context, evt *event.Event, c *event.MessageEventContent) {
	user := userID(evt.Sender)
	portal, err := f.core.PortalByRoom(ctx, user, evt.RoomID.String())
	if errors.Is(err, bridge.ErrNoSuchPortal) {
		return // not a portal room: not the bridge's business
	}
	name := cleanFileName(c.GetFileName(), c.MsgType)
	fail := func(err error) {
		zerolog.Ctx(ctx).Info().Err(err).Str("file", name).Msg("file not sent to MSN")
		f.sendMessageStatus(ctx, user, bridge.DeliveryResult{Portal: portal.ID, FrontendID: evt.ID.String(), Err: err})
		f.sendBotNotice(ctx, evt.RoomID, fmt.Sprintf("Your file %s was not sent to MSN: %v", name, err))
	}
	if err != nil {
		fail(err)
		return
	}
	if portal.Kind != bridge.PortalDirect {
		fail(errNotDirect)
		return
	}
	if c.File != nil {
		fail(errors.New("it is end-to-end encrypted, which the bridge cannot read"))
		return
	}
	mxc, err := c.URL.Parse()
	if err != nil || mxc.IsEmpty() {
		fail(fmt.Errorf("it has no valid media URI (%q)", c.URL))
		return
	}
	limit := f.fileSizeLimit()
	if c.Info != nil && int64(c.Info.Size) > limit {
		fail(tooLarge(int64(c.Info.Size), limit))
		return
	}
	// The transfer gets its own deadline; fail's notice keeps the event's
	// context, so that it is still said after a timeout.
	tctx, cancel := context.WithTimeout(ctx, fileTransferTime)
	defer cancel()
	resp, err := f.download(tctx, mxc)
	if err != nil {
		fail(fmt.Errorf("could not download it from the homeserver: %w", err))
		return
	}
	defer resp.Body.Close()
	size := resp.ContentLength
	if size < 0 && c.Info != nil && c.Info.Size > 0 {
		size = int64(c.Info.Size)
	}
	switch {
	case size < 0:
		fail(errors.New("the homeserver did not say how big it is"))
		return
	case size > limit:
		fail(tooLarge(size, limit))
		return
	}
	mimeType := ""
	if c.Info != nil {
		mimeType = c.Info.MimeType
	}
	if mimeType == "" {
		mimeType, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	}
	out := bridge.OutgoingFile{
		FrontendID: evt.ID.String(),
		Name:       name,
		Size:       size,
		MIME:       mimeType,
		// One byte more than announced lets the core see a body that
		// outgrows its Content-Length, without reading further.
		Data: io.LimitReader(resp.Body, size+1),
	}
	f.rememberFileSend(evt.ID, name)
	if err := f.core.SendFile(tctx, user, portal.ID, out); err != nil {
		f.forgetFileSend(evt.ID.String())
		fail(err)
		return
	}
	if caption := c.GetCaption(); caption != "" {
		if err := f.core.SendMessage(ctx, user, portal.ID, bridge.OutgoingMessage{Text: bridge.Text{Body: caption}}); err != nil {
			f.sendBotNotice(ctx, evt.RoomID, "Your caption was not sent to MSN: "+err.Error())
		}
	}
}

// errTooLarge is wrapped by tooLarge's errors.
var errTooLarge = errors.New("too large")

func tooLarge(size, limit int64) error {
	return &tooLargeError{size, limit}
}

type tooLargeError struct{ size, limit int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("it is %s, more than the %s the bridge takes", humanSize(e.size), humanSize(e.limit))
}

func (e *tooLargeError) Unwrap() error { return errTooLarge }

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// maxPendingFileSends bounds the names kept for transfers awaiting their
// DeliveryResult; the oldest are forgotten (their result then reads like
// a message's).
const maxPendingFileSends = 1000

func (f *Frontend) rememberFileSend(evtID id.EventID, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.fileSends) >= maxPendingFileSends {
		for k := range f.fileSends {
			delete(f.fileSends, k)
			break
		}
	}
	f.fileSends[evtID.String()] = name
}

// forgetFileSend returns and forgets the name of a file sent as frontendID.
func (f *Frontend) forgetFileSend(frontendID string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name, ok := f.fileSends[frontendID]
	delete(f.fileSends, frontendID)
	return name, ok
}

// deliveryNotice words a failed DeliveryResult for the user.
func (f *Frontend) deliveryNotice(d bridge.DeliveryResult) (string, bool) {
	name, isFile := f.forgetFileSend(d.FrontendID)
	switch {
	case d.Err == nil:
		return "", false
	case isFile && errors.Is(d.Err, bridge.ErrFileDeclined):
		return fmt.Sprintf("The contact did not accept your file %s.", name), true
	case isFile:
		return fmt.Sprintf("Your file %s could not be delivered to MSN: %v", name, d.Err), true
	}
	return "Your message could not be delivered to MSN: " + d.Err.Error(), true
}

// userDisplayPicture makes the user's Matrix avatar their MSN display
// picture when it is not already: avatar is the mxc of their avatar (""
// for none). It is keyed by the MSN account too, so a new login gets the
// picture. Failures are logged: the next avatar change or login retries.
func (f *Frontend) userDisplayPicture(ctx context.Context, mxid id.UserID, avatar id.ContentURI) {
	user := userID(mxid)
	if f.core.Permission(user) < bridge.PermissionUser {
		return
	}
	f.dpMu.Lock()
	defer f.dpMu.Unlock()
	st, err := f.core.Status(ctx, user)
	if err != nil || st.Passport == "" {
		return // no login: nothing to give a picture
	}
	log := f.log.With().Stringer("user", mxid).Stringer("avatar", avatar).Logger()
	key := userDPKeyPrefix + mxid.String()
	want := st.Passport + " " + avatar.String()
	stored, err := f.core.FrontendValue(ctx, Kind, key)
	if err != nil {
		log.Warn().Err(err).Msg("could not read the user's display picture state")
		return
	}
	if stored == want {
		return
	}
	if avatar.IsEmpty() && (stored == "" || !strings.HasPrefix(stored, st.Passport+" ")) {
		// No Matrix avatar and none ever given to this account: leave
		// whatever picture the account has alone.
		return
	}
	remember := func() {
		if err := f.core.SetFrontendValue(ctx, Kind, key, want); err != nil {
			log.Warn().Err(err).Msg("could not remember the user's display picture")
		}
	}
	// A picture the bridge cannot use is reported once and remembered, so
	// that every room's member event does not report it again; transient
	// failures are only logged and retried at the next change or sign-in.
	refuse := func(err error) {
		log.Info().Err(err).Msg("the user's avatar cannot be their display picture")
		remember()
		if _, nerr := f.notifyUser(ctx, mxid, "Your Matrix avatar could not become your MSN display picture: "+err.Error()); nerr != nil {
			log.Debug().Err(nerr).Msg("could not tell the user")
		}
	}
	var data []byte
	if !avatar.IsEmpty() {
		data, err = f.downloadBounded(ctx, avatar, maxUserAvatarSize)
		if errors.Is(err, errTooLarge) {
			refuse(err)
			return
		} else if err != nil {
			log.Warn().Err(err).Msg("could not download the user's avatar")
			return
		}
	}
	if err := f.core.SetDisplayPicture(ctx, user, data); errors.Is(err, bridge.ErrRateLimited) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) {
		log.Warn().Err(err).Msg("could not set the user's display picture")
		return
	} else if err != nil {
		refuse(err)
		return
	}
	remember()
	log.Debug().Msg("display picture follows the Matrix avatar")
}

// download opens media from the homeserver as the bot: authenticated
// media (spec v1.11; Dendrite 0.13.8 serves it too), or the legacy
// unauthenticated endpoint on a homeserver that does not know that one.
func (f *Frontend) download(ctx context.Context, mxc id.ContentURI) (*http.Response, error) {
	cli := f.as.BotClient()
	resp, err := cli.Download(ctx, mxc)
	if errors.Is(err, mautrix.MUnrecognized) {
		_, resp, err = cli.MakeFullRequestWithResp(ctx, mautrix.FullRequest{
			Method:           http.MethodGet,
			URL:              cli.BuildURL(mautrix.MediaURLPath{"v3", "download", mxc.Homeserver, mxc.FileID}),
			DontReadResponse: true,
		})
	}
	return resp, err
}

// downloadBounded fetches media into memory, refusing more than limit bytes.
func (f *Frontend) downloadBounded(ctx context.Context, mxc id.ContentURI, limit int64) ([]byte, error) {
	resp, err := f.download(ctx, mxc)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > limit {
		return nil, tooLarge(resp.ContentLength, limit)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(resp.Body, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, tooLarge(int64(buf.Len()), limit)
	}
	return buf.Bytes(), nil
}

// followUserAvatar runs userDisplayPicture in the background with the
// user's profile avatar, after a sign-in: Deliver must not wait for a
// download, and the core must not be called back from inside its own
// delivery.
func (f *Frontend) followUserAvatar(mxid id.UserID) {
	f.mu.Lock()
	if f.stopping {
		f.mu.Unlock()
		return
	}
	f.bg.Add(1)
	f.mu.Unlock()
	go func() {
		defer f.bg.Done()
		ctx, cancel := context.WithTimeout(f.bgCtx, 2*time.Minute)
		defer cancel()
		avatar, err := f.as.BotClient().GetAvatarURL(ctx, mxid)
		if err != nil {
			f.log.Debug().Err(err).Stringer("user", mxid).Msg("could not read the user's avatar")
			return
		}
		f.userDisplayPicture(ctx, mxid, avatar)
	}()
}

// handleOwnMember follows a user's avatar in their own membership events
// in the rooms the bridge sees (their management room and portals).
func (f *Frontend) handleOwnMember(ctx context.Context, evt *event.Event, c *event.MemberEventContent) {
	if c.Membership != event.MembershipJoin {
		return
	}
	if evt.Unsigned.PrevContent != nil {
		_ = evt.Unsigned.PrevContent.ParseRaw(event.StateMember)
		if prev, ok := evt.Unsigned.PrevContent.Parsed.(*event.MemberEventContent); ok &&
			prev.Membership == event.MembershipJoin && prev.AvatarURL == c.AvatarURL {
			return // a name change or the like
		}
	}
	user := userID(evt.Sender)
	if f.managementRoom(ctx, evt.Sender) != evt.RoomID {
		if _, err := f.core.PortalByRoom(ctx, user, evt.RoomID.String()); err != nil {
			return
		}
	}
	avatar, err := c.AvatarURL.Parse()
	if err != nil {
		return
	}
	f.userDisplayPicture(ctx, evt.Sender, avatar)
}
