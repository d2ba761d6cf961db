package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
)

// PortalKind tells a one-to-one portal from a group one. Its values are
// what the kind column holds.
type PortalKind string

const (
	PortalDirect PortalKind = "direct"
	PortalGroup  PortalKind = "group"
)

// Portal is a conversation of one login. ID is stable across restarts and
// is what the bridge uses as bridge.PortalID.
type Portal struct {
	ID      string
	LoginID int64
	Kind    PortalKind
	// MSNKey is the contact's passport for a direct portal and a
	// generated id for a group portal.
	MSNKey    string
	Room      string // the frontend's handle, "" until set
	Name      string
	CreatedAt time.Time
}

// Portals is the portals and portal_members tables.
type Portals struct{ s *Store }

const portalColumns = "id, login_id, kind, msn_key, room, name, created_at"

func scanPortal(row dbutil.Scannable) (Portal, error) {
	var p Portal
	var room sql.NullString
	var created int64
	if err := row.Scan(&p.ID, &p.LoginID, &p.Kind, &p.MSNKey, &room, &p.Name, &created); err != nil {
		return Portal{}, err
	}
	p.Room = room.String
	p.CreatedAt = fromMillis(created)
	return p, nil
}

// GetOrCreateDirect returns the login's direct portal with passport,
// creating it; created says whether it is new.
func (t *Portals) GetOrCreateDirect(ctx context.Context, loginID int64, passport string) (p Portal, created bool, err error) {
	passport = NormalizePassport(passport)
	if passport == "" {
		return Portal{}, false, errors.New("store: direct portal needs a passport")
	}
	// Every message from MSN asks for its portal, which exists but the
	// first time: a read then, not a write (which would take SQLite's write
	// lock for each message and queue behind the event queue's commits).
	if p, err = t.GetDirect(ctx, loginID, passport); err == nil || !errors.Is(err, ErrNotFound) {
		return p, false, err
	}
	res, err := t.s.db.Exec(ctx, `
		INSERT INTO portals (id, login_id, kind, msn_key, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (login_id, kind, msn_key) DO NOTHING`,
		randomID(), loginID, PortalDirect, passport, now())
	if err != nil {
		return Portal{}, false, fmt.Errorf("store: creating direct portal with %s for login %d: %w", passport, loginID, err)
	}
	if created, err = affected(res); err != nil {
		return Portal{}, false, fmt.Errorf("store: creating direct portal with %s for login %d: %w", passport, loginID, err)
	}
	p, err = t.GetDirect(ctx, loginID, passport)
	return p, created, err
}

// GetDirect returns the login's direct portal with passport or ErrNotFound.
func (t *Portals) GetDirect(ctx context.Context, loginID int64, passport string) (Portal, error) {
	p, err := scanPortal(t.s.db.QueryRow(ctx, "SELECT "+portalColumns+" FROM portals WHERE login_id=$1 AND kind=$2 AND msn_key=$3",
		loginID, PortalDirect, NormalizePassport(passport)))
	if err != nil {
		return Portal{}, notFound(err, "direct portal with %s of login %d", passport, loginID)
	}
	return p, nil
}

// CreateGroup creates a group portal with a generated MSN key and the
// given members (the user excluded).
func (t *Portals) CreateGroup(ctx context.Context, loginID int64, name string, members []string) (Portal, error) {
	id := randomID()
	err := t.s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		_, err := t.s.db.Exec(ctx, "INSERT INTO portals (id, login_id, kind, msn_key, name, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
			id, loginID, PortalGroup, randomID(), name, now())
		if err != nil {
			return err
		}
		for _, m := range members {
			if err = t.AddMember(ctx, id, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Portal{}, fmt.Errorf("store: creating group portal for login %d: %w", loginID, err)
	}
	return t.Get(ctx, id)
}

// Get returns a portal by id or ErrNotFound.
func (t *Portals) Get(ctx context.Context, id string) (Portal, error) {
	p, err := scanPortal(t.s.db.QueryRow(ctx, "SELECT "+portalColumns+" FROM portals WHERE id=$1", id))
	if err != nil {
		return Portal{}, notFound(err, "portal %s", id)
	}
	return p, nil
}

// GetByRoom returns the login's portal with the frontend room or
// ErrNotFound.
func (t *Portals) GetByRoom(ctx context.Context, loginID int64, room string) (Portal, error) {
	if room == "" {
		return Portal{}, fmt.Errorf("%w: empty room", ErrNotFound)
	}
	p, err := scanPortal(t.s.db.QueryRow(ctx, "SELECT "+portalColumns+" FROM portals WHERE login_id=$1 AND room=$2", loginID, room))
	if err != nil {
		return Portal{}, notFound(err, "portal in room %s of login %d", room, loginID)
	}
	return p, nil
}

// SetRoom records the frontend's room for a portal ("" clears it).
// ErrDuplicate when another portal of the login has that room, ErrNotFound
// for an unknown portal.
func (t *Portals) SetRoom(ctx context.Context, id, room string) error {
	var arg any
	if room != "" {
		arg = room
	}
	res, err := t.s.db.Exec(ctx, "UPDATE portals SET room=$2 WHERE id=$1", id, arg)
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: room %s already belongs to another portal", ErrDuplicate, room)
	}
	return t.updated(res, err, id)
}

// SetName records a portal's name.
func (t *Portals) SetName(ctx context.Context, id, name string) error {
	res, err := t.s.db.Exec(ctx, "UPDATE portals SET name=$2 WHERE id=$1", id, name)
	return t.updated(res, err, id)
}

func (t *Portals) updated(res sql.Result, err error, id string) error {
	if err != nil {
		return fmt.Errorf("store: updating portal %s: %w", id, err)
	}
	if ok, err := affected(res); err != nil {
		return fmt.Errorf("store: updating portal %s: %w", id, err)
	} else if !ok {
		return fmt.Errorf("%w: portal %s", ErrNotFound, id)
	}
	return nil
}

// List returns a login's portals, oldest first (portals made in the same
// millisecond in no particular order).
func (t *Portals) List(ctx context.Context, loginID int64) ([]Portal, error) {
	rows, err := t.s.db.Query(ctx, "SELECT "+portalColumns+" FROM portals WHERE login_id=$1 ORDER BY created_at, id", loginID)
	if err != nil {
		return nil, fmt.Errorf("store: listing portals of login %d: %w", loginID, err)
	}
	defer rows.Close()
	var out []Portal
	for rows.Next() {
		p, err := scanPortal(rows)
		if err != nil {
			return nil, fmt.Errorf("store: listing portals of login %d: %w", loginID, err)
		}
		out = append(out, p)
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing portals of login %d: %w", loginID, err)
	}
	return out, nil
}

// Delete removes a portal with its members and message mappings.
// ErrNotFound if missing.
func (t *Portals) Delete(ctx context.Context, id string) error {
	res, err := t.s.db.Exec(ctx, "DELETE FROM portals WHERE id=$1", id)
	return t.updated(res, err, id)
}

// AddMember adds passport to a group portal; adding a member twice is not
// an error. ErrNotFound for an unknown portal.
func (t *Portals) AddMember(ctx context.Context, id, passport string) error {
	passport = NormalizePassport(passport)
	if passport == "" {
		return errors.New("store: portal member needs a passport")
	}
	_, err := t.s.db.Exec(ctx, "INSERT INTO portal_members (portal_id, passport) VALUES ($1, $2) ON CONFLICT (portal_id, passport) DO NOTHING",
		id, passport)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("%w: portal %s", ErrNotFound, id)
	} else if err != nil {
		return fmt.Errorf("store: adding %s to portal %s: %w", passport, id, err)
	}
	return nil
}

// RemoveMember removes passport from a portal. ErrNotFound if it was not
// a member.
func (t *Portals) RemoveMember(ctx context.Context, id, passport string) error {
	res, err := t.s.db.Exec(ctx, "DELETE FROM portal_members WHERE portal_id=$1 AND passport=$2", id, NormalizePassport(passport))
	if err != nil {
		return fmt.Errorf("store: removing %s from portal %s: %w", passport, id, err)
	}
	if ok, err := affected(res); err != nil {
		return fmt.Errorf("store: removing %s from portal %s: %w", passport, id, err)
	} else if !ok {
		return fmt.Errorf("%w: %s in portal %s", ErrNotFound, passport, id)
	}
	return nil
}

// Members returns a portal's members ordered by passport.
func (t *Portals) Members(ctx context.Context, id string) ([]string, error) {
	rows, err := t.s.db.Query(ctx, "SELECT passport FROM portal_members WHERE portal_id=$1 ORDER BY passport", id)
	if err != nil {
		return nil, fmt.Errorf("store: listing members of portal %s: %w", id, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err = rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("store: listing members of portal %s: %w", id, err)
		}
		out = append(out, p)
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing members of portal %s: %w", id, err)
	}
	return out, nil
}
