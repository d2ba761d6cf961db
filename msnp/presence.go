package msnp

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// Status is a presence status as MSNP names it.
type Status string

// Statuses. StatusOffline (FLN) can be seen but not set; StatusHidden
// (HDN, appear offline) can be set but is never seen.
const (
	StatusOnline      Status = "NLN"
	StatusBusy        Status = "BSY"
	StatusIdle        Status = "IDL"
	StatusBeRightBack Status = "BRB"
	StatusAway        Status = "AWY"
	StatusOnThePhone  Status = "PHN"
	StatusOutToLunch  Status = "LUN"
	StatusHidden      Status = "HDN"
	StatusOffline     Status = "FLN"
)

// Valid reports whether s is a status a client may set.
func (s Status) Valid() bool {
	switch s {
	case StatusOnline, StatusBusy, StatusIdle, StatusBeRightBack, StatusAway, StatusOnThePhone, StatusOutToLunch, StatusHidden:
		return true
	}
	return false
}

// Status returns the account's own status as the server last confirmed it.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status == "" {
		return StatusOffline
	}
	return c.status
}

// SetStatus changes the account's status. The first call after Connect
// makes the server send the contacts' presence, ended by PresenceSynced.
func (c *Client) SetStatus(ctx context.Context, s Status) error {
	if !s.Valid() {
		return fmt.Errorf("msnp: status %q cannot be set", s)
	}
	cn := c.current()
	if cn == nil {
		return ErrNotConnected
	}
	// Escargot silently drops a CHG without the client id. The display
	// picture's object rides on every CHG from MSNP9 (FACTS.md §5.1).
	args := []string{string(s), strconv.FormatUint(uint64(c.cfg.clientID()), 10)}
	if obj := c.chgObject(); obj != "" && cn.d.protocol() >= MSNP9 {
		args = append(args, obj)
	}
	_, err := cn.request(ctx, "CHG", nil, args...)
	if err != nil || cn.d.protocol() < MSNP16 || c.cfg.EndpointName == "" {
		return err
	}
	// The second UUX of MSNP16+: this endpoint's name and state, which
	// the account's other clients show.
	payload, err := BuildUUXPrivateEndpoint(UBXPrivateEndpoint{EpName: c.cfg.EndpointName, State: string(s)})
	if err != nil {
		return err
	}
	_, err = cn.requestPayload(ctx, "UUX", payload, nil)
	return err
}

// SetPersonalMessage sets the status text shown under the name (MSNP11+).
func (c *Client) SetPersonalMessage(ctx context.Context, text string) error {
	cn := c.current()
	if cn == nil {
		return ErrNotConnected
	}
	if !cn.d.hasPSM() {
		return fmt.Errorf("%w: personal messages need MSNP11, this is %s", ErrUnsupported, cn.d.protocol())
	}
	if p := cn.d.protocol(); p >= MSNP13 {
		payload, err := BuildUUX(UUXData{PSM: text, MachineGUID: c.machineGUID}, int(p))
		if err != nil {
			return err
		}
		_, err = cn.requestPayload(ctx, "UUX", payload, nil)
		return err
	}
	var b bytes.Buffer
	b.WriteString("<Data><PSM>")
	if err := xml.EscapeText(&b, []byte(text)); err != nil {
		return err
	}
	b.WriteString("</PSM><CurrentMedia></CurrentMedia></Data>")
	_, err := cn.requestPayload(ctx, "UUX", b.Bytes(), nil)
	return err
}

// SetFriendlyName changes the account's display name. The server's
// confirmation is reported as FriendlyNameChanged too.
func (c *Client) SetFriendlyName(ctx context.Context, name string) error {
	if name == "" || len(name) > 387 {
		return fmt.Errorf("msnp: friendly name must be 1 to 387 bytes")
	}
	cn := c.current()
	if cn == nil {
		return ErrNotConnected
	}
	cmd, args := cn.d.setNameCmd(c.passport, name)
	_, err := cn.request(ctx, cmd, nil, args...)
	return err
}

// RequestSwitchboard asks for a new switchboard session (XFR SB) and
// returns its address and the cookie to log in with. Before the first
// SetStatus, or while hidden, the server refuses (913).
func (c *Client) RequestSwitchboard(ctx context.Context) (addr, cookie string, err error) {
	cn := c.current()
	if cn == nil {
		return "", "", ErrNotConnected
	}
	r, err := cn.request(ctx, "XFR", nil, "SB")
	if err != nil {
		return "", "", err
	}
	// XFR trid SB addr CKI cookie [U host [1]]
	if r.Arg(1) != "SB" || r.Arg(2) == "" || r.Arg(4) == "" {
		return "", "", &ProtocolError{Line: cut(Redact(r)), Err: ErrMalformedLine}
	}
	return r.Arg(2), r.Arg(4), nil
}

// parsePresence reads ILN trid status email friendly caps[:ext] [msnobj]
// or NLN status email friendly caps[:ext] [msnobj] (MSNP8–13, and later
// ones once normalizePresence has made them look so).
func parsePresence(cmd *Command) (ContactPresence, bool) {
	args := cmd.Args
	initial := cmd.Name == "ILN"
	if initial {
		if len(args) == 0 {
			return ContactPresence{}, false
		}
		args = args[1:]
	}
	if len(args) < 3 || !strings.Contains(args[1], "@") {
		return ContactPresence{}, false
	}
	p := ContactPresence{Status: internStatus(args[0]), Passport: Unescape(args[1]), FriendlyName: Unescape(args[2]), Initial: initial}
	if len(args) > 3 {
		caps, ext, _ := strings.Cut(args[3], ":")
		if n, err := strconv.ParseUint(caps, 10, 32); err == nil {
			p.ClientID = uint32(n)
		}
		if n, err := strconv.ParseUint(ext, 10, 32); err == nil {
			p.ClientIDExt = uint32(n)
		}
	}
	if len(args) > 4 && args[4] != "0" {
		p.MSNObject = Unescape(args[4])
		if p.MSNObject == "<msnobj/>" {
			p.MSNObject = ""
		}
	}
	return p, true
}

// internStatus returns the package's constant for a known status, so that
// a contact's status does not keep the whole presence line it came from
// alive (a string sliced from the line holds all of it).
func internStatus(s string) Status {
	// Returning s converted would hand back the line's substring: the
	// table's value is the package constant.
	for _, st := range knownStatuses {
		if string(st) == s {
			return st
		}
	}
	return Status(strings.Clone(s))
}

var knownStatuses = [...]Status{StatusOnline, StatusBusy, StatusIdle, StatusBeRightBack, StatusAway, StatusOnThePhone, StatusOutToLunch, StatusHidden, StatusOffline}

// ubxData is the UBX payload. Escargot writes entities numerically
// (&#x26;), which encoding/xml decodes.
type ubxData struct {
	PSM          string `xml:"PSM"`
	CurrentMedia string `xml:"CurrentMedia"`
}

// parseUBX reads a UBX payload; an empty payload means no message.
func parseUBX(payload []byte) (text, media string, err error) {
	if len(bytes.TrimSpace(payload)) == 0 {
		return "", "", nil
	}
	var d ubxData
	dec := xml.NewDecoder(bytes.NewReader(payload))
	dec.Strict = true
	if err := dec.Decode(&d); err != nil {
		return "", "", fmt.Errorf("msnp: bad UBX payload: %w", err)
	}
	return d.PSM, d.CurrentMedia, nil
}
