package store

import (
	"context"
	"fmt"
)

// KV is a small key-value table for the bridge's odds and ends (e.g. the
// appservice's last transaction id).
type KV struct{ s *Store }

// Get returns the value of key or ErrNotFound.
func (t *KV) Get(ctx context.Context, key string) (string, error) {
	var v string
	if err := t.s.db.QueryRow(ctx, "SELECT value FROM kv WHERE key=$1", key).Scan(&v); err != nil {
		return "", notFound(err, "key %q", key)
	}
	return v, nil
}

// Set stores value under key.
func (t *KV) Set(ctx context.Context, key, value string) error {
	_, err := t.s.db.Exec(ctx, "INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value=excluded.value", key, value)
	if err != nil {
		return fmt.Errorf("store: setting key %q: %w", key, err)
	}
	return nil
}

// Delete removes key; deleting a missing key is not an error.
func (t *KV) Delete(ctx context.Context, key string) error {
	if _, err := t.s.db.Exec(ctx, "DELETE FROM kv WHERE key=$1", key); err != nil {
		return fmt.Errorf("store: deleting key %q: %w", key, err)
	}
	return nil
}
