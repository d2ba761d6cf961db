package msnp

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOIMLockKeyVectors(t *testing.T) {
	// FACTS.md §3 test vectors for the MSNP11 challenge algorithm.
	for _, v := range []struct{ chl, id, key, want string }{
		{"22210219642164014968", "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL", "85ecb0db8f32113df79ce0892b9a102c"},
		{"13038318816579321232", "PROD0118R6%2WYOS", "YIXPX@5I2P0UT*LK", "c1f8fb8a2625af1774b0e003451691e5"},
		{"1663122458434562624782678054", "PROD0120PW!CCV9@", "C1BX{V4W}Q3*10SM", "f379e91748f9722568da550eccefec47"},
	} {
		if got := oimLockKey(v.chl, v.id, v.key); got != v.want {
			t.Errorf("oimLockKey(%s) = %s, want %s", v.chl, got, v.want)
		}
	}
}

func TestParseMailData(t *testing.T) {
	// The login-time value from the transcripts: no messages.
	md, err := ParseMailData(`<MD><E><I>0</I><IU>0</IU><O>0</O><OU>0</OU></E><Q><QTM>409600</QTM><QNM>204800</QNM></Q></MD>`)
	if err != nil || md.TooLarge || len(md.Messages) != 0 {
		t.Fatalf("empty: %+v %v", md, err)
	}
	// Shaped like Escargot's misc.gen_mail_data for one OIM.
	md, err = ParseMailData(`<MD><E><I>1</I><IU>1</IU><O>0</O><OU>0</OU></E><Q><QTM>409600</QTM><QNM>204800</QNM></Q><M><T>11</T><S>6</S><RT>2026-01-01T10:00:00.000Z</RT><RS>0</RS><SZ>1024</SZ><E>bob@example.com</E><I>7B4BB5F8-6DCE-4C3F-9AA4-D2DA1B2F7A4D</I><F>00000000-0000-0000-0000-000000000009</F><N>=?utf-8?B?Qm9iIOKckw==?=</N><SU> </SU></M></MD>`)
	if err != nil {
		t.Fatal(err)
	}
	if md.InboxTotal != 1 || len(md.Messages) != 1 {
		t.Fatalf("%+v", md)
	}
	m := md.Messages[0]
	if m.ID != "7B4BB5F8-6DCE-4C3F-9AA4-D2DA1B2F7A4D" || m.Sender != "bob@example.com" || m.SenderName != "Bob ✓" ||
		m.Size != 1024 || m.Type != 11 || !m.Received.Equal(time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("%+v", m)
	}
	md, err = ParseMailData("too-large")
	if err != nil || !md.TooLarge {
		t.Errorf("too-large: %+v %v", md, err)
	}
	for _, bad := range []string{"", "<MD>", "<MD><M><E>x@y</E></M></MD>", "junk"} {
		if _, err := ParseMailData(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseMailData(f *testing.F) {
	f.Add(`<MD><E><I>0</I><IU>0</IU><O>0</O><OU>0</OU></E><Q><QTM>409600</QTM><QNM>204800</QNM></Q></MD>`)
	f.Add(`<MD><M><T>11</T><S>6</S><RT>2026-01-01T10:00:00.000Z</RT><RS>0</RS><SZ>1</SZ><E>a@b</E><I>x</I><F>f</F><N>=?utf-8?B?QQ==?=</N></M></MD>`)
	f.Add("too-large")
	f.Fuzz(func(t *testing.T, s string) {
		md, err := ParseMailData(s)
		if err != nil {
			return
		}
		for _, m := range md.Messages {
			if m.ID == "" {
				t.Fatal("message without id accepted")
			}
		}
	})
}

// sampleOIM is shaped like Escargot's misc.format_oim output.
const sampleOIM = "X-Message-Info: cwRBnLifKNE8dVZlNj6AiX8142B67OTjG9BFMLMyzuui1H4Xx7m3NQ==\r\n" +
	"Received: from OIM-SSI02.phx.gbl ([65.54.237.206]) by oim1-f1.hotmail.com with Microsoft SMTPSVC(6.0.3790.211);\r\n" +
	"\t Wed, 1 Jan 2026 10:00:00 -0000\r\n" +
	"From: =?utf-8?B?Qm9iIOKckw==?= <bob@example.com>\r\n" +
	"To: alice@example.com\r\n" +
	"Subject: \r\n" +
	"X-OIM-originatingSource: 127.0.0.1\r\n" +
	"X-OIMProxy: MSNMSGR\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"X-OIM-Message-Type: OfflineMessage\r\n" +
	"X-OIM-Run-Id: {3A3BE82D-3E6A-4C1F-9E6B-6BA4A53D4E11}\r\n" +
	"X-OIM-Sequence-Num: 2\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Message-ID: <7B4BB5F8-6DCE-4C3F-9AA4-D2DA1B2F7A4D@oim1-f1.hotmail.com>\r\n" +
	"Date: Wed, 1 Jan 2026 10:00:00 -0000\r\n" +
	"Return-Path: ndr@oim.messenger.msn.com\r\n" +
	"\r\n" +
	"SGVsbG8gQWxpY2UsIHlvdSB3ZXJlIG9mZmxpbmUg4pi6\r\n"

func TestParseOIMMessage(t *testing.T) {
	m, err := ParseOIMMessage(sampleOIM)
	if err != nil {
		t.Fatal(err)
	}
	if m.From != "bob@example.com" || m.FromName != "Bob ✓" || m.Text != "Hello Alice, you were offline ☺" ||
		m.RunID != "{3A3BE82D-3E6A-4C1F-9E6B-6BA4A53D4E11}" || m.Sequence != 2 || m.Date.Year() != 2026 {
		t.Errorf("%+v", m)
	}
	if _, err := ParseOIMMessage("From: a@b\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!"); err == nil {
		t.Error("bad base64 accepted")
	}
	if _, err := ParseOIMMessage("From: a@b\r\nX-OIM-Sequence-Num: x\r\n\r\nhi"); err == nil {
		t.Error("bad sequence accepted")
	}
}

func TestOIMReceive(t *testing.T) {
	tokens := &SSOTokens{Tokens: map[string]SSOToken{
		SSOAddressMessengerClear: {Address: SSOAddressMessengerClear, Ticket: "t=54488f5ab27c6513a778Y6+&p=pp"},
	}}
	var deleted []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := readAll(t, r)
		var h struct {
			Cookie oimPassportCookie `xml:"http://www.hotmail.msn.com/ws/2004/09/oim/rsi PassportCookie"`
		}
		decodeTestRequestBytes(t, raw, &h, nil)
		if h.Cookie.T != "54488f5ab27c6513a778Y6+" || h.Cookie.P != "pp" {
			t.Errorf("PassportCookie %+v", h.Cookie)
		}
		if r.URL.Path != "/rsi/rsi.asmx" {
			t.Errorf("path %s", r.URL.Path)
		}
		switch r.Header.Get("SOAPAction") {
		case "http://www.hotmail.msn.com/ws/2004/09/oim/rsi/GetMetadata":
			soapReply(w, 200, `<GetMetadataResponse xmlns="http://www.hotmail.msn.com/ws/2004/09/oim/rsi"><MD><M><T>11</T><S>6</S><RT>2026-01-01T10:00:00Z</RT><RS>0</RS><SZ>5</SZ><E>bob@example.com</E><I>id-1</I><F>.!!OIM</F><N>=?utf-8?B?Qm9i?=</N></M></MD></GetMetadataResponse>`)
		case "http://www.hotmail.msn.com/ws/2004/09/oim/rsi/GetMessage":
			var req oimGetMessageRequest
			decodeTestRequestBytes(t, raw, nil, &req)
			if req.MessageID != "id-1" || req.AlsoMarkAsRead {
				t.Errorf("GetMessage %+v", req)
			}
			soapReply(w, 200, `<GetMessageResponse xmlns="http://www.hotmail.msn.com/ws/2004/09/oim/rsi"><GetMessageResult>`+xmlEscapeString(sampleOIM)+`</GetMessageResult></GetMessageResponse>`)
		case "http://www.hotmail.msn.com/ws/2004/09/oim/rsi/DeleteMessages":
			var req oimDeleteMessagesRequest
			decodeTestRequestBytes(t, raw, nil, &req)
			deleted = req.MessageIDs
			soapReply(w, 200, `<DeleteMessagesResponse xmlns="http://www.hotmail.msn.com/ws/2004/09/oim/rsi"/>`)
		default:
			t.Errorf("SOAPAction %q", r.Header.Get("SOAPAction"))
		}
	}))
	defer srv.Close()
	s := NewOIMService(srv.URL, tokens, srv.Client())
	ctx := context.Background()
	md, err := s.GetMetadata(ctx)
	if err != nil || len(md.Messages) != 1 || md.Messages[0].SenderName != "Bob" {
		t.Fatalf("GetMetadata %+v %v", md, err)
	}
	m, err := s.GetMessage(ctx, "id-1", false)
	if err != nil || m.ID != "id-1" || m.Text != "Hello Alice, you were offline ☺" {
		t.Fatalf("GetMessage %+v %v", m, err)
	}
	if err := s.DeleteMessages(ctx, "id-1", "id-2"); err != nil || strings.Join(deleted, ",") != "id-1,id-2" {
		t.Fatalf("DeleteMessages %v %v", deleted, err)
	}
	if err := s.DeleteMessages(ctx); err == nil {
		t.Error("no ids accepted")
	}
}

// oimStoreHeaders decodes Store2's header blocks.
type oimStoreHeaders struct {
	From     oimFromHeader     `xml:"http://messenger.msn.com/ws/2004/09/oim/ From"`
	To       oimToHeader       `xml:"http://messenger.msn.com/ws/2004/09/oim/ To"`
	Ticket   oimTicketHeader   `xml:"http://messenger.msn.com/ws/2004/09/oim/ Ticket"`
	Sequence oimSequenceHeader `xml:"http://schemas.xmlsoap.org/ws/2003/03/rm Sequence"`
}

type oimStoreBody struct {
	MessageType string `xml:"http://messenger.msn.com/ws/2004/09/oim/ MessageType"`
	Content     string `xml:"http://messenger.msn.com/ws/2004/09/oim/ Content"`
}

func TestOIMSendLockKeyRetry(t *testing.T) {
	const ticket = "t=54488f5ab27c6513a778Y6+&p="
	var mu sync.Mutex
	var attempts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("SOAPAction") != "http://messenger.live.com/ws/2006/09/oim/Store2" || r.URL.Path != "/OimWS/oim.asmx" {
			t.Errorf("SOAPAction %q path %s", r.Header.Get("SOAPAction"), r.URL.Path)
		}
		raw := readAll(t, r)
		var h oimStoreHeaders
		decodeTestRequestBytes(t, raw, &h, nil)
		// The body has two elements; decode them through a wrapper.
		var env testSOAPRequest
		var b oimStoreBody
		if err := xml.Unmarshal([]byte(raw), &env); err != nil {
			t.Fatal(err)
		}
		if err := xml.Unmarshal(append(append([]byte("<b>"), env.Body.Inner...), "</b>"...), &b); err != nil {
			t.Errorf("body: %v", err)
		}
		if h.From.MemberName != "alice@example.com" || h.From.FriendlyName != "=?utf-8?B?QWxpY2UgJiBjbw==?=" || h.From.Lang != "en-US" ||
			h.To.MemberName != "bob@example.com" || h.Ticket.Passport != ticket || h.Ticket.AppID != OIMDefaultProductID {
			t.Errorf("headers %+v", h)
		}
		if b.MessageType != "text" {
			t.Errorf("MessageType %q", b.MessageType)
		}
		content := b.Content
		if !strings.Contains(content, "X-OIM-Sequence-Num: "+strconv.Itoa(h.Sequence.MessageNumber)+"\n") ||
			!strings.Contains(content, "X-OIM-Message-Type: OfflineMessage\n") || !strings.Contains(content, "\n\n") {
			t.Errorf("content %q (seq %d)", content, h.Sequence.MessageNumber)
		}
		mu.Lock()
		attempts = append(attempts, h.Ticket.LockKey)
		mu.Unlock()
		if h.Ticket.LockKey == "" {
			// Escargot's tmpl/oim/Fault.authfailed.xml, shortened.
			soapReply(w, 500, `<soap:Fault><faultcode xmlns:q0="http://messenger.msn.com/ws/2004/09/oim/">q0:AuthenticationFailed</faultcode><faultstring>Exception of type 'System.Web.Services.Protocols.SoapException' was thrown.</faultstring><faultactor>https://ows.messenger.msn.com/OimWS/oim.asmx</faultactor><detail><TweenerChallenge xmlns="http://messenger.msn.com/ws/2004/09/oim/">ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1</TweenerChallenge><LockKeyChallenge xmlns="http://messenger.msn.com/ws/2004/09/oim/">1850937852</LockKeyChallenge></detail></soap:Fault>`)
			return
		}
		soapReply(w, 200, `<StoreResponse xmlns="http://messenger.msn.com/ws/2004/09/oim/"><PointsConsumed>0</PointsConsumed></StoreResponse>`)
	}))
	defer srv.Close()
	s := NewOIMService(srv.URL, &SSOTokens{Tokens: map[string]SSOToken{SSOAddressMessengerClear: {Ticket: ticket}}}, srv.Client())
	req := OIMSendRequest{From: "alice@example.com", FriendlyName: "Alice & co", To: "bob@example.com", Text: strings.Repeat("long message ✓ ", 20)}
	if err := s.Send(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	want := oimLockKey("1850937852", OIMDefaultProductID, OIMDefaultProductKey)
	if len(attempts) != 3 || attempts[0] != "" || attempts[1] != want || attempts[2] != want {
		t.Fatalf("lockkeys sent: %q, want [\"\" %s %s]", attempts, want, want)
	}
}

func TestOIMSendFaultWithoutChallenge(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		soapReply(w, 500, `<soap:Fault><faultcode>q0:AuthenticationFailed</faultcode><faultstring>x</faultstring><detail><RequiredAuthPolicy>MBI_SSL</RequiredAuthPolicy></detail></soap:Fault>`)
	}))
	defer srv.Close()
	s := &OIMService{StoreURL: srv.URL, SOAP: SOAPClient{HTTP: srv.Client()}}
	err := s.Send(context.Background(), OIMSendRequest{From: "a@b", To: "c@d", Text: "x"})
	var f *SOAPFault
	if !errors.As(err, &f) || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

func TestBuildOIMContent(t *testing.T) {
	text := strings.Repeat("ä", 200)
	c := BuildOIMContent(text, "{3A3BE82D-3E6A-4C1F-9E6B-6BA4A53D4E11}", 7)
	head, body, ok := strings.Cut(c, "\n\n")
	if !ok || !strings.Contains(head, "X-OIM-Run-Id: {3A3BE82D-3E6A-4C1F-9E6B-6BA4A53D4E11}") || !strings.Contains(head, "X-OIM-Sequence-Num: 7") {
		t.Fatalf("head %q", head)
	}
	lines := strings.Split(body, "\n")
	for _, l := range lines {
		if len(l) > 77 {
			t.Fatalf("line of %d chars", len(l))
		}
	}
	dec, err := base64.StdEncoding.DecodeString(strings.Join(lines, ""))
	if err != nil || string(dec) != text {
		t.Fatalf("body does not decode back: %v", err)
	}
}
