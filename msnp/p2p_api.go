package msnp

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Errors of P2P transfers (display pictures and files).
var (
	// ErrP2PDeclined means the peer answered the invitation with 603 Decline
	// (or another refusal).
	ErrP2PDeclined = errors.New("msnp: p2p: declined by the peer")
	// ErrP2PCancelled means the peer ended the session (BYE) before it was complete.
	ErrP2PCancelled = errors.New("msnp: p2p: cancelled by the peer")
	// ErrP2PTooLarge means the object or file is larger than allowed.
	ErrP2PTooLarge = errors.New("msnp: p2p: too large")
	// ErrP2PCorrupt means the received data does not match its SHA1D or
	// its announced size.
	ErrP2PCorrupt = errors.New("msnp: p2p: data does not match what was announced")
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
// it through Transfer; an offer left alone is declined after a while
// (about two minutes).
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

// defaultFetchLimit bounds FetchMSNObject when the caller gives no limit.
const defaultFetchLimit = 10 << 20

// SetDisplayPicture makes data (PNG bytes, already sized by the caller)
// this account's display picture: it builds the MSNObject (Type 3, Creator
// the account, SHA1D, SHA1C, Location "0", Friendly "AAA="), sends it with
// the next and every later CHG (SetStatus, and SetStatus after a reconnect
// of this Client, keep it), and serves the data to contacts who INVITE for
// it. While online it sends a CHG at once. nil (or empty) clears it.
func (c *Client) SetDisplayPicture(ctx context.Context, data []byte) (MSNObject, error) {
	if len(data) > maxOwnPicture {
		return MSNObject{}, fmt.Errorf("%w: display picture of %d bytes, over %d", ErrP2PTooLarge, len(data), maxOwnPicture)
	}
	var obj MSNObject
	c.p2p.mu.Lock()
	if len(data) == 0 {
		c.p2p.picture = nil
	} else {
		obj = NewMSNObject(strings.ToLower(c.passport), MSNObjectDisplayPicture, "0", "", data)
		c.p2p.picture = &ownPicture{obj: obj, data: append([]byte(nil), data...)}
	}
	c.p2p.mu.Unlock()
	c.mu.Lock()
	status := c.status
	c.mu.Unlock()
	if cn := c.current(); cn != nil && status != "" && status != StatusOffline {
		if err := c.SetStatus(ctx, status); err != nil {
			return obj, err
		}
	}
	return obj, nil
}

// DisplayPicture returns the account's display picture object, if set.
func (c *Client) DisplayPicture() (MSNObject, bool) {
	c.p2p.mu.Lock()
	defer c.p2p.mu.Unlock()
	if c.p2p.picture == nil {
		return MSNObject{}, false
	}
	return c.p2p.picture.obj, true
}

// chgObject is the CHG argument naming our display picture, URL-encoded
// as libpurple's purple_url_encode does, or "" when there is none.
func (c *Client) chgObject() string {
	obj, ok := c.DisplayPicture()
	if !ok {
		return ""
	}
	return strings.ReplaceAll(url.QueryEscape(obj.String()), "+", "%20")
}

// FetchMSNObject asks passport for obj (a display picture or emoticon they
// advertised) over P2P in a switchboard, streams the data into w (never
// more than min(obj.Size, maxSize) bytes; maxSize <= 0 means 10 MiB),
// verifies SHA1D, and returns when done. Errors: ErrP2PDeclined,
// ErrP2PTooLarge, ErrP2PCorrupt (SHA1D or size mismatch), ErrP2PCancelled
// (they sent BYE), ErrP2PTimeout, ctx errors (a BYE is sent on
// timeout/cancel), and the conversation's errors (offline contact).
func (c *Client) FetchMSNObject(ctx context.Context, passport string, obj MSNObject, w io.Writer, maxSize int64) error {
	if maxSize <= 0 {
		maxSize = defaultFetchLimit
	}
	if obj.Size > maxSize {
		return fmt.Errorf("%w: %d bytes, over %d", ErrP2PTooLarge, obj.Size, maxSize)
	}
	if obj.SHA1D == "" || obj.Size < 0 {
		return fmt.Errorf("%w: no SHA1D", ErrBadMSNObject)
	}
	s, l, err := c.newOutgoingSession(passport, p2pFetch)
	if err != nil {
		return err
	}
	c.p2p.mu.Lock()
	s.w, s.limit, s.want = w, uint64(maxSize), uint64(obj.Size)
	s.sum, s.sha1d = sha1.New(), obj.SHA1D
	c.p2p.mu.Unlock()
	// The context is the object as the contact advertised it, with the NUL
	// the official clients add (libpurple omits it; both are accepted).
	ctxt := base64.StdEncoding.EncodeToString(append([]byte(obj.String()), 0))
	l.queueControl(l.slpPackets(l.invite(s, EUFGUIDMSNObject, P2PAppMSNObject, ctxt))...)
	return s.wait(ctx)
}

// SendFile offers a file to passport and blocks until they received it all
// (nil), declined it (ErrP2PDeclined), cancelled (ErrP2PCancelled),
// stopped answering (ErrP2PTimeout) or ctx ended (we cancel with a BYE).
// Data is read in 1202-byte chunks as it is sent; never more than Size
// bytes are read.
func (c *Client) SendFile(ctx context.Context, passport string, f OutgoingFile) error {
	if f.Size <= 0 || f.Data == nil {
		return fmt.Errorf("msnp: p2p: nothing to send (size %d)", f.Size)
	}
	name := path.Base(strings.ReplaceAll(f.Name, "\\", "/"))
	if name == "." || name == "/" || name == "" {
		name = "file"
	}
	s, l, err := c.newOutgoingSession(passport, p2pFileOut)
	if err != nil {
		return err
	}
	c.p2p.mu.Lock()
	s.src, s.size = f.Data, f.Size
	// A person decides: the offer waits as long as an offer to us would.
	s.timer.Reset(orDuration(c.p2p.offerTimeout, defaultOfferTimeout))
	c.p2p.mu.Unlock()
	ctxt := base64.StdEncoding.EncodeToString(fileContext(name, f.Size))
	l.queueControl(l.slpPackets(l.invite(s, EUFGUIDFile, P2PAppFile, ctxt))...)
	return s.wait(ctx)
}

func (c *Client) newOutgoingSession(passport string, kind p2pKind) (*p2pSession, *p2pLink, error) {
	p := strings.ToLower(passport)
	if p == "" || strings.ContainsAny(p, " \t\r\n") || !strings.Contains(p, "@") {
		return nil, nil, fmt.Errorf("msnp: p2p: invalid passport %q", passport)
	}
	if strings.EqualFold(p, c.passport) {
		return nil, nil, errors.New("msnp: p2p: cannot transfer to this account itself")
	}
	c.p2p.mu.Lock()
	l := c.linkLocked(p)
	c.p2p.mu.Unlock()
	if l == nil {
		return nil, nil, errNoSession
	}
	// SessionIDs as libpurple picks them (slpcall.c msn_slpcall_init).
	s := l.newSession(kind, randomUint32()%0xFFFFFF00+4, newGUIDOr(), newGUIDOr())
	if s == nil {
		return nil, nil, errNoSession
	}
	return s, l, nil
}

// invite is the INVITE of session s (libpurple slpcall.c msn_slpcall_invite).
func (l *p2pLink) invite(s *p2pSession, euf string, app uint32, ctxt string) *SLPMessage {
	return &SLPMessage{
		Method: "INVITE", Target: l.peer, To: l.peer, From: strings.ToLower(l.c.passport),
		Branch: s.branch, CSeq: 0, CallID: s.callID, ContentType: SLPSessionRequest,
		Body: []MIMEHeader{
			{Name: "EUF-GUID", Value: euf},
			{Name: "SessionID", Value: strconv.FormatUint(uint64(s.id), 10)},
			{Name: "AppID", Value: strconv.FormatUint(uint64(app), 10)},
			{Name: "Context", Value: ctxt},
		},
	}
}

// Accept sends 200 OK and writes the data, in order, into w; it returns
// when all Size bytes arrived (nil), or on cancel (ErrP2PCancelled),
// timeout (ErrP2PTimeout), more or less data than announced
// (ErrP2PCorrupt), a write error, or ctx (we cancel with a BYE).
func (f *IncomingFile) Accept(ctx context.Context, w io.Writer) error {
	s := f.s
	st := &s.l.c.p2p
	st.mu.Lock()
	switch {
	case s.closed:
		err := s.err
		st.mu.Unlock()
		if err == nil {
			err = ErrP2PCancelled
		}
		return err
	case s.accepted:
		st.mu.Unlock()
		return errors.New("msnp: p2p: offer already accepted")
	}
	s.accepted = true
	s.w = w
	s.touchLocked()
	s.l.respondRaw(s, 200, "OK")
	st.mu.Unlock()
	return s.wait(ctx)
}

// Decline sends 603 Decline. Declining an offer that already ended does
// nothing.
func (f *IncomingFile) Decline() error {
	s := f.s
	st := &s.l.c.p2p
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.accepted {
		s.finishLocked(ErrP2PDeclined, true)
		return nil
	}
	s.l.respondRaw(s, 603, "Decline")
	s.finishLocked(ErrP2PDeclined, false)
	return nil
}
