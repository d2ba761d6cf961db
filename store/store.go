package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/lib/pq"
	"github.com/mattn/go-sqlite3"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/msnbridge/msnbridge/store/upgrades"
)

// VersionTable is where dbutil records the schema version.
const VersionTable = "msnbridge_version"

// Owner is recorded in dbutil's database_owner table so that another
// program's database is refused rather than migrated.
const Owner = "msnbridge"

// DefaultQueueLimit bounds each user's event queue unless WithQueueLimit
// says otherwise.
const DefaultQueueLimit = 1000

var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrDuplicate means a row with the same unique key already exists.
	ErrDuplicate = errors.New("store: already exists")
	// ErrNoKey means an operation needs the password key and the store
	// has no Sealer.
	ErrNoKey = errors.New("store: no encryption key configured")
	// ErrQueueFull is matched (errors.Is) by every *QueueFullError.
	ErrQueueFull = errors.New("store: event queue is full")
)

// QueueFullError is returned by Queue.Push when a user's queue holds Limit
// events already.
type QueueFullError struct {
	User  UserID
	Limit int
}

func (e *QueueFullError) Error() string {
	return fmt.Sprintf("store: event queue of %s is full (%d events)", e.User, e.Limit)
}

// Is makes errors.Is(err, ErrQueueFull) true.
func (e *QueueFullError) Is(target error) bool { return target == ErrQueueFull }

// UserID is a bridge user: the frontend's kind ("matrix", "xmpp") and its
// own identifier for them. It mirrors bridge.UserID, which store cannot
// import.
type UserID struct {
	Frontend string
	ID       string
}

func (u UserID) String() string { return u.Frontend + ":" + u.ID }

// Store is the bridge's database. Its fields are the typed tables; all are
// safe for concurrent use.
type Store struct {
	db     *dbutil.Database
	sealer *Sealer
	// stopCheckpoints ends the SQLite checkpointer (nil on Postgres).
	stopCheckpoints func()

	Users    *Users
	Logins   *Logins
	Contacts *Contacts
	Ghosts   *Ghosts
	Portals  *Portals
	Messages *Messages
	Queue    *Queue
	KV       *KV

	Avatars         *Avatars
	Media           *Media
	DisplayPictures *DisplayPictures
}

// Option adjusts Open.
type Option func(*options)

type options struct {
	sealer       *Sealer
	queueLimit   int
	maxOpenConns int
	maxIdleConns int
}

// WithSealer gives the store the key that seals MSN passwords. Without it
// logins can be read but not given or asked for passwords.
func WithSealer(s *Sealer) Option { return func(o *options) { o.sealer = s } }

// WithQueueLimit bounds each user's event queue (n > 0).
func WithQueueLimit(n int) Option { return func(o *options) { o.queueLimit = n } }

// WithPool sets the connection pool limits (0 keeps database/sql's default).
func WithPool(maxOpen, maxIdle int) Option {
	return func(o *options) { o.maxOpenConns, o.maxIdleConns = maxOpen, maxIdle }
}

// Open connects to the database and brings its schema to the latest
// version. dbType is "sqlite3" (also "sqlite", "sqlite3-fk-wal"), with uri
// a file path or file: URI, or "postgres" (also "postgresql"), with uri a
// libpq connection URL or key=value string (postgres://user:pass@host/db).
// SQLite is opened with WAL, foreign keys on, a busy timeout and immediate
// write transactions; Postgres as the URI says, with the same schema.
func Open(ctx context.Context, dbType, uri string, log zerolog.Logger, opts ...Option) (*Store, error) {
	o := options{queueLimit: DefaultQueueLimit}
	for _, opt := range opts {
		opt(&o)
	}
	if o.queueLimit <= 0 {
		return nil, fmt.Errorf("store: queue limit must be positive, got %d", o.queueLimit)
	}
	var driver, dsn string
	switch strings.ToLower(dbType) {
	case "sqlite3", "sqlite", "sqlite3-fk-wal":
		if uri == "" {
			return nil, errors.New("store: empty database URI")
		}
		driver, dsn = "sqlite3", sqliteDSN(uri)
	case "postgres", "postgresql":
		if uri == "" {
			return nil, errors.New("store: empty database URI")
		}
		// lib/pq registers itself as "postgres"; dbutil takes the dialect
		// from the driver name.
		driver, dsn = "postgres", uri
	default:
		return nil, fmt.Errorf("store: unknown database type %q (want sqlite3 or postgres)", dbType)
	}
	openDriver := driver
	if driver == "sqlite3" {
		openDriver = sqliteDriverName
	}
	raw, err := sql.Open(openDriver, dsn)
	if err != nil {
		return nil, fmt.Errorf("store: opening %s database: %w", driver, redactURI(err, dsn))
	}
	if o.maxOpenConns > 0 {
		raw.SetMaxOpenConns(o.maxOpenConns)
	} else if driver == "sqlite3" {
		// SQLite has one writer at a time: more connections only add
		// contenders spinning on the busy timeout. Queue them in Go instead.
		raw.SetMaxOpenConns(8)
	}
	if o.maxIdleConns > 0 {
		raw.SetMaxIdleConns(o.maxIdleConns)
	}
	db, err := dbutil.NewWithDB(raw, driver)
	if err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("store: wrapping database: %w", err)
	}
	db.Owner = Owner
	db.VersionTable = VersionTable
	db.UpgradeTable = upgrades.Table
	db.Log = dbutil.ZeroLogger(log.With().Str("component", "store").Logger())
	if err = raw.PingContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("store: connecting to the %s database: %w", driver, redactURI(err, dsn))
	}
	if err = db.Upgrade(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("store: upgrading schema: %w", err)
	}
	s := &Store{db: db, sealer: o.sealer}
	if driver == "sqlite3" {
		s.stopCheckpoints = runCheckpoints(raw, log)
	}
	s.Users = &Users{s}
	s.Logins = &Logins{s}
	s.Contacts = &Contacts{s}
	s.Ghosts = &Ghosts{s}
	s.Portals = &Portals{s}
	s.Messages = &Messages{s}
	s.Queue = &Queue{s: s, limit: o.queueLimit}
	s.KV = &KV{s}
	s.Avatars = &Avatars{s}
	s.Media = &Media{s}
	s.DisplayPictures = &DisplayPictures{s}
	return s, nil
}

// sqliteDSN adds the connection parameters the store relies on unless the
// URI sets them itself.
func sqliteDSN(uri string) string {
	want := [][2]string{
		{"_journal_mode", "WAL"},
		{"_foreign_keys", "on"},
		// A burst of writers (a restart resuming many logins) can queue for
		// seconds; they wait rather than fail.
		{"_busy_timeout", "30000"},
		{"_synchronous", "NORMAL"},
		// take the write lock at BEGIN, so read-then-write transactions
		// wait on busy_timeout instead of failing to upgrade their lock
		{"_txlock", "immediate"},
	}
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	var b strings.Builder
	b.WriteString(uri)
	for _, kv := range want {
		if strings.Contains(uri, kv[0]+"=") {
			continue
		}
		b.WriteString(sep + kv[0] + "=" + kv[1])
		sep = "&"
	}
	return b.String()
}

// Close closes the database.
func (s *Store) Close() error {
	if s.stopCheckpoints != nil {
		s.stopCheckpoints()
	}
	s.Queue.close()
	return s.db.Close()
}

// sqliteDriverName is go-sqlite3 with the store's per-connection settings
// (sqliteConnect).
const sqliteDriverName = "sqlite3-msnbridge"

// checkpointPages is how large SQLite's WAL may grow (in 4 KiB pages)
// before a commit checkpoints it itself; checkpointEvery is how often the
// store checkpoints it in the background.
const (
	checkpointPages = 10000
	checkpointEvery = 500 * time.Millisecond
)

func init() {
	sql.Register(sqliteDriverName, &sqlite3.SQLiteDriver{ConnectHook: sqliteConnect})
}

// sqliteConnect sets up each new SQLite connection. A commit that finds
// the WAL past wal_autocheckpoint pages copies it into the database and
// fsyncs both, inside the commit: with the default (1000 pages) a burst of
// small transactions, the event queue's, stalled every couple of hundred
// commits. The store checkpoints in the background instead
// (runCheckpoints); the higher limit is the backstop when that falls
// behind.
func sqliteConnect(c *sqlite3.SQLiteConn) error {
	_, err := c.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint=%d", checkpointPages), nil)
	return err
}

// runCheckpoints checkpoints the WAL every checkpointEvery until the
// returned function is called (and returns once it has stopped). PASSIVE
// checkpoints wait for no reader or writer. With synchronous=NORMAL in WAL
// mode a commit is durable once written to the WAL (it survives a crash of
// the process; the fsync at checkpoints is what protects against power
// loss), so moving the checkpoints off the commits changes no guarantee.
func runCheckpoints(db *sql.DB, log zerolog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(checkpointEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil && ctx.Err() == nil {
				log.Warn().Err(err).Msg("checkpointing the SQLite WAL failed; commits will checkpoint it")
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// Version returns the schema version recorded in the version table.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRow(ctx, "SELECT version FROM "+VersionTable+" LIMIT 1").Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("store: reading schema version: %w", err)
	}
	return v, nil
}

// LatestVersion is the schema version this build upgrades to.
func LatestVersion() int { return len(upgrades.Table) }

// Sealer returns the store's Sealer, or nil.
func (s *Store) Sealer() *Sealer { return s.sealer }

// HasLoginsWithoutKey reports whether logins (with passwords) are stored
// while the store has no Sealer: the bridge should refuse to start then.
func (s *Store) HasLoginsWithoutKey(ctx context.Context) (bool, error) {
	if s.sealer != nil {
		return false, nil
	}
	n, err := s.Logins.Count(ctx)
	return n > 0, err
}

// CheckKey verifies the store's key against stored logins: ErrNoKey when
// logins exist but there is no Sealer, ErrWrongKey when a stored password
// was sealed with another key, nil otherwise (also with no logins).
func (s *Store) CheckKey(ctx context.Context) error {
	var sealed []byte
	err := s.db.QueryRow(ctx, "SELECT password FROM msn_logins WHERE password IS NOT NULL ORDER BY id LIMIT 1").Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return fmt.Errorf("store: checking key: %w", err)
	}
	if s.sealer == nil {
		return ErrNoKey
	}
	if _, err = s.sealer.Open(sealed); err != nil {
		return err
	}
	return nil
}

func now() int64 { return time.Now().UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms) }

func millis(t time.Time) int64 {
	if t.IsZero() {
		return now()
	}
	return t.UnixMilli()
}

// NormalizePassport is how the store keys passports: trimmed, lowercased.
func NormalizePassport(p string) string { return strings.ToLower(strings.TrimSpace(p)) }

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// notFound turns sql.ErrNoRows into ErrNotFound with what was looked for.
func notFound(err error, what string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s", ErrNotFound, fmt.Sprintf(what, args...))
	}
	return fmt.Errorf("store: %s: %w", fmt.Sprintf(what, args...), err)
}

// Postgres SQLSTATEs the store tells apart.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

// isUniqueViolation recognises a unique-constraint failure (SQLite's
// extended code, Postgres's SQLSTATE).
func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	}
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == pgUniqueViolation
}

// isForeignKeyViolation recognises a foreign-key failure (SQLite's
// extended code, Postgres's SQLSTATE).
func isForeignKeyViolation(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintForeignKey
	}
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == pgForeignKeyViolation
}

// redactURI keeps a connection URI's password out of an error that quotes
// the URI (net/url and drivers do, on parse errors).
func redactURI(err error, uri string) error {
	msg := err.Error()
	if uri == "" || !strings.Contains(msg, uri) {
		if u, perr := url.Parse(uri); perr == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(msg, pw) {
				return errors.New(strings.ReplaceAll(msg, pw, "xxxxx"))
			}
		}
		return err
	}
	shown := "(database URI)"
	if u, perr := url.Parse(uri); perr == nil {
		shown = u.Redacted()
	}
	return errors.New(strings.ReplaceAll(msg, uri, shown))
}

// affected reports whether a statement changed a row.
func affected(res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	return n > 0, err
}
