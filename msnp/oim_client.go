package msnp

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"
)

// Offline messages on MSNP13+ (FACTS.md §7.6): announced in Mail-Data,
// fetched from rsi, reported as OfflineMessage and then deleted; sent with
// OimWS Store2.

// oimFetchTimeout bounds one round of fetching announced messages.
const oimFetchTimeout = time.Minute

// oimMaxPerRound bounds the messages fetched for one announcement, so a
// server listing thousands cannot keep the client busy without end; the
// rest stay on the server for the next login.
const oimMaxPerRound = 100

// oimService returns the Client's OIM service with the connection's
// tickets. It is kept across calls so that the lockkey and the run
// id/sequence persist.
func (c *Client) oimService(cn *conn) (*OIMService, error) {
	tokens, err := cn.sessionTokens()
	if err != nil {
		return nil, err
	}
	fresh := NewOIMService(c.soapBase(), tokens, c.cfg.httpClient())
	c.oimMu.Lock()
	defer c.oimMu.Unlock()
	if c.oim == nil || c.oim.RSITicket != fresh.RSITicket || c.oim.StoreTicket != fresh.StoreTicket {
		// Renewed tickets: a new service (in-flight calls keep the old
		// one untouched) that continues the lockkey and the sequence.
		if old := c.oim; old != nil {
			old.mu.Lock()
			fresh.lockKey, fresh.runID, fresh.seq = old.lockKey, old.runID, old.seq
			old.mu.Unlock()
		}
		c.oim = fresh
	}
	return c.oim, nil
}

// mailData handles the Mail-Data of an initial or new-OIM notification:
// messages not yet being fetched are fetched in the background (the
// reader must not wait on HTTP).
func (c *Client) mailData(cn *conn, body string) {
	if cn.d.protocol() < MSNP13 {
		return
	}
	hdr, _ := parseMIME([]byte(body))
	md, err := ParseMailData(hdr.Get("Mail-Data"))
	if err != nil || (!md.TooLarge && len(md.Messages) == 0) {
		return
	}
	go c.fetchOIMs(cn, md)
}

func (c *Client) fetchOIMs(cn *conn, md *OIMMailData) {
	ctx, cancel := context.WithTimeout(context.Background(), oimFetchTimeout)
	defer cancel()
	go func() {
		select {
		case <-cn.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	svc, err := c.oimService(cn)
	if err == nil && md.TooLarge {
		md, err = svc.GetMetadata(ctx)
	}
	if err != nil {
		c.log.Debug().Err(err).Msg("cannot list offline messages")
		return
	}
	var msgs []*OIMMessage
	metas := md.Messages
	if len(metas) > oimMaxPerRound {
		metas = metas[:oimMaxPerRound]
	}
	for _, meta := range metas {
		c.oimMu.Lock()
		busy := c.oimSeen[meta.ID]
		if !busy {
			c.oimSeen[meta.ID] = true
		}
		c.oimMu.Unlock()
		if busy {
			continue
		}
		m, err := svc.GetMessage(ctx, meta.ID, false)
		if err != nil {
			c.log.Debug().Err(err).Msg("cannot fetch an offline message")
			c.oimMu.Lock()
			delete(c.oimSeen, meta.ID)
			c.oimMu.Unlock()
			continue
		}
		if m.Date.IsZero() {
			m.Date = meta.Received
		}
		if m.From == "" {
			m.From, m.FromName = meta.Sender, meta.SenderName
		}
		msgs = append(msgs, m)
	}
	// Messages of one run arrive in sequence order; runs by time.
	sort.SliceStable(msgs, func(i, j int) bool {
		if msgs[i].RunID == msgs[j].RunID && msgs[i].RunID != "" {
			return msgs[i].Sequence < msgs[j].Sequence
		}
		return msgs[i].Date.Before(msgs[j].Date)
	})
	var ids []string
	for _, m := range msgs {
		if err := c.emit(OfflineMessage{From: m.From, FromName: m.FromName, Text: m.Text, Time: m.Date}); err != nil {
			cn.fail(err)
			return
		}
		ids = append(ids, m.ID)
	}
	if len(ids) > 0 {
		if err := svc.DeleteMessages(ctx, ids...); err != nil {
			// Kept in oimSeen, so a new announcement does not deliver
			// them twice.
			c.log.Debug().Err(err).Msg("cannot delete offline messages")
			return
		}
		c.oimMu.Lock()
		for _, id := range ids {
			delete(c.oimSeen, id)
		}
		c.oimMu.Unlock()
	}
}

// SendOfflineMessage leaves text for a contact who is offline (MSNP13+),
// through the OIM service.
func (c *Client) SendOfflineMessage(ctx context.Context, to, text string) error {
	if err := validPassport(to); err != nil {
		return err
	}
	if text == "" {
		return errors.New("msnp: empty offline message")
	}
	cn := c.current()
	if cn == nil {
		return ErrNotConnected
	}
	p := cn.d.protocol()
	if p < MSNP13 {
		return ErrUnsupported
	}
	svc, err := c.oimService(cn)
	if err != nil {
		return err
	}
	return svc.Send(ctx, OIMSendRequest{From: c.passport, FriendlyName: c.FriendlyName(), To: strings.TrimSpace(to),
		Text: text, MSNPVersion: p.String()})
}
