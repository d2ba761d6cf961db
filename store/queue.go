package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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
//
// Its writes are group-committed: Push and Delivered calls that arrive
// while another's transaction is committing wait, and then share one
// transaction, which the first of them commits for all. Each call still
// returns only after the transaction holding its write has committed, so
// what a returned Push promises is unchanged; a burst of events costs one
// commit per batch instead of one per event, and the queue's writers take
// turns in Go instead of spinning on SQLite's busy timeout.
type Queue struct {
	s     *Store
	limit int

	mu      sync.Mutex
	pending []*queueOp // waiting for the next transaction, in arrival order
	leading bool       // a caller is committing batches

	// Owned by the leader (see do): the batch's statements, prepared once,
	// and the users whose row is known to exist.
	stmtMu  sync.Mutex
	stmts   *queueStmts
	ensured map[UserID]bool
}

// queueStmts are a batch's statements, prepared once per connection (a
// prepared *sql.Stmt used in a transaction reuses the connection's).
type queueStmts struct {
	ensureUser, lockUser, count, insert, mapMessage, remove *sql.Stmt
}

// queueOp is one Push, PushAll or Delivered waiting to be committed.
type queueOp struct {
	ctx context.Context
	// pushes are appended to their users' queues, in order.
	pushes []*Pushed
	// delivered: user's events up to and including through are removed,
	// and maps recorded.
	user    UserID
	through int64
	maps    []MessageMapping
	// wake receives false when the op is committed (or failed), true when
	// its caller is to commit the next batch.
	wake chan bool
	err  error // the transaction's, when it failed
}

// Pushed is one event for PushAll: User and Payload in, ID (the queued
// event's id) or Err out.
type Pushed struct {
	User    UserID
	Payload []byte
	ID      int64
	// Err is a *QueueFullError, or the error that kept the transaction
	// from committing.
	Err error
}

// Limit is the most events a user's queue holds.
func (q *Queue) Limit() int { return q.limit }

// Push appends payload to the user's queue and returns its id. A
// *QueueFullError (matching ErrQueueFull) when the queue is at its limit.
// The user row is created if missing. When Push returns nil the event is
// committed (group commit, see Queue).
func (q *Queue) Push(ctx context.Context, user UserID, payload []byte) (int64, error) {
	p := &Pushed{User: user, Payload: payload}
	q.PushAll(ctx, []*Pushed{p})
	return p.ID, p.Err
}

// PushAll appends each event to its user's queue, in order, in one
// transaction (shared with concurrent writes, see Queue), and sets each
// one's ID or Err. When it returns, every event with a nil Err is
// committed.
func (q *Queue) PushAll(ctx context.Context, events []*Pushed) {
	op := &queueOp{ctx: ctx}
	for _, p := range events {
		p.ID, p.Err = 0, nil
		if p.Payload == nil {
			p.Payload = []byte{}
		}
		if p.User.Frontend == "" || p.User.ID == "" {
			p.Err = fmt.Errorf("store: user needs a frontend and an id, got %q", p.User)
			continue
		}
		op.pushes = append(op.pushes, p)
	}
	if len(op.pushes) == 0 {
		return
	}
	if err := q.do(op); err != nil {
		for _, p := range op.pushes {
			p.ID, p.Err = 0, fmt.Errorf("store: queueing event for %s: %w", p.User, err)
		}
	}
}

// Delivered records that the user's frontend took the user's queued events
// up to and including id through: it removes them (through <= 0 removes
// nothing) and records maps, the message mappings of delivered messages
// (duplicates and mappings of deleted portals are skipped), in one
// transaction shared with concurrent Pushes. When it returns nil both are
// committed.
//
// Removing by "up to through" is sound because one Store's queue writes
// are one transaction at a time (the group commit), so a user's events
// become visible in id order: an event the caller has not seen cannot have
// a lower id than one it has (on Postgres, ids taken by concurrent
// transactions could commit out of order; the store never has two).
func (q *Queue) Delivered(ctx context.Context, user UserID, through int64, maps ...MessageMapping) error {
	for _, m := range maps {
		if m.MSNID == "" || m.FrontendID == "" {
			return errors.New("store: message mapping needs both an MSN id and a frontend id")
		}
		if m.Direction != FromMSN && m.Direction != ToMSN {
			return fmt.Errorf("store: bad message direction %q", m.Direction)
		}
	}
	if through <= 0 && len(maps) == 0 {
		return nil
	}
	if err := q.do(&queueOp{ctx: ctx, user: user, through: through, maps: maps}); err != nil {
		return fmt.Errorf("store: recording delivery to %s: %w", user, err)
	}
	return nil
}

// do commits op, in a batch with whatever else is waiting, and returns
// its result. The first caller to find no batch committing leads: it
// commits everything pending, then hands the lead to the oldest op that
// arrived meanwhile, so that no caller commits for others indefinitely.
func (q *Queue) do(op *queueOp) error {
	op.wake = make(chan bool, 1)
	q.mu.Lock()
	q.pending = append(q.pending, op)
	if q.leading {
		q.mu.Unlock()
		if lead := <-op.wake; !lead {
			return op.err
		}
		q.mu.Lock()
	}
	q.leading = true
	batch := q.pending
	q.pending = nil
	q.mu.Unlock()

	q.commit(op.ctx, batch)

	q.mu.Lock()
	if len(q.pending) > 0 {
		q.pending[0].wake <- true
	} else {
		q.leading = false
	}
	q.mu.Unlock()
	return op.err
}

// commit writes batch in one transaction and tells every op but the
// leader's (batch holds it) its result. If the shared transaction fails,
// each op is tried again alone, so that one bad op (or one caller's
// expired context) fails only itself.
func (q *Queue) commit(ctx context.Context, batch []*queueOp) {
	err := q.commitTxn(ctx, batch)
	if err != nil && len(batch) > 1 {
		for _, op := range batch {
			op.err = q.commitTxn(op.ctx, []*queueOp{op})
		}
	} else {
		batch[0].err = err
	}
	for _, op := range batch {
		select {
		case op.wake <- false:
		default: // the leader's own op: nobody waits on it
		}
	}
}

func (q *Queue) commitTxn(ctx context.Context, batch []*queueOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// The transaction is the batch's, not the leader's: a new context (the
	// caller's may carry its own dbutil transaction, which the batch must
	// not join) with the leader's deadline.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	stmts, err := q.statements(ctx)
	if err != nil {
		return err
	}
	for {
		for _, op := range batch {
			for _, p := range op.pushes {
				p.ID, p.Err = 0, nil
			}
		}
		// A plain database/sql transaction rather than dbutil's DoTxn,
		// which costs a goroutine and a timer per transaction: the queue's
		// are small and many. BEGIN is immediate on SQLite (sqliteDSN).
		tx, err := q.s.db.RawDB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		trusted := len(q.ensured) > 0
		if err = q.apply(ctx, tx, stmts, batch); err == nil {
			err = tx.Commit()
		} else {
			_ = tx.Rollback()
		}
		if err == nil {
			return nil
		}
		// A user deleted since it was known to exist fails the insert:
		// forget what is known and try once more.
		q.ensured = nil
		if !trusted {
			return err
		}
	}
}

// statements prepares the queue's statements the first time.
func (q *Queue) statements(ctx context.Context) (*queueStmts, error) {
	q.stmtMu.Lock()
	defer q.stmtMu.Unlock()
	if q.stmts != nil {
		return q.stmts, nil
	}
	var st queueStmts
	var prepared []*sql.Stmt
	prepare := func(dst **sql.Stmt, query string) error {
		if q.s.db.Dialect != dbutil.Postgres {
			query = strings.ReplaceAll(query, "$", "?") // ?NNN: SQLite's numbered parameters
		}
		stmt, err := q.s.db.RawDB.PrepareContext(ctx, query)
		if err != nil {
			return err
		}
		prepared = append(prepared, stmt)
		*dst = stmt
		return nil
	}
	err := errors.Join(
		prepare(&st.ensureUser, "INSERT INTO users (frontend, user_id, permission, created_at) VALUES ($1, $2, 0, $3) ON CONFLICT (frontend, user_id) DO NOTHING"),
		prepare(&st.count, "SELECT COUNT(*) FROM event_queue WHERE frontend=$1 AND user_id=$2"),
		prepare(&st.insert, "INSERT INTO event_queue (frontend, user_id, payload, created_at) VALUES ($1, $2, $3, $4) RETURNING id"),
		// A portal deleted meanwhile leaves nothing to map, and must not
		// fail the batch with a foreign-key violation (which aborts a
		// Postgres transaction).
		prepare(&st.mapMessage, "INSERT INTO message_map ("+messageColumns+") SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM portals WHERE id=$1) ON CONFLICT DO NOTHING"),
		prepare(&st.remove, "DELETE FROM event_queue WHERE frontend=$1 AND user_id=$2 AND id<=$3"),
	)
	if err == nil && q.s.db.Dialect == dbutil.Postgres {
		err = prepare(&st.lockUser, "SELECT 1 FROM users WHERE frontend=$1 AND user_id=$2 FOR UPDATE")
	}
	if err != nil {
		for _, stmt := range prepared {
			_ = stmt.Close()
		}
		return nil, fmt.Errorf("preparing the queue's statements: %w", err)
	}
	q.stmts = &st
	return q.stmts, nil
}

// close releases the prepared statements (Store.Close).
func (q *Queue) close() {
	q.stmtMu.Lock()
	defer q.stmtMu.Unlock()
	if q.stmts == nil {
		return
	}
	for _, stmt := range []*sql.Stmt{q.stmts.ensureUser, q.stmts.lockUser, q.stmts.count, q.stmts.insert, q.stmts.mapMessage, q.stmts.remove} {
		if stmt != nil {
			_ = stmt.Close()
		}
	}
	q.stmts = nil
}

// apply runs a batch's statements inside its transaction. A full queue is
// the op's error, not the transaction's.
func (q *Queue) apply(ctx context.Context, tx *sql.Tx, st *queueStmts, batch []*queueOp) error {
	stmt := func(s *sql.Stmt) *sql.Stmt { return tx.StmtContext(ctx, s) }
	// Each pushing user's queue length is counted once per batch. The
	// count and the inserts must not interleave with another transaction's
	// for the same user: SQLite write transactions are immediate (see
	// sqliteDSN), so they hold the database's write lock already; on
	// Postgres (read committed) the user's row lock serialises them, held
	// until this transaction ends, taken in a fixed order.
	var users []UserID
	queued := map[UserID]int{}
	for _, op := range batch {
		for _, p := range op.pushes {
			if _, seen := queued[p.User]; !seen {
				queued[p.User] = 0
				users = append(users, p.User)
			}
		}
	}
	slices.SortFunc(users, func(a, b UserID) int {
		return cmp.Or(cmp.Compare(a.Frontend, b.Frontend), cmp.Compare(a.ID, b.ID))
	})
	ts := now()
	var ensured []UserID
	for _, user := range users {
		if !q.ensured[user] {
			if _, err := stmt(st.ensureUser).ExecContext(ctx, user.Frontend, user.ID, ts); err != nil {
				return fmt.Errorf("ensuring user %s: %w", user, err)
			}
			ensured = append(ensured, user)
		}
		if st.lockUser != nil {
			if _, err := stmt(st.lockUser).ExecContext(ctx, user.Frontend, user.ID); err != nil {
				return err
			}
		}
		var n int
		if err := stmt(st.count).QueryRowContext(ctx, user.Frontend, user.ID).Scan(&n); err != nil {
			return err
		}
		queued[user] = n
	}
	for _, op := range batch {
		for _, p := range op.pushes {
			if queued[p.User] >= q.limit {
				p.Err = &QueueFullError{User: p.User, Limit: q.limit}
				continue
			}
			if err := stmt(st.insert).QueryRowContext(ctx, p.User.Frontend, p.User.ID, p.Payload, ts).Scan(&p.ID); err != nil {
				return err
			}
			queued[p.User]++
		}
		for _, m := range op.maps {
			if _, err := stmt(st.mapMessage).ExecContext(ctx, m.PortalID, m.MSNID, m.FrontendID, m.Direction, millis(m.Time)); err != nil {
				return err
			}
		}
		if op.through > 0 {
			res, err := stmt(st.remove).ExecContext(ctx, op.user.Frontend, op.user.ID, op.through)
			if err != nil {
				return err
			}
			if n, ok := queued[op.user]; ok {
				deleted, _ := res.RowsAffected()
				queued[op.user] = n - int(deleted)
			}
		}
	}
	// Known to exist once this commits; a failed commit forgets them all.
	if q.ensured == nil {
		q.ensured = map[UserID]bool{}
	}
	for _, u := range ensured {
		q.ensured[u] = true
	}
	return nil
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

// LastID returns the highest id queued now (0 for an empty queue). Ids
// only grow (AUTOINCREMENT, an identity column), so an event with a higher
// id was queued after the call.
func (q *Queue) LastID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	if err := q.s.db.QueryRow(ctx, "SELECT MAX(id) FROM event_queue").Scan(&id); err != nil {
		return 0, fmt.Errorf("store: reading the last queued id: %w", err)
	}
	return id.Int64, nil
}
