package msnptest

import (
	"bytes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
)

// SSO (MSNP15–18, FACTS.md §2.3): /RST.srf and /RST2.srf hand out one
// 20-hex token per login, used for every service address, with a
// BinarySecret only for messengerclear.live.com; the NS checks the MBI
// proof made with that secret.

// ssoTokenLife is how long an RST token lives on Escargot.
const ssoTokenLife = 24 * time.Hour

// RSTURL returns the SSO token service URL (/RST.srf).
func (s *Server) RSTURL() string { return s.web.URL + "/RST.srf" }

// SOAPBaseURL returns the base URL of the SOAP services (/abservice/…,
// OIM, storage), as Escargot serves them on one host.
func (s *Server) SOAPBaseURL() string { return s.web.URL }

// rstRequest is what Escargot reads from an RST request: elements found by
// local name only.
type rstRequest struct {
	username, password string
	addresses          []string
}

func parseRST(body io.Reader) (rstRequest, error) {
	var r rstRequest
	d := xml.NewDecoder(io.LimitReader(body, 1<<20))
	var cur string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return r, nil
		}
		if err != nil {
			return r, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			cur = t.Name.Local
		case xml.EndElement:
			cur = ""
		case xml.CharData:
			v := strings.TrimSpace(string(t))
			switch cur {
			case "Username":
				r.username = v
			case "Password":
				r.password = v
			case "Address":
				r.addresses = append(r.addresses, v)
			}
		}
	}
}

func (s *Server) handleRST(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	req, err := parseRST(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	tok, ok := s.issueToken(req.username, req.password, ssoTokenLife)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if !ok {
		// Escargot answers a wrong password with a fault and HTTP 200.
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, rstFault)
		return
	}
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	bs := base64.StdEncoding.EncodeToString(secret)
	s.mu.Lock()
	s.ssoSecrets()[tok] = bs
	s.mu.Unlock()
	now := time.Now().UTC()
	created, expires := now.Format(time.RFC3339), now.Add(ssoTokenLife).Format(time.RFC3339)
	ticket := "t=" + tok + "Y6+H31sTUOFkqjNTDYqAAFLr5Ote7BMrMnUIzpg860jh084QMgs5djRQLLQP0TVOFkKdWDwAJdEWcfsI9YL8otN9kSfhTaPHR1njHmG0H98O2NE&amp;p="
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><wst:RequestSecurityTokenResponseCollection xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing">`)
	// The fixed fake Passport.NET/tb element comes first.
	fmt.Fprintf(&b, `<wst:RequestSecurityTokenResponse><wst:TokenType>urn:passport:legacy</wst:TokenType><wsp:AppliesTo><wsa:EndpointReference><wsa:Address>http://Passport.NET/tb</wsa:Address></wsa:EndpointReference></wsp:AppliesTo><wst:LifeTime><wsu:Created>%s</wsu:Created><wsu:Expires>%s</wsu:Expires></wst:LifeTime><wst:RequestedSecurityToken><EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#" Id="BinaryDAToken0"><CipherData><CipherValue>AAAA</CipherValue></CipherData></EncryptedData></wst:RequestedSecurityToken><wst:RequestedProofToken><wst:BinarySecret>tgoPVK67sU36fQKlGLMgWgTXp7oiaQgE</wst:BinarySecret></wst:RequestedProofToken></wst:RequestSecurityTokenResponse>`, created, expires)
	for i, addr := range req.addresses {
		if addr == msnp.SSOAddressPassport {
			continue
		}
		fmt.Fprintf(&b, `<wst:RequestSecurityTokenResponse><wst:TokenType>urn:passport:compact</wst:TokenType><wsp:AppliesTo><wsa:EndpointReference><wsa:Address>%s</wsa:Address></wsa:EndpointReference></wsp:AppliesTo><wst:LifeTime><wsu:Created>%s</wsu:Created><wsu:Expires>%s</wsu:Expires></wst:LifeTime><wst:RequestedSecurityToken><wsse:BinarySecurityToken Id="Compact%d">%s</wsse:BinarySecurityToken></wst:RequestedSecurityToken>`, xmlEscape(addr), created, expires, i+1, ticket)
		if addr == msnp.SSOAddressMessengerClear {
			fmt.Fprintf(&b, `<wst:RequestedProofToken><wst:BinarySecret>%s</wst:BinarySecret></wst:RequestedProofToken>`, bs)
		}
		b.WriteString(`</wst:RequestSecurityTokenResponse>`)
	}
	b.WriteString(`</wst:RequestSecurityTokenResponseCollection></S:Body></S:Envelope>`)
	w.WriteHeader(http.StatusOK)
	w.Write(b.Bytes())
}

const rstFault = `<?xml version="1.0" encoding="utf-8"?><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault"><S:Header><psf:pp><psf:serverVersion>1</psf:serverVersion><psf:authstate>0x80048800</psf:authstate><psf:reqstatus>0x80048823</psf:reqstatus></psf:pp></S:Header><S:Body><S:Fault><faultcode>wsse:FailedAuthentication</faultcode><faultstring>Authentication Failure</faultstring></S:Fault></S:Body></S:Envelope>`

// RevokeTokens forgets every token handed out, as a restarted server
// would; live sessions stay signed in.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = make(map[string]token)
	s.secrets = nil
}

// ssoSecrets returns the BinarySecret of each RST token. Called with s.mu held.
func (s *Server) ssoSecrets() map[string]string {
	if s.secrets == nil {
		s.secrets = make(map[string]string)
	}
	// Forget secrets whose token expired, so the map stays bounded.
	for t := range s.secrets {
		if _, ok := s.tokens[t]; !ok {
			delete(s.secrets, t)
		}
	}
	return s.secrets
}

func newNonce() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

var machineGUIDRE = regexp.MustCompile(`^\{?[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\}?$`)

// verifyMBI checks an MBI_KEY_OLD blob against the nonce the way
// Escargot does: header, hash of the nonce, and the decrypted nonce.
func verifyMBI(secret, nonce, blob string) bool {
	raw, err := base64.StdEncoding.DecodeString(blob)
	if err != nil || len(raw) != 128 {
		return false
	}
	var hdr [7]uint32
	for i := range hdr {
		hdr[i] = binary.LittleEndian.Uint32(raw[i*4:])
	}
	if hdr != [7]uint32{28, 1, 0x6603, 0x8004, 8, 20, 72} {
		return false
	}
	iv, hash, ct := raw[28:36], raw[36:56], raw[56:128]
	keys, err := msnp.DeriveMBIKeys(secret)
	if err != nil {
		return false
	}
	m := hmac.New(sha1.New, keys.Hash)
	m.Write([]byte(nonce))
	if !hmac.Equal(m.Sum(nil), hash) {
		return false
	}
	blk, err := des.NewTripleDESCipher(keys.Encrypt)
	if err != nil {
		return false
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(blk, iv).CryptBlocks(pt, ct)
	return bytes.Equal(pt, append([]byte(nonce), bytes.Repeat([]byte{8}, 8)...))
}

// usrSSO is `USR trid SSO I email` and `USR trid SSO S ticket [mbi] [guid]`.
// Called with s.mu held.
func (c *nsConn) usrSSO(trid string, args []string) {
	if c.dialect < 15 {
		c.closeAfterFlush()
		return
	}
	if c.acct != nil {
		c.send("205", trid)
		return
	}
	switch args[1] {
	case "I":
		if len(args) < 3 || !strings.Contains(args[2], "@") {
			c.send("911", trid)
			c.closeAfterFlush()
			return
		}
		c.nameAccount(args[2])
		if c.s.refuse != 0 {
			c.send(fmt.Sprint(c.s.refuse), trid)
			c.closeAfterFlush()
			return
		}
		// Escargot sends its policies before the nonce.
		c.sendPayload([]byte(policiesXML), "GCF", "0")
		c.nonce = newNonce()
		c.send("USR", trid, "SSO", "S", "MBI_KEY_OLD", c.nonce)
	case "S":
		if len(args) < 3 || c.usrEmail == "" || c.nonce == "" {
			c.send("911", trid)
			c.closeAfterFlush()
			return
		}
		tok := args[2]
		if strings.HasPrefix(tok, "t=") {
			tok = tok[2:min(22, len(tok))]
		}
		t, ok := c.s.tokens[tok]
		secret := c.s.ssoSecrets()[tok]
		valid := ok && time.Now().Before(t.expires) && key(t.passport) == key(c.usrEmail) && secret != ""
		mbi, guid := "", ""
		if len(args) > 3 {
			mbi = args[3]
		}
		if len(args) > 4 {
			guid = args[4]
		}
		if valid && (c.dialect >= 16 || mbi != "") {
			valid = verifyMBI(secret, c.nonce, mbi)
		}
		if valid && c.dialect >= 16 {
			valid = machineGUIDRE.MatchString(guid)
		}
		if !valid {
			c.send("911", trid)
			c.closeAfterFlush()
			return
		}
		c.guid = strings.ToLower(strings.Trim(guid, "{}"))
		c.login(trid, c.s.accounts[key(t.passport)], tok)
	default:
		c.send("911", trid)
		c.closeAfterFlush()
	}
}

// policiesXML is Escargot's GCF policies payload: its SHIELDS and ABCH
// policies as far as the transcripts show them, padded with blanks to the
// 1187 bytes Escargot sends, so that the GCF line is the transcripts' too.
var policiesXML = func() string {
	const head = "<Policies>\n\t<Policy type=\"SHIELDS\" checksum=\"D9705A71BA841CB38955822E048970C3\"><config> <shield><cli maj=\"7\" min=\"0\" minbld=\"0\" maxbld=\"9999\" deny=\" \" /></shield> <block></block></config></Policy>\n\t<Policy type=\"ABCH\" checksum=\"03DC55910A9CB79133F1576221A80346\"><policy><set id=\"push\" service=\"ABCH\" priority=\"200\">      <r id=\"pushstorage\" threshold=\"180000\" />    </set><set id=\"delaysup\" service=\"ABCH\" priority=\"150\">  <r id=\"whatsnew\" threshold=\"1800000\" />  <r id=\"whatsnew_storage_ABCH_delay\" timer=\"1800000\" />  <r id=\"whatsnewt_link\" threshold=\"900000\" trigger=\"QueryActivities\" /></set>  <c id=\"msnptest\">"
	const tail = "</c></policy></Policy>\n</Policies>"
	return head + strings.Repeat(" ", 1187-len(head)-len(tail)) + tail
}()
