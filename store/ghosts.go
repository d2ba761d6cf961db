package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
)

// Ghost is a frontend's puppet of an MSN person, shared by every login on
// that frontend.
type Ghost struct {
	Frontend    string
	Passport    string
	FrontendID  string // e.g. the ghost's MXID or JID
	DisplayName string
	AvatarHash  string
	UpdatedAt   time.Time
}

// Ghosts is the ghosts table.
type Ghosts struct{ s *Store }

const ghostColumns = "frontend, passport, frontend_id, display_name, avatar_hash, updated_at"

func scanGhost(row dbutil.Scannable) (Ghost, error) {
	var g Ghost
	var updated int64
	if err := row.Scan(&g.Frontend, &g.Passport, &g.FrontendID, &g.DisplayName, &g.AvatarHash, &updated); err != nil {
		return Ghost{}, err
	}
	g.UpdatedAt = fromMillis(updated)
	return g, nil
}

// Upsert stores g (keyed by frontend and passport), replacing every field.
func (t *Ghosts) Upsert(ctx context.Context, g Ghost) error {
	g.Passport = NormalizePassport(g.Passport)
	if g.Frontend == "" || g.Passport == "" {
		return errors.New("store: ghost needs a frontend and a passport")
	}
	_, err := t.s.db.Exec(ctx, `
		INSERT INTO ghosts (`+ghostColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (frontend, passport) DO UPDATE SET
			frontend_id=excluded.frontend_id, display_name=excluded.display_name,
			avatar_hash=excluded.avatar_hash, updated_at=excluded.updated_at`,
		g.Frontend, g.Passport, g.FrontendID, g.DisplayName, g.AvatarHash, now())
	if err != nil {
		return fmt.Errorf("store: upserting ghost %s on %s: %w", g.Passport, g.Frontend, err)
	}
	return nil
}

// Get returns the ghost of passport on frontend or ErrNotFound.
func (t *Ghosts) Get(ctx context.Context, frontend, passport string) (Ghost, error) {
	g, err := scanGhost(t.s.db.QueryRow(ctx, "SELECT "+ghostColumns+" FROM ghosts WHERE frontend=$1 AND passport=$2",
		frontend, NormalizePassport(passport)))
	if err != nil {
		return Ghost{}, notFound(err, "ghost %s on %s", passport, frontend)
	}
	return g, nil
}

// GetByFrontendID returns the ghost with the frontend's id or ErrNotFound.
func (t *Ghosts) GetByFrontendID(ctx context.Context, frontend, frontendID string) (Ghost, error) {
	g, err := scanGhost(t.s.db.QueryRow(ctx, "SELECT "+ghostColumns+" FROM ghosts WHERE frontend=$1 AND frontend_id=$2 LIMIT 1",
		frontend, frontendID))
	if err != nil {
		return Ghost{}, notFound(err, "ghost %s on %s", frontendID, frontend)
	}
	return g, nil
}
