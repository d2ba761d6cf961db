package msnp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// testdata/sso_rst_response.xml is a real RST.srf reply from Escargot,
// copied from shared/msnp/transcripts/sso_rst_response.xml.

func TestParseSSOResponseEscargot(t *testing.T) {
	raw, err := os.ReadFile("testdata/sso_rst_response.xml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := ParseSSOResponse(raw)
	if err != nil {
		t.Fatal(err)
	}
	mc, ok := set.Get(SSOAddressMessengerClear)
	if !ok {
		t.Fatal("no messengerclear token")
	}
	if !strings.HasPrefix(mc.Ticket, "t=54488f5ab27c6513a778Y6+H31sT") || !strings.HasSuffix(mc.Ticket, "VAg==&p=") {
		t.Errorf("ticket not XML-decoded: %.40s…%s", mc.Ticket, mc.Ticket[len(mc.Ticket)-10:])
	}
	if mc.BinarySecret != "3dIsWztxza4u/l3N83rAI6eF/iUcb6b8" {
		t.Errorf("secret %q", mc.BinarySecret)
	}
	if !strings.HasPrefix(mc.T(), "54488f5ab27c6513a778") || mc.P() != "" {
		t.Errorf("T/P split wrong: %.20s / %q", mc.T(), mc.P())
	}
	want := time.Date(2026, 11, 25, 18, 45, 25, 0, time.UTC)
	if !mc.Expires.Equal(want) {
		t.Errorf("expires %v", mc.Expires)
	}
	ct, ok := set.Get(SSOAddressContacts)
	if !ok || ct.Ticket != mc.Ticket || ct.BinarySecret != "" {
		t.Errorf("contacts token %v ok=%v", ct, ok)
	}
	if _, ok := set.Get(SSOAddressPassport); ok {
		t.Error("Passport.NET/tb (encrypted data) taken as a compact ticket")
	}
	if s := set.String() + mc.String(); strings.Contains(s, "54488f") {
		t.Errorf("String leaks the ticket: %s", s)
	}
	if set.NeedsRenewal(want.Add(-2*time.Hour), time.Hour) {
		t.Error("renewal wanted 2h before expiry with 1h margin")
	}
	if !set.NeedsRenewal(want.Add(-30*time.Minute), time.Hour) {
		t.Error("no renewal 30m before expiry with 1h margin")
	}
	if got := set.RenewAt(time.Hour); !got.Equal(want.Add(-time.Hour)) {
		t.Errorf("RenewAt %v", got)
	}
}

const escargotRSTFault = `<?xml version="1.0" encoding="utf-8" ?><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault"><S:Header><psf:pp><psf:serverVersion>1</psf:serverVersion><psf:authstate>0x80048800</psf:authstate><psf:reqstatus>0x80048823</psf:reqstatus></psf:pp></S:Header><S:Body><S:Fault><faultcode>wsse:FailedAuthentication</faultcode><faultstring>Authentication Failure</faultstring></S:Fault></S:Body></S:Envelope>`

func TestRequestSSOTokens(t *testing.T) {
	sample, err := os.ReadFile("testdata/sso_rst_response.xml")
	if err != nil {
		t.Fatal(err)
	}
	const password = `p<&>"'ä`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body rstMultiple
		decodeTestRequest(t, r, nil, &body)
		if len(body.Tokens) != 5 {
			t.Errorf("%d tokens requested", len(body.Tokens))
		} else {
			if body.Tokens[1].AppliesTo.EndpointReference.Address != SSOAddressMessengerClear || body.Tokens[1].Policy == nil || body.Tokens[1].Policy.URI != "MBI_KEY_OLD" {
				t.Errorf("RST1 = %+v", body.Tokens[1])
			}
			if body.Tokens[0].Policy != nil || body.Tokens[2].Policy.URI != "MBI" || body.Tokens[4].AppliesTo.EndpointReference.Address != SSOAddressStorage {
				t.Errorf("tokens %+v", body.Tokens)
			}
		}
		switch r.URL.Query().Get("case") {
		case "ok":
			w.Write(sample)
		case "fault":
			w.Write([]byte(escargotRSTFault))
		case "fault403":
			// Older Escargot answered a bad password with 403 and RST.error.xml.
			w.WriteHeader(403)
			w.Write([]byte(escargotRSTFault))
		case "notoken":
			w.Write([]byte(`<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><wst:RequestSecurityTokenResponseCollection xmlns:wst="x"/></S:Body></S:Envelope>`))
		case "500":
			http.Error(w, "boom", 500)
		}
	}))
	defer srv.Close()
	req := SSORequest{URL: srv.URL + "/RST.srf?case=ok", Username: "alice@example.com", Password: password, Policy: "MBI_KEY_OLD", HTTP: srv.Client()}
	set, err := RequestSSOTokens(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if tok, _ := set.Get(SSOAddressMessengerClear); tok.BinarySecret == "" {
		t.Error("no secret")
	}

	for _, c := range []string{"fault", "fault403", "notoken"} {
		req.URL = srv.URL + "/RST.srf?case=" + c
		_, err := RequestSSOTokens(context.Background(), req)
		if !errors.Is(err, ErrAuthentication) {
			t.Errorf("%s: err = %v, want ErrAuthentication", c, err)
		}
		if err != nil && strings.Contains(err.Error(), password) {
			t.Errorf("%s: error leaks the password", c)
		}
	}
	var fe *SOAPFault
	req.URL = srv.URL + "/RST.srf?case=fault"
	if _, err := RequestSSOTokens(context.Background(), req); !errors.As(err, &fe) || fe.Code != "wsse:FailedAuthentication" {
		t.Errorf("fault not unwrapped: %v", err)
	}
	req.URL = srv.URL + "/RST.srf?case=500"
	_, err = RequestSSOTokens(context.Background(), req)
	var he *SOAPHTTPError
	if errors.Is(err, ErrAuthentication) || !errors.As(err, &he) {
		t.Errorf("500: err = %v", err)
	}
	srv.Close()
	_, err = RequestSSOTokens(context.Background(), req)
	if err == nil || errors.Is(err, ErrAuthentication) || errors.As(err, &he) {
		t.Errorf("network error: err = %v", err)
	}
}

func TestRequestSSOTokensRequestXML(t *testing.T) {
	const password = `p<&>"'ä`
	var got rstSecurity
	var info rstAuthInfo
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var hdr struct {
			AuthInfo rstAuthInfo `xml:"http://schemas.microsoft.com/Passport/SoapServices/PPCRL AuthInfo"`
			Security rstSecurity `xml:"http://schemas.xmlsoap.org/ws/2003/06/secext Security"`
		}
		var raw = readAll(t, r)
		if strings.Contains(raw, password) {
			t.Error("password not XML-escaped in the request")
		}
		decodeTestRequestBytes(t, raw, &hdr, nil)
		got, info = hdr.Security, hdr.AuthInfo
		w.Write([]byte(escargotRSTFault))
	}))
	defer srv.Close()
	_, err := RequestSSOTokens(context.Background(), SSORequest{URL: srv.URL, Username: "alice@example.com", Password: password})
	if !errors.Is(err, ErrAuthentication) {
		t.Fatalf("err = %v", err)
	}
	if got.UsernameToken.Username != "alice@example.com" || got.UsernameToken.Password != password {
		t.Errorf("credentials decoded as %q / %q", got.UsernameToken.Username, got.UsernameToken.Password)
	}
	if info.HostingApp != hostingApp || info.BinaryVersion != "4" || info.RequestParams != "AQAAAAIAAABsYwQAAAAxMDMz" {
		t.Errorf("AuthInfo %+v", info)
	}
}

func TestSSOTokenCacheAndLoginArgs(t *testing.T) {
	sample, err := os.ReadFile("testdata/sso_rst_response.xml")
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Write(sample)
	}))
	defer srv.Close()
	// The sample's tokens expire 2026-11-25T18:45:25Z.
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c := &SSOTokenCache{Request: SSORequest{URL: srv.URL, Username: "alice@example.com", Password: "s3cr3t-pw", HTTP: srv.Client()}, Now: func() time.Time { return now }}
	for i := 0; i < 2; i++ {
		if _, err := c.Tokens(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Fatalf("%d RST calls for two fresh reads", calls)
	}
	if got := c.RenewAt(); !got.Equal(time.Date(2026, 11, 25, 17, 45, 25, 0, time.UTC)) {
		t.Errorf("RenewAt %v", got)
	}
	now = now.Add(6 * time.Hour) // 17:59 is inside the one-hour margin
	tok, err := c.Tokens(context.Background())
	if err != nil || calls != 2 {
		t.Fatalf("no renewal near expiry: calls=%d err=%v", calls, err)
	}
	c.Invalidate()
	if _, err := c.Tokens(context.Background()); err != nil || calls != 3 {
		t.Fatalf("no renewal after Invalidate: calls=%d", calls)
	}

	ticket, mbi, err := SSOLoginArgs(tok, mbiVecNonce)
	if err != nil || !strings.HasPrefix(ticket, "t=54488f5ab27c6513a778") || len(mbi) != 172 {
		t.Fatalf("SSOLoginArgs %.20s %q %v", ticket, mbi, err)
	}
	if _, _, err := SSOLoginArgs(&SSOTokens{}, mbiVecNonce); !errors.Is(err, ErrAuthentication) {
		t.Errorf("missing token: %v", err)
	}
	if s := fmt.Sprintf("%v %+v %#v", c.Request, c.Request, c.Request); strings.Contains(s, "s3cr3t") {
		t.Errorf("request formatting leaks the password: %s", s)
	}
}
