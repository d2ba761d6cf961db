package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/msnbridge/msnbridge/store/upgrades"
)

var (
	alice = UserID{Frontend: "matrix", ID: "@alice:example.org"}
	bob   = UserID{Frontend: "xmpp", ID: "bob@example.org"}
)

func testKey(b byte) []byte {
	k := make([]byte, KeySize)
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func testSealer(t *testing.T, b byte) *Sealer {
	t.Helper()
	s, err := NewSealer(testKey(b))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// backend is a database engine the store's tests run against.
type backend struct {
	name   string
	dbType string // Open's dbType
	// newDB returns the URI of a fresh, empty database that lasts until
	// the end of t.
	newDB func(t *testing.T) string
}

var sqliteBackend = backend{
	name:   "sqlite",
	dbType: "sqlite3",
	newDB:  func(t *testing.T) string { return filepath.Join(t.TempDir(), "msnbridge.db") },
}

// backends are what forEachBackend runs a test on: SQLite always, and
// Postgres too under the integration tag (postgres_integration_test.go
// adds it; scripts/test.sh starts the server).
var backends = []backend{sqliteBackend}

// forEachBackend runs fn as a subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// open is Open on the backend with a no-op logger.
func (b backend) open(ctx context.Context, uri string, opts ...Option) (*Store, error) {
	return Open(ctx, b.dbType, uri, zerolog.Nop(), opts...)
}

// openTest opens a store on a fresh database, closed at the end of t.
func (b backend) openTest(t *testing.T, opts ...Option) *Store {
	t.Helper()
	return b.openAt(t, b.newDB(t), opts...)
}

// openAt opens a store on uri (with a test Sealer unless opts are given),
// closed at the end of t.
func (b backend) openAt(t *testing.T, uri string, opts ...Option) *Store {
	t.Helper()
	if len(opts) == 0 {
		opts = []Option{WithSealer(testSealer(t, 1))}
	}
	s, err := b.open(context.Background(), uri, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustLogin(t *testing.T, s *Store, user UserID, passport string) Login {
	t.Helper()
	l, err := s.Logins.Put(context.Background(), Login{User: user, Passport: passport, Protocol: "MSNP12"}, "hunter2")
	if err != nil {
		t.Fatalf("Logins.Put: %v", err)
	}
	return l
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

func TestMigrateFromEmptyAndReopen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		path := b.newDB(t)
		s1, err := b.open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		v, err := s1.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v != LatestVersion() || v < 1 {
			t.Fatalf("version after first open = %d, want %d", v, LatestVersion())
		}
		if err := s1.KV.Set(ctx, "marker", "kept"); err != nil {
			t.Fatal(err)
		}
		if err := s1.Close(); err != nil {
			t.Fatal(err)
		}

		// The second open finds the schema current: it must neither fail on
		// existing tables nor lose data.
		s2, err := b.open(ctx, path)
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		defer s2.Close()
		if v, err = s2.Version(ctx); err != nil || v != LatestVersion() {
			t.Fatalf("version after reopen = %d, %v", v, err)
		}
		var rows int
		if err := s2.db.QueryRow(ctx, "SELECT COUNT(*) FROM "+VersionTable).Scan(&rows); err != nil || rows != 1 {
			t.Fatalf("version table rows = %d, %v", rows, err)
		}
		if got, err := s2.KV.Get(ctx, "marker"); err != nil || got != "kept" {
			t.Fatalf("KV after reopen = %q, %v", got, err)
		}
	})
}

func TestOpenPragmas(t *testing.T) {
	s := sqliteBackend.openTest(t)
	ctx := context.Background()
	var mode string
	var fk, timeout int
	if err := s.db.QueryRow(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	if err := s.db.QueryRow(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v", fk, err)
	}
	if err := s.db.QueryRow(ctx, "PRAGMA busy_timeout").Scan(&timeout); err != nil || timeout != 30000 {
		t.Fatalf("busy_timeout = %d, %v", timeout, err)
	}
}

func TestOpenRejects(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ typ, uri string }{
		{"mysql", "x"},
		{"postgres", ""},
		{"postgres", "postgres://u:pw@[::1/db"},
		{"sqlite3", ""},
	} {
		if s, err := Open(ctx, tc.typ, tc.uri, zerolog.Nop()); err == nil {
			s.Close()
			t.Errorf("Open(%q, %q) succeeded", tc.typ, tc.uri)
		}
	}
	if _, err := Open(ctx, "sqlite3", filepath.Join(t.TempDir(), "x.db"), zerolog.Nop(), WithQueueLimit(0)); err == nil {
		t.Error("Open with queue limit 0 succeeded")
	}
}

func TestOpenRefusesForeignOwner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		path := b.newDB(t)
		s := b.openAt(t, path)
		if _, err := s.db.Exec(ctx, "UPDATE database_owner SET owner='someone-else'"); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if s2, err := b.open(ctx, path); err == nil {
			s2.Close()
			t.Fatal("Open of another program's database succeeded")
		}
	})
}

func TestSQLiteDSN(t *testing.T) {
	got := sqliteDSN("file:/tmp/x.db?_busy_timeout=100")
	want := "file:/tmp/x.db?_busy_timeout=100&_journal_mode=WAL&_foreign_keys=on&_synchronous=NORMAL&_txlock=immediate"
	if got != want {
		t.Fatalf("sqliteDSN = %q\nwant %q", got, want)
	}
}

func TestUsers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		_, err := s.Users.Get(ctx, alice)
		wantErr(t, err, ErrNotFound)
		u, err := s.Users.Ensure(ctx, alice, 1)
		if err != nil || u.ID != alice || u.Permission != 1 || u.CreatedAt.IsZero() {
			t.Fatalf("Ensure = %+v, %v", u, err)
		}
		u2, err := s.Users.Ensure(ctx, alice, 2)
		if err != nil || u2.Permission != 2 || !u2.CreatedAt.Equal(u.CreatedAt) {
			t.Fatalf("second Ensure = %+v, %v (first %+v)", u2, err, u)
		}
		if _, err := s.Users.Ensure(ctx, bob, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Users.Ensure(ctx, UserID{Frontend: "matrix"}, 1); err == nil {
			t.Fatal("Ensure accepted an empty user id")
		}
		all, err := s.Users.List(ctx)
		if err != nil || len(all) != 2 || all[0].ID != alice || all[1].ID != bob {
			t.Fatalf("List = %+v, %v", all, err)
		}
		if err := s.Users.Delete(ctx, bob); err != nil {
			t.Fatal(err)
		}
		wantErr(t, s.Users.Delete(ctx, bob), ErrNotFound)
	})
}

func TestKV(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		_, err := s.KV.Get(ctx, "txn")
		wantErr(t, err, ErrNotFound)
		if err := s.KV.Set(ctx, "txn", "1"); err != nil {
			t.Fatal(err)
		}
		if err := s.KV.Set(ctx, "txn", "2"); err != nil {
			t.Fatal(err)
		}
		if v, err := s.KV.Get(ctx, "txn"); err != nil || v != "2" {
			t.Fatalf("Get = %q, %v", v, err)
		}
		if err := s.KV.Delete(ctx, "txn"); err != nil {
			t.Fatal(err)
		}
		_, err = s.KV.Get(ctx, "txn")
		wantErr(t, err, ErrNotFound)
		if err := s.KV.Delete(ctx, "txn"); err != nil {
			t.Fatalf("deleting a missing key: %v", err)
		}
	})
}

// The schema is meant to run on Postgres too (a later issue): check that
// dbutil's dialect filter leaves no SQLite-only syntax for Postgres and
// none of the Postgres lines for SQLite.
func TestUpgradeDialectSections(t *testing.T) {
	files, err := upgrades.Files.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, f := range files {
		data, err := upgrades.Files.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		// each file's first line is its version header, not SQL
		_, body, _ := bytes.Cut(data, []byte("\n"))
		all = append(append(all, body...), '\n')
	}
	lines := bytes.Split(all, []byte("\n"))
	for _, tc := range []struct {
		dialect        dbutil.Dialect
		banned, needed []string
	}{
		{dbutil.Postgres, []string{"AUTOINCREMENT", "BLOB"}, []string{"GENERATED BY DEFAULT AS IDENTITY", "bytea"}},
		{dbutil.SQLite, []string{"GENERATED", "bytea"}, []string{"AUTOINCREMENT", "BLOB"}},
	} {
		db := &dbutil.Database{Dialect: tc.dialect}
		out, err := db.Internals().FilterSQLUpgrade(lines)
		if err != nil {
			t.Fatalf("%s: %v", tc.dialect, err)
		}
		for _, b := range tc.banned {
			if strings.Contains(out, b) {
				t.Errorf("%s schema contains %q", tc.dialect, b)
			}
		}
		for _, n := range tc.needed {
			if !strings.Contains(out, n) {
				t.Errorf("%s schema lacks %q", tc.dialect, n)
			}
		}
	}
}

// A Postgres URI's password must not reach an error (and so the log),
// neither from a URI the driver cannot parse nor from a failed connection.
func TestOpenPostgresErrorsHidePassword(t *testing.T) {
	ctx := context.Background()
	for _, uri := range []string{
		"postgres://msn:s3cr3t-pw@[::1/db",
		"postgres://msn:s3cr3t-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=5",
		"postgres://msn:s3cr3t-pw@127.0.0.1:1/db?sslmode=bogus",
	} {
		s, err := Open(ctx, "postgres", uri, zerolog.Nop())
		if err == nil {
			s.Close()
			t.Fatalf("Open(%q) succeeded", uri)
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("Open(%q) error shows the password: %v", uri, err)
		}
		t.Logf("%s: %v", uri, err)
	}
}
