package msnp

import (
	"strconv"
	"strings"
)

// dialect holds everything whose shape depends on the protocol version, so
// that the client's logic (and what callers see) does not. MSNP13+ (SSO,
// address book over SOAP, ADL) will be further implementations.
type dialect interface {
	protocol() Protocol
	// syn is the SYN command's arguments after the TrID.
	synArgs() []string
	// synCounts reads the contact and group counts from the SYN reply.
	synCounts(c *Command) (contacts, groups int, ok bool)
	// parseLST and parseLSG read one contact-list line.
	parseLST(c *Command) (Contact, error)
	parseLSG(c *Command) (Group, error)
	// addArgs and remArgs are ADD/ADC and REM arguments after the TrID.
	addCmd(list List, passport, name string) (name3 string, args []string)
	remArgs(list List, ct *Contact, passport string) []string
	// parseAdded reads an ADD/ADC reply or reverse-list push:
	// list, passport, friendly name, GUID.
	parseAdded(c *Command) (list List, passport, name, guid string, ok bool)
	// parseRemoved reads a REM reply or push.
	parseRemoved(c *Command) (list List, who string, ok bool)
	// friendly-name change command, and whether PSM (UUX) exists.
	setNameCmd(self, name string) (name3 string, args []string)
	hasPSM() bool
	hasMSNObject() bool
	product() product
	answerChallenge(chl string) string
}

func dialectFor(p Protocol) dialect {
	switch p {
	case MSNP8, MSNP9:
		return dialect8{p}
	case MSNP10, MSNP11, MSNP12:
		return dialect10{dialect8{p}}
	case MSNP13, MSNP14, MSNP15, MSNP16, MSNP17, MSNP18:
		return dialect15{dialect10{dialect8{p}}}
	}
	return nil
}

// dialect8 is MSNP8–9: lists addressed by e-mail, SYN with one version.
type dialect8 struct{ p Protocol }

func (d dialect8) protocol() Protocol { return d.p }
func (d dialect8) synArgs() []string  { return []string{"0"} }
func (d dialect8) hasPSM() bool       { return false }
func (d dialect8) hasMSNObject() bool { return d.p >= MSNP9 }
func (d dialect8) product() product   { return productMSN6 }
func (d dialect8) answerChallenge(chl string) string {
	return challengeMD5(chl, d.product())
}

func (d dialect8) synCounts(c *Command) (int, int, bool) {
	// SYN trid ver nContacts nGroups (a bare "SYN trid ver" when current).
	return synTail(c.Args, 2)
}

func synTail(args []string, first int) (int, int, bool) {
	if len(args) < first+2 {
		return 0, 0, len(args) >= first
	}
	n, err1 := strconv.Atoi(args[first])
	g, err2 := strconv.Atoi(args[first+1])
	if err1 != nil || err2 != nil || n < 0 || g < 0 {
		return 0, 0, false
	}
	return n, g, true
}

// LST email friendly bits [groups]
func (d dialect8) parseLST(c *Command) (Contact, error) {
	if len(c.Args) < 3 {
		return Contact{}, errBadLine(c)
	}
	bits, err := strconv.ParseUint(c.Args[2], 10, 8)
	if err != nil || !strings.Contains(c.Args[0], "@") {
		return Contact{}, errBadLine(c)
	}
	ct := Contact{Passport: Unescape(c.Args[0]), FriendlyName: Unescape(c.Args[1]), Lists: List(bits), Network: 1}
	if len(c.Args) > 3 {
		ct.Groups = splitGroups(c.Args[3])
	}
	return ct, nil
}

// LSG id name 0
func (d dialect8) parseLSG(c *Command) (Group, error) {
	if len(c.Args) < 2 {
		return Group{}, errBadLine(c)
	}
	return Group{ID: c.Args[0], Name: Unescape(c.Args[1])}, nil
}

func (d dialect8) addCmd(list List, passport, name string) (string, []string) {
	if list == FL {
		return "ADD", []string{list.String(), passport, Escape(name), "0"}
	}
	return "ADD", []string{list.String(), passport, passport}
}

func (d dialect8) remArgs(list List, ct *Contact, passport string) []string {
	return []string{list.String(), passport}
}

// ADD trid list ser email friendly [group]
func (d dialect8) parseAdded(c *Command) (List, string, string, string, bool) {
	if len(c.Args) < 5 {
		return 0, "", "", "", false
	}
	l, ok := parseList(c.Args[1])
	return l, Unescape(c.Args[3]), Unescape(c.Args[4]), "", ok
}

// REM trid list [ser] who [group]
func (d dialect8) parseRemoved(c *Command) (List, string, bool) {
	if len(c.Args) < 3 {
		return 0, "", false
	}
	l, ok := parseList(c.Args[1])
	who := c.Args[2]
	if len(c.Args) >= 4 {
		if _, isNum := parseUint32(c.Args[2]); isNum {
			who = c.Args[3]
		}
	}
	return l, Unescape(who), ok
}

func (d dialect8) setNameCmd(self, name string) (string, []string) {
	return "REA", []string{self, Escape(name)}
}

// dialect10 is MSNP10–12: contacts carry GUIDs; MSNP12 adds a network id.
type dialect10 struct{ dialect8 }

func (d dialect10) synArgs() []string { return []string{"0", "0"} }
func (d dialect10) hasPSM() bool      { return d.p >= MSNP11 }
func (d dialect10) product() product {
	if d.p >= MSNP11 {
		return productMSN7
	}
	return productMSN6
}

func (d dialect10) answerChallenge(chl string) string {
	if d.p >= MSNP11 {
		return challenge11(chl, d.product())
	}
	return challengeMD5(chl, d.product())
}

func (d dialect10) synCounts(c *Command) (int, int, bool) {
	// SYN trid ts1 ts2 nContacts nGroups
	return synTail(c.Args, 3)
}

// LST N=email F=friendly C=guid bits [network (12)] [groups]
func (d dialect10) parseLST(c *Command) (Contact, error) {
	ct := Contact{Network: 1}
	i := 0
	for ; i < len(c.Args); i++ {
		a := c.Args[i]
		switch {
		case strings.HasPrefix(a, "N="):
			ct.Passport = Unescape(a[2:])
		case strings.HasPrefix(a, "F="):
			ct.FriendlyName = Unescape(a[2:])
		case strings.HasPrefix(a, "C="):
			ct.GUID = a[2:]
		default:
			goto rest
		}
	}
rest:
	if ct.Passport == "" || i >= len(c.Args) {
		return Contact{}, errBadLine(c)
	}
	bits, err := strconv.ParseUint(c.Args[i], 10, 8)
	if err != nil {
		return Contact{}, errBadLine(c)
	}
	ct.Lists = List(bits)
	i++
	if d.p >= MSNP12 && i < len(c.Args) {
		if n, err := strconv.Atoi(c.Args[i]); err == nil && !strings.Contains(c.Args[i], "-") {
			ct.Network = n
			i++
		}
	}
	if i < len(c.Args) {
		ct.Groups = splitGroups(c.Args[i])
	}
	if ct.FriendlyName == "" {
		ct.FriendlyName = ct.Passport
	}
	return ct, nil
}

// LSG name guid
func (d dialect10) parseLSG(c *Command) (Group, error) {
	if len(c.Args) < 2 {
		return Group{}, errBadLine(c)
	}
	return Group{ID: c.Args[1], Name: Unescape(c.Args[0])}, nil
}

func (d dialect10) addCmd(list List, passport, name string) (string, []string) {
	if list == FL {
		return "ADC", []string{list.String(), "N=" + passport, "F=" + Escape(name)}
	}
	return "ADC", []string{list.String(), "N=" + passport}
}

func (d dialect10) remArgs(list List, ct *Contact, passport string) []string {
	if list == FL && ct != nil && ct.GUID != "" {
		return []string{list.String(), ct.GUID}
	}
	return []string{list.String(), passport}
}

// ADC trid list N=email [F=friendly] [C=guid]
func (d dialect10) parseAdded(c *Command) (List, string, string, string, bool) {
	if len(c.Args) < 3 {
		return 0, "", "", "", false
	}
	l, ok := parseList(c.Args[1])
	var who, name, guid string
	for _, a := range c.Args[2:] {
		switch {
		case strings.HasPrefix(a, "N="):
			who = Unescape(a[2:])
		case strings.HasPrefix(a, "F="):
			name = Unescape(a[2:])
		case strings.HasPrefix(a, "C="):
			guid = a[2:]
		}
	}
	return l, who, name, guid, ok && (who != "" || guid != "")
}

func (d dialect10) setNameCmd(self, name string) (string, []string) {
	return "PRP", []string{"MFN", Escape(name)}
}

func splitGroups(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func errBadLine(c *Command) error {
	return &ProtocolError{Line: cut(c.String()), Err: ErrMalformedLine}
}
