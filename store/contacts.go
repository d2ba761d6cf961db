package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
)

// List bits: MSN's list membership, as the server numbers them.
const (
	ListForward = 1 << iota // FL: on the user's contact list
	ListAllow               // AL
	ListBlock               // BL
	ListReverse             // RL: has the user on their list
	ListPending             // PL: added the user, awaiting a decision
)

// Contact is one MSN contact of a login.
type Contact struct {
	LoginID         int64
	Passport        string
	FriendlyName    string
	ListBits        int // ListForward | ListBlock | ...
	Groups          []string
	PersonalMessage string
	Status          string // the bridge's Status
	// Avatar is the hex SHA-1 of the display picture the contact last
	// showed (a hash in the avatars table), "" for none or not known yet.
	// It outlives their presence, so that a restart shows it at once.
	Avatar    string
	UpdatedAt time.Time
}

// Contacts is the contacts table.
type Contacts struct{ s *Store }

const contactColumns = "login_id, passport, friendly_name, list_bits, groups, personal_message, status, avatar_hash, updated_at"

func scanContact(row dbutil.Scannable) (Contact, error) {
	var c Contact
	var groups string
	var updated int64
	err := row.Scan(&c.LoginID, &c.Passport, &c.FriendlyName, &c.ListBits, &groups, &c.PersonalMessage, &c.Status, &c.Avatar, &updated)
	if err != nil {
		return Contact{}, err
	}
	if err = json.Unmarshal([]byte(groups), &c.Groups); err != nil {
		return Contact{}, fmt.Errorf("contact %s has bad groups %q: %w", c.Passport, groups, err)
	}
	if len(c.Groups) == 0 {
		c.Groups = nil
	}
	c.UpdatedAt = fromMillis(updated)
	return c, nil
}

// Upsert stores c (keyed by login and passport), replacing every field,
// Avatar included.
func (t *Contacts) Upsert(ctx context.Context, c Contact) error {
	c.Passport = NormalizePassport(c.Passport)
	if c.Passport == "" {
		return errors.New("store: contact needs a passport")
	}
	groups := []string{}
	if c.Groups != nil {
		groups = c.Groups
	}
	groupsJSON, err := json.Marshal(groups)
	if err != nil {
		return fmt.Errorf("store: encoding groups of %s: %w", c.Passport, err)
	}
	_, err = t.s.db.Exec(ctx, `
		INSERT INTO contacts (`+contactColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (login_id, passport) DO UPDATE SET
			friendly_name=excluded.friendly_name, list_bits=excluded.list_bits, groups=excluded.groups,
			personal_message=excluded.personal_message, status=excluded.status, avatar_hash=excluded.avatar_hash,
			updated_at=excluded.updated_at`,
		c.LoginID, c.Passport, c.FriendlyName, c.ListBits, string(groupsJSON), c.PersonalMessage, c.Status, c.Avatar, now())
	if err != nil {
		return fmt.Errorf("store: upserting contact %s of login %d: %w", c.Passport, c.LoginID, err)
	}
	return nil
}

// Replace makes cs the login's whole contact list in one transaction:
// contacts not in cs are deleted, the rest upserted. For the full list MSN
// sends at sign-in, which says nothing of pictures: a contact in cs with no
// Avatar keeps the one stored.
func (t *Contacts) Replace(ctx context.Context, loginID int64, cs []Contact) error {
	err := t.s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		avatars, err := t.avatars(ctx, loginID)
		if err != nil {
			return err
		}
		if _, err := t.s.db.Exec(ctx, "DELETE FROM contacts WHERE login_id=$1", loginID); err != nil {
			return err
		}
		for _, c := range cs {
			c.LoginID = loginID
			if c.Avatar == "" {
				c.Avatar = avatars[NormalizePassport(c.Passport)]
			}
			if err := t.Upsert(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: replacing contacts of login %d: %w", loginID, err)
	}
	return nil
}

// avatars is the stored Avatar of each of the login's contacts that has one.
func (t *Contacts) avatars(ctx context.Context, loginID int64) (map[string]string, error) {
	rows, err := t.s.db.Query(ctx, "SELECT passport, avatar_hash FROM contacts WHERE login_id=$1 AND avatar_hash<>''", loginID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var passport, hash string
		if err := rows.Scan(&passport, &hash); err != nil {
			return nil, err
		}
		out[passport] = hash
	}
	return out, rows.Err()
}

// SetAvatar records the picture a contact shows now (hash "" for none),
// leaving the rest of the contact alone. ErrNotFound when the login has no
// such contact.
func (t *Contacts) SetAvatar(ctx context.Context, loginID int64, passport, hash string) error {
	res, err := t.s.db.Exec(ctx, "UPDATE contacts SET avatar_hash=$1 WHERE login_id=$2 AND passport=$3",
		hash, loginID, NormalizePassport(passport))
	if err != nil {
		return fmt.Errorf("store: setting the avatar of contact %s of login %d: %w", passport, loginID, err)
	}
	if ok, err := affected(res); err != nil {
		return fmt.Errorf("store: setting the avatar of contact %s of login %d: %w", passport, loginID, err)
	} else if !ok {
		return fmt.Errorf("%w: contact %s of login %d", ErrNotFound, passport, loginID)
	}
	return nil
}

// Get returns one contact of a login or ErrNotFound.
func (t *Contacts) Get(ctx context.Context, loginID int64, passport string) (Contact, error) {
	c, err := scanContact(t.s.db.QueryRow(ctx, "SELECT "+contactColumns+" FROM contacts WHERE login_id=$1 AND passport=$2",
		loginID, NormalizePassport(passport)))
	if err != nil {
		return Contact{}, notFound(err, "contact %s of login %d", passport, loginID)
	}
	return c, nil
}

// List returns a login's contacts ordered by passport.
func (t *Contacts) List(ctx context.Context, loginID int64) ([]Contact, error) {
	rows, err := t.s.db.Query(ctx, "SELECT "+contactColumns+" FROM contacts WHERE login_id=$1 ORDER BY passport", loginID)
	if err != nil {
		return nil, fmt.Errorf("store: listing contacts of login %d: %w", loginID, err)
	}
	defer rows.Close()
	var out []Contact
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			return nil, fmt.Errorf("store: listing contacts of login %d: %w", loginID, err)
		}
		out = append(out, c)
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing contacts of login %d: %w", loginID, err)
	}
	return out, nil
}

// Delete removes a contact. ErrNotFound if missing.
func (t *Contacts) Delete(ctx context.Context, loginID int64, passport string) error {
	res, err := t.s.db.Exec(ctx, "DELETE FROM contacts WHERE login_id=$1 AND passport=$2", loginID, NormalizePassport(passport))
	if err != nil {
		return fmt.Errorf("store: deleting contact %s of login %d: %w", passport, loginID, err)
	}
	if ok, err := affected(res); err != nil {
		return fmt.Errorf("store: deleting contact %s of login %d: %w", passport, loginID, err)
	} else if !ok {
		return fmt.Errorf("%w: contact %s of login %d", ErrNotFound, passport, loginID)
	}
	return nil
}
