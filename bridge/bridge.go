package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/bridge/config"
	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/store"
)

// Errors the core returns to frontends; each says what the user can do.
var (
	ErrNotLoggedIn   = errors.New("you are not logged in to MSN: log in first")
	ErrNotConnected  = errors.New("your MSN session is not connected right now")
	ErrNotPermitted  = errors.New("you are not allowed to use this bridge")
	ErrAlreadyLogged = errors.New("you are already logged in: log out first to use another account")
	ErrNoSuchPortal  = errors.New("no such conversation")
	ErrNoSuchMedia   = errors.New("no such file or picture (it may have expired)")
)

// Options configures a Bridge.
type Options struct {
	MSN    config.MSN
	Bridge config.Bridge
	Store  *store.Store
	Log    zerolog.Logger
	// MSNLog receives msnp's protocol traces (secrets redacted).
	MSNLog zerolog.Logger
	// ReconnectMin and ReconnectMax bound the backoff between reconnects
	// after a lost MSN connection; zero means 2 s and 5 min.
	ReconnectMin, ReconnectMax time.Duration
	// DeliveryRetry is the first wait before retrying a frontend that
	// refused an event; zero means 1 s.
	DeliveryRetry time.Duration
	// KeepaliveInterval overrides msnp's PNG interval (tests).
	KeepaliveInterval time.Duration
	// LoginRate and LoginBurst limit each user's logins and relogins
	// (default one per 20 s, bursts of 3); ActionRate and ActionBurst
	// limit contact-list and profile changes (default one per 2 s, bursts
	// of 10). Negative disables the limit.
	LoginRate, ActionRate   time.Duration
	LoginBurst, ActionBurst int
	// ResumeInterval is the mean time between the stored logins Start
	// resumes: zero means DefaultResumeInterval, negative resumes them all
	// at once. Each login starts at a random point of its own interval, so
	// that bridges restarted together do not log in in lockstep.
	ResumeInterval time.Duration
	// Observer is told about messages, errors and MSN round trips (the
	// metrics); nil means nobody.
	Observer Observer
}

// DefaultResumeInterval paces Start at five logins a second. Escargot
// publishes no login rate limit; a login costs it an RSA key generation
// (FACTS.md §14: 0.15–0.6 s each), so a restart should not arrive all at
// once. BENCHMARKS.md has the resulting start-up times.
const DefaultResumeInterval = 200 * time.Millisecond

// resumeDelay is when the i-th resumed login starts: somewhere in
// [i*interval, (i+1)*interval), chosen by rnd (which returns [0, n)).
func resumeDelay(i int, interval time.Duration, rnd func(n int64) int64) time.Duration {
	if interval <= 0 {
		return 0
	}
	return time.Duration(i)*interval + time.Duration(rnd(int64(interval)))
}

// Bridge is the puppeting core. It implements Core for the frontends.
type Bridge struct {
	opts      Options
	obs       Observer
	log       zerolog.Logger
	store     *store.Store
	perms     *Permissions
	msnConfig msnp.Config
	media     *mediaStore
	avatars   *avatarFetcher

	// freshAfter is the last event queued before this Bridge: those after
	// it cannot have been delivered by an earlier run, so their delivery
	// skips the look-up for a repeat.
	freshAfter int64

	writer  *queueWriter // commits emitted events to the queue
	stopMu  sync.RWMutex // held for reading while an event is queued
	stopped bool         // set by Stop: no more events reach the store

	mu          sync.Mutex
	frontends   map[string]Frontend
	logins      map[UserID]*login
	outboxes    map[UserID]*outbox
	senders     senders
	loginLimit  *limiter // Login and Relogin
	actionLimit *limiter // contact and profile changes
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

var _ Core = (*Bridge)(nil)

// New builds a Bridge. It refuses to start when the store holds logins
// but no encryption key was configured (their passwords would be unreadable).
func New(opts Options) (*Bridge, error) {
	if opts.Store == nil {
		return nil, errors.New("bridge: no store")
	}
	perms, err := ParsePermissions(opts.Bridge.Permissions)
	if err != nil {
		return nil, err
	}
	mc, err := msnConfig(opts.MSN, opts.MSNLog)
	if err != nil {
		return nil, err
	}
	if opts.KeepaliveInterval > 0 {
		mc.KeepaliveInterval = opts.KeepaliveInterval
	}
	obs := opts.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	mc.OnRoundTrip = obs.RoundTrip
	if opts.ReconnectMin <= 0 {
		opts.ReconnectMin = 2 * time.Second
	}
	if opts.ReconnectMax <= 0 {
		opts.ReconnectMax = 5 * time.Minute
	}
	if opts.DeliveryRetry <= 0 {
		opts.DeliveryRetry = time.Second
	}
	def := func(d *time.Duration, v time.Duration, n *int, burst int) {
		if *d == 0 {
			*d = v
		}
		if *n <= 0 {
			*n = burst
		}
	}
	def(&opts.LoginRate, 20*time.Second, &opts.LoginBurst, 3)
	def(&opts.ActionRate, 2*time.Second, &opts.ActionBurst, 10)
	files := opts.Bridge.Files
	media := &mediaStore{dir: files.Dir, maxSize: int64(files.MaxSize), retention: files.Retention,
		st: opts.Store, log: opts.Log.With().Str("component", "media").Logger()}
	if media.maxSize > 0 {
		if media.dir == "" {
			return nil, errors.New("bridge: bridge.files.dir is empty while file transfer is on")
		}
		if media.retention <= 0 {
			media.retention = 7 * 24 * time.Hour
		}
		// The directory is made with the first file: a bridge nobody sends
		// files through leaves no trace of it.
	}
	lctx, lcancel := context.WithTimeout(context.Background(), 30*time.Second)
	freshAfter, err := opts.Store.Queue.LastID(lctx)
	lcancel()
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bridge{freshAfter: freshAfter,
		loginLimit: newLimiter(opts.LoginRate, opts.LoginBurst), actionLimit: newLimiter(opts.ActionRate, opts.ActionBurst),
		opts: opts, obs: obs, log: opts.Log, store: opts.Store, perms: perms, msnConfig: mc, media: media,
		frontends: map[string]Frontend{}, logins: map[UserID]*login{}, outboxes: map[UserID]*outbox{},
		ctx: ctx, cancel: cancel,
	}
	b.avatars = newAvatarFetcher(b, opts.Bridge.DisplayPictures)
	b.writer = newQueueWriter(b)
	return b, nil
}

// msnConfig turns the config file's msn section into msnp's Config,
// keeping only the protocol versions msnp speaks.
func msnConfig(c config.MSN, log zerolog.Logger) (msnp.Config, error) {
	mc := msnp.Config{
		Server: c.Server, NexusURL: c.NexusURL, LoginURL: c.LoginURL,
		RSTURL: c.RSTURL, SOAPBaseURL: c.SOAPBaseURL,
		// What the user's own Messenger lists under "signed in at" (MSNP16+).
		EndpointName: "MSN bridge",
		DialTimeout:  c.DialTimeout, Logger: log,
		ClientInfo: msnp.ClientInfo{
			Locale: c.Client.LocaleID, OSType: c.Client.OSType, OSVer: c.Client.OSVer,
			Arch: c.Client.Arch, Name: c.Client.Name, Version: c.Client.Version, Brand: c.Client.Brand,
		},
	}
	for _, name := range c.Protocols {
		if p, err := msnp.ParseProtocol(name); err == nil {
			mc.Protocols = append(mc.Protocols, p)
		}
	}
	if len(c.Protocols) > 0 && len(mc.Protocols) == 0 {
		return mc, fmt.Errorf("bridge: none of the configured protocols %v is supported by this build (supported: %v)", c.Protocols, msnp.SupportedProtocols())
	}
	if c.TLS.InsecureSkipVerify || c.TLS.CAFile != "" {
		tc := &tls.Config{InsecureSkipVerify: c.TLS.InsecureSkipVerify} //nolint:gosec // the operator asked for it
		if c.TLS.CAFile != "" {
			pem, err := os.ReadFile(c.TLS.CAFile)
			if err != nil {
				return mc, fmt.Errorf("bridge: msn.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return mc, fmt.Errorf("bridge: msn.tls.ca_file %s holds no PEM certificate", c.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		mc.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}}
	}
	return mc, nil
}

// AddFrontend registers a frontend before Start.
func (b *Bridge) AddFrontend(f Frontend) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.frontends[f.Kind()] = f
}

func (b *Bridge) frontend(kind string) Frontend {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.frontends[kind]
}

// Start resumes every stored login and delivers events left queued by the
// previous run. It returns at once; logins connect in the background,
// paced so that a restart does not flood the MSN server.
func (b *Bridge) Start(ctx context.Context) error {
	if err := b.store.CheckKey(ctx); err != nil {
		return fmt.Errorf("bridge: %w (set bridge.encryption_key to the key the logins were stored with)", err)
	}
	if err := b.redeliverQueued(ctx); err != nil {
		return err
	}
	logins, err := b.store.Logins.All(ctx)
	if err != nil {
		return err
	}
	if b.media.maxSize > 0 {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.media.runSweeper(b.ctx)
		}()
	}
	interval := b.opts.ResumeInterval
	if interval == 0 {
		interval = DefaultResumeInterval
	}
	resumed := 0
	for _, rec := range logins {
		user := UserID{Frontend: rec.User.Frontend, ID: rec.User.ID}
		if b.frontend(user.Frontend) == nil {
			b.log.Warn().Str("user", user.String()).Msg("stored login for a frontend that is not running; not resuming it")
			continue
		}
		l := b.newLogin(user, rec)
		if rec.State == string(LoginLoggedOut) {
			// Signed out on purpose (SetStatus(StatusOffline)): the login is
			// kept and known, so Status reports it and Relogin or another
			// status signs it back in; it just does not connect now.
			l.state = LoginLoggedOut
			b.mu.Lock()
			b.logins[user] = l
			b.mu.Unlock()
			continue
		}
		l.startDelay = resumeDelay(resumed, interval, rand.Int64N)
		resumed++
		b.mu.Lock()
		b.logins[user] = l
		b.mu.Unlock()
		l.start(b.ctx)
	}
	return nil
}

// redeliverQueued starts delivering the events a previous run left queued.
func (b *Bridge) redeliverQueued(ctx context.Context) error {
	users, err := b.store.Queue.Users(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		b.outboxFor(UserID{Frontend: u.Frontend, ID: u.ID}).poke()
	}
	return nil
}

// Stop signs every login out of MSN and stops delivery. Queued events stay
// in the store for the next run.
func (b *Bridge) Stop() {
	// Messages users already handed over are sent (or fail, visibly)
	// before the MSN sessions close; a frontend has already acknowledged
	// them to its server, so dropping them would lose them.
	if !b.senders.wait(15 * time.Second) {
		b.log.Warn().Msg("stopping with messages still being sent to MSN; they will be reported failed")
	}
	b.mu.Lock()
	logins := make([]*login, 0, len(b.logins))
	for _, l := range b.logins {
		logins = append(logins, l)
	}
	b.mu.Unlock()
	for _, l := range logins {
		l.stop()
	}
	b.cancel()
	b.wg.Wait()
	// Late events (an msnp client winding down) must not reach a store
	// the caller is about to close.
	b.stopMu.Lock()
	b.stopped = true
	b.stopMu.Unlock()
	b.writer.wait()
}

func (b *Bridge) outboxFor(user UserID) *outbox {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.outboxes[user]
	if !ok {
		o = &outbox{b: b, user: user, wake: make(chan struct{}, 1), retry: b.opts.DeliveryRetry,
			log: b.log.With().Str("user", user.String()).Logger()}
		b.outboxes[user] = o
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			o.run(b.ctx)
		}()
	}
	return o
}

// emit queues ev for user.
func (b *Bridge) emit(user UserID, ev Event) {
	b.stopMu.RLock()
	defer b.stopMu.RUnlock()
	if b.stopped {
		b.log.Debug().Str("user", user.String()).Str("event", fmt.Sprintf("%T", ev)).Msg("event after Stop dropped")
		return
	}
	b.outboxFor(user).push(ev)
}

func (b *Bridge) loginOf(user UserID) *login {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.logins[user]
}
