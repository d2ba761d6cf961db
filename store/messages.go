package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
)

// Direction says which way a message went.
type Direction string

const (
	FromMSN Direction = "in"  // MSN to the frontend
	ToMSN   Direction = "out" // the frontend to MSN
)

// MessageMapping ties the core's id for a message to the frontend's, so
// that neither side sees it twice.
type MessageMapping struct {
	PortalID   string
	MSNID      string
	FrontendID string
	Direction  Direction
	Time       time.Time
}

// Messages is the message_map table.
type Messages struct{ s *Store }

const messageColumns = "portal_id, msn_id, frontend_id, direction, timestamp"

func scanMessage(row dbutil.Scannable) (MessageMapping, error) {
	var m MessageMapping
	var ts int64
	if err := row.Scan(&m.PortalID, &m.MSNID, &m.FrontendID, &m.Direction, &ts); err != nil {
		return MessageMapping{}, err
	}
	m.Time = fromMillis(ts)
	return m, nil
}

// Put records a mapping. ErrDuplicate when the portal already has a
// mapping with the same MSN id or the same frontend id; ErrNotFound when
// the portal does not exist.
func (t *Messages) Put(ctx context.Context, m MessageMapping) error {
	if m.MSNID == "" || m.FrontendID == "" {
		return errors.New("store: message mapping needs both an MSN id and a frontend id")
	}
	if m.Direction != FromMSN && m.Direction != ToMSN {
		return fmt.Errorf("store: bad message direction %q", m.Direction)
	}
	res, err := t.s.db.Exec(ctx, "INSERT INTO message_map ("+messageColumns+") VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
		m.PortalID, m.MSNID, m.FrontendID, m.Direction, millis(m.Time))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("%w: portal %s", ErrNotFound, m.PortalID)
	} else if err != nil {
		return fmt.Errorf("store: mapping message %s in portal %s: %w", m.MSNID, m.PortalID, err)
	}
	if ok, err := affected(res); err != nil {
		return fmt.Errorf("store: mapping message %s in portal %s: %w", m.MSNID, m.PortalID, err)
	} else if !ok {
		return fmt.Errorf("%w: message %s / %s in portal %s", ErrDuplicate, m.MSNID, m.FrontendID, m.PortalID)
	}
	return nil
}

// ByMSNID returns the mapping of the core's message id or ErrNotFound.
func (t *Messages) ByMSNID(ctx context.Context, portalID, msnID string) (MessageMapping, error) {
	m, err := scanMessage(t.s.db.QueryRow(ctx, "SELECT "+messageColumns+" FROM message_map WHERE portal_id=$1 AND msn_id=$2", portalID, msnID))
	if err != nil {
		return MessageMapping{}, notFound(err, "message %s in portal %s", msnID, portalID)
	}
	return m, nil
}

// ByFrontendID returns the mapping of the frontend's message id or
// ErrNotFound.
func (t *Messages) ByFrontendID(ctx context.Context, portalID, frontendID string) (MessageMapping, error) {
	m, err := scanMessage(t.s.db.QueryRow(ctx, "SELECT "+messageColumns+" FROM message_map WHERE portal_id=$1 AND frontend_id=$2", portalID, frontendID))
	if err != nil {
		return MessageMapping{}, notFound(err, "frontend message %s in portal %s", frontendID, portalID)
	}
	return m, nil
}

// DeleteBefore removes mappings older than before (they only guard
// against duplicates, which do not arrive days later) and returns how many.
func (t *Messages) DeleteBefore(ctx context.Context, before time.Time) (int64, error) {
	res, err := t.s.db.Exec(ctx, "DELETE FROM message_map WHERE timestamp < $1", before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("store: pruning message mappings: %w", err)
	}
	return res.RowsAffected()
}
