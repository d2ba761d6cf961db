package store

import (
	"context"
	"fmt"
	"time"
)

// User is a row of users: a frontend user the bridge knows.
type User struct {
	ID UserID
	// Permission caches the level the config grants (bridge.Permission's
	// integer value); the config stays authoritative.
	Permission int
	CreatedAt  time.Time
}

// Users is the users table.
type Users struct{ s *Store }

// Ensure creates the user if missing and updates the cached permission.
func (t *Users) Ensure(ctx context.Context, id UserID, permission int) (User, error) {
	if id.Frontend == "" || id.ID == "" {
		return User{}, fmt.Errorf("store: user needs a frontend and an id, got %q", id)
	}
	_, err := t.s.db.Exec(ctx, `
		INSERT INTO users (frontend, user_id, permission, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (frontend, user_id) DO UPDATE SET permission=excluded.permission`,
		id.Frontend, id.ID, permission, now())
	if err != nil {
		return User{}, fmt.Errorf("store: ensuring user %s: %w", id, err)
	}
	return t.Get(ctx, id)
}

// ensureExists creates the user with no permission cached if missing,
// leaving an existing row alone.
func (t *Users) ensureExists(ctx context.Context, id UserID) error {
	if id.Frontend == "" || id.ID == "" {
		return fmt.Errorf("store: user needs a frontend and an id, got %q", id)
	}
	_, err := t.s.db.Exec(ctx, `
		INSERT INTO users (frontend, user_id, permission, created_at) VALUES ($1, $2, 0, $3)
		ON CONFLICT (frontend, user_id) DO NOTHING`, id.Frontend, id.ID, now())
	if err != nil {
		return fmt.Errorf("store: ensuring user %s: %w", id, err)
	}
	return nil
}

// Get returns a user or ErrNotFound.
func (t *Users) Get(ctx context.Context, id UserID) (User, error) {
	u := User{ID: id}
	var created int64
	err := t.s.db.QueryRow(ctx, "SELECT permission, created_at FROM users WHERE frontend=$1 AND user_id=$2",
		id.Frontend, id.ID).Scan(&u.Permission, &created)
	if err != nil {
		return User{}, notFound(err, "user %s", id)
	}
	u.CreatedAt = fromMillis(created)
	return u, nil
}

// List returns every user, ordered by frontend and id.
func (t *Users) List(ctx context.Context) ([]User, error) {
	rows, err := t.s.db.Query(ctx, "SELECT frontend, user_id, permission, created_at FROM users ORDER BY frontend, user_id")
	if err != nil {
		return nil, fmt.Errorf("store: listing users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var created int64
		if err = rows.Scan(&u.ID.Frontend, &u.ID.ID, &u.Permission, &created); err != nil {
			return nil, fmt.Errorf("store: listing users: %w", err)
		}
		u.CreatedAt = fromMillis(created)
		out = append(out, u)
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing users: %w", err)
	}
	return out, nil
}

// Delete removes a user and, by cascade, their logins (with contacts,
// portals and messages) and queued events. ErrNotFound if missing.
func (t *Users) Delete(ctx context.Context, id UserID) error {
	res, err := t.s.db.Exec(ctx, "DELETE FROM users WHERE frontend=$1 AND user_id=$2", id.Frontend, id.ID)
	if err != nil {
		return fmt.Errorf("store: deleting user %s: %w", id, err)
	}
	if ok, err := affected(res); err != nil {
		return fmt.Errorf("store: deleting user %s: %w", id, err)
	} else if !ok {
		return fmt.Errorf("%w: user %s", ErrNotFound, id)
	}
	return nil
}
