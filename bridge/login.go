package bridge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/store"
)

// login is one user's MSN account at run time: its msnp client, its state,
// and the loop that keeps it connected.
type login struct {
	b        *Bridge
	user     UserID
	id       int64
	passport string
	log      zerolog.Logger

	startDelay time.Duration

	mu         sync.Mutex
	client     *msnp.Client
	state      LoginState
	wantStatus msnp.Status
	cancel     context.CancelFunc
	done       chan struct{}
	connected  chan struct{} // closed while connected; replaced on disconnect
	changed    chan struct{} // closed and replaced at every state change
	// seen is each contact as the events so far describe it.
	seen map[string]Contact
	// avatarWant is the hash of the picture each contact shows now, cached
	// or not ("" for none).
	avatarWant map[string]string
	// storedAvatars is each contact's Avatar as the store had it when the
	// session began: the picture they last showed, for contacts this
	// session has no presence of (yet). Changes go to seen and the store.
	storedAvatars map[string]string

	// presenceMu orders the Presence events of the msnp event goroutine
	// and of display-picture fetches, so that a contact's last event
	// carries what seen holds.
	presenceMu sync.Mutex
	// fetchSlots bounds the display-picture fetches this login runs.
	fetchSlots chan struct{}
	// receiving bounds the files this login receives at once.
	receiving chan struct{}
	// pictureMu makes reading the user's display picture from the store
	// and giving it to the client one step, so that a new picture set
	// during a sign-in is not overtaken by the old one.
	pictureMu sync.Mutex
}

func (b *Bridge) newLogin(user UserID, rec store.Login) *login {
	return &login{
		b: b, user: user, id: rec.ID, passport: rec.Passport,
		log:        b.log.With().Str("user", user.String()).Str("login", rec.Passport).Logger(),
		wantStatus: msnp.StatusOnline,
		connected:  make(chan struct{}),
		changed:    make(chan struct{}),
		fetchSlots: make(chan struct{}, avatarFetchesPerLogin),
		receiving:  make(chan struct{}, maxIncomingTransfers),
	}
}

func (l *login) start(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	l.mu.Lock()
	l.cancel = cancel
	l.done = make(chan struct{})
	done := l.done
	l.mu.Unlock()
	l.b.wg.Add(1)
	go func() {
		defer l.b.wg.Done()
		defer close(done)
		l.run(ctx)
	}()
}

// stop ends the connection loop and signs out of MSN.
func (l *login) stop() {
	l.mu.Lock()
	cancel, done, client := l.cancel, l.done, l.client
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if client != nil {
		client.Close()
	}
	if done != nil {
		<-done
	}
}

// run connects and reconnects with capped exponential backoff and jitter.
// It gives up for good on bad credentials and on "signed in elsewhere":
// retrying those would lock the account or start a login war.
func (l *login) run(ctx context.Context) {
	if l.startDelay > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.startDelay):
		}
	}
	backoff := l.b.opts.ReconnectMin
	for ctx.Err() == nil {
		l.setState(ctx, LoginConnecting, "Connecting to MSN…", "")
		reason, err := l.session(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case errors.Is(err, msnp.ErrAuthentication):
			l.b.obs.Error(ErrorAuth)
			l.setState(ctx, LoginBadCredentials, "MSN refused the passport or password. Log in again with the right password.", err.Error())
			return
		case reason == msnp.ReasonOtherLogin:
			l.setState(ctx, LoginElsewhere, "Your MSN account signed in somewhere else, so the bridge was signed out. Use relogin to take it back.", "")
			return
		case reason == msnp.ReasonServerShutdown:
			l.setState(ctx, LoginServerDown, "The MSN server is going down; the bridge will reconnect.", "")
		default:
			msg := "Lost the connection to MSN; reconnecting."
			if err != nil {
				l.b.obs.Error(ErrorLogin)
				msg = fmt.Sprintf("Could not stay connected to MSN (%v); retrying.", err)
			}
			l.setState(ctx, LoginServerDown, msg, errString(err))
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		l.log.Info().Dur("retry_in", wait).Msg("reconnecting to MSN")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, l.b.opts.ReconnectMax)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// session runs one MSN session: connect, sync, serve until disconnected.
func (l *login) session(ctx context.Context) (msnp.DisconnectReason, error) {
	password, err := l.b.store.Logins.Password(ctx, l.id)
	if err != nil {
		return 0, fmt.Errorf("reading the stored password: %w", err)
	}
	cfg := l.b.msnConfig
	cfg.MachineGUID, err = l.machineGUID(ctx)
	if err != nil {
		return 0, err
	}
	disconnected := make(chan msnp.Disconnected, 1)
	var client *msnp.Client
	client, err = msnp.New(cfg, l.passport, password, func(ev msnp.Event) {
		if d, ok := ev.(msnp.Disconnected); ok {
			select {
			case disconnected <- d:
			default:
			}
			return
		}
		l.handle(client, ev)
	})
	if err != nil {
		return 0, err
	}
	// Under presenceMu, so that a picture the last session fetched late
	// (avatarArrived stores it under presenceMu) is either in the
	// snapshot or dropped with that session's seen.
	l.presenceMu.Lock()
	stored := l.loadStoredAvatars(ctx)
	l.mu.Lock()
	l.client = client
	l.seen = nil // the server sends everyone's presence again
	l.avatarWant = nil
	l.storedAvatars = stored
	l.mu.Unlock()
	l.presenceMu.Unlock()
	defer func() {
		l.mu.Lock()
		l.client = nil
		l.connected = make(chan struct{})
		l.mu.Unlock()
		client.Close()
	}()
	if err := client.Connect(ctx); err != nil {
		return 0, err
	}
	_ = l.b.store.Logins.SetProtocol(ctx, l.id, client.Protocol().String())
	l.syncContacts(ctx, client)
	l.applyDisplayPicture(ctx, client)
	l.mu.Lock()
	want := l.wantStatus
	l.mu.Unlock()
	if err := client.SetStatus(ctx, want); err != nil {
		return 0, fmt.Errorf("setting status: %w", err)
	}
	select {
	case d := <-disconnected:
		return d.Reason, d.Err
	case <-ctx.Done():
		return msnp.ReasonLoggedOut, nil
	}
}

// machineGUID returns the login's stored machine GUID, making and storing
// one the first time. On MSNP16+ it is how the user's other clients tell
// the bridge's endpoint from their own: a new one at every reconnect would
// pile up endpoints, and reusing the user's own would sign them out.
func (l *login) machineGUID(ctx context.Context) (string, error) {
	rec, err := l.b.store.Logins.Get(ctx, l.id)
	if err != nil {
		return "", fmt.Errorf("reading the login: %w", err)
	}
	if rec.MachineGUID != "" {
		return rec.MachineGUID, nil
	}
	guid, err := msnp.NewMachineGUID()
	if err != nil {
		return "", err
	}
	rec.MachineGUID = guid
	if _, err := l.b.store.Logins.Put(ctx, rec, ""); err != nil {
		return "", fmt.Errorf("storing the machine GUID: %w", err)
	}
	return guid, nil
}

// loadStoredAvatars reads the picture each contact last showed, as the
// previous session (or run of the bridge) stored it.
func (l *login) loadStoredAvatars(ctx context.Context) map[string]string {
	rows, err := l.b.store.Contacts.List(ctx, l.id)
	if err != nil {
		l.log.Warn().Err(err).Msg("could not read the contacts' last pictures")
		return nil
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		if r.Avatar != "" {
			out[r.Passport] = r.Avatar
		}
	}
	return out
}

// avatarOfLocked is the Avatar a contact has now: what this session's
// events said, else what the store had at its start. The caller holds l.mu.
func (l *login) avatarOfLocked(passport string) string {
	passport = strings.ToLower(passport)
	if c, ok := l.seen[passport]; ok {
		return c.Avatar
	}
	return l.storedAvatars[passport]
}

// avatarOf is avatarOfLocked for callers without l.mu.
func (l *login) avatarOf(passport string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.avatarOfLocked(passport)
}

// syncContacts stores the list the server sent at sign-in. The list says
// nothing of pictures: Replace keeps the stored ones.
func (l *login) syncContacts(ctx context.Context, client *msnp.Client) {
	cs := client.Contacts()
	rows := make([]store.Contact, 0, len(cs))
	for _, c := range cs {
		rows = append(rows, store.Contact{
			LoginID: l.id, Passport: c.Passport, FriendlyName: c.FriendlyName,
			ListBits: int(c.Lists), Groups: c.Groups, PersonalMessage: c.PersonalMessage,
			Status: string(statusFromMSN(c.Status)),
		})
	}
	if err := l.b.store.Contacts.Replace(ctx, l.id, rows); err != nil {
		l.log.Warn().Err(err).Msg("could not store the contact list")
	}
}

// handle translates one msnp event. It runs on msnp's delivery goroutine,
// so it only queues work.
func (l *login) handle(client *msnp.Client, ev msnp.Event) {
	switch e := ev.(type) {
	case msnp.PresenceSynced:
		l.mu.Lock()
		select {
		case <-l.connected:
		default:
			close(l.connected)
		}
		l.mu.Unlock()
		l.setState(context.Background(), LoginConnected, fmt.Sprintf("Connected to MSN as %s (%s).", l.passport, client.Protocol()), "")
	case msnp.ContactPresence, msnp.ContactOffline, msnp.PersonalMessage:
		// Build the contact from the events in their order: the client's
		// own table already holds later changes by the time this runs.
		l.presenceMu.Lock()
		contact, fetch, ok := l.applyPresence(client, ev)
		if ok {
			l.storeSeen(contact)
			l.b.emit(l.user, Presence{Contact: contact})
		}
		l.presenceMu.Unlock()
		if fetch != "" {
			obj, _ := msnp.ParseMSNObject(ev.(msnp.ContactPresence).MSNObject)
			l.b.avatars.request(avatarWaiter{l: l, client: client, passport: strings.ToLower(contact.Passport), obj: obj}, fetch)
		}
	case msnp.AddedBy:
		c, _ := client.Contact(e.Passport)
		contact := contactFromMSN(c)
		contact.Passport, contact.Pending = e.Passport, true
		contact.Avatar = l.avatarOf(e.Passport)
		if contact.FriendlyName == "" {
			contact.FriendlyName = cleanText(e.Name, 387)
		}
		l.b.emit(l.user, ContactChange{Kind: ContactAddedYou, Contact: contact})
	case msnp.RemovedBy:
		l.b.emit(l.user, ContactChange{Kind: ContactRemovedYou, Contact: Contact{Passport: e.Passport}})
	case msnp.ServerNotice:
		if e.MaintenanceMinutes > 0 {
			l.b.emit(l.user, Notice{Text: fmt.Sprintf("The MSN server will go down for maintenance in %d minutes.", e.MaintenanceMinutes)})
		}
	default:
		l.handleChat(client, ev)
	}
}

// applyPresence folds a presence event into l.seen and returns the contact,
// and the hash of a display picture to fetch for them ("" for none).
func (l *login) applyPresence(client *msnp.Client, ev msnp.Event) (Contact, string, bool) {
	// The contact's picture, looked up before taking l.mu (it reads the
	// store): Avatar is only ever a cached picture.
	hash, cached := "", false
	if e, ok := ev.(msnp.ContactPresence); ok && e.MSNObject != "" {
		if obj, err := msnp.ParseMSNObject(e.MSNObject); err == nil {
			hash = l.b.avatars.wanted(obj)
		}
		if hash != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cached = l.b.avatars.cached(ctx, hash)
			cancel()
		}
	}
	var passport string
	switch e := ev.(type) {
	case msnp.ContactPresence:
		passport = e.Passport
	case msnp.ContactOffline:
		passport = e.Passport
	case msnp.PersonalMessage:
		passport = e.Passport
	}
	passport = strings.ToLower(passport)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]Contact{}
		l.avatarWant = map[string]string{}
	}
	c, ok := l.seen[passport]
	if !ok {
		mc, known := client.Contact(passport)
		if !known {
			return Contact{}, "", false
		}
		c = contactFromMSN(mc)
		c.Status = StatusOffline
		c.PersonalMessage = ""
		// Until their presence says otherwise, the picture they last
		// showed, from the store.
		c.Avatar = l.storedAvatars[passport]
	}
	switch e := ev.(type) {
	case msnp.ContactPresence:
		c.Status = statusFromMSN(e.Status)
		if name := cleanText(e.FriendlyName, 387); name != "" {
			c.FriendlyName = name
		}
		l.avatarWant[passport] = hash
		c.Avatar = ""
		if cached {
			c.Avatar = hash
		}
	case msnp.ContactOffline:
		c.Status = StatusOffline
	case msnp.PersonalMessage:
		c.PersonalMessage = cleanText(e.Text, 512)
	}
	l.seen[passport] = c
	fetch := ""
	if hash != "" && !cached {
		fetch = hash
	}
	return c, fetch, true
}

// storeSeen records a contact's presence, their picture included. It runs
// under presenceMu, so the store keeps the last event's picture.
func (l *login) storeSeen(c Contact) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	row, err := l.b.store.Contacts.Get(ctx, l.id, c.Passport)
	if err != nil {
		return
	}
	row.FriendlyName, row.PersonalMessage, row.Status, row.Avatar = c.FriendlyName, c.PersonalMessage, string(c.Status), c.Avatar
	if err := l.b.store.Contacts.Upsert(ctx, row); err != nil {
		l.log.Warn().Err(err).Msg("could not store a contact")
	}
}

func (l *login) storeContact(c msnp.Contact) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := l.b.store.Contacts.Upsert(ctx, store.Contact{
		LoginID: l.id, Passport: c.Passport, FriendlyName: c.FriendlyName,
		ListBits: int(c.Lists), Groups: c.Groups, PersonalMessage: c.PersonalMessage,
		Status: string(statusFromMSN(c.Status)), Avatar: l.avatarOf(c.Passport),
	})
	if err != nil {
		l.log.Warn().Err(err).Msg("could not store a contact")
	}
}

// setState records and announces a state change; unchanged states are
// not announced again.
func (l *login) setState(ctx context.Context, s LoginState, msg, lastErr string) {
	l.mu.Lock()
	if l.state == LoginLoggedOut && s != LoginLoggedOut {
		// Signed out on purpose: this login is finished (Relogin makes a
		// new one). A late event of its session, such as the end of a
		// sign-in that was under way, must not store it as connected, or
		// the next start would sign the account back in.
		l.mu.Unlock()
		return
	}
	changed := l.state != s
	l.state = s
	if changed {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	l.mu.Unlock()
	if err := l.b.store.Logins.SetState(context.WithoutCancel(ctx), l.id, string(s), lastErr); err != nil {
		l.b.obs.Error(ErrorStore)
		l.log.Warn().Err(err).Msg("could not store the login state")
	}
	if changed || s == LoginConnected {
		l.log.Info().Str("state", string(s)).Msg("login state")
		l.b.emit(l.user, LoginStateChange{State: s, Message: msg})
	}
}

// currentClient is the client of the session in progress, nil between
// sessions.
func (l *login) currentClient() *msnp.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client
}

func (l *login) currentState() LoginState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// connectedClient returns the client once the session is connected,
// waiting up to ctx's deadline for a reconnect in progress.
func (l *login) connectedClient(ctx context.Context) (*msnp.Client, error) {
	for {
		l.mu.Lock()
		ch, client, state, changed := l.connected, l.client, l.state, l.changed
		l.mu.Unlock()
		select {
		case <-ch:
			if client != nil {
				return client, nil
			}
		default:
		}
		if state == LoginBadCredentials || state == LoginElsewhere || state == LoginLoggedOut {
			return nil, ErrNotConnected
		}
		// A state change wakes the wait too: a sign-in that ends in bad
		// credentials must fail the caller now, not at its deadline.
		select {
		case <-ctx.Done():
			return nil, ErrNotConnected
		case <-ch:
		case <-changed:
		}
	}
}
