package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
)

// QueuedEvent is an event waiting for a frontend to take it.
type QueuedEvent struct {
	ID        int64 // increasing: the delivery order
	User      UserID
	Payload   []byte // the bridge's encoding of the event
	CreatedAt time.Time
}

// Queue is the event_queue table: a persistent, ordered and bounded outbox
// of events per user, for when their frontend is down.
type Queue struct {
	s     *Store
	limit int
}

// Limit is the most events a user's queue holds.
func (q *Queue) Limit() int { return q.limit }

// Push appends payload to the user's queue and returns its id. A
// *QueueFullError (matching ErrQueueFull) when the queue is at its limit.
// The user row is created if missing.
func (q *Queue) Push(ctx context.Context, user UserID, payload []byte) (int64, error) {
	if payload == nil {
		payload = []byte{}
	}
	var id int64
	err := q.s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := q.s.Users.ensureExists(ctx, user); err != nil {
			return err
		}
		// The count and the insert must not interleave with another Push
		// for the same user. SQLite write transactions are immediate (see
		// sqliteDSN), so they hold the database's write lock already; on
		// Postgres (read committed) the user's row lock serialises them,
		// held until this transaction ends.
		if q.s.db.Dialect == dbutil.Postgres {
			if _, err := q.s.db.Exec(ctx, "SELECT 1 FROM users WHERE frontend=$1 AND user_id=$2 FOR UPDATE",
				user.Frontend, user.ID); err != nil {
				return err
			}
		}
		var n int
		if err := q.s.db.QueryRow(ctx, "SELECT COUNT(*) FROM event_queue WHERE frontend=$1 AND user_id=$2",
			user.Frontend, user.ID).Scan(&n); err != nil {
			return err
		}
		if n >= q.limit {
			return &QueueFullError{User: user, Limit: q.limit}
		}
		return q.s.db.QueryRow(ctx, "INSERT INTO event_queue (frontend, user_id, payload, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
			user.Frontend, user.ID, payload, now()).Scan(&id)
	})
	if err != nil {
		if errors.Is(err, ErrQueueFull) {
			return 0, err
		}
		return 0, fmt.Errorf("store: queueing event for %s: %w", user, err)
	}
	return id, nil
}

// Peek returns up to max of the user's oldest queued events, oldest first,
// without removing them.
func (q *Queue) Peek(ctx context.Context, user UserID, max int) ([]QueuedEvent, error) {
	if max <= 0 {
		return nil, nil
	}
	rows, err := q.s.db.Query(ctx, "SELECT id, payload, created_at FROM event_queue WHERE frontend=$1 AND user_id=$2 ORDER BY id LIMIT $3",
		user.Frontend, user.ID, max)
	if err != nil {
		return nil, fmt.Errorf("store: reading queue of %s: %w", user, err)
	}
	defer rows.Close()
	var out []QueuedEvent
	for rows.Next() {
		ev := QueuedEvent{User: user}
		var created int64
		if err = rows.Scan(&ev.ID, &ev.Payload, &created); err != nil {
			return nil, fmt.Errorf("store: reading queue of %s: %w", user, err)
		}
		ev.CreatedAt = fromMillis(created)
		out = append(out, ev)
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading queue of %s: %w", user, err)
	}
	return out, nil
}

// Delete removes one delivered event. ErrNotFound when the user has no
// event with that id.
func (q *Queue) Delete(ctx context.Context, user UserID, id int64) error {
	res, err := q.s.db.Exec(ctx, "DELETE FROM event_queue WHERE id=$1 AND frontend=$2 AND user_id=$3", id, user.Frontend, user.ID)
	if err != nil {
		return fmt.Errorf("store: deleting queued event %d of %s: %w", id, user, err)
	}
	if ok, err := affected(res); err != nil {
		return fmt.Errorf("store: deleting queued event %d of %s: %w", id, user, err)
	} else if !ok {
		return fmt.Errorf("%w: queued event %d of %s", ErrNotFound, id, user)
	}
	return nil
}

// Len returns how many events the user has queued.
func (q *Queue) Len(ctx context.Context, user UserID) (int, error) {
	var n int
	if err := q.s.db.QueryRow(ctx, "SELECT COUNT(*) FROM event_queue WHERE frontend=$1 AND user_id=$2",
		user.Frontend, user.ID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: counting queue of %s: %w", user, err)
	}
	return n, nil
}

// Users returns the users with queued events, for redelivery after a
// restart.
func (q *Queue) Users(ctx context.Context) ([]UserID, error) {
	rows, err := q.s.db.Query(ctx, "SELECT DISTINCT frontend, user_id FROM event_queue ORDER BY frontend, user_id")
	if err != nil {
		return nil, fmt.Errorf("store: listing queued users: %w", err)
	}
	defer rows.Close()
	var out []UserID
	for rows.Next() {
		var u UserID
		if err = rows.Scan(&u.Frontend, &u.ID); err != nil {
			return nil, fmt.Errorf("store: listing queued users: %w", err)
		}
		out = append(out, u)
	}
	if err = rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing queued users: %w", err)
	}
	return out, nil
}
