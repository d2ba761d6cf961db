package msnp

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Offline messages (OIM, FACTS.md §7.6): the NS announces them in
// Mail-Data (<MD>) payloads, the rsi service hands them out as RFC 822
// messages, and the OimWS service stores new ones, guarded by a "lockkey"
// computed with the MSNP11 challenge algorithm.

const (
	oimRSINamespace   = "http://www.hotmail.msn.com/ws/2004/09/oim/rsi"
	oimRSIAction      = "http://www.hotmail.msn.com/ws/2004/09/oim/rsi/"
	oimStoreNamespace = "http://messenger.msn.com/ws/2004/09/oim/"
	oimStoreAction    = "http://messenger.live.com/ws/2006/09/oim/Store2"
	oimRMNamespace    = "http://schemas.xmlsoap.org/ws/2003/03/rm"
	oimWSUNamespace   = "http://schemas.xmlsoap.org/ws/2002/07/utility"

	// OIMDefaultProductID and OIMDefaultProductKey are WLM 8.5's pair
	// (libpurple, bitlbee ≤3.0.5), used for the lockkey.
	OIMDefaultProductID  = "PROD0119GSJUC$18"
	OIMDefaultProductKey = "ILTXC!4IXB5FB*PX"

	oimMaxBase64Line = 76 // Escargot refuses lines over 77 characters
)

// --- Mail-Data ---

// OIMMailData is a parsed Mail-Data value.
type OIMMailData struct {
	// TooLarge is set when the server sent "too-large" instead of <MD>
	// (more than 25 OIMs on Escargot): call GetMetadata.
	TooLarge bool
	// Inbox counts from <E> (Escargot sends zeros).
	InboxTotal, InboxUnread, OtherTotal, OtherUnread int
	Messages                                         []OIMMeta
}

// OIMMeta describes one stored offline message.
type OIMMeta struct {
	ID         string // message id, for GetMessage/DeleteMessages
	Sender     string // passport
	SenderName string // decoded from =?utf-8?B?…?=
	Received   time.Time
	Size       int
	Type       int // T: 11 for an OIM
	ReadState  int // RS
	Folder     string
}

type mdXML struct {
	XMLName xml.Name `xml:"MD"`
	E       struct {
		I  int `xml:"I"`
		IU int `xml:"IU"`
		O  int `xml:"O"`
		OU int `xml:"OU"`
	} `xml:"E"`
	M []struct {
		T  string `xml:"T"`
		S  string `xml:"S"`
		RT string `xml:"RT"`
		RS string `xml:"RS"`
		SZ string `xml:"SZ"`
		E  string `xml:"E"`
		I  string `xml:"I"`
		F  string `xml:"F"`
		N  string `xml:"N"`
	} `xml:"M"`
}

// ParseMailData parses the value of a Mail-Data header (or a GetMetadata
// <MD> element): either "too-large" or <MD>…</MD>.
func ParseMailData(s string) (*OIMMailData, error) {
	s = strings.TrimSpace(s)
	if s == "too-large" {
		return &OIMMailData{TooLarge: true}, nil
	}
	var md mdXML
	if err := xml.Unmarshal([]byte(s), &md); err != nil {
		return nil, fmt.Errorf("msnp: bad Mail-Data: %w", err)
	}
	out := &OIMMailData{InboxTotal: md.E.I, InboxUnread: md.E.IU, OtherTotal: md.E.O, OtherUnread: md.E.OU}
	for _, m := range md.M {
		meta := OIMMeta{
			ID:         strings.TrimSpace(m.I),
			Sender:     strings.TrimSpace(m.E),
			SenderName: decodeMIMEWords(strings.TrimSpace(m.N)),
			Folder:     strings.TrimSpace(m.F),
		}
		if meta.ID == "" {
			return nil, errors.New("msnp: Mail-Data message without an id")
		}
		meta.Type, _ = strconv.Atoi(strings.TrimSpace(m.T))
		meta.ReadState, _ = strconv.Atoi(strings.TrimSpace(m.RS))
		meta.Size, _ = strconv.Atoi(strings.TrimSpace(m.SZ))
		meta.Received, _ = time.Parse(time.RFC3339, strings.TrimSpace(m.RT))
		out.Messages = append(out.Messages, meta)
	}
	return out, nil
}

// decodeMIMEWords decodes RFC 2047 words; on failure the text is kept.
func decodeMIMEWords(s string) string {
	if s == "" {
		return s
	}
	d := mime.WordDecoder{}
	out, err := d.DecodeHeader(s)
	if err != nil {
		return s
	}
	return out
}

func encodeMIMEWord(s string) string {
	return "=?utf-8?B?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}

// --- rsi: fetch and delete ---

// OIMService talks to the rsi (receive) and OimWS (send) services.
type OIMService struct {
	RSIURL      string // e.g. https://m1.escargot.chat/rsi/rsi.asmx
	StoreURL    string // e.g. https://m1.escargot.chat/OimWS/oim.asmx
	RSITicket   string // "t=…&p=…"; Escargot accepts any live ticket
	StoreTicket string // messengersecure.live.com ticket on real MSN
	ProductID   string // "" means OIMDefaultProductID
	ProductKey  string // "" means OIMDefaultProductKey
	SOAP        SOAPClient

	mu      sync.Mutex
	lockKey string // cached after the first LockKeyChallenge
	runID   string
	seq     int
}

// NewOIMService returns an OIMService for a server with Escargot's paths
// under baseURL, taking tickets from an SSO token set (messengersecure for
// sending if present, else messengerclear).
func NewOIMService(baseURL string, tokens *SSOTokens, hc *http.Client) *OIMService {
	base := strings.TrimRight(baseURL, "/")
	s := &OIMService{RSIURL: base + "/rsi/rsi.asmx", StoreURL: base + "/OimWS/oim.asmx", SOAP: SOAPClient{HTTP: hc}}
	if t, ok := tokens.Get(SSOAddressMessengerClear); ok {
		s.RSITicket, s.StoreTicket = t.Ticket, t.Ticket
	}
	if t, ok := tokens.Get(SSOAddressMessengerSecure); ok {
		s.StoreTicket = t.Ticket
	}
	return s
}

type oimPassportCookie struct {
	XMLName xml.Name `xml:"http://www.hotmail.msn.com/ws/2004/09/oim/rsi PassportCookie"`
	T       string   `xml:"t"`
	P       string   `xml:"p"`
}

func (s *OIMService) rsiCall(ctx context.Context, method string, body, result any) error {
	tok := SSOToken{Ticket: s.RSITicket}
	hdr := oimPassportCookie{T: tok.T(), P: tok.P()}
	if err := s.SOAP.Call(ctx, s.RSIURL, oimRSIAction+method, []any{hdr}, body, result); err != nil {
		return fmt.Errorf("msnp: OIM %s: %w", method, err)
	}
	return nil
}

type oimGetMetadataRequest struct {
	XMLName xml.Name `xml:"http://www.hotmail.msn.com/ws/2004/09/oim/rsi GetMetadata"`
}

type oimGetMetadataResponse struct {
	MD struct {
		Inner string `xml:",innerxml"`
	} `xml:"MD"`
}

// GetMetadata fetches the full OIM list (after a "too-large" Mail-Data).
func (s *OIMService) GetMetadata(ctx context.Context) (*OIMMailData, error) {
	var resp oimGetMetadataResponse
	if err := s.rsiCall(ctx, "GetMetadata", oimGetMetadataRequest{}, &resp); err != nil {
		return nil, err
	}
	return ParseMailData("<MD>" + resp.MD.Inner + "</MD>")
}

type oimGetMessageRequest struct {
	XMLName        xml.Name `xml:"http://www.hotmail.msn.com/ws/2004/09/oim/rsi GetMessage"`
	MessageID      string   `xml:"messageId"`
	AlsoMarkAsRead bool     `xml:"alsoMarkAsRead"`
}

type oimGetMessageResponse struct {
	Result string `xml:"GetMessageResult"`
}

// OIMMessage is a fetched offline message.
type OIMMessage struct {
	ID       string
	From     string // passport
	FromName string // decoded friendly name
	Text     string
	RunID    string // X-OIM-Run-Id; order by Sequence within one RunID
	Sequence int    // X-OIM-Sequence-Num
	Date     time.Time
}

// GetMessage fetches one message; markRead asks the server to flag it.
func (s *OIMService) GetMessage(ctx context.Context, id string, markRead bool) (*OIMMessage, error) {
	var resp oimGetMessageResponse
	if err := s.rsiCall(ctx, "GetMessage", oimGetMessageRequest{MessageID: id, AlsoMarkAsRead: markRead}, &resp); err != nil {
		return nil, err
	}
	m, err := ParseOIMMessage(resp.Result)
	if err != nil {
		return nil, err
	}
	m.ID = id
	return m, nil
}

type oimDeleteMessagesRequest struct {
	XMLName    xml.Name `xml:"http://www.hotmail.msn.com/ws/2004/09/oim/rsi DeleteMessages"`
	MessageIDs []string `xml:"messageIds>messageId"`
}

// DeleteMessages deletes fetched messages from the server.
func (s *OIMService) DeleteMessages(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return errors.New("msnp: OIM DeleteMessages: no ids")
	}
	return s.rsiCall(ctx, "DeleteMessages", oimDeleteMessagesRequest{MessageIDs: ids}, nil)
}

// ParseOIMMessage parses the RFC 822 text GetMessage returns.
func ParseOIMMessage(raw string) (*OIMMessage, error) {
	raw = strings.TrimLeft(raw, "\r\n \t")
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("msnp: bad OIM message: %w", err)
	}
	out := &OIMMessage{RunID: strings.TrimSpace(msg.Header.Get("X-OIM-Run-Id"))}
	if from := msg.Header.Get("From"); from != "" {
		if addr, err := (&mail.AddressParser{WordDecoder: &mime.WordDecoder{}}).Parse(from); err == nil {
			out.From, out.FromName = addr.Address, addr.Name
		} else {
			out.From = strings.Trim(strings.TrimSpace(from), "<>")
		}
	}
	if seq := strings.TrimSpace(msg.Header.Get("X-OIM-Sequence-Num")); seq != "" {
		n, err := strconv.Atoi(seq)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("msnp: bad OIM sequence number %q", seq)
		}
		out.Sequence = n
	}
	if d, err := msg.Header.Date(); err == nil {
		out.Date = d
	}
	body, err := io.ReadAll(io.LimitReader(msg.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("msnp: reading OIM body: %w", err)
	}
	if strings.EqualFold(strings.TrimSpace(msg.Header.Get("Content-Transfer-Encoding")), "base64") {
		clean := strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, string(body))
		dec, err := base64.StdEncoding.DecodeString(clean)
		if err != nil {
			return nil, fmt.Errorf("msnp: bad OIM base64 body: %w", err)
		}
		body = dec
	}
	out.Text = strings.ToValidUTF8(string(body), "\uFFFD")
	return out, nil
}

// --- OimWS: send ---

type oimFromHeader struct {
	XMLName      xml.Name `xml:"http://messenger.msn.com/ws/2004/09/oim/ From"`
	MemberName   string   `xml:"memberName,attr"`
	FriendlyName string   `xml:"friendlyName,attr"`
	Lang         string   `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Proxy        string   `xml:"proxy,attr"`
	MSNPVer      string   `xml:"msnpVer,attr"`
	BuildVer     string   `xml:"buildVer,attr"`
}

type oimToHeader struct {
	XMLName    xml.Name `xml:"http://messenger.msn.com/ws/2004/09/oim/ To"`
	MemberName string   `xml:"memberName,attr"`
}

type oimTicketHeader struct {
	XMLName  xml.Name `xml:"http://messenger.msn.com/ws/2004/09/oim/ Ticket"`
	Passport string   `xml:"passport,attr"`
	AppID    string   `xml:"appid,attr"`
	LockKey  string   `xml:"lockkey,attr"`
}

type oimSequenceHeader struct {
	XMLName       xml.Name `xml:"http://schemas.xmlsoap.org/ws/2003/03/rm Sequence"`
	Identifier    string   `xml:"http://schemas.xmlsoap.org/ws/2002/07/utility Identifier"`
	MessageNumber int      `xml:"MessageNumber"`
}

type oimMessageType struct {
	XMLName xml.Name `xml:"http://messenger.msn.com/ws/2004/09/oim/ MessageType"`
	Value   string   `xml:",chardata"`
}

type oimContent struct {
	XMLName xml.Name `xml:"http://messenger.msn.com/ws/2004/09/oim/ Content"`
	Value   string   `xml:",chardata"`
}

// OIMSendRequest is one offline message to store.
type OIMSendRequest struct {
	From         string // your passport
	FriendlyName string
	To           string
	Text         string
	MSNPVersion  string // e.g. "MSNP15" (default)
	BuildVersion string // e.g. "8.5.1288" (default)
}

// Send stores an offline message for req.To. The first attempt of a
// session goes with an empty lockkey; the server answers with an
// AuthenticationFailed fault carrying a LockKeyChallenge, the lockkey is
// computed from it (MSNP11 challenge algorithm with ProductID/Key) and the
// message is sent once more. The lockkey is kept for later sends.
func (s *OIMService) Send(ctx context.Context, req OIMSendRequest) error {
	if req.From == "" || req.To == "" {
		return errors.New("msnp: OIM send: empty sender or recipient")
	}
	s.mu.Lock()
	if s.runID == "" {
		g, err := NewMachineGUID()
		if err != nil {
			s.mu.Unlock()
			return err
		}
		s.runID = g
	}
	s.seq++
	runID, seq, lockKey := s.runID, s.seq, s.lockKey
	s.mu.Unlock()

	err := s.store(ctx, req, runID, seq, lockKey)
	var f *SOAPFault
	if !errors.As(err, &f) || !strings.HasSuffix(f.Code, "AuthenticationFailed") {
		return err
	}
	challenge := f.DetailValue("LockKeyChallenge")
	if challenge == "" {
		return err // e.g. RequiredAuthPolicy: the ticket needs renewing
	}
	pid, pkey := s.productPair()
	lockKey = oimLockKey(challenge, pid, pkey)
	s.mu.Lock()
	s.lockKey = lockKey
	s.mu.Unlock()
	return s.store(ctx, req, runID, seq, lockKey)
}

func (s *OIMService) productPair() (string, string) {
	pid, pkey := s.ProductID, s.ProductKey
	if pid == "" {
		pid, pkey = OIMDefaultProductID, OIMDefaultProductKey
	}
	return pid, pkey
}

func (s *OIMService) store(ctx context.Context, req OIMSendRequest, runID string, seq int, lockKey string) error {
	msnpVer, buildVer := req.MSNPVersion, req.BuildVersion
	if msnpVer == "" {
		msnpVer = "MSNP15"
	}
	if buildVer == "" {
		buildVer = "8.5.1288"
	}
	pid, _ := s.productPair()
	name := req.FriendlyName
	if name == "" {
		name = req.From
	}
	headers := []any{
		oimFromHeader{MemberName: req.From, FriendlyName: encodeMIMEWord(name), Lang: "en-US", Proxy: "MSNMSGR", MSNPVer: msnpVer, BuildVer: buildVer},
		oimToHeader{MemberName: req.To},
		oimTicketHeader{Passport: s.StoreTicket, AppID: pid, LockKey: lockKey},
		oimSequenceHeader{Identifier: "http://messenger.msn.com", MessageNumber: seq},
	}
	body := []any{oimMessageType{Value: "text"}, oimContent{Value: BuildOIMContent(req.Text, runID, seq)}}
	if err := s.SOAP.Call(ctx, s.StoreURL, oimStoreAction, headers, body, nil); err != nil {
		return fmt.Errorf("msnp: OIM Store2: %w", err)
	}
	return nil
}

// BuildOIMContent builds the MIME text inside Store2's <Content>. Lines end
// in "\n": XML parsers turn CRLF into LF anyway, and encoding/xml would
// otherwise send the CR as &#xD;, which Escargot's header/body split
// (looking for "\n\n") does not expect.
func BuildOIMContent(text, runID string, seq int) string {
	var b strings.Builder
	b.WriteString("MIME-Version: 1.0\n")
	b.WriteString("Content-Type: text/plain; charset=UTF-8\n")
	b.WriteString("Content-Transfer-Encoding: base64\n")
	b.WriteString("X-OIM-Message-Type: OfflineMessage\n")
	b.WriteString("X-OIM-Run-Id: " + runID + "\n")
	b.WriteString("X-OIM-Sequence-Num: " + strconv.Itoa(seq) + "\n\n")
	enc := base64.StdEncoding.EncodeToString([]byte(text))
	for len(enc) > oimMaxBase64Line {
		b.WriteString(enc[:oimMaxBase64Line])
		b.WriteByte('\n')
		enc = enc[oimMaxBase64Line:]
	}
	b.WriteString(enc)
	return b.String()
}

// oimLockKey is the MSNP11 challenge response (FACTS.md §3), which is also
// the OIM lockkey.
func oimLockKey(challenge, productID, productKey string) string {
	return challenge11(challenge, product{id: productID, key: productKey})
}
