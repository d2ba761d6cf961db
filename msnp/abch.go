package msnp

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// On MSNP13+ the contact list lives in two SOAP services ("ABCH",
// FACTS.md §4.3): the Sharing service holds memberships (allow, block,
// reverse and pending lists) and the address book holds the forward list
// with groups. This file speaks both, plus the ADL/RML/FQY <ml> payloads
// that tell the NS which of those contacts the client cares about.

const (
	abNamespace = "http://www.msn.com/webservices/AddressBook"
	abActionNS  = "http://www.msn.com/webservices/AddressBook/"
	xsiNS       = "http://www.w3.org/2001/XMLSchema-instance"
	abZeroID    = "00000000-0000-0000-0000-000000000000"
	abEpoch     = "0001-01-01T00:00:00.0000000-08:00"

	// ABDefaultApplicationID is WLM 8.5's ABCH application id.
	ABDefaultApplicationID = "F6D2794D-501F-443A-ADBE-8F1490FF30FD"
)

// ABRole is a membership role in the Sharing service.
type ABRole string

// Membership roles; they are the MSNP list bits AL, BL, RL and PL.
const (
	ABRoleAllow   ABRole = "Allow"
	ABRoleBlock   ABRole = "Block"
	ABRoleReverse ABRole = "Reverse"
	ABRolePending ABRole = "Pending"
)

// PartnerScenario values real clients send; servers log them, Escargot
// ignores them.
const (
	ABScenarioInitial      = "Initial"
	ABScenarioContactSave  = "ContactSave"
	ABScenarioBlockUnblock = "BlockUnblock"
	ABScenarioTimer        = "Timer"
)

// ABService calls the Sharing and address-book services with the
// contacts.msn.com ticket. It is safe for concurrent use if HTTP is.
type ABService struct {
	SharingURL    string // e.g. https://m1.escargot.chat/abservice/SharingService.asmx
	ABURL         string // e.g. https://m1.escargot.chat/abservice/abservice.asmx
	Ticket        string // contacts.msn.com ticket, "t=…&p=…" (XML-escaped on the wire by encoding/xml)
	ApplicationID string // "" means ABDefaultApplicationID
	SOAP          SOAPClient
}

// NewABService returns an ABService for a server whose ABCH paths are
// Escargot's (/abservice/…) under baseURL, e.g. "https://m1.escargot.chat".
func NewABService(baseURL, ticket string, hc *http.Client) *ABService {
	base := strings.TrimRight(baseURL, "/")
	return &ABService{
		SharingURL: base + "/abservice/SharingService.asmx",
		ABURL:      base + "/abservice/abservice.asmx",
		Ticket:     ticket,
		SOAP:       SOAPClient{HTTP: hc},
	}
}

type abApplicationHeader struct {
	XMLName         xml.Name `xml:"http://www.msn.com/webservices/AddressBook ABApplicationHeader"`
	ApplicationID   string   `xml:"ApplicationId"`
	IsMigration     bool     `xml:"IsMigration"`
	PartnerScenario string   `xml:"PartnerScenario"`
}

type abAuthHeader struct {
	XMLName             xml.Name `xml:"http://www.msn.com/webservices/AddressBook ABAuthHeader"`
	ManagedGroupRequest bool     `xml:"ManagedGroupRequest"`
	TicketToken         string   `xml:"TicketToken"`
}

func (s *ABService) call(ctx context.Context, url, method, scenario string, body, result any) error {
	app := s.ApplicationID
	if app == "" {
		app = ABDefaultApplicationID
	}
	headers := []any{
		abApplicationHeader{ApplicationID: app, PartnerScenario: scenario},
		abAuthHeader{TicketToken: s.Ticket},
	}
	if err := s.SOAP.Call(ctx, url, abActionNS+method, headers, body, result); err != nil {
		return fmt.Errorf("msnp: ABCH %s: %w", method, err)
	}
	return nil
}

// --- FindMembership ---

type abFindMembershipRequest struct {
	XMLName      xml.Name `xml:"http://www.msn.com/webservices/AddressBook FindMembership"`
	ServiceTypes []string `xml:"serviceFilter>Types>ServiceType"`
}

type abFindMembershipResponse struct {
	Services []struct {
		Type        string `xml:"Info>Handle>Type"`
		Memberships []struct {
			Role    string        `xml:"MemberRole"`
			Members []abMemberXML `xml:"Members>Member"`
		} `xml:"Memberships>Membership"`
	} `xml:"FindMembershipResult>Services>Service"`
}

type abMemberXML struct {
	XSIType      string `xml:"http://www.w3.org/2001/XMLSchema-instance type,attr,omitempty"`
	MembershipID string `xml:"MembershipId,omitempty"`
	Type         string `xml:"Type"`
	DisplayName  string `xml:"DisplayName,omitempty"`
	State        string `xml:"State"`
	Deleted      string `xml:"Deleted,omitempty"`
	PassportName string `xml:"PassportName"`
	CID          string `xml:"CID,omitempty"`
}

// MarshalXML writes the member with a conventional xsi: prefix
// (encoding/xml would invent "_XMLSchema-instance"); servers such as
// Escargot read the attribute by its namespace, {xsi}type.
func (m abMemberXML) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	type plain abMemberXML
	p := plain(m)
	if p.XSIType != "" {
		start.Attr = append(start.Attr,
			xml.Attr{Name: xml.Name{Local: "xmlns:xsi"}, Value: xsiNS},
			xml.Attr{Name: xml.Name{Local: "xsi:type"}, Value: p.XSIType})
		p.XSIType = ""
	}
	return e.EncodeElement(p, start)
}

// ABMember is one passport on a membership list.
type ABMember struct {
	PassportName string
	DisplayName  string
	MembershipID string // Escargot: "<Role>/<contact uuid>"
	CID          string
	State        string // "Accepted" normally
}

// ABMemberships are the Messenger service's membership lists.
type ABMemberships struct {
	Allow   []ABMember
	Block   []ABMember
	Reverse []ABMember
	Pending []ABMember
}

// Role returns the members of one role.
func (m *ABMemberships) Role(r ABRole) []ABMember {
	switch r {
	case ABRoleAllow:
		return m.Allow
	case ABRoleBlock:
		return m.Block
	case ABRoleReverse:
		return m.Reverse
	case ABRolePending:
		return m.Pending
	}
	return nil
}

// FindMembership downloads the membership lists (call it after USR OK:
// Escargot only knows the ticket of a live NS session).
func (s *ABService) FindMembership(ctx context.Context) (*ABMemberships, error) {
	req := abFindMembershipRequest{ServiceTypes: []string{"Messenger", "Invitation", "SocialNetwork", "Space", "Profile"}}
	var resp abFindMembershipResponse
	if err := s.call(ctx, s.SharingURL, "FindMembership", ABScenarioInitial, req, &resp); err != nil {
		return nil, err
	}
	out := &ABMemberships{}
	for _, svc := range resp.Services {
		if svc.Type != "" && svc.Type != "Messenger" {
			continue
		}
		for _, ms := range svc.Memberships {
			for _, m := range ms.Members {
				if parseABBool(m.Deleted) || m.PassportName == "" {
					continue
				}
				member := ABMember{
					PassportName: strings.TrimSpace(m.PassportName),
					DisplayName:  m.DisplayName,
					MembershipID: m.MembershipID,
					CID:          m.CID,
					State:        m.State,
				}
				switch ABRole(strings.TrimSpace(ms.Role)) {
				case ABRoleAllow:
					out.Allow = append(out.Allow, member)
				case ABRoleBlock:
					out.Block = append(out.Block, member)
				case ABRoleReverse:
					out.Reverse = append(out.Reverse, member)
				case ABRolePending:
					out.Pending = append(out.Pending, member)
				}
			}
		}
	}
	return out, nil
}

// --- ABFindAll / ABFindContactsPaged ---

type abFindAllRequest struct {
	XMLName    xml.Name `xml:"http://www.msn.com/webservices/AddressBook ABFindAll"`
	ABID       string   `xml:"abId"`
	ABView     string   `xml:"abView"`
	DeltasOnly bool     `xml:"deltasOnly"`
	LastChange string   `xml:"lastChange"`
}

type abFindContactsPagedRequest struct {
	XMLName         xml.Name `xml:"http://www.msn.com/webservices/AddressBook ABFindContactsPaged"`
	ABView          string   `xml:"abView"`
	ExtendedContent string   `xml:"extendedContent"`
	DeltasOnly      bool     `xml:"filterOptions>DeltasOnly"`
	LastChanged     string   `xml:"filterOptions>LastChanged"`
}

type abGroupXML struct {
	GroupID string `xml:"groupId"`
	Name    string `xml:"groupInfo>name"`
	Deleted string `xml:"fDeleted"`
}

type abContactXML struct {
	ContactID string `xml:"contactId"`
	Info      struct {
		ContactType     string   `xml:"contactType"`
		QuickName       string   `xml:"quickName"`
		PassportName    string   `xml:"passportName"`
		DisplayName     string   `xml:"displayName"`
		IsMessengerUser string   `xml:"isMessengerUser"`
		GroupIDs        []string `xml:"groupIds>guid"`
		CID             string   `xml:"CID"`
		Annotations     []struct {
			Name  string `xml:"Name"`
			Value string `xml:"Value"`
		} `xml:"annotations>Annotation"`
	} `xml:"contactInfo"`
	Deleted string `xml:"fDeleted"`
}

// abResultXML is the body of ABFindAllResult and ABFindContactsPagedResult.
// Servers disagree on case (Escargot: groups/contacts in ABFindAll,
// Groups/Contacts in the paged result; other revival servers swap them),
// so both spellings are read.
type abResultXML struct {
	Groups        []abGroupXML   `xml:"groups>Group"`
	GroupsUpper   []abGroupXML   `xml:"Groups>Group"`
	Contacts      []abContactXML `xml:"contacts>Contact"`
	ContactsUpper []abContactXML `xml:"Contacts>Contact"`
	CircleTicket  string         `xml:"CircleResult>CircleTicket"`
}

type abFindAllResponse struct {
	Result abResultXML `xml:"ABFindAllResult"`
}

type abFindContactsPagedResponse struct {
	Result abResultXML `xml:"ABFindContactsPagedResult"`
}

// ABContact is an address-book entry (the forward list and yourself).
type ABContact struct {
	ContactID       string
	ContactType     string // "Me" for yourself, "Regular", "LivePending", …
	PassportName    string
	DisplayName     string
	QuickName       string
	IsMessengerUser bool
	GroupIDs        []string
	CID             string
	Annotations     map[string]string // e.g. MSN.IM.BLP on the Me contact
}

// ABGroup is a contact group.
type ABGroup struct {
	ID   string
	Name string
}

// ABAddressBook is the result of ABFindAll or ABFindContactsPaged.
type ABAddressBook struct {
	Contacts     []ABContact
	Groups       []ABGroup
	CircleTicket string // ABFindContactsPaged only
}

// Me returns the contactType Me entry, if present.
func (ab *ABAddressBook) Me() (ABContact, bool) {
	for _, c := range ab.Contacts {
		if c.ContactType == "Me" {
			return c, true
		}
	}
	return ABContact{}, false
}

func convertAB(r *abResultXML) *ABAddressBook {
	groups := append(r.Groups, r.GroupsUpper...)
	contacts := append(r.Contacts, r.ContactsUpper...)
	ab := &ABAddressBook{CircleTicket: strings.TrimSpace(r.CircleTicket)}
	for _, g := range groups {
		if parseABBool(g.Deleted) {
			continue
		}
		ab.Groups = append(ab.Groups, ABGroup{ID: strings.TrimSpace(g.GroupID), Name: g.Name})
	}
	for _, c := range contacts {
		if parseABBool(c.Deleted) {
			continue
		}
		ct := ABContact{
			ContactID:       strings.TrimSpace(c.ContactID),
			ContactType:     strings.TrimSpace(c.Info.ContactType),
			PassportName:    strings.TrimSpace(c.Info.PassportName),
			DisplayName:     c.Info.DisplayName,
			QuickName:       c.Info.QuickName,
			IsMessengerUser: parseABBool(c.Info.IsMessengerUser),
			CID:             strings.TrimSpace(c.Info.CID),
		}
		for _, g := range c.Info.GroupIDs {
			ct.GroupIDs = append(ct.GroupIDs, strings.TrimSpace(g))
		}
		if len(c.Info.Annotations) > 0 {
			ct.Annotations = make(map[string]string, len(c.Info.Annotations))
			for _, a := range c.Info.Annotations {
				ct.Annotations[a.Name] = a.Value
			}
		}
		ab.Contacts = append(ab.Contacts, ct)
	}
	return ab
}

// FindAll downloads the whole address book (MSNP13–17 clients). Escargot
// refuses delta syncs, so this always asks for everything.
func (s *ABService) FindAll(ctx context.Context) (*ABAddressBook, error) {
	req := abFindAllRequest{ABID: abZeroID, ABView: "Full", LastChange: abEpoch}
	var resp abFindAllResponse
	if err := s.call(ctx, s.ABURL, "ABFindAll", ABScenarioInitial, req, &resp); err != nil {
		return nil, err
	}
	return convertAB(&resp.Result), nil
}

// FindContactsPaged downloads the whole address book the WLM 2009
// (MSNP18) way; the result also carries the circle ticket.
func (s *ABService) FindContactsPaged(ctx context.Context) (*ABAddressBook, error) {
	req := abFindContactsPagedRequest{ABView: "Full", ExtendedContent: "AB AllGroups CircleResult", LastChanged: abEpoch}
	var resp abFindContactsPagedResponse
	if err := s.call(ctx, s.ABURL, "ABFindContactsPaged", ABScenarioInitial, req, &resp); err != nil {
		return nil, err
	}
	return convertAB(&resp.Result), nil
}

// --- ABContactAdd / ABContactDelete ---

type abContactAddRequest struct {
	XMLName  xml.Name            `xml:"http://www.msn.com/webservices/AddressBook ABContactAdd"`
	ABID     string              `xml:"abId"`
	Contacts []abContactAddEntry `xml:"contacts>Contact"`
	Options  struct {
		EnableAllowListManagement bool `xml:"EnableAllowListManagement"`
	} `xml:"options"`
}

type abContactAddEntry struct {
	Info struct {
		ContactType     string `xml:"contactType"`
		PassportName    string `xml:"passportName"`
		IsMessengerUser bool   `xml:"isMessengerUser"`
		DisplayName     string `xml:"MessengerMemberInfo>DisplayName,omitempty"`
	} `xml:"contactInfo"`
}

type abContactAddResponse struct {
	GUID string `xml:"ABContactAddResult>guid"`
}

// ContactAdd adds passport to the address book (the forward list) and
// returns the new contact id. displayName may be empty.
func (s *ABService) ContactAdd(ctx context.Context, passport, displayName string) (string, error) {
	if passport == "" {
		return "", errors.New("msnp: ABContactAdd: empty passport")
	}
	req := abContactAddRequest{ABID: abZeroID}
	var e abContactAddEntry
	e.Info.ContactType = "LivePending"
	e.Info.PassportName = passport
	e.Info.IsMessengerUser = true
	e.Info.DisplayName = displayName
	req.Contacts = []abContactAddEntry{e}
	req.Options.EnableAllowListManagement = true
	var resp abContactAddResponse
	if err := s.call(ctx, s.ABURL, "ABContactAdd", ABScenarioContactSave, req, &resp); err != nil {
		return "", err
	}
	return strings.TrimSpace(resp.GUID), nil
}

type abContactDeleteRequest struct {
	XMLName    xml.Name `xml:"http://www.msn.com/webservices/AddressBook ABContactDelete"`
	ABID       string   `xml:"abId"`
	ContactIDs []string `xml:"contacts>Contact>contactId"`
}

// ContactDelete removes contacts from the address book by contact id.
func (s *ABService) ContactDelete(ctx context.Context, contactIDs ...string) error {
	if len(contactIDs) == 0 {
		return errors.New("msnp: ABContactDelete: no contact ids")
	}
	req := abContactDeleteRequest{ABID: abZeroID, ContactIDs: contactIDs}
	return s.call(ctx, s.ABURL, "ABContactDelete", ABScenarioTimer, req, nil)
}

type abContactUpdateRequest struct {
	XMLName  xml.Name               `xml:"http://www.msn.com/webservices/AddressBook ABContactUpdate"`
	ABID     string                 `xml:"abId"`
	Contacts []abContactUpdateEntry `xml:"contacts>Contact"`
}

type abContactUpdateEntry struct {
	Info struct {
		ContactType string `xml:"contactType"`
		DisplayName string `xml:"displayName"`
	} `xml:"contactInfo"`
	PropertiesChanged string `xml:"propertiesChanged"`
}

// UpdateMyDisplayName roams your own friendly name through the address
// book (ABContactUpdate on the contactType Me entry), as MSNP13+ clients
// do alongside PRP MFN.
func (s *ABService) UpdateMyDisplayName(ctx context.Context, name string) error {
	var me abContactUpdateEntry
	me.Info.ContactType = "Me"
	me.Info.DisplayName = name
	me.PropertiesChanged = "DisplayName"
	req := abContactUpdateRequest{ABID: abZeroID, Contacts: []abContactUpdateEntry{me}}
	return s.call(ctx, s.ABURL, "ABContactUpdate", ABScenarioTimer, req, nil)
}

// --- AddMember / DeleteMember ---

type abServiceHandle struct {
	ID        string `xml:"Id"`
	Type      string `xml:"Type"`
	ForeignID string `xml:"ForeignId"`
}

type abMembershipChange struct {
	Role    string        `xml:"MemberRole"`
	Members []abMemberXML `xml:"Members>Member"`
}

type abAddMemberRequest struct {
	XMLName     xml.Name             `xml:"http://www.msn.com/webservices/AddressBook AddMember"`
	Handle      abServiceHandle      `xml:"serviceHandle"`
	Memberships []abMembershipChange `xml:"memberships>Membership"`
}

type abDeleteMemberRequest struct {
	XMLName     xml.Name             `xml:"http://www.msn.com/webservices/AddressBook DeleteMember"`
	Handle      abServiceHandle      `xml:"serviceHandle"`
	Memberships []abMembershipChange `xml:"memberships>Membership"`
}

func abMembership(role ABRole, passport string) ([]abMembershipChange, error) {
	switch role {
	case ABRoleAllow, ABRoleBlock, ABRoleReverse, ABRolePending:
	default:
		return nil, fmt.Errorf("msnp: unknown membership role %q", role)
	}
	if passport == "" {
		return nil, errors.New("msnp: empty passport")
	}
	return []abMembershipChange{{
		Role: string(role),
		Members: []abMemberXML{{
			XSIType: "PassportMember", Type: "Passport", State: "Accepted", PassportName: passport,
		}},
	}}, nil
}

// AddMember puts passport on a membership list (Allow or Block, usually).
func (s *ABService) AddMember(ctx context.Context, role ABRole, passport string) error {
	ms, err := abMembership(role, passport)
	if err != nil {
		return err
	}
	req := abAddMemberRequest{Handle: abServiceHandle{ID: "0", Type: "Messenger"}, Memberships: ms}
	return s.call(ctx, s.SharingURL, "AddMember", ABScenarioBlockUnblock, req, nil)
}

// DeleteMember takes passport off a membership list. membershipID is the
// member's MembershipId from FindMembership ("" if unknown): some Escargot
// versions find the member only by it ("<Role>/<contact uuid>").
func (s *ABService) DeleteMember(ctx context.Context, role ABRole, passport, membershipID string) error {
	ms, err := abMembership(role, passport)
	if err != nil {
		return err
	}
	ms[0].Members[0].MembershipID = membershipID
	req := abDeleteMemberRequest{Handle: abServiceHandle{ID: "0", Type: "Messenger"}, Memberships: ms}
	return s.call(ctx, s.SharingURL, "DeleteMember", ABScenarioBlockUnblock, req, nil)
}

func parseABBool(s string) bool {
	s = strings.TrimSpace(s)
	return s == "true" || s == "1"
}

// --- ADL / RML / FQY payloads ---

// MLList is the list bit set of an <ml> entry: the contact list's List.
type MLList = List

// The list bits under their <ml> names. Clients may send only forward,
// allow and block; reverse and pending arrive from the server.
const (
	MLForward = FL
	MLAllow   = AL
	MLBlock   = BL
	MLReverse = RL
	MLPending = PL
)

// Network types of an <ml> entry (the t attribute).
const (
	MLNetworkPassport = 1
	MLNetworkLCS      = 2
	MLNetworkPhone    = 4
	MLNetworkMNI      = 8
	MLNetworkCircle   = 9
	MLNetworkSMTP     = 16
	MLNetworkYahoo    = 32
)

// MLEntry is one contact in an ADL/RML/FQY payload.
type MLEntry struct {
	Email        string // local@domain
	Lists        MLList
	Network      int    // t; 0 is sent as 1 (Passport)
	FriendlyName string // f, decoded; only in server notifications
}

type mlXML struct {
	XMLName xml.Name   `xml:"ml"`
	L       string     `xml:"l,attr,omitempty"`
	Domains []mlDomain `xml:"d"`
}

type mlDomain struct {
	N        string      `xml:"n,attr"`
	Contacts []mlContact `xml:"c"`
}

type mlContact struct {
	N string `xml:"n,attr"`
	L string `xml:"l,attr,omitempty"`
	T string `xml:"t,attr,omitempty"`
	F string `xml:"f,attr,omitempty"`
}

// MLMaxPayload is the largest ADL payload real servers were said to take;
// BuildADLChunks splits below it.
const MLMaxPayload = 7500

// BuildADL builds an ADL payload, grouping contacts by domain. initial
// marks the login-time full list (<ml l="1">). Reverse or pending bits are
// an error: servers disconnect for them.
func BuildADL(entries []MLEntry, initial bool) ([]byte, error) {
	l := ""
	if initial {
		l = "1"
	}
	return buildML(l, entries, true)
}

// BuildRML builds an RML payload removing the given list bits.
func BuildRML(entries []MLEntry) ([]byte, error) { return buildML("", entries, true) }

// BuildFQY builds an FQY (network query) payload: <ml l="2"> with bare
// contacts.
func BuildFQY(emails []string) ([]byte, error) {
	entries := make([]MLEntry, len(emails))
	for i, e := range emails {
		entries[i] = MLEntry{Email: e}
	}
	return buildML("2", entries, false)
}

// BuildADLChunks is BuildADL split into payloads of at most maxBytes
// (MLMaxPayload if 0). With initial, every chunk carries l="1": each is
// part of the login-time list, as bitlbee sends it.
func BuildADLChunks(entries []MLEntry, initial bool, maxBytes int) ([][]byte, error) {
	if maxBytes <= 0 {
		maxBytes = MLMaxPayload
	}
	var out [][]byte
	start := 0
	for start < len(entries) {
		// Grow the chunk one entry at a time; payloads are small, so the
		// quadratic worst case stays cheap for real list sizes.
		end := start + 1
		payload, err := BuildADL(entries[start:end], initial)
		if err != nil {
			return nil, err
		}
		if len(payload) > maxBytes {
			return nil, fmt.Errorf("msnp: ADL entry %q alone exceeds %d bytes", entries[start].Email, maxBytes)
		}
		for end < len(entries) {
			next, err := BuildADL(entries[start:end+1], initial)
			if err != nil {
				return nil, err
			}
			if len(next) > maxBytes {
				break
			}
			payload = next
			end++
		}
		out = append(out, payload)
		start = end
	}
	return out, nil
}

func buildML(l string, entries []MLEntry, withBits bool) ([]byte, error) {
	if len(entries) == 0 {
		return nil, errors.New("msnp: empty contact list payload")
	}
	doc := mlXML{L: l}
	index := map[string]int{}
	for _, e := range entries {
		local, domain, ok := strings.Cut(e.Email, "@")
		if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
			return nil, fmt.Errorf("msnp: invalid address %q in contact list payload", e.Email)
		}
		c := mlContact{N: local}
		if withBits {
			if e.Lists&(MLReverse|MLPending) != 0 || e.Lists&^(MLForward|MLAllow|MLBlock) != 0 {
				return nil, fmt.Errorf("msnp: list bits %d for %s: a client may only send FL, AL and BL", e.Lists, e.Email)
			}
			if e.Lists == 0 {
				return nil, fmt.Errorf("msnp: no list bits for %s", e.Email)
			}
			t := e.Network
			if t == 0 {
				t = MLNetworkPassport
			}
			c.L = strconv.Itoa(int(e.Lists))
			c.T = strconv.Itoa(t)
		}
		i, ok := index[domain]
		if !ok {
			i = len(doc.Domains)
			index[domain] = i
			doc.Domains = append(doc.Domains, mlDomain{N: domain})
		}
		doc.Domains[i].Contacts = append(doc.Domains[i].Contacts, c)
	}
	var buf bytes.Buffer
	if err := xml.NewEncoder(&buf).Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseML parses an <ml> payload: the server's `ADL 0` / `RML 0`
// notifications (someone added or removed you; f is the URL-encoded
// friendly name) and FQY replies.
func ParseML(payload []byte) ([]MLEntry, error) {
	var doc mlXML
	d := xml.NewDecoder(bytes.NewReader(payload))
	if err := d.Decode(&doc); err != nil {
		return nil, fmt.Errorf("msnp: bad <ml> payload: %w", err)
	}
	var out []MLEntry
	for _, dom := range doc.Domains {
		if dom.N == "" {
			return nil, errors.New("msnp: <ml> domain without a name")
		}
		for _, c := range dom.Contacts {
			if c.N == "" {
				return nil, fmt.Errorf("msnp: <ml> contact without a name in %s", dom.N)
			}
			e := MLEntry{Email: c.N + "@" + dom.N, FriendlyName: strings.ToValidUTF8(Unescape(c.F), "\uFFFD")}
			if c.L != "" {
				n, err := strconv.Atoi(strings.TrimSpace(c.L))
				if err != nil || n < 0 || n > 0xff {
					return nil, fmt.Errorf("msnp: <ml> bad list bits %q for %s", c.L, e.Email)
				}
				e.Lists = MLList(n)
			}
			if c.T != "" {
				n, err := strconv.Atoi(strings.TrimSpace(c.T))
				if err != nil || n < 0 || n > 0xffff {
					return nil, fmt.Errorf("msnp: <ml> bad network type %q for %s", c.T, e.Email)
				}
				e.Network = n
			}
			out = append(out, e)
		}
	}
	return out, nil
}
