package msnp

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type testEcho struct {
	XMLName xml.Name `xml:"urn:test Echo"`
	Value   string   `xml:"value"`
}

type testHdr struct {
	XMLName xml.Name `xml:"urn:test Hdr"`
	Token   string   `xml:"Token"`
}

// testSOAPRequest decodes a request envelope the way a server would.
type testSOAPRequest struct {
	Header struct {
		Inner []byte `xml:",innerxml"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Header"`
	Body struct {
		Inner []byte `xml:",innerxml"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

func readAll(t *testing.T, r *http.Request) string {
	t.Helper()
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		t.Error(err)
	}
	return string(raw)
}

func decodeTestRequest(t *testing.T, r *http.Request, hdr, body any) {
	t.Helper()
	decodeTestRequestBytes(t, readAll(t, r), hdr, body)
}

// decodeTestRequestBytes decodes hdr from the wrapped header blocks and
// body from the body's first element.
func decodeTestRequestBytes(t *testing.T, raw string, hdr, body any) {
	t.Helper()
	var env testSOAPRequest
	if err := xml.Unmarshal([]byte(raw), &env); err != nil {
		t.Errorf("request envelope: %v\n%s", err, raw)
		return
	}
	if hdr != nil {
		wrapped := append(append([]byte("<h>"), env.Header.Inner...), "</h>"...)
		if err := xml.Unmarshal(wrapped, hdr); err != nil {
			t.Errorf("request header: %v\n%s", err, env.Header.Inner)
		}
	}
	if body != nil {
		if err := xml.Unmarshal(env.Body.Inner, body); err != nil {
			t.Errorf("request body: %v\n%s", err, env.Body.Inner)
		}
	}
}

func soapReply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soap:Body>`+body+`</soap:Body></soap:Envelope>`)
}

func TestSOAPCallRoundTrip(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("SOAPAction"); got != "urn:test/Echo" {
			t.Errorf("SOAPAction = %q", got)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
			t.Errorf("Content-Type = %q", ct)
		}
		var h struct {
			Hdr testHdr `xml:"urn:test Hdr"`
		}
		var b testEcho
		decodeTestRequest(t, r, &h, &b)
		if h.Hdr.Token != "t=1&p=2" || b.Value != "a<b&c" {
			t.Errorf("decoded header %+v body %+v", h, b)
		}
		soapReply(w, 200, `<Echo xmlns="urn:test"><value>`+xmlEscapeString(b.Value)+`!</value></Echo>`)
	}))
	defer srv.Close()
	var c SOAPClient
	var out testEcho
	err := c.Call(context.Background(), srv.URL, "urn:test/Echo", []any{testHdr{Token: "t=1&p=2"}}, testEcho{Value: "a<b&c"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if out.Value != "a<b&c!" {
		t.Fatalf("result %q", out.Value)
	}
}

func xmlEscapeString(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func TestSOAPCallFault(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		soapReply(w, 500, `<soap:Fault><faultcode>q0:AuthenticationFailed</faultcode><faultstring>Exception of type 'System.Web.Services.Protocols.SoapException' was thrown.</faultstring><detail><TweenerChallenge xmlns="http://messenger.msn.com/ws/2004/09/oim/">ct=1</TweenerChallenge><LockKeyChallenge xmlns="http://messenger.msn.com/ws/2004/09/oim/">1850937852</LockKeyChallenge></detail></soap:Fault>`)
	}))
	defer srv.Close()
	var c SOAPClient
	err := c.Call(context.Background(), srv.URL, "urn:x", nil, testEcho{}, &testEcho{})
	var f *SOAPFault
	if !errors.As(err, &f) {
		t.Fatalf("err = %v, want *SOAPFault", err)
	}
	if f.Code != "q0:AuthenticationFailed" || f.HTTPStatus != 500 || f.DetailValue("LockKeyChallenge") != "1850937852" {
		t.Fatalf("fault %+v", f)
	}
	if f.DetailValue("Missing") != "" {
		t.Fatal("missing detail element found")
	}
}

func TestSOAPCallHTTPErrorAndLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/403":
			w.WriteHeader(403)
		case "/big":
			soapReply(w, 200, `<Echo xmlns="urn:test"><value>`+strings.Repeat("x", 4096)+`</value></Echo>`)
		case "/garbage":
			io.WriteString(w, "<not xml")
		case "/empty":
			soapReply(w, 200, ``)
		}
	}))
	defer srv.Close()
	c := SOAPClient{MaxBodySize: 1024}
	var he *SOAPHTTPError
	if err := c.Call(context.Background(), srv.URL+"/403", "a", nil, testEcho{}, nil); !errors.As(err, &he) || he.StatusCode != 403 {
		t.Errorf("403: %v", err)
	}
	if err := c.Call(context.Background(), srv.URL+"/big", "a", nil, testEcho{}, &testEcho{}); !errors.Is(err, ErrSOAPBodyTooLarge) {
		t.Errorf("big: %v", err)
	}
	if err := c.Call(context.Background(), srv.URL+"/garbage", "a", nil, testEcho{}, &testEcho{}); err == nil {
		t.Error("garbage accepted")
	}
	if err := c.Call(context.Background(), srv.URL+"/empty", "a", nil, testEcho{}, &testEcho{}); err == nil {
		t.Error("empty body accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Call(ctx, srv.URL+"/big", "a", nil, testEcho{}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
