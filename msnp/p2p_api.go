package msnp

import (
	"context"
	"errors"
	"io"
)

// Errors of P2P transfers (display pictures and files).
var (
	// ErrP2PDeclined means the peer answered the invitation with 603 Decline.
	ErrP2PDeclined = errors.New("msnp: p2p: declined by the peer")
	// ErrP2PCancelled means the peer ended the session (BYE) before it was complete.
	ErrP2PCancelled = errors.New("msnp: p2p: cancelled by the peer")
	// ErrP2PTooLarge means the object or file is larger than allowed.
	ErrP2PTooLarge = errors.New("msnp: p2p: too large")
	// ErrP2PCorrupt means the received data does not match its SHA1D.
	ErrP2PCorrupt = errors.New("msnp: p2p: data does not match its checksum")
	// ErrP2PTimeout means the peer stopped answering.
	ErrP2PTimeout = errors.New("msnp: p2p: the peer did not answer in time")
)

// OutgoingFile is a file offered with SendFile. Data is read in chunks
// while it is sent; never more than Size bytes are read from it.
type OutgoingFile struct {
	Name string
	Size int64
	Data io.Reader
}

// FileOffer is a contact offering this account a file. Accept or Decline
// it through Transfer; an offer left alone is declined after a while.
type FileOffer struct {
	Conversation   ConversationInfo
	From, FromName string
	Self           bool // another endpoint of our own account (MPOP)
	Name           string
	Size           int64
	Transfer       *IncomingFile
}

func (FileOffer) isEvent() {}

// IncomingFile is the receiving side of a file a contact offered.
type IncomingFile struct {
	s *p2pSession
}

// SetDisplayPicture makes data this account's display picture.
func (c *Client) SetDisplayPicture(ctx context.Context, data []byte) (MSNObject, error) {
	return MSNObject{}, errors.New("msnp: p2p: not implemented yet")
}

// FetchMSNObject asks passport for obj over P2P and streams it into w.
func (c *Client) FetchMSNObject(ctx context.Context, passport string, obj MSNObject, w io.Writer, maxSize int64) error {
	return errors.New("msnp: p2p: not implemented yet")
}

// SendFile offers a file to passport and blocks until it was received.
func (c *Client) SendFile(ctx context.Context, passport string, f OutgoingFile) error {
	return errors.New("msnp: p2p: not implemented yet")
}

// Accept accepts the offer and writes the data into w.
func (f *IncomingFile) Accept(ctx context.Context, w io.Writer) error {
	return errors.New("msnp: p2p: not implemented yet")
}

// Decline refuses the offer.
func (f *IncomingFile) Decline() error {
	return errors.New("msnp: p2p: not implemented yet")
}

type p2pSession struct{}
