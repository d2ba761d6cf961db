package msnp

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The MSN web services (token service, ABCH, OIM) are SOAP 1.1 over HTTP
// POST. SOAPClient is the one place that builds envelopes, sends them and
// turns faults into errors, so each service file only declares its types.

// DefaultSOAPMaxBody bounds a SOAP response body. Escargot's largest
// replies (a full address book) are tens of kilobytes; 8 MiB leaves room
// for big lists without letting a broken server exhaust memory.
const DefaultSOAPMaxBody = 8 << 20

// SOAPClient posts SOAP 1.1 envelopes. The zero value uses
// http.DefaultClient and DefaultSOAPMaxBody.
type SOAPClient struct {
	HTTP        *http.Client
	MaxBodySize int64  // response bytes read at most; 0 means DefaultSOAPMaxBody
	UserAgent   string // optional User-Agent header
}

// soapEnvelope is the outgoing envelope. Header blocks carry their own
// XMLName (and namespace), so they marshal as themselves.
type soapEnvelope struct {
	XMLName xml.Name    `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
	Header  *soapHeader `xml:"http://schemas.xmlsoap.org/soap/envelope/ Header,omitempty"`
	Body    soapBody    `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

type soapHeader struct {
	Blocks []any `xml:"Block"`
}

type soapBody struct {
	Content any `xml:"Content"`
}

// soapResponse is the incoming envelope: the body's first element is kept
// raw and decoded in a second pass, once we know it is not a Fault.
type soapResponse struct {
	Body struct {
		Inner []byte `xml:",innerxml"`
	} `xml:"Body"`
}

// SOAPFault is a SOAP Fault returned by a service. It is an error.
type SOAPFault struct {
	Code       string // faultcode, e.g. "soap:Client" or "wsse:FailedAuthentication"
	String     string // faultstring
	Actor      string // faultactor
	Detail     string // inner XML of <detail>, raw
	HTTPStatus int    // status of the HTTP response carrying the fault
}

func (f *SOAPFault) Error() string {
	return fmt.Sprintf("msnp: SOAP fault %s: %s", f.Code, f.String)
}

// DetailValue returns the text of the first element named local (any
// namespace) inside the fault detail, e.g. "LockKeyChallenge".
func (f *SOAPFault) DetailValue(local string) string {
	return firstElementText(f.Detail, local)
}

// soapFaultXML decodes both SOAP 1.1 (faultcode, …) and SOAP 1.2 (Code/Value,
// Reason/Text) faults.
type soapFaultXML struct {
	Code   string `xml:"faultcode"`
	String string `xml:"faultstring"`
	Actor  string `xml:"faultactor"`
	Detail struct {
		Inner string `xml:",innerxml"`
	} `xml:"detail"`
	Code12   string `xml:"Code>Value"`
	Reason12 string `xml:"Reason>Text"`
	Detail12 struct {
		Inner string `xml:",innerxml"`
	} `xml:"Detail"`
}

// SOAPHTTPError is a non-2xx HTTP response that carried no SOAP fault.
type SOAPHTTPError struct {
	StatusCode int
	Status     string
}

func (e *SOAPHTTPError) Error() string { return "msnp: SOAP HTTP error: " + e.Status }

// ErrSOAPBodyTooLarge is returned when a response exceeds MaxBodySize.
var ErrSOAPBodyTooLarge = errors.New("msnp: SOAP response body too large")

// Call posts an envelope with the given header blocks and body element to
// url with the SOAPAction header, and decodes the body's first element into
// result (nil to ignore it). A Fault becomes a *SOAPFault whatever the HTTP
// status; a non-2xx status without a Fault becomes a *SOAPHTTPError; a
// transport failure is returned wrapped as it is.
func (c *SOAPClient) Call(ctx context.Context, url, action string, headers []any, body, result any) error {
	env := soapEnvelope{Body: soapBody{Content: body}}
	if len(headers) > 0 {
		env.Header = &soapHeader{Blocks: headers}
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(env); err != nil {
		return fmt.Errorf("msnp: encoding SOAP request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, &buf)
	if err != nil {
		return fmt.Errorf("msnp: SOAP request: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	if action != "" {
		req.Header.Set("SOAPAction", action)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("msnp: SOAP %s: %w", soapActionName(action), err)
	}
	defer resp.Body.Close()
	limit := c.MaxBodySize
	if limit <= 0 {
		limit = DefaultSOAPMaxBody
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("msnp: SOAP %s: reading response: %w", soapActionName(action), err)
	}
	if int64(len(raw)) > limit {
		return ErrSOAPBodyTooLarge
	}
	return decodeSOAPResponse(raw, resp.StatusCode, resp.Status, result)
}

func decodeSOAPResponse(raw []byte, status int, statusText string, result any) error {
	var env soapResponse
	if err := xml.Unmarshal(raw, &env); err != nil {
		if status/100 != 2 {
			return &SOAPHTTPError{StatusCode: status, Status: statusText}
		}
		return fmt.Errorf("msnp: decoding SOAP response: %w", err)
	}
	name, err := firstElementName(env.Body.Inner)
	if err != nil {
		if status/100 != 2 {
			return &SOAPHTTPError{StatusCode: status, Status: statusText}
		}
		return fmt.Errorf("msnp: decoding SOAP body: %w", err)
	}
	if name == "Fault" {
		var f soapFaultXML
		if err := xml.Unmarshal(env.Body.Inner, &f); err != nil {
			return fmt.Errorf("msnp: decoding SOAP fault: %w", err)
		}
		sf := &SOAPFault{Code: f.Code, String: f.String, Actor: f.Actor, Detail: f.Detail.Inner, HTTPStatus: status}
		if sf.Code == "" {
			sf.Code = f.Code12
		}
		if sf.String == "" {
			sf.String = f.Reason12
		}
		if sf.Detail == "" {
			sf.Detail = f.Detail12.Inner
		}
		return sf
	}
	if status/100 != 2 {
		return &SOAPHTTPError{StatusCode: status, Status: statusText}
	}
	if result == nil {
		return nil
	}
	if name == "" {
		return fmt.Errorf("msnp: empty SOAP body")
	}
	if err := xml.Unmarshal(env.Body.Inner, result); err != nil {
		return fmt.Errorf("msnp: decoding SOAP %s: %w", name, err)
	}
	return nil
}

// firstElementName returns the local name of the first element in data, or
// "" if there is none.
func firstElementName(data []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local, nil
		}
	}
}

// firstElementText returns the character data of the first element named
// local in the XML fragment s, or "".
func firstElementText(s, local string) string {
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = false
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == local {
			var v struct {
				Text string `xml:",chardata"`
			}
			if d.DecodeElement(&v, &se) != nil {
				return ""
			}
			return strings.TrimSpace(v.Text)
		}
	}
}

func soapActionName(action string) string {
	if i := strings.LastIndex(action, "/"); i >= 0 {
		return action[i+1:]
	}
	return action
}
