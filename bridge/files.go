package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/store"
)

// This file is MSN file transfers: offers from contacts, received into the
// media directory and shown as File events; and files users send, copied
// there first and then offered to the contact.

// fileTransferTimeout bounds one transfer either way. msnp ends a transfer
// whose peer stops answering long before; this is the backstop.
const fileTransferTimeout = time.Hour

// maxIncomingTransfers bounds the files one login receives at once, and so
// the disk a flood of offers can take before the user sees any of them.
const maxIncomingTransfers = 4

// handleFileOffer accepts or declines a contact's file. It runs on msnp's
// event goroutine: the transfer itself runs in its own.
func (l *login) handleFileOffer(portal PortalID, e msnp.FileOffer) {
	who := e.From
	if name := cleanText(e.FromName, 387); name != "" && name != e.From {
		who = fmt.Sprintf("%s (%s)", name, e.From)
	}
	name := cleanFileName(e.Name)
	limit := l.b.media.maxSize
	if limit <= 0 || e.Size > limit {
		if err := e.Transfer.Decline(); err != nil {
			l.log.Info().Err(err).Msg("declining a file offer failed")
		}
		why := "file transfer is turned off on this bridge"
		if limit > 0 {
			why = fmt.Sprintf("it is larger than the %s this bridge accepts", HumanSize(limit))
		}
		l.b.emit(l.user, Notice{Portal: portal, Text: fmt.Sprintf("%s offered you the file “%s” (%s), which was declined: %s.",
			who, name, HumanSize(e.Size), why)})
		return
	}
	select {
	case l.receiving <- struct{}{}:
	default:
		_ = e.Transfer.Decline()
		l.b.emit(l.user, Notice{Portal: portal, Text: fmt.Sprintf("%s offered you the file “%s” (%s), which was declined: %d files are already arriving; ask them to send it again in a moment.",
			who, name, HumanSize(e.Size), maxIncomingTransfers)})
		return
	}
	l.b.wg.Add(1)
	go func() {
		defer l.b.wg.Done()
		defer func() { <-l.receiving }()
		mf, err := l.receiveFile(e)
		if err != nil {
			l.log.Info().Err(err).Str("contact", e.From).Msg("receiving a file failed")
			l.b.emit(l.user, Notice{Portal: portal, Text: fmt.Sprintf("Receiving the file “%s” (%s) from %s failed: %v.",
				name, HumanSize(e.Size), who, err)})
			return
		}
		l.b.emit(l.user, File{Portal: portal, Sender: e.From, FromSelf: e.Self, MSNID: newMSNID(),
			Name: mf.Name, Size: mf.Size, MIME: mf.MIME, Media: MediaID(mf.ID), Time: mf.CreatedAt})
	}()
}

// receiveFile accepts an offer and streams it into the media directory.
func (l *login) receiveFile(e msnp.FileOffer) (store.MediaFile, error) {
	ctx, cancel := context.WithTimeout(l.b.ctx, fileTransferTimeout)
	defer cancel()
	p, err := l.b.media.create(min(e.Size, l.b.media.maxSize))
	if err != nil {
		_ = e.Transfer.Decline()
		return store.MediaFile{}, err
	}
	if err := e.Transfer.Accept(ctx, p); err != nil {
		p.abort()
		return store.MediaFile{}, explainP2PError(err, e.From)
	}
	if p.n != e.Size {
		p.abort()
		return store.MediaFile{}, fmt.Errorf("the transfer ended after %d of %d bytes", p.n, e.Size)
	}
	return p.commit(context.WithoutCancel(ctx), l.user, e.Name)
}

// explainP2PError says what a failed transfer means to users.
func explainP2PError(err error, contact string) error {
	switch {
	case errors.Is(err, msnp.ErrP2PDeclined):
		return ErrFileDeclined
	case errors.Is(err, msnp.ErrP2PTimeout):
		return fmt.Errorf("%w: %s's client did not answer in time", ErrFileDeclined, contact)
	case errors.Is(err, msnp.ErrP2PCancelled):
		return fmt.Errorf("%s cancelled the transfer", contact)
	case errors.Is(err, msnp.ErrP2PCorrupt):
		return errors.New("the data that arrived did not match what was announced")
	case errors.Is(err, msnp.ErrP2PTooLarge):
		return fmt.Errorf("%w: more data arrived than was announced", errTooLarge)
	case errors.Is(err, context.DeadlineExceeded):
		return errors.New("the transfer took too long and was cancelled")
	case errors.Is(err, context.Canceled):
		return errors.New("the bridge stopped during the transfer")
	}
	return explainMSNError(err)
}

// SendFile implements Core.
func (b *Bridge) SendFile(ctx context.Context, user UserID, id PortalID, f OutgoingFile) error {
	l, err := b.loginFor(user)
	if err != nil {
		return err
	}
	p, err := b.portalOf(ctx, l, id)
	if err != nil {
		return err
	}
	if p.Kind != PortalDirect {
		return errors.New("MSN sends files to one contact at a time: send it in your direct conversation with them")
	}
	if f.FrontendID != "" {
		if _, err := b.store.Messages.ByFrontendID(ctx, string(id), f.FrontendID); err == nil {
			return nil // a retried transaction: already sent
		}
	}
	limit := b.media.maxSize
	if limit <= 0 {
		return ErrFilesDisabled
	}
	if f.Size > limit {
		return fmt.Errorf("%w: “%s” is %s, and the most this bridge sends is %s", errTooLarge, cleanFileName(f.Name), HumanSize(f.Size), HumanSize(limit))
	}
	if f.Size > 0 {
		limit = f.Size
	}
	if f.Data == nil {
		return errors.New("the file has no data")
	}
	pm, err := b.media.create(limit)
	if err != nil {
		return err
	}
	// One byte more than allowed is read, so that a longer file is an
	// error rather than silently cut.
	if _, err := io.Copy(pm, io.LimitReader(f.Data, limit+1)); err != nil {
		pm.abort()
		if errors.Is(err, errTooLarge) && f.Size > 0 {
			return fmt.Errorf("the file is longer than the %d bytes it was announced as", f.Size)
		} else if errors.Is(err, errTooLarge) {
			return fmt.Errorf("%w: “%s” is larger than the %s this bridge sends", errTooLarge, cleanFileName(f.Name), HumanSize(limit))
		}
		return fmt.Errorf("reading the file: %w", err)
	}
	if f.Size > 0 && pm.n != f.Size {
		pm.abort()
		return fmt.Errorf("the file ended after %d of the %d bytes it was announced as", pm.n, f.Size)
	}
	if pm.n == 0 {
		pm.abort()
		return errors.New("the file is empty; MSN cannot send empty files")
	}
	mf, err := pm.commit(ctx, user, f.Name)
	if err != nil {
		return err
	}
	l.log.Debug().Str("portal", string(id)).Str("frontend_id", f.FrontendID).Int64("size", mf.Size).Msg("file queued for MSN")
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		sctx, cancel := context.WithTimeout(b.ctx, fileTransferTimeout)
		defer cancel()
		err := b.sendFile(sctx, l, p, mf)
		if rerr := b.media.remove(context.WithoutCancel(sctx), mf); rerr != nil {
			l.log.Warn().Err(rerr).Msg("could not delete a sent file's copy; the sweep will")
		}
		if err != nil {
			b.obs.Error(ErrorSend)
			l.log.Info().Err(err).Str("portal", string(id)).Msg("file to MSN failed")
		} else {
			b.obs.MessageBridged(user.Frontend, ToMSN)
			if f.FrontendID != "" {
				_ = b.store.Messages.Put(context.WithoutCancel(sctx), store.MessageMapping{PortalID: string(id), MSNID: newMSNID(),
					FrontendID: f.FrontendID, Direction: store.ToMSN, Time: time.Now()})
			}
		}
		b.emit(user, DeliveryResult{Portal: id, FrontendID: f.FrontendID, Err: err})
	}()
	return nil
}

// sendFile offers a stored file to the portal's contact and waits for the
// end of the transfer.
func (b *Bridge) sendFile(ctx context.Context, l *login, p Portal, mf store.MediaFile) error {
	client, err := l.connectedClient(ctx)
	if err != nil {
		return err
	}
	fh, err := os.Open(filepath.Join(b.media.dir, mf.Path))
	if err != nil {
		return fmt.Errorf("reading the file back: %w", err)
	}
	defer fh.Close()
	err = client.SendFile(ctx, p.Contact, msnp.OutgoingFile{Name: mf.Name, Size: mf.Size, Data: fh})
	if err != nil {
		return explainP2PError(err, p.Contact)
	}
	return nil
}
