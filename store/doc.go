// Package store is the bridge's database: the only package that speaks SQL.
// It owns the schema, its migrations (store/upgrades, run by Open through
// go.mau.fi/util/dbutil) and a typed API for users, MSN logins, contacts,
// ghosts, portals, message mappings, the per-user event outbox and small
// key-value state. It also owns sealing MSN passwords at rest (Sealer).
//
// It runs on SQLite (mattn/go-sqlite3, the embedded default) or PostgreSQL
// (lib/pq) from the same upgrade files; SQL is written in the dialect both
// accept, and the few differences are marked in the upgrade files or
// branch on the dialect in code (Queue.Push's locking).
//
// Every call takes a context; lookups that find nothing return an error
// matching ErrNotFound. Passports are stored lowercased and trimmed, since
// MSN treats them case-insensitively.
package store
