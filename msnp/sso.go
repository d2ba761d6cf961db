package msnp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// SSO (MSNP15+) replaces Tweener with a WS-Trust "RST" request to the
// Passport token service, which returns one compact ticket per service
// address (FACTS.md §2.3). The messengerclear.live.com ticket and its
// BinarySecret log into the NS; contacts.msn.com opens ABCH; the others
// serve OIM sending and storage.

// Service addresses requested from the token service.
const (
	SSOAddressPassport        = "http://Passport.NET/tb"
	SSOAddressMessengerClear  = "messengerclear.live.com"
	SSOAddressContacts        = "contacts.msn.com"
	SSOAddressMessengerSecure = "messengersecure.live.com"
	SSOAddressStorage         = "storage.msn.com"
)

// SSODefaultLifetime is assumed when a token arrives without a LifeTime;
// Escargot's RST tokens live 24 h.
const SSODefaultLifetime = 24 * time.Hour

const (
	nsPPCRL    = "http://schemas.microsoft.com/Passport/SoapServices/PPCRL"
	nsWSSE     = "http://schemas.xmlsoap.org/ws/2003/06/secext"
	nsWST      = "http://schemas.xmlsoap.org/ws/2004/04/trust"
	nsWSP      = "http://schemas.xmlsoap.org/ws/2002/12/policy"
	nsWSA      = "http://schemas.xmlsoap.org/ws/2004/03/addressing"
	rstIssue   = "http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue"
	hostingApp = "{7108E71A-9926-4FCB-BCC9-9A9D3F32E423}"
)

// SSOService is one token requested: a service address and its policy
// ("" for none).
type SSOService struct {
	Address string
	Policy  string
}

// SSOServices lists the tokens a messenger login asks for. policy is the
// one from `USR trid SSO S <policy> <nonce>` (MBI_KEY_OLD or MBI_KEY) and
// applies to messengerclear.live.com.
func SSOServices(policy string) []SSOService {
	return []SSOService{
		{SSOAddressPassport, ""},
		{SSOAddressMessengerClear, policy},
		{SSOAddressContacts, "MBI"},
		{SSOAddressMessengerSecure, "MBI_SSL"},
		{SSOAddressStorage, "MBI_SSL"},
	}
}

// RST request types. Namespaces are declared per element (default
// namespace) rather than with ps:/wsse:/wst: prefixes; both are the same
// XML, and Escargot matches by local name.

type rstAuthInfo struct {
	XMLName       xml.Name `xml:"http://schemas.microsoft.com/Passport/SoapServices/PPCRL AuthInfo"`
	ID            string   `xml:"Id,attr"`
	HostingApp    string   `xml:"HostingApp"`
	BinaryVersion string   `xml:"BinaryVersion"`
	UIVersion     string   `xml:"UIVersion"`
	Cookies       string   `xml:"Cookies"`
	RequestParams string   `xml:"RequestParams"`
}

type rstSecurity struct {
	XMLName       xml.Name         `xml:"http://schemas.xmlsoap.org/ws/2003/06/secext Security"`
	UsernameToken rstUsernameToken `xml:"http://schemas.xmlsoap.org/ws/2003/06/secext UsernameToken"`
}

type rstUsernameToken struct {
	ID       string `xml:"Id,attr"`
	Username string `xml:"http://schemas.xmlsoap.org/ws/2003/06/secext Username"`
	Password string `xml:"http://schemas.xmlsoap.org/ws/2003/06/secext Password"`
}

type rstMultiple struct {
	XMLName xml.Name     `xml:"http://schemas.microsoft.com/Passport/SoapServices/PPCRL RequestMultipleSecurityTokens"`
	ID      string       `xml:"Id,attr"`
	Tokens  []rstRequest `xml:"http://schemas.xmlsoap.org/ws/2004/04/trust RequestSecurityToken"`
}

type rstRequest struct {
	ID          string        `xml:"Id,attr"`
	RequestType string        `xml:"http://schemas.xmlsoap.org/ws/2004/04/trust RequestType"`
	AppliesTo   rstAppliesTo  `xml:"http://schemas.xmlsoap.org/ws/2002/12/policy AppliesTo"`
	Policy      *rstPolicyRef `xml:"http://schemas.xmlsoap.org/ws/2003/06/secext PolicyReference,omitempty"`
}

type rstAppliesTo struct {
	EndpointReference rstEndpointRef `xml:"http://schemas.xmlsoap.org/ws/2004/03/addressing EndpointReference"`
}

type rstEndpointRef struct {
	Address string `xml:"http://schemas.xmlsoap.org/ws/2004/03/addressing Address"`
}

type rstPolicyRef struct {
	URI string `xml:"URI,attr"`
}

// RST response types: matched by local name, whatever the prefixes.

type rstrCollection struct {
	Responses []rstrResponse `xml:"RequestSecurityTokenResponse"`
}

type rstrResponse struct {
	Address string `xml:"AppliesTo>EndpointReference>Address"`
	Created string `xml:"LifeTime>Created"`
	Expires string `xml:"LifeTime>Expires"`
	Token   string `xml:"RequestedSecurityToken>BinarySecurityToken"`
	Secret  string `xml:"RequestedProofToken>BinarySecret"`
}

// SSOToken is the token for one service address.
type SSOToken struct {
	Address      string
	Ticket       string // "t=…&p=…", XML-decoded; a secret
	BinarySecret string // base64 proof key (messengerclear.live.com only); a secret
	Created      time.Time
	Expires      time.Time
}

// T returns the ticket's t value without the "t=" prefix (the rsi
// PassportCookie and Escargot's session token use it).
func (t SSOToken) T() string {
	v, _ := ticketPart(t.Ticket, "t")
	return v
}

// P returns the ticket's p value (often empty).
func (t SSOToken) P() string {
	v, _ := ticketPart(t.Ticket, "p")
	return v
}

func ticketPart(ticket, key string) (string, bool) {
	for _, part := range strings.Split(ticket, "&") {
		if k, v, ok := strings.Cut(part, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// String redacts the ticket and secret so a token never ends up in a log.
func (t SSOToken) String() string {
	return fmt.Sprintf("SSOToken{%s expires %s}", t.Address, t.Expires.Format(time.RFC3339))
}

// SSOTokens is the token set from one RST exchange, keyed by address, and
// knows when it should be renewed.
type SSOTokens struct {
	Tokens   map[string]SSOToken
	Received time.Time
}

// Get returns the token for address.
func (s *SSOTokens) Get(address string) (SSOToken, bool) {
	if s == nil {
		return SSOToken{}, false
	}
	t, ok := s.Tokens[address]
	return t, ok
}

// Expires is the earliest expiry among the tokens (zero if there are none).
func (s *SSOTokens) Expires() time.Time {
	var min time.Time
	for _, t := range s.Tokens {
		if min.IsZero() || t.Expires.Before(min) {
			min = t.Expires
		}
	}
	return min
}

// RenewAt is when to fetch new tokens: margin before the earliest expiry.
func (s *SSOTokens) RenewAt(margin time.Duration) time.Time {
	return s.Expires().Add(-margin)
}

// NeedsRenewal reports whether now is at or past RenewAt(margin).
func (s *SSOTokens) NeedsRenewal(now time.Time, margin time.Duration) bool {
	if s == nil || len(s.Tokens) == 0 {
		return true
	}
	return !now.Before(s.RenewAt(margin))
}

// String lists the addresses only; tickets are secrets.
func (s *SSOTokens) String() string {
	addrs := make([]string, 0, len(s.Tokens))
	for a := range s.Tokens {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	return "SSOTokens{" + strings.Join(addrs, " ") + "}"
}

// SSOAuthError is a refusal by the token service: wrong password, unknown
// account, or a reply without tokens. errors.Is(err, ErrAuthentication)
// holds; Fault is the SOAP fault if there was one.
type SSOAuthError struct {
	Reason string
	Fault  *SOAPFault
}

func (e *SSOAuthError) Error() string {
	if e.Fault != nil {
		return "msnp: SSO authentication failed: " + e.Fault.Code + ": " + e.Fault.String
	}
	return "msnp: SSO authentication failed: " + e.Reason
}

func (e *SSOAuthError) Is(target error) bool { return target == ErrAuthentication }

func (e *SSOAuthError) Unwrap() error {
	if e.Fault != nil {
		return e.Fault
	}
	return nil
}

// SSORequest describes one RST exchange.
type SSORequest struct {
	URL      string // RST endpoint, e.g. https://m1.escargot.chat/RST.srf
	Username string
	Password string
	Services []SSOService // nil means SSOServices(Policy)
	Policy   string       // the policy from `USR SSO S`; default MBI_KEY_OLD
	HTTP     *http.Client // nil means http.DefaultClient
}

// RequestSSOTokens posts the RST request and returns the tokens. A SOAP
// fault, or a reply without a messengerclear.live.com ticket, is an
// *SSOAuthError (errors.Is ErrAuthentication); an HTTP error status is a
// *SOAPHTTPError and a transport failure is returned wrapped, so callers
// can tell "wrong password" from "server down".
func RequestSSOTokens(ctx context.Context, r SSORequest) (*SSOTokens, error) {
	if r.Username == "" {
		return nil, errors.New("msnp: SSO: empty username")
	}
	policy := r.Policy
	if policy == "" {
		policy = "MBI_KEY_OLD"
	}
	services := r.Services
	if services == nil {
		services = SSOServices(policy)
	}
	headers := []any{
		rstAuthInfo{ID: "PPAuthInfo", HostingApp: hostingApp, BinaryVersion: "4", UIVersion: "1", RequestParams: "AQAAAAIAAABsYwQAAAAxMDMz"},
		rstSecurity{UsernameToken: rstUsernameToken{ID: "user", Username: r.Username, Password: r.Password}},
	}
	body := rstMultiple{ID: "RSTS"}
	for i, s := range services {
		req := rstRequest{ID: fmt.Sprintf("RST%d", i), RequestType: rstIssue, AppliesTo: rstAppliesTo{rstEndpointRef{s.Address}}}
		if s.Policy != "" {
			req.Policy = &rstPolicyRef{URI: s.Policy}
		}
		body.Tokens = append(body.Tokens, req)
	}
	c := SOAPClient{HTTP: r.HTTP}
	var resp rstrCollection
	err := c.Call(ctx, r.URL, "", headers, body, &resp)
	var fault *SOAPFault
	if errors.As(err, &fault) {
		return nil, &SSOAuthError{Fault: fault}
	}
	if err != nil {
		return nil, err
	}
	return ssoTokensFrom(&resp, time.Now())
}

// ParseSSOResponse parses a raw RST response envelope.
func ParseSSOResponse(raw []byte) (*SSOTokens, error) {
	var resp rstrCollection
	err := decodeSOAPResponse(raw, 200, "200 OK", &resp)
	var fault *SOAPFault
	if errors.As(err, &fault) {
		return nil, &SSOAuthError{Fault: fault}
	}
	if err != nil {
		return nil, err
	}
	return ssoTokensFrom(&resp, time.Now())
}

func ssoTokensFrom(resp *rstrCollection, now time.Time) (*SSOTokens, error) {
	set := &SSOTokens{Tokens: make(map[string]SSOToken), Received: now}
	for _, r := range resp.Responses {
		ticket := strings.TrimSpace(r.Token)
		if r.Address == "" || ticket == "" {
			// Passport.NET/tb carries encrypted data, not a compact ticket.
			continue
		}
		t := SSOToken{Address: strings.TrimSpace(r.Address), Ticket: ticket, BinarySecret: strings.TrimSpace(r.Secret)}
		t.Created, _ = time.Parse(time.RFC3339, strings.TrimSpace(r.Created))
		t.Expires, _ = time.Parse(time.RFC3339, strings.TrimSpace(r.Expires))
		if t.Expires.IsZero() {
			t.Expires = now.Add(SSODefaultLifetime)
		}
		set.Tokens[t.Address] = t
	}
	mc, ok := set.Tokens[SSOAddressMessengerClear]
	if !ok {
		return nil, &SSOAuthError{Reason: "no BinarySecurityToken for " + SSOAddressMessengerClear}
	}
	if !strings.HasPrefix(mc.Ticket, "t=") {
		return nil, &SSOAuthError{Reason: "malformed " + SSOAddressMessengerClear + " ticket"}
	}
	return set, nil
}

// String redacts the password (and any %v of a struct holding the request).
func (r SSORequest) String() string {
	return fmt.Sprintf("SSORequest{%s user=%s policy=%s password=[redacted]}", r.URL, r.Username, r.Policy)
}

// GoString redacts the password for %#v as well.
func (r SSORequest) GoString() string { return r.String() }

// SSOLoginArgs returns the two arguments of `USR trid SSO S <ticket> <mbi>`:
// the messengerclear.live.com ticket and the MBI proof for the server's
// nonce. (MSNP16+ append the machine GUID themselves.)
func SSOLoginArgs(tokens *SSOTokens, nonce string) (ticket, mbi string, err error) {
	t, ok := tokens.Get(SSOAddressMessengerClear)
	if !ok || t.BinarySecret == "" {
		return "", "", &SSOAuthError{Reason: "no " + SSOAddressMessengerClear + " token with a BinarySecret"}
	}
	mbi, err = MBIResponse(t.BinarySecret, nonce)
	if err != nil {
		return "", "", err
	}
	return t.Ticket, mbi, nil
}

// SSOTokenCache keeps one account's tokens and fetches new ones when they
// come within Margin of expiring. It is safe for concurrent use; callers
// block while one renewal runs.
type SSOTokenCache struct {
	Request SSORequest
	Margin  time.Duration    // default 1 h
	Now     func() time.Time // default time.Now; tests inject a clock

	mu     sync.Mutex
	tokens *SSOTokens
}

// Tokens returns valid tokens, renewing them first if needed.
func (c *SSOTokenCache) Tokens(ctx context.Context) (*SSOTokens, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	margin := c.Margin
	if margin == 0 {
		margin = time.Hour
	}
	if c.tokens != nil && !c.tokens.NeedsRenewal(now(), margin) {
		return c.tokens, nil
	}
	t, err := RequestSSOTokens(ctx, c.Request)
	if err != nil {
		return nil, err
	}
	c.tokens = t
	return t, nil
}

// RenewAt says when the cached tokens should be renewed (zero if none).
func (c *SSOTokenCache) RenewAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil {
		return time.Time{}
	}
	margin := c.Margin
	if margin == 0 {
		margin = time.Hour
	}
	return c.tokens.RenewAt(margin)
}

// Invalidate drops the cached tokens, e.g. after the server refused them.
func (c *SSOTokenCache) Invalidate() {
	c.mu.Lock()
	c.tokens = nil
	c.mu.Unlock()
}
