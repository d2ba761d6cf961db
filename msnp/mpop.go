package msnp

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MSNP16+ "MPOP" (multiple points of presence): each client instance has
// a machine GUID, sends it in USR, UUX and switchboard names
// (email;{guid}), and the NS describes every endpoint of a user in UBX
// (FACTS.md §5.4, §8.1 item 14).

// NewMachineGUID returns a random (version 4) GUID in the braced
// upper-case form clients send: {XXXXXXXX-XXXX-4XXX-YXXX-XXXXXXXXXXXX}.
func NewMachineGUID() (string, error) {
	var b [16]byte
	if err := randomBytes(b[:]); err != nil {
		return "", fmt.Errorf("msnp: generating GUID: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatGUID(b), nil
}

// randomBytes fills b from crypto/rand.
func randomBytes(b []byte) error {
	_, err := io.ReadFull(rand.Reader, b)
	return err
}

func formatGUID(b [16]byte) string {
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return "{" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32] + "}"
}

// ParseMachineGUID accepts a GUID with or without braces, in any case,
// and returns it in the braced upper-case form, so GUIDs from the server
// (which lower-cases them) compare equal to ours.
func ParseMachineGUID(s string) (string, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{") != strings.HasSuffix(t, "}") {
		return "", fmt.Errorf("msnp: bad GUID %q", s)
	}
	t = strings.TrimSuffix(strings.TrimPrefix(t, "{"), "}")
	if len(t) != 36 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-' {
		return "", fmt.Errorf("msnp: bad GUID %q", s)
	}
	raw, err := hex.DecodeString(t[0:8] + t[9:13] + t[14:18] + t[19:23] + t[24:36])
	if err != nil || len(raw) != 16 {
		return "", fmt.Errorf("msnp: bad GUID %q", s)
	}
	var b [16]byte
	copy(b[:], raw)
	return formatGUID(b), nil
}

// FormatEndpoint returns "email;{GUID}", the switchboard name of one
// endpoint (MSNP16+). An empty guid gives the bare email.
func FormatEndpoint(email, guid string) string {
	if guid == "" {
		return email
	}
	if g, err := ParseMachineGUID(guid); err == nil {
		guid = g
	}
	return email + ";" + guid
}

// ParseEndpoint splits "email;{guid}" into the email and the canonical
// GUID ("" when there is none). An unparsable GUID is an error.
func ParseEndpoint(s string) (email, guid string, err error) {
	email, g, ok := strings.Cut(s, ";")
	if email == "" {
		return "", "", fmt.Errorf("msnp: bad endpoint %q", s)
	}
	if !ok {
		return email, "", nil
	}
	guid, err = ParseMachineGUID(g)
	if err != nil {
		return "", "", err
	}
	return email, guid, nil
}

// EndpointCaps is the MSNP16+ "caps:capsEx" client capability pair
// (e.g. "2788999212:48"); before MSNP16 only Caps is sent.
type EndpointCaps struct {
	Caps   uint32
	CapsEx uint32
	HasEx  bool // whether the ":capsEx" part was present
}

// ParseEndpointCaps parses "caps" or "caps:capsEx" (decimal).
func ParseEndpointCaps(s string) (EndpointCaps, error) {
	c, ex, hasEx := strings.Cut(strings.TrimSpace(s), ":")
	caps, err := strconv.ParseUint(c, 10, 32)
	if err != nil {
		return EndpointCaps{}, fmt.Errorf("msnp: bad capabilities %q", s)
	}
	out := EndpointCaps{Caps: uint32(caps), HasEx: hasEx}
	if hasEx {
		v, err := strconv.ParseUint(ex, 10, 32)
		if err != nil {
			return EndpointCaps{}, fmt.Errorf("msnp: bad extended capabilities %q", s)
		}
		out.CapsEx = uint32(v)
	}
	return out, nil
}

// String formats "caps:capsEx" (or "caps" without HasEx).
func (c EndpointCaps) String() string {
	if !c.HasEx {
		return strconv.FormatUint(uint64(c.Caps), 10)
	}
	return strconv.FormatUint(uint64(c.Caps), 10) + ":" + strconv.FormatUint(uint64(c.CapsEx), 10)
}

// --- UBX / UUX payloads ---

// UBXData is a parsed UBX payload (a contact's, or your own endpoints').
type UBXData struct {
	PSM            string
	CurrentMedia   string // raw \0-separated form
	MachineGUID    string
	DDP            string
	SignatureSound string
	Scene          string
	ColorScheme    string
	Endpoints      []UBXEndpoint
	Private        []UBXPrivateEndpoint // only about your own endpoints
}

// UBXEndpoint is one <EndpointData id="{guid}">.
type UBXEndpoint struct {
	ID           string // canonical braced upper-case GUID when parsable, else as sent
	Capabilities EndpointCaps
}

// UBXPrivateEndpoint is <PrivateEndpointData>: how an endpoint of your
// own account names itself. It is also the second UUX a MSNP16+ client
// sends (BuildUUXPrivateEndpoint).
type UBXPrivateEndpoint struct {
	ID         string
	EpName     string
	Idle       bool
	ClientType int
	State      string // e.g. NLN
}

type ubxXML struct {
	XMLName        xml.Name `xml:"Data"`
	PSM            string   `xml:"PSM"`
	CurrentMedia   string   `xml:"CurrentMedia"`
	MachineGUID    string   `xml:"MachineGuid"`
	DDP            string   `xml:"DDP"`
	SignatureSound string   `xml:"SignatureSound"`
	Scene          string   `xml:"Scene"`
	ColorScheme    string   `xml:"ColorScheme"`
	Endpoints      []struct {
		ID           string `xml:"id,attr"`
		Capabilities string `xml:"Capabilities"`
	} `xml:"EndpointData"`
	Private []privateEndpointXML `xml:"PrivateEndpointData"`
}

type privateEndpointXML struct {
	XMLName    xml.Name `xml:"PrivateEndpointData"`
	ID         string   `xml:"id,attr,omitempty"`
	EpName     string   `xml:"EpName"`
	Idle       string   `xml:"Idle"`
	ClientType string   `xml:"ClientType"`
	State      string   `xml:"State"`
}

// ParseUBXData parses a UBX payload with a real XML parser: Escargot
// writes &, <, >, = and \ as numeric entities (&#x26; …). An empty payload
// (UBX with length 0) gives an empty UBXData.
func ParseUBXData(payload []byte) (*UBXData, error) {
	if len(bytes.TrimSpace(payload)) == 0 {
		return &UBXData{}, nil
	}
	var x ubxXML
	if err := xml.Unmarshal(payload, &x); err != nil {
		return nil, fmt.Errorf("msnp: bad UBX payload: %w", err)
	}
	out := &UBXData{
		PSM: x.PSM, CurrentMedia: x.CurrentMedia, MachineGUID: canonicalGUIDOrRaw(x.MachineGUID),
		DDP: x.DDP, SignatureSound: x.SignatureSound, Scene: x.Scene, ColorScheme: x.ColorScheme,
	}
	for _, e := range x.Endpoints {
		ep := UBXEndpoint{ID: canonicalGUIDOrRaw(e.ID)}
		if strings.TrimSpace(e.Capabilities) != "" {
			c, err := ParseEndpointCaps(e.Capabilities)
			if err != nil {
				return nil, err
			}
			ep.Capabilities = c
		}
		out.Endpoints = append(out.Endpoints, ep)
	}
	for _, p := range x.Private {
		pe := UBXPrivateEndpoint{
			ID: canonicalGUIDOrRaw(p.ID), EpName: p.EpName, State: strings.TrimSpace(p.State),
			Idle: strings.EqualFold(strings.TrimSpace(p.Idle), "true"),
		}
		if ct := strings.TrimSpace(p.ClientType); ct != "" {
			n, err := strconv.Atoi(ct)
			if err != nil {
				return nil, fmt.Errorf("msnp: bad UBX ClientType %q", ct)
			}
			pe.ClientType = n
		}
		out.Private = append(out.Private, pe)
	}
	return out, nil
}

func canonicalGUIDOrRaw(s string) string {
	if s == "" {
		return ""
	}
	if g, err := ParseMachineGUID(s); err == nil {
		return g
	}
	return s
}

// UUXData is what a client publishes with UUX.
type UUXData struct {
	PSM            string
	CurrentMedia   string
	MachineGUID    string // MSNP13+
	DDP            string // MSNP16+
	SignatureSound string // MSNP16+
	Scene          string // MSNP18
	ColorScheme    string // MSNP18
}

type uuxXML struct {
	XMLName        xml.Name `xml:"Data"`
	PSM            string   `xml:"PSM"`
	CurrentMedia   string   `xml:"CurrentMedia"`
	MachineGUID    *string  `xml:"MachineGuid"`
	DDP            *string  `xml:"DDP"`
	SignatureSound *string  `xml:"SignatureSound"`
	Scene          *string  `xml:"Scene"`
	ColorScheme    *string  `xml:"ColorScheme"`
}

// BuildUUX builds the UUX payload for protocol version msnp (11–18),
// including only the elements that version knows.
func BuildUUX(d UUXData, msnp int) ([]byte, error) {
	if msnp < 11 {
		return nil, errors.New("msnp: UUX needs MSNP11 or later")
	}
	x := uuxXML{PSM: d.PSM, CurrentMedia: d.CurrentMedia}
	if msnp >= 13 {
		g := d.MachineGUID
		if g != "" {
			c, err := ParseMachineGUID(g)
			if err != nil {
				return nil, err
			}
			g = c
		}
		x.MachineGUID = &g
	}
	if msnp >= 16 {
		x.DDP, x.SignatureSound = &d.DDP, &d.SignatureSound
	}
	if msnp >= 18 {
		x.Scene, x.ColorScheme = &d.Scene, &d.ColorScheme
	}
	return marshalXML(x)
}

// BuildUUXPrivateEndpoint builds the MSNP16+ second UUX, which names this
// endpoint for the user's other clients.
func BuildUUXPrivateEndpoint(p UBXPrivateEndpoint) ([]byte, error) {
	clientType := p.ClientType
	if clientType == 0 {
		clientType = 1
	}
	state := p.State
	if state == "" {
		state = "NLN"
	}
	idle := "false"
	if p.Idle {
		idle = "true"
	}
	return marshalXML(privateEndpointXML{EpName: p.EpName, Idle: idle, ClientType: strconv.Itoa(clientType), State: state})
}

func marshalXML(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
