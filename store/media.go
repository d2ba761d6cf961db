package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
)

// Avatar is a contact's display picture in the cache, keyed by the hex
// SHA-1 of its bytes.
type Avatar struct {
	Hash      string
	Data      []byte
	MIME      string
	FetchedAt time.Time
}

// Avatars is the display-picture cache: one row per content, shared by
// every login.
type Avatars struct{ s *Store }

// Put stores a; a picture already cached under the same hash is kept (the
// same hash is the same bytes).
func (t *Avatars) Put(ctx context.Context, a Avatar) error {
	if a.Hash == "" || len(a.Data) == 0 {
		return errors.New("store: an avatar needs a hash and data")
	}
	_, err := t.s.db.Exec(ctx, `
		INSERT INTO avatars (hash, data, mime, size, fetched_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (hash) DO NOTHING`,
		a.Hash, a.Data, a.MIME, int64(len(a.Data)), millis(a.FetchedAt))
	if err != nil {
		return fmt.Errorf("store: storing avatar %s: %w", a.Hash, err)
	}
	return nil
}

// Get returns the avatar with hash or ErrNotFound.
func (t *Avatars) Get(ctx context.Context, hash string) (Avatar, error) {
	a := Avatar{Hash: hash}
	var fetched int64
	err := t.s.db.QueryRow(ctx, "SELECT data, mime, fetched_at FROM avatars WHERE hash=$1", hash).Scan(&a.Data, &a.MIME, &fetched)
	if err != nil {
		return Avatar{}, notFound(err, "avatar %s", hash)
	}
	a.FetchedAt = fromMillis(fetched)
	return a, nil
}

// Has reports whether an avatar with hash is cached, without reading it.
func (t *Avatars) Has(ctx context.Context, hash string) (bool, error) {
	var n int
	err := t.s.db.QueryRow(ctx, "SELECT COUNT(*) FROM avatars WHERE hash=$1", hash).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: looking up avatar %s: %w", hash, err)
	}
	return n > 0, nil
}

// MediaFile is one file of the media directory as the index knows it.
type MediaFile struct {
	ID        string
	Owner     UserID // the user it was received for or sent by
	Name      string
	Size      int64
	MIME      string
	Path      string // the file's name inside the media directory
	CreatedAt time.Time
}

// Media is the index of the media directory.
type Media struct{ s *Store }

const mediaColumns = "id, frontend, user_id, name, size, mime, path, created_at"

func scanMedia(row dbutil.Scannable) (MediaFile, error) {
	var m MediaFile
	var created int64
	if err := row.Scan(&m.ID, &m.Owner.Frontend, &m.Owner.ID, &m.Name, &m.Size, &m.MIME, &m.Path, &created); err != nil {
		return MediaFile{}, err
	}
	m.CreatedAt = fromMillis(created)
	return m, nil
}

// Put records m; its id must be new (ErrDuplicate otherwise).
func (t *Media) Put(ctx context.Context, m MediaFile) error {
	if m.ID == "" || m.Path == "" {
		return errors.New("store: a media file needs an id and a path")
	}
	_, err := t.s.db.Exec(ctx, "INSERT INTO media ("+mediaColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
		m.ID, m.Owner.Frontend, m.Owner.ID, m.Name, m.Size, m.MIME, m.Path, millis(m.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: media %s", ErrDuplicate, m.ID)
	} else if err != nil {
		return fmt.Errorf("store: recording media %s: %w", m.ID, err)
	}
	return nil
}

// Get returns the media file with id or ErrNotFound.
func (t *Media) Get(ctx context.Context, id string) (MediaFile, error) {
	m, err := scanMedia(t.s.db.QueryRow(ctx, "SELECT "+mediaColumns+" FROM media WHERE id=$1", id))
	if err != nil {
		return MediaFile{}, notFound(err, "media %s", id)
	}
	return m, nil
}

// CreatedBefore returns up to limit media files created before t0, oldest
// first: what the retention sweep deletes.
func (t *Media) CreatedBefore(ctx context.Context, t0 time.Time, limit int) ([]MediaFile, error) {
	rows, err := t.s.db.Query(ctx, "SELECT "+mediaColumns+" FROM media WHERE created_at < $1 ORDER BY created_at LIMIT $2",
		t0.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: listing expired media: %w", err)
	}
	defer rows.Close()
	var out []MediaFile
	for rows.Next() {
		m, err := scanMedia(rows)
		if err != nil {
			return nil, fmt.Errorf("store: reading media: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Delete forgets the media file id (the caller removes the file); a
// missing id is ErrNotFound.
func (t *Media) Delete(ctx context.Context, id string) error {
	res, err := t.s.db.Exec(ctx, "DELETE FROM media WHERE id=$1", id)
	if err != nil {
		return fmt.Errorf("store: deleting media %s: %w", id, err)
	}
	if ok, err := affected(res); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%w: media %s", ErrNotFound, id)
	}
	return nil
}

// DisplayPictures keeps each user's own display picture.
type DisplayPictures struct{ s *Store }

// Get returns the user's display picture or ErrNotFound.
func (t *DisplayPictures) Get(ctx context.Context, user UserID) ([]byte, error) {
	var data []byte
	err := t.s.db.QueryRow(ctx, "SELECT data FROM display_pictures WHERE frontend=$1 AND user_id=$2", user.Frontend, user.ID).Scan(&data)
	if err != nil {
		return nil, notFound(err, "display picture of %s", user)
	}
	return data, nil
}

// Set stores the user's display picture; empty data deletes it. The user
// must exist (Users.Ensure).
func (t *DisplayPictures) Set(ctx context.Context, user UserID, data []byte) error {
	if len(data) == 0 {
		if _, err := t.s.db.Exec(ctx, "DELETE FROM display_pictures WHERE frontend=$1 AND user_id=$2", user.Frontend, user.ID); err != nil {
			return fmt.Errorf("store: deleting the display picture of %s: %w", user, err)
		}
		return nil
	}
	_, err := t.s.db.Exec(ctx, `
		INSERT INTO display_pictures (frontend, user_id, data, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (frontend, user_id) DO UPDATE SET data=excluded.data, updated_at=excluded.updated_at`,
		user.Frontend, user.ID, data, now())
	if isForeignKeyViolation(err) {
		return fmt.Errorf("%w: user %s", ErrNotFound, user)
	} else if err != nil {
		return fmt.Errorf("store: storing the display picture of %s: %w", user, err)
	}
	return nil
}
