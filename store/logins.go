package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
)

// Login is an MSN account a user has given the bridge. The password is
// kept sealed and is only revealed by Logins.Password.
type Login struct {
	ID          int64
	User        UserID
	Passport    string
	Protocol    string // the dialect last negotiated, e.g. MSNP12
	MachineGUID string // the {GUID} the bridge presents for this login
	State       string // the bridge's LoginState
	LastError   string
	HasPassword bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Logins is the msn_logins table.
type Logins struct{ s *Store }

const loginColumns = `id, frontend, user_id, passport, protocol, machine_guid, state, last_error,
	password IS NOT NULL, created_at, updated_at`

func scanLogin(row dbutil.Scannable) (Login, error) {
	var l Login
	var created, updated int64
	err := row.Scan(&l.ID, &l.User.Frontend, &l.User.ID, &l.Passport, &l.Protocol, &l.MachineGUID,
		&l.State, &l.LastError, &l.HasPassword, &created, &updated)
	if err != nil {
		return Login{}, err
	}
	l.CreatedAt, l.UpdatedAt = fromMillis(created), fromMillis(updated)
	return l, nil
}

// Put creates or updates the login of l.User for l.Passport (ID, State,
// LastError and times in l are ignored; a new login starts with state ""),
// sealing password with the store's Sealer. An empty password keeps the
// stored one. The user row is created if missing. It returns the stored
// login.
func (t *Logins) Put(ctx context.Context, l Login, password string) (Login, error) {
	l.Passport = NormalizePassport(l.Passport)
	if l.Passport == "" {
		return Login{}, errors.New("store: login needs a passport")
	}
	var sealed []byte
	if password != "" {
		if t.s.sealer == nil {
			return Login{}, ErrNoKey
		}
		sealed = t.s.sealer.Seal([]byte(password))
	}
	var id int64
	err := t.s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := t.s.Users.ensureExists(ctx, l.User); err != nil {
			return err
		}
		ts := now()
		return t.s.db.QueryRow(ctx, `
			INSERT INTO msn_logins (frontend, user_id, passport, password, protocol, machine_guid, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
			ON CONFLICT (frontend, user_id, passport) DO UPDATE SET
				password=COALESCE(excluded.password, msn_logins.password),
				protocol=excluded.protocol, machine_guid=excluded.machine_guid,
				updated_at=excluded.updated_at
			RETURNING id`,
			l.User.Frontend, l.User.ID, l.Passport, sealed, l.Protocol, l.MachineGUID, ts).Scan(&id)
	})
	if err != nil {
		return Login{}, fmt.Errorf("store: putting login %s for %s: %w", l.Passport, l.User, err)
	}
	return t.Get(ctx, id)
}

// Get returns a login by id or ErrNotFound.
func (t *Logins) Get(ctx context.Context, id int64) (Login, error) {
	l, err := scanLogin(t.s.db.QueryRow(ctx, "SELECT "+loginColumns+" FROM msn_logins WHERE id=$1", id))
	if err != nil {
		return Login{}, notFound(err, "login %d", id)
	}
	return l, nil
}

// GetByPassport returns the user's login for passport or ErrNotFound.
func (t *Logins) GetByPassport(ctx context.Context, user UserID, passport string) (Login, error) {
	l, err := scanLogin(t.s.db.QueryRow(ctx, "SELECT "+loginColumns+
		" FROM msn_logins WHERE frontend=$1 AND user_id=$2 AND passport=$3",
		user.Frontend, user.ID, NormalizePassport(passport)))
	if err != nil {
		return Login{}, notFound(err, "login %s of %s", passport, user)
	}
	return l, nil
}

// GetByUser returns the user's login (the oldest, should there be several)
// or ErrNotFound.
func (t *Logins) GetByUser(ctx context.Context, user UserID) (Login, error) {
	l, err := scanLogin(t.s.db.QueryRow(ctx, "SELECT "+loginColumns+
		" FROM msn_logins WHERE frontend=$1 AND user_id=$2 ORDER BY id LIMIT 1", user.Frontend, user.ID))
	if err != nil {
		return Login{}, notFound(err, "login of %s", user)
	}
	return l, nil
}

// ListByUser returns all of the user's logins, oldest first.
func (t *Logins) ListByUser(ctx context.Context, user UserID) ([]Login, error) {
	return t.list(ctx, "SELECT "+loginColumns+" FROM msn_logins WHERE frontend=$1 AND user_id=$2 ORDER BY id",
		user.Frontend, user.ID)
}

// All returns every login, oldest first: what to reconnect at start-up.
func (t *Logins) All(ctx context.Context) ([]Login, error) {
	return t.list(ctx, "SELECT "+loginColumns+" FROM msn_logins ORDER BY id")
}

func (t *Logins) list(ctx context.Context, query string, args ...any) ([]Login, error) {
	rows, err := t.s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: listing logins: %w", err)
	}
	defer rows.Close()
	var out []Login
	for rows.Next() {
		l, err := scanLogin(rows)
		if err != nil {
			return nil, fmt.Errorf("store: listing logins: %w", err)
		}
		out = append(out, l)
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing logins: %w", err)
	}
	return out, nil
}

// Count returns how many logins are stored.
func (t *Logins) Count(ctx context.Context) (int, error) {
	var n int
	if err := t.s.db.QueryRow(ctx, "SELECT COUNT(*) FROM msn_logins").Scan(&n); err != nil {
		return 0, fmt.Errorf("store: counting logins: %w", err)
	}
	return n, nil
}

// Password unseals the login's password. ErrNoKey without a Sealer,
// ErrNotFound for an unknown login or one stored without a password,
// ErrWrongKey or ErrTampered when it cannot be opened.
func (t *Logins) Password(ctx context.Context, id int64) (string, error) {
	var sealed []byte
	err := t.s.db.QueryRow(ctx, "SELECT password FROM msn_logins WHERE id=$1", id).Scan(&sealed)
	if err != nil {
		return "", notFound(err, "login %d", id)
	}
	if sealed == nil {
		return "", fmt.Errorf("%w: login %d has no password", ErrNotFound, id)
	}
	if t.s.sealer == nil {
		return "", ErrNoKey
	}
	plain, err := t.s.sealer.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("store: password of login %d: %w", id, err)
	}
	return string(plain), nil
}

// SetState records the login's state and last error.
func (t *Logins) SetState(ctx context.Context, id int64, state, lastError string) error {
	return t.update(ctx, id, "state=$2, last_error=$3", state, lastError)
}

// SetProtocol records the dialect negotiated for the login.
func (t *Logins) SetProtocol(ctx context.Context, id int64, protocol string) error {
	return t.update(ctx, id, "protocol=$2", protocol)
}

func (t *Logins) update(ctx context.Context, id int64, set string, args ...any) error {
	args = append([]any{id}, args...)
	args = append(args, now())
	res, err := t.s.db.Exec(ctx, fmt.Sprintf("UPDATE msn_logins SET %s, updated_at=$%d WHERE id=$1", set, len(args)), args...)
	if err != nil {
		return fmt.Errorf("store: updating login %d: %w", id, err)
	}
	if ok, err := affected(res); err != nil {
		return fmt.Errorf("store: updating login %d: %w", id, err)
	} else if !ok {
		return fmt.Errorf("%w: login %d", ErrNotFound, id)
	}
	return nil
}

// Delete removes a login and, by cascade, its contacts, portals, portal
// members and message mappings. ErrNotFound if missing.
func (t *Logins) Delete(ctx context.Context, id int64) error {
	res, err := t.s.db.Exec(ctx, "DELETE FROM msn_logins WHERE id=$1", id)
	if err != nil {
		return fmt.Errorf("store: deleting login %d: %w", id, err)
	}
	if ok, err := affected(res); err != nil {
		return fmt.Errorf("store: deleting login %d: %w", id, err)
	} else if !ok {
		return fmt.Errorf("%w: login %d", ErrNotFound, id)
	}
	return nil
}
