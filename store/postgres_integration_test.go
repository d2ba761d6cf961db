//go:build integration

package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
)

// Under the integration tag every forEachBackend test runs on the real
// PostgreSQL that scripts/postgres.sh starts, each on its own database.

func init() {
	backends = append(backends, backend{name: "postgres", dbType: "postgres", newDB: newPostgresDB})
}

// postgresURI is the server's test database, the one the per-test
// databases are created from.
func postgresURI(t *testing.T) string {
	t.Helper()
	v := os.Getenv("MSNBRIDGE_TEST_POSTGRES_URI")
	if v == "" {
		t.Fatal("MSNBRIDGE_TEST_POSTGRES_URI is not set: run `eval \"$(scripts/postgres.sh start)\"` first (scripts/test.sh does)")
	}
	return v
}

// newPostgresDB creates a uniquely named database on the test server and
// drops it when t ends, so every test starts from an empty schema.
func newPostgresDB(t *testing.T) string {
	t.Helper()
	base := postgresURI(t)
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "msnbridge_t_" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err = admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		// FORCE: a store the test left open must not keep it alive.
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("MSNBRIDGE_TEST_POSTGRES_URI: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func postgresBackend(t *testing.T) backend {
	t.Helper()
	for _, b := range backends {
		if b.dbType == "postgres" {
			return b
		}
	}
	t.Fatal("no postgres backend")
	return backend{}
}

// The schema the upgrade files make on Postgres uses its own types, not
// SQLite's (dbutil's "-- only:" filter picked the right lines).
func TestPostgresSchemaTypes(t *testing.T) {
	s := postgresBackend(t).openTest(t)
	ctx := context.Background()
	if s.db.Dialect != dbutil.Postgres {
		t.Fatalf("dialect = %s, want postgres", s.db.Dialect)
	}
	for _, tc := range []struct{ table, column, typ, identity string }{
		{"msn_logins", "id", "bigint", "YES"},
		{"msn_logins", "password", "bytea", "NO"},
		{"event_queue", "id", "bigint", "YES"},
		{"event_queue", "payload", "bytea", "NO"},
		{"users", "created_at", "bigint", "NO"},
		{"avatars", "data", "bytea", "NO"},
		{"display_pictures", "data", "bytea", "NO"},
		{"media", "size", "bigint", "NO"},
		{"contacts", "avatar_hash", "text", "NO"},
	} {
		var typ, identity string
		err := s.db.QueryRow(ctx, `SELECT data_type, is_identity FROM information_schema.columns
			WHERE table_schema=current_schema() AND table_name=$1 AND column_name=$2`, tc.table, tc.column).Scan(&typ, &identity)
		if err != nil {
			t.Fatalf("%s.%s: %v", tc.table, tc.column, err)
		}
		if typ != tc.typ || identity != tc.identity {
			t.Errorf("%s.%s is %s (identity %s), want %s (identity %s)", tc.table, tc.column, typ, identity, tc.typ, tc.identity)
		}
	}
}

// Push takes the user's row lock on Postgres: while another transaction
// holds it, Push waits (seen in pg_locks, not guessed from a sleep), and
// once that transaction has filled the queue to the limit, Push reports
// the queue full instead of overshooting it.
func TestPostgresPushWaitsForUserLock(t *testing.T) {
	ctx := context.Background()
	const limit = 3
	s := postgresBackend(t).openTest(t, WithQueueLimit(limit))
	if _, err := s.Users.Ensure(ctx, alice, 0); err != nil {
		t.Fatal(err)
	}
	other, err := s.db.RawDB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	if _, err = other.ExecContext(ctx, "SELECT 1 FROM users WHERE frontend=$1 AND user_id=$2 FOR UPDATE", alice.Frontend, alice.ID); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < limit; i++ {
		if _, err = other.ExecContext(ctx, "INSERT INTO event_queue (frontend, user_id, payload, created_at) VALUES ($1, $2, $3, $4)",
			alice.Frontend, alice.ID, []byte("held"), now()); err != nil {
			t.Fatal(err)
		}
	}

	pushed := make(chan error, 1)
	go func() {
		_, err := s.Queue.Push(ctx, alice, []byte("late"))
		pushed <- err
	}()
	// Wait until the Push is blocked on a lock held by the other
	// transaction: only then is the order of the two certain.
	var otherPID int
	if err = other.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&otherPID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		err = s.db.RawDB.QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", otherPID).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case err := <-pushed:
			t.Fatalf("Push returned (%v) while the user's row was locked by another transaction", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Push never waited for the user's row lock")
		}
		time.Sleep(10 * time.Millisecond) // polling pg_stat_activity, not synchronising
	}
	if err = other.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-pushed:
	case <-time.After(10 * time.Second):
		t.Fatal("Push still blocked after the other transaction committed")
	}
	var full *QueueFullError
	if !errors.As(err, &full) || full.Limit != limit {
		t.Fatalf("Push after the queue was filled = %v, want a QueueFullError", err)
	}
	if n, err := s.Queue.Len(ctx, alice); err != nil || n != limit {
		t.Fatalf("Len = %d, %v; want %d", n, err, limit)
	}
}

// Open refuses a server it cannot log in to with a clear error, without
// the password in it.
func TestPostgresOpenWrongDatabase(t *testing.T) {
	u, err := url.Parse(postgresURI(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/msnbridge_no_such_database"
	u.User = url.UserPassword("postgres", "s3cr3t-pw")
	s, err := Open(context.Background(), "postgres", u.String(), zerolog.Nop())
	if err == nil {
		s.Close()
		t.Fatal("Open of a missing database succeeded")
	}
	var pe *pq.Error
	if !errors.As(err, &pe) || pe.Code != "3D000" {
		t.Fatalf("Open error = %v, want SQLSTATE 3D000 (invalid_catalog_name)", err)
	}
}
