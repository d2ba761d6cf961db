package msnptest

import (
	"context"
	"errors"

	"github.com/msnbridge/msnbridge/msnp"
)

// ErrDeclined is returned by Peer.SendFile when the other side declined the
// file (MSNSLP 603 Decline).
var ErrDeclined = errors.New("msnptest: the peer declined")

var errPeerTODO = errors.New("msnptest: Peer not implemented yet")

// Peer is a scripted MSN user of the test server, signed in over real TCP
// with its own raw-line MSNP client and its own MSNP2P implementation, so
// that tests cross-check msnp against an independent implementation.
type Peer struct {
	passport string
}

// ReceivedFile is a file that someone sent a Peer.
type ReceivedFile struct {
	From, Name string
	Data       []byte
}

// NewPeer signs passport (an existing account) in and sets it online (NLN).
func (s *Server) NewPeer(ctx context.Context, passport, password string) (*Peer, error) {
	return nil, errPeerTODO
}

// Passport is the peer's account.
func (p *Peer) Passport() string { return p.passport }

// SetDisplayPicture makes data the peer's display picture: it sends CHG
// with the MSNObject and serves the data when someone INVITEs for it.
func (p *Peer) SetDisplayPicture(data []byte) msnp.MSNObject { return msnp.MSNObject{} }

// SendFile offers a file to "to" in a switchboard of its own; nil once the
// other side received all of it, ErrDeclined if they declined.
func (p *Peer) SendFile(ctx context.Context, to, name string, data []byte) error {
	return errPeerTODO
}

// FetchDisplayPicture asks from for obj over P2P and returns its data,
// checked against obj's SHA1D.
func (p *Peer) FetchDisplayPicture(ctx context.Context, from string, obj msnp.MSNObject) ([]byte, error) {
	return nil, errPeerTODO
}

// WaitFile returns the next file someone sent the peer (accepted
// automatically unless DeclineFiles(true)).
func (p *Peer) WaitFile(ctx context.Context) (ReceivedFile, error) {
	return ReceivedFile{}, errPeerTODO
}

// DeclineFiles makes the peer decline (603) every file offered from now on.
func (p *Peer) DeclineFiles(decline bool) {}

// SendText sends a plain-text message to "to".
func (p *Peer) SendText(ctx context.Context, to, text string) error { return errPeerTODO }

// Violations lists the protocol violations the peer saw from others.
func (p *Peer) Violations() []string { return nil }

// Close signs the peer out.
func (p *Peer) Close() error { return nil }
