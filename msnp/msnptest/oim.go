package msnptest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// Offline messages (FACTS.md §7.6): OimWS Store2 (with Escargot's
// lockkey challenge), the rsi service to fetch and delete them, Mail-Data
// in the login MSG and a notification MSG for one stored while the
// recipient is online, and MSNP18's UUM to an offline contact.

// oimTooMany is where Escargot sends "too-large" instead of the list.
const oimTooMany = 25

// oimLockKeyChallenge is Escargot's fixed challenge.
const oimLockKeyChallenge = "1850937852"

type storedOIM struct {
	id       string
	from     string
	fromName string
	text     string
	runID    string
	seq      int
	received time.Time
}

// WaitOIMCount waits until n offline messages wait for passport.
func (s *Server) WaitOIMCount(ctx context.Context, passport string, n int) error {
	return s.waitFor(ctx, func() bool { return len(s.oims[key(passport)]) == n })
}

// OIMCount returns how many offline messages wait for passport.
func (s *Server) OIMCount(passport string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.oims[key(passport)])
}

// StoreOIM stores an offline message for to, as if from had sent it
// (both accounts must exist), and notifies to's sessions.
func (s *Server) StoreOIM(from, to, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.mustAccount(from)
	s.storeOIM(a, s.mustAccount(to), a.name, text, "{"+strings.ToUpper(newGUID())+"}", 1)
}

// storeOIM keeps one message. Called with s.mu held.
func (s *Server) storeOIM(from, to *account, fromName, text, runID string, seq int) {
	if s.oims == nil {
		s.oims = make(map[string][]*storedOIM)
	}
	m := &storedOIM{id: strings.ToUpper(newGUID()), from: from.email, fromName: fromName, text: text,
		runID: runID, seq: seq, received: time.Now().UTC()}
	k := key(to.email)
	s.oims[k] = append(s.oims[k], m)
	s.notifyChanged()
	for _, c := range s.endpoints(k) {
		if c.ilnSent && c.dialect >= 11 {
			body := "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsoimnotification; charset=UTF-8\r\n\r\nMail-Data: " + mailData([]*storedOIM{m}) + "\r\n"
			c.sendPayload([]byte(body), "MSG", "Hotmail", "Hotmail")
		}
	}
}

// initialMail is the MSG after the first CHG, listing the waiting OIMs.
func (s *Server) initialMail(a *account) []byte {
	return []byte("MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinitialmdatanotification; charset=UTF-8\r\n\r\nMail-Data: " + mailData(s.oims[key(a.email)]) + "\r\n")
}

func mailData(ms []*storedOIM) string {
	if len(ms) > oimTooMany {
		return "too-large"
	}
	return "<MD><E><I>0</I><IU>0</IU><O>0</O><OU>0</OU></E><Q><QTM>409600</QTM><QNM>204800</QNM></Q>" + mdEntries(ms) + "</MD>"
}

func mdEntries(ms []*storedOIM) string {
	var sb strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&sb, "<M><T>11</T><S>6</S><RT>%s</RT><RS>0</RS><SZ>%d</SZ><E>%s</E><I>%s</I><F>00000000-0000-0000-0000-000000000009</F><N>=?utf-8?B?%s?=</N></M>",
			m.received.Format("2006-01-02T15:04:05.000Z"), len(m.text), xmlEscape(m.from), m.id, base64.StdEncoding.EncodeToString([]byte(m.fromName)))
	}
	return sb.String()
}

// formatOIM is GetMessage's RFC 822 text.
func formatOIM(m *storedOIM) string {
	return fmt.Sprintf("X-Message-Info: cwRBnLifKNE8dVZlNj6AiX8142B67OTjG9BFMLMyzuui1H4Xx7m3NQ==\r\n"+
		"Received: from OIM-SSI02.phx.gbl ([65.54.237.206]) by OIM-SSI02.phx.gbl with Microsoft SMTPSVC(6.0.3790.1830);\r\n"+
		"From: =?utf-8?B?%s?= <%s>\r\nTo: recipient\r\nSubject: \r\nDate: %s\r\nX-OIM-Message-Type: OfflineMessage\r\n"+
		"X-OIM-Run-Id: %s\r\nX-OIM-Sequence-Num: %d\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n%s",
		base64.StdEncoding.EncodeToString([]byte(m.fromName)), m.from, m.received.Format(time.RFC1123Z),
		m.runID, m.seq, base64.StdEncoding.EncodeToString([]byte(m.text)))
}

// sessionByTicket finds the live NS session a ticket ("t=<20 hex>…", or
// the bare value) belongs to. Called with s.mu held.
func (s *Server) sessionByTicket(ticket string) *nsConn {
	tok := strings.TrimPrefix(strings.TrimSpace(ticket), "t=")
	if len(tok) < 20 {
		return nil
	}
	tok = tok[:20]
	for c := range s.conns {
		if !c.dead && c.acct != nil && c.tok == tok {
			return c
		}
	}
	return nil
}

type oimEnvelope struct {
	Header struct {
		From struct {
			MemberName   string `xml:"memberName,attr"`
			FriendlyName string `xml:"friendlyName,attr"`
		} `xml:"From"`
		To struct {
			MemberName string `xml:"memberName,attr"`
		} `xml:"To"`
		Ticket struct {
			Passport string `xml:"passport,attr"`
			LockKey  string `xml:"lockkey,attr"`
		} `xml:"Ticket"`
		MessageNumber string `xml:"Sequence>MessageNumber"`
		CookieT       string `xml:"PassportCookie>t"`
	} `xml:"Header"`
	Body struct {
		Content    string    `xml:"Content"`
		Metadata   *struct{} `xml:"GetMetadata"`
		GetMessage *struct {
			MessageID string `xml:"messageId"`
		} `xml:"GetMessage"`
		Delete *struct {
			IDs []string `xml:"messageIds>messageId"`
		} `xml:"DeleteMessages"`
	} `xml:"Body"`
}

func readOIMEnvelope(w http.ResponseWriter, r *http.Request) (*oimEnvelope, bool) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return nil, false
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var env oimEnvelope
	if err == nil {
		err = xml.Unmarshal(raw, &env)
	}
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return nil, false
	}
	return &env, true
}

func soapReply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>`+body+`</soap:Body></soap:Envelope>`)
}

func oimFault(w http.ResponseWriter, code string, detail string) {
	soapReply(w, http.StatusInternalServerError, `<soap:Fault><faultcode xmlns:q0="http://messenger.msn.com/ws/2004/09/oim/">q0:`+code+`</faultcode><faultstring>Exception of type 'System.Web.Services.Protocols.SoapException' was thrown.</faultstring><faultactor>https://ows.messenger.msn.com/OimWS/oim.asmx</faultactor><detail>`+detail+`</detail></soap:Fault>`)
}

// handleOIMStore is OimWS Store2.
func (s *Server) handleOIMStore(w http.ResponseWriter, r *http.Request) {
	env, ok := readOIMEnvelope(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessionByTicket(env.Header.Ticket.Passport)
	if sess == nil || key(sess.acct.email) != key(env.Header.From.MemberName) {
		oimFault(w, "AuthenticationFailed", `<RequiredAuthPolicy xmlns="http://messenger.msn.com/ws/2004/09/oim/">MBI_SSL</RequiredAuthPolicy>`)
		return
	}
	if env.Header.Ticket.LockKey == "" {
		// Escargot then accepts any non-empty lockkey.
		oimFault(w, "AuthenticationFailed", `<TweenerChallenge xmlns="http://messenger.msn.com/ws/2004/09/oim/">ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1</TweenerChallenge><LockKeyChallenge xmlns="http://messenger.msn.com/ws/2004/09/oim/">`+oimLockKeyChallenge+`</LockKeyChallenge>`)
		return
	}
	to := s.accounts[key(env.Header.To.MemberName)]
	if to == nil {
		oimFault(w, "InvalidReceiver", "")
		return
	}
	if ct := to.contacts[key(sess.acct.email)]; ct != nil && ct.lists&listBL != 0 {
		oimFault(w, "SenderThrottleLimitExceeded", "")
		return
	}
	hdr, text, err := parseOIMContent(env.Body.Content)
	seq, _ := strconv.Atoi(hdr.Get("X-Oim-Sequence-Num"))
	if err != nil || hdr.Get("X-Oim-Sequence-Num") != strings.TrimSpace(env.Header.MessageNumber) ||
		!machineGUIDRE.MatchString(hdr.Get("X-Oim-Run-Id")) || hdr.Get("X-Oim-Message-Type") != "OfflineMessage" {
		oimFault(w, "InvalidContent", "")
		return
	}
	name := env.Header.From.FriendlyName
	if d, err := new(mime.WordDecoder).DecodeHeader(name); err == nil {
		name = d
	}
	s.storeOIM(sess.acct, to, name, text, hdr.Get("X-Oim-Run-Id"), seq)
	soapReply(w, http.StatusOK, `<StoreResponse xmlns="http://messenger.msn.com/ws/2004/09/oim/"><PointsConsumed>0</PointsConsumed></StoreResponse>`)
}

// parseOIMContent reads Store2's MIME content: headers, a blank line,
// base64 text in lines of at most 77 characters.
func parseOIMContent(content string) (textproto.MIMEHeader, string, error) {
	content = strings.ReplaceAll(content, "\r\n", "\n")
	head, body, ok := strings.Cut(content, "\n\n")
	if !ok {
		return nil, "", fmt.Errorf("no body")
	}
	hdr := textproto.MIMEHeader{}
	for _, l := range strings.Split(head, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			hdr.Set(textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k)), strings.TrimSpace(v))
		}
	}
	var b64 strings.Builder
	for _, l := range strings.Split(body, "\n") {
		if len(l) > 77 {
			return nil, "", fmt.Errorf("long base64 line")
		}
		b64.WriteString(strings.TrimSpace(l))
	}
	text, err := base64.StdEncoding.DecodeString(b64.String())
	if err != nil {
		return nil, "", err
	}
	return hdr, string(text), nil
}

// handleRSI is the rsi service: GetMetadata, GetMessage, DeleteMessages.
func (s *Server) handleRSI(w http.ResponseWriter, r *http.Request) {
	env, ok := readOIMEnvelope(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessionByTicket(env.Header.CookieT)
	if sess == nil {
		soapReply(w, http.StatusInternalServerError, `<soap:Fault><faultcode>soap:Client</faultcode><faultstring>AuthenticationFailed</faultstring></soap:Fault>`)
		return
	}
	k := key(sess.acct.email)
	const ns = `xmlns="http://www.hotmail.msn.com/ws/2004/09/oim/rsi"`
	switch {
	case env.Body.Metadata != nil:
		soapReply(w, http.StatusOK, `<GetMetadataResponse `+ns+`><MD><E><I>0</I><IU>0</IU><O>0</O><OU>0</OU></E><Q><QTM>409600</QTM><QNM>204800</QNM></Q>`+mdEntries(s.oims[k])+`</MD></GetMetadataResponse>`)
	case env.Body.GetMessage != nil:
		id := strings.TrimSpace(env.Body.GetMessage.MessageID)
		for _, m := range s.oims[k] {
			if m.id == id {
				var buf bytes.Buffer
				xml.EscapeText(&buf, []byte(formatOIM(m)))
				soapReply(w, http.StatusOK, `<GetMessageResponse `+ns+`><GetMessageResult>`+buf.String()+`</GetMessageResult></GetMessageResponse>`)
				return
			}
		}
		soapReply(w, http.StatusInternalServerError, `<soap:Fault><faultcode>q0:MessageDoesNotExist</faultcode><faultstring>no such message</faultstring></soap:Fault>`)
	case env.Body.Delete != nil:
		del := map[string]bool{}
		for _, id := range env.Body.Delete.IDs {
			del[strings.TrimSpace(id)] = true
		}
		kept := s.oims[k][:0]
		for _, m := range s.oims[k] {
			if !del[m.id] {
				kept = append(kept, m)
			}
		}
		s.oims[k] = kept
		s.notifyChanged()
		soapReply(w, http.StatusOK, `<DeleteMessagesResponse `+ns+`/>`)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// uum is MSNP18's "UUM trid email network type len": a text message to an
// offline contact is stored as an OIM. Escargot sends no reply.
func (c *nsConn) uum(args []string, payload []byte) {
	if c.dialect < 18 || len(args) < 1 {
		return
	}
	to := c.s.accounts[key(strings.TrimPrefix(args[0], "1:"))]
	if to == nil || c.s.sessions[key(to.email)] != nil {
		return
	}
	head, body, ok := bytes.Cut(payload, []byte("\r\n\r\n"))
	if !ok {
		return
	}
	hdr := textproto.MIMEHeader{}
	for _, l := range strings.Split(string(head), "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			hdr.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	// Escargot stores only plain text meant for the client.
	if ct, _, _ := strings.Cut(hdr.Get("Content-Type"), ";"); ct != "text/plain" || hdr.Get("Dest-Agent") != "client" {
		return
	}
	c.s.storeOIM(c.acct, to, c.acct.name, string(body), "{"+strings.ToUpper(newGUID())+"}", 1)
}
