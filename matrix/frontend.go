package matrix

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
)

// Kind is the frontend's name in bridge.UserID.Frontend.
const Kind = "matrix"

// Frontend is the Matrix application service. It implements
// bridge.Frontend: the core hands it events through Deliver, and it calls
// the core for everything Matrix users do.
type Frontend struct {
	cfg    config.Matrix
	core   bridge.Core
	log    zerolog.Logger
	as     *appservice.AppService
	ghosts ghostNamer
	bot    id.UserID

	listener net.Listener
	server   *http.Server
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu sync.Mutex
	// mgmtRooms maps a management room to its user; mgmtByUser the other
	// way. The core's store keeps them across restarts
	// (Core.SetManagementRoom); these are a cache of it.
	mgmtRooms  map[id.RoomID]id.UserID
	mgmtByUser map[id.UserID]id.RoomID
	// pendingLogin holds the passport of a login waiting for its password.
	pendingLogin map[id.UserID]string
	// ghostNames is the display name last set on each ghost.
	ghostNames map[id.UserID]string
	// friendlyNames is the last friendly name the core reported per passport.
	friendlyNames map[string]string
	// lastPresence is each user's last Matrix presence passed on to MSN.
	lastPresence map[id.UserID]bridge.Status
	// typing is who the bridge last saw typing in each room.
	typing map[id.RoomID]map[id.UserID]bool

	// contactAvatars is the display-picture hash the core last reported
	// per passport (lower-case); ghostAvatars the hash last set on each
	// ghost.
	contactAvatars map[string]string
	ghostAvatars   map[id.UserID]string
	// fileSends names the files sent to MSN that await their
	// DeliveryResult, by event ID.
	fileSends   map[string]string
	maxFileSize int64

	// createMu serialises portal room creation so that two events for a new
	// portal make one room.
	createMu sync.Mutex
	// avatarMu serialises avatar uploads so that a picture is uploaded once;
	// dpMu serialises the user's display-picture updates.
	avatarMu sync.Mutex
	dpMu     sync.Mutex

	// bg counts background work (following the user's avatar after a
	// sign-in), which bgCtx ends; stopping refuses new work.
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
	stopping bool
}

var _ bridge.Frontend = (*Frontend)(nil)

// New checks cfg and prepares the appservice; Start makes it listen.
func New(cfg config.Matrix, core bridge.Core, log zerolog.Logger) (*Frontend, error) {
	switch {
	case core == nil:
		return nil, errors.New("matrix: no core")
	case cfg.HomeserverURL == "":
		return nil, errors.New("matrix: homeserver_url is empty")
	case cfg.Domain == "":
		return nil, errors.New("matrix: domain is empty")
	case cfg.Listen == "":
		return nil, errors.New("matrix: listen is empty")
	case cfg.BotLocalpart == "":
		return nil, errors.New("matrix: bot_localpart is empty")
	case cfg.ASToken == "" || cfg.HSToken == "":
		return nil, errors.New("matrix: as_token and hs_token must both be set")
	}
	namer, err := newGhostNamer(cfg.GhostTemplate, cfg.Domain)
	if err != nil {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	// mautrix answers a transaction once its events are in this channel
	// and drops those that do not fit, so a full channel would lose
	// messages the homeserver believes delivered. Make it deep; the
	// handler never blocks for long (the core queues sends).
	if appservice.EventChannelSize < 4096 {
		appservice.EventChannelSize = 4096
	}
	as, err := appservice.CreateFull(appservice.CreateOpts{
		Registration:     NewRegistration(cfg),
		HomeserverDomain: cfg.Domain,
		HomeserverURL:    cfg.HomeserverURL,
	})
	if err != nil {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	// mautrix logs whole transactions at debug level, and a transaction
	// may hold a password typed to the bot: never below info.
	asLevel := max(log.GetLevel(), zerolog.InfoLevel)
	as.Log = log.With().Str("component", "appservice").Logger().Level(asLevel)
	// mautrix makes the bot's client and intent lazily and without a lock;
	// make them now, before any goroutine can race to.
	as.BotIntent()
	f := &Frontend{
		cfg:            cfg,
		core:           core,
		log:            log,
		as:             as,
		ghosts:         namer,
		bot:            id.NewUserID(cfg.BotLocalpart, cfg.Domain),
		mgmtRooms:      make(map[id.RoomID]id.UserID),
		mgmtByUser:     make(map[id.UserID]id.RoomID),
		pendingLogin:   make(map[id.UserID]string),
		ghostNames:     make(map[id.UserID]string),
		friendlyNames:  make(map[string]string),
		typing:         make(map[id.RoomID]map[id.UserID]bool),
		contactAvatars: make(map[string]string),
		ghostAvatars:   make(map[id.UserID]string),
		fileSends:      make(map[string]string),
		maxFileSize:    DefaultMaxFileSize,
	}
	f.bgCtx, f.bgCancel = context.WithCancel(context.Background())
	return f, nil
}

// Kind implements bridge.Frontend.
func (f *Frontend) Kind() string { return Kind }

// GhostID is the Matrix ID of the ghost standing for passport.
func (f *Frontend) GhostID(passport string) id.UserID { return f.ghosts.GhostID(passport) }

// PassportFromGhost returns the passport behind a ghost's ID, or an error
// wrapping ErrNotGhost.
func (f *Frontend) PassportFromGhost(mxid id.UserID) (string, error) {
	return f.ghosts.PassportFromGhost(mxid)
}

// BotID is the bridge bot's Matrix ID.
func (f *Frontend) BotID() id.UserID { return f.bot }

// Addr is the address the appservice listens on, once started.
func (f *Frontend) Addr() net.Addr {
	if f.listener == nil {
		return nil
	}
	return f.listener.Addr()
}

// Start binds the appservice listener and starts handling transactions
// (and the typing /sync when the homeserver does not push it). It does not
// wait for the homeserver: the appservice ping is optional and Dendrite
// lacks it.
func (f *Frontend) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", f.cfg.Listen)
	if err != nil {
		return fmt.Errorf("matrix: listen on %s: %w", f.cfg.Listen, err)
	}
	f.listener = ln
	f.server = &http.Server{Handler: f.as.Router, ReadHeaderTimeout: 10 * time.Second}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel = cancel
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		if err := f.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.log.Error().Err(err).Msg("appservice listener failed")
		}
	}()
	go func() {
		defer f.wg.Done()
		f.handleEvents(runCtx)
	}()
	if f.cfg.SyncEphemeral {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.syncTyping(runCtx)
		}()
	}
	if f.cfg.BotDisplayname != "" {
		// Best effort: the bot works without a display name.
		if err := f.as.BotIntent().SetDisplayName(ctx, f.cfg.BotDisplayname); err != nil {
			f.log.Warn().Err(err).Msg("could not set the bot's display name")
		}
	}
	f.log.Info().Str("listen", ln.Addr().String()).Stringer("bot", f.bot).Msg("matrix appservice started")
	return nil
}

// Stop closes the listener and waits for the handlers to finish.
func (f *Frontend) Stop() {
	if f.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = f.server.Shutdown(ctx)
		cancel()
	}
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	f.mu.Lock()
	f.stopping = true
	f.mu.Unlock()
	f.bgCancel()
	f.bg.Wait()
	// The homeserver counts a transaction as delivered once the appservice
	// answered it, which happens before its events are handled: handle
	// what is still queued, or it would be lost.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		select {
		case evt := <-f.as.Events:
			f.handleEvent(ctx, evt)
		default:
			return
		}
	}
}

func userID(mxid id.UserID) bridge.UserID {
	return bridge.UserID{Frontend: Kind, ID: string(mxid)}
}

// isBridgeUser says whether mxid is the bot or one of the ghosts, whose
// events the bridge must not bridge back.
func (f *Frontend) isBridgeUser(mxid id.UserID) bool {
	if mxid == f.bot {
		return true
	}
	_, err := f.ghosts.PassportFromGhost(mxid)
	return err == nil
}

// handleEvents consumes the appservice's event channel one event at a time,
// so that a user's messages reach MSN in the order they were sent.
func (f *Frontend) handleEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case evt := <-f.as.Events:
			f.handleEvent(ctx, evt)
		}
	}
}

func (f *Frontend) handleEvent(ctx context.Context, evt *event.Event) {
	defer func() {
		// One malformed event must never stop the bridge.
		if r := recover(); r != nil {
			f.log.Error().Interface("panic", r).Stringer("event_id", evt.ID).Msg("panic while handling a Matrix event")
		}
	}()
	if evt.Type == event.EphemeralEventTyping {
		if c, ok := evt.Content.Parsed.(*event.TypingEventContent); ok {
			f.handleTyping(ctx, evt.RoomID, c.UserIDs)
		}
		return
	}
	if evt.Type == event.EphemeralEventPresence {
		f.handlePresence(ctx, evt)
		return
	}
	if f.isBridgeUser(evt.Sender) {
		return
	}
	log := f.log.With().Stringer("event_id", evt.ID).Stringer("room_id", evt.RoomID).Stringer("sender", evt.Sender).Logger()
	ctx = log.WithContext(ctx)
	perm := f.core.Permission(userID(evt.Sender))
	switch evt.Type {
	case event.StateMember:
		f.handleMember(ctx, evt, perm)
	case event.EventMessage, event.EventSticker:
		if perm == bridge.PermissionNone {
			f.refuseInDM(ctx, evt)
			return
		}
		f.handleMessage(ctx, evt)
	case event.EventReaction:
		if perm == bridge.PermissionNone {
			return
		}
		if c, ok := evt.Content.Parsed.(*event.ReactionEventContent); ok {
			f.forwardText(ctx, evt, "reacted with "+c.RelatesTo.Key)
		}
	case event.EventRedaction:
		if perm == bridge.PermissionNone {
			return
		}
		f.forwardText(ctx, evt, "deleted a message")
	}
}

const notAllowed = "Sorry, you are not allowed to use this bridge."

// refuseInDM answers a user without permission, but only where the bot is
// talking with them alone, so it never spams shared rooms.
func (f *Frontend) refuseInDM(ctx context.Context, evt *event.Event) {
	members, err := f.as.BotClient().JoinedMembers(ctx, evt.RoomID)
	if err != nil || len(members.Joined) != 2 {
		return
	}
	f.sendBotNotice(ctx, evt.RoomID, notAllowed)
}

func (f *Frontend) handleMember(ctx context.Context, evt *event.Event, perm bridge.Permission) {
	c, ok := evt.Content.Parsed.(*event.MemberEventContent)
	if !ok || evt.StateKey == nil {
		return
	}
	if id.UserID(*evt.StateKey) == evt.Sender {
		if perm >= bridge.PermissionUser {
			f.handleOwnMember(ctx, evt, c)
		}
		return
	}
	if id.UserID(*evt.StateKey) != f.bot {
		return
	}
	log := zerolog.Ctx(ctx)
	switch c.Membership {
	case event.MembershipInvite:
		bot := f.as.BotIntent()
		if err := bot.EnsureJoined(ctx, evt.RoomID); err != nil {
			log.Warn().Err(err).Msg("could not accept the invite")
			return
		}
		if perm == bridge.PermissionNone {
			f.sendBotNotice(ctx, evt.RoomID, notAllowed)
			_, _ = bot.LeaveRoom(ctx, evt.RoomID)
			return
		}
		if !c.IsDirect {
			f.sendBotNotice(ctx, evt.RoomID, "Hello! I only take commands in a direct chat: start one with me.")
			return
		}
		user := evt.Sender
		if err := f.core.SetManagementRoom(ctx, userID(user), evt.RoomID.String()); err != nil {
			log.Error().Err(err).Msg("could not record the management room")
			f.sendBotNotice(ctx, evt.RoomID, "I could not remember this room as your control room: "+err.Error())
			return
		}
		f.rememberManagementRoom(user, evt.RoomID)
		f.sendBotNotice(ctx, evt.RoomID, "Hello! I am the MSN bridge. Say help for what I can do, or login PASSPORT to start.")
	case event.MembershipLeave, event.MembershipBan:
		f.mu.Lock()
		if u, ok := f.mgmtRooms[evt.RoomID]; ok {
			delete(f.mgmtRooms, evt.RoomID)
			delete(f.mgmtByUser, u)
		}
		f.mu.Unlock()
	}
}

func (f *Frontend) rememberManagementRoom(user id.UserID, room id.RoomID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.mgmtByUser[user]; ok {
		delete(f.mgmtRooms, old)
	}
	f.mgmtRooms[room] = user
	f.mgmtByUser[user] = room
}

// managementRoom returns the user's management room from the cache or the
// core's store, or "".
func (f *Frontend) managementRoom(ctx context.Context, user id.UserID) id.RoomID {
	f.mu.Lock()
	room, ok := f.mgmtByUser[user]
	f.mu.Unlock()
	if ok {
		return room
	}
	stored, err := f.core.ManagementRoom(ctx, userID(user))
	if err != nil || stored == "" {
		return ""
	}
	f.rememberManagementRoom(user, id.RoomID(stored))
	return id.RoomID(stored)
}

func (f *Frontend) handleMessage(ctx context.Context, evt *event.Event) {
	c, ok := evt.Content.Parsed.(*event.MessageEventContent)
	if !ok {
		return
	}
	user := evt.Sender
	if f.managementRoom(ctx, user) == evt.RoomID {
		f.handleManagementMessage(ctx, evt, c)
		return
	}
	if isFileMessage(evt, c) {
		f.forwardFile(ctx, evt, c)
		return
	}
	if c.MsgType == event.MsgText && c.RelatesTo == nil {
		if cmd, isCmd, err := ParsePortalCommand(c.Body); isCmd {
			f.handlePortalCommand(ctx, evt, cmd, err)
			return
		}
	}
	text, ok := MatrixToMSNText(c, f.cfg.HomeserverURL)
	if evt.Type == event.EventSticker {
		text, ok = bridge.Text{Body: "sent a sticker: " + c.Body + " " + downloadURL(f.cfg.HomeserverURL, c.URL)}, true
	}
	if !ok {
		return
	}
	f.forward(ctx, evt, text)
}

// forwardText sends a plain text to MSN for an event in a portal room.
func (f *Frontend) forwardText(ctx context.Context, evt *event.Event, text string) {
	f.forward(ctx, evt, bridge.Text{Body: text})
}

// forward sends text to MSN for an event in a portal room; events in
// other rooms are not the bridge's business.
func (f *Frontend) forward(ctx context.Context, evt *event.Event, text bridge.Text) {
	user := userID(evt.Sender)
	portal, err := f.core.PortalByRoom(ctx, user, evt.RoomID.String())
	if errors.Is(err, bridge.ErrNoSuchPortal) {
		return // not a portal room: not the bridge's business
	} else if err != nil {
		// A portal room whose message cannot be sent now: say so, never
		// drop it silently.
		f.log.Warn().Err(err).Stringer("event_id", evt.ID).Msg("message in a room not sent to MSN")
		f.sendBotNotice(ctx, evt.RoomID, "Your message was not sent to MSN: "+err.Error())
		return
	}
	msg := bridge.OutgoingMessage{FrontendID: evt.ID.String(), Text: text}
	if err := f.core.SendMessage(ctx, user, portal.ID, msg); err != nil {
		f.sendBotNotice(ctx, evt.RoomID, "Your message was not sent to MSN: "+err.Error())
	}
}

func (f *Frontend) handlePortalCommand(ctx context.Context, evt *event.Event, cmd Command, parseErr error) {
	if parseErr != nil {
		f.sendBotNotice(ctx, evt.RoomID, parseErr.Error())
		return
	}
	user := userID(evt.Sender)
	portal, err := f.core.PortalByRoom(ctx, user, evt.RoomID.String())
	if err != nil {
		f.sendBotNotice(ctx, evt.RoomID, "This room is not an MSN chat.")
		return
	}
	switch cmd.Name {
	case "nudge":
		err = f.core.SendNudge(ctx, user, portal.ID)
		if err == nil {
			f.sendBotNotice(ctx, evt.RoomID, "Nudge sent.")
		}
	case "invite":
		err = f.core.Invite(ctx, user, portal.ID, cmd.Passport)
		if err == nil {
			f.sendBotNotice(ctx, evt.RoomID, "Invited "+cmd.Passport+".")
		}
	}
	if err != nil {
		f.sendBotNotice(ctx, evt.RoomID, "That did not work: "+err.Error())
	}
}

// handleTyping turns a room's list of typing users into start/stop calls
// for the users whose state changed.
func (f *Frontend) handleTyping(ctx context.Context, room id.RoomID, now []id.UserID) {
	current := make(map[id.UserID]bool, len(now))
	for _, u := range now {
		if !f.isBridgeUser(u) {
			current[u] = true
		}
	}
	f.mu.Lock()
	before := f.typing[room]
	f.typing[room] = current
	f.mu.Unlock()
	changes := map[id.UserID]bool{}
	for u := range current {
		if !before[u] {
			changes[u] = true
		}
	}
	for u := range before {
		if !current[u] {
			changes[u] = false
		}
	}
	for u, active := range changes {
		user := userID(u)
		if f.core.Permission(user) == bridge.PermissionNone {
			continue
		}
		portal, err := f.core.PortalByRoom(ctx, user, room.String())
		if err != nil {
			continue
		}
		if err := f.core.SendTyping(ctx, user, portal.ID, active); err != nil {
			f.log.Debug().Err(err).Msg("typing not sent to MSN")
		}
	}
}

// typingOnlyFilter is an inline /sync filter (the spec allows JSON in
// place of a filter ID) that leaves out everything but typing, so that
// the bot's sync stays small however many rooms it is in.
const typingOnlyFilter = `{"presence":{"types":[]},"account_data":{"types":[]},` +
	`"room":{"timeline":{"limit":0,"types":[]},"state":{"types":[]},"account_data":{"types":[]},` +
	`"ephemeral":{"types":["m.typing"]}}}`

// typingAndPresenceFilter also lets presence through, for presence_to_msn.
const typingAndPresenceFilter = `{"presence":{"types":["m.presence"]},"account_data":{"types":[]},` +
	`"room":{"timeline":{"limit":0,"types":[]},"state":{"types":[]},"account_data":{"types":[]},` +
	`"ephemeral":{"types":["m.typing"]}}}`

// handlePresence turns a user's Matrix presence into their MSN status
// when presence_to_msn is on. Only changes are passed on, and going
// offline is not: Matrix clients drop offline all the time.
func (f *Frontend) handlePresence(ctx context.Context, evt *event.Event) {
	if !f.cfg.PresenceToMSN || f.isBridgeUser(evt.Sender) {
		return
	}
	c, ok := evt.Content.Parsed.(*event.PresenceEventContent)
	if !ok {
		return
	}
	var st bridge.Status
	switch c.Presence {
	case event.PresenceOnline:
		st = bridge.StatusOnline
	case event.PresenceUnavailable:
		st = bridge.StatusAway
	default:
		return
	}
	user := userID(evt.Sender)
	if f.core.Permission(user) < bridge.PermissionUser {
		return
	}
	f.mu.Lock()
	if f.lastPresence == nil {
		f.lastPresence = map[id.UserID]bridge.Status{}
	}
	changed := f.lastPresence[evt.Sender] != st
	f.lastPresence[evt.Sender] = st
	f.mu.Unlock()
	if !changed {
		return
	}
	if _, err := f.core.Status(ctx, user); err != nil {
		return // no login: nothing to set
	}
	if err := f.core.SetStatus(ctx, user, st); err != nil {
		f.log.Debug().Err(err).Stringer("user", evt.Sender).Msg("could not follow the user's Matrix presence")
	}
}

// syncTyping follows typing notifications with the bot's own /sync, for
// homeservers that do not push them to appservices (Dendrite). The bot is
// in every portal room, so it sees them all.
func (f *Frontend) syncTyping(ctx context.Context) {
	cli := f.as.BotClient()
	since := ""
	backoff := time.Second
	for ctx.Err() == nil {
		filter := typingOnlyFilter
		if f.cfg.PresenceToMSN {
			filter = typingAndPresenceFilter
		}
		resp, err := cli.FullSyncRequest(ctx, mautrix.ReqSync{Timeout: 30000, Since: since, FilterID: filter})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.log.Warn().Err(err).Dur("retry_in", backoff).Msg("typing /sync failed")
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Minute)
			continue
		}
		backoff = time.Second
		first := since == ""
		since = resp.NextBatch
		if first {
			continue // the initial sync is history, not news
		}
		for _, evt := range resp.Presence.Events {
			_ = evt.Content.ParseRaw(event.EphemeralEventPresence)
			f.handlePresence(ctx, evt)
		}
		for room, joined := range resp.Rooms.Join {
			for _, evt := range joined.Ephemeral.Events {
				if evt.Type.Type != event.EphemeralEventTyping.Type {
					continue
				}
				_ = evt.Content.ParseRaw(event.EphemeralEventTyping)
				if c, ok := evt.Content.Parsed.(*event.TypingEventContent); ok {
					f.handleTyping(ctx, room, c.UserIDs)
				}
			}
		}
	}
}

func (f *Frontend) sendBotNotice(ctx context.Context, room id.RoomID, text string) id.EventID {
	resp, err := f.as.BotIntent().SendNotice(ctx, room, text)
	if err != nil {
		f.log.Warn().Err(err).Stringer("room_id", room).Msg("could not send a notice")
		return ""
	}
	return resp.EventID
}
