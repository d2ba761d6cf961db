package msnptest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The address-book services of MSNP13+ (FACTS.md §4.3), backed by the
// same accounts and lists the NS uses. As on Escargot the caller is known
// only by the 20-hex token in TicketToken, which must belong to a live NS
// session, and the method is the body's first element (SOAPAction is not
// checked).

const abNS = "http://www.msn.com/webservices/AddressBook"

// abRequest holds what any of the handled methods may carry.
type abRequest struct {
	Ticket string `xml:"Header>ABAuthHeader>TicketToken"`
	Body   struct {
		Inner []byte `xml:",innerxml"`
	} `xml:"Body"`
}

type abMember struct {
	MembershipID string `xml:"MembershipId"`
	PassportName string `xml:"PassportName"`
}

type abMembershipReq struct {
	Role    string     `xml:"MemberRole"`
	Members []abMember `xml:"Members>Member"`
}

type abMethod struct {
	XMLName     xml.Name
	DeltasOnly  string            `xml:"deltasOnly"`
	DeltasOnly2 string            `xml:"filterOptions>DeltasOnly"`
	Passports   []string          `xml:"contacts>Contact>contactInfo>passportName"`
	ContactIDs  []string          `xml:"contacts>Contact>contactId"`
	AllowMgmt   string            `xml:"options>EnableAllowListManagement"`
	Memberships []abMembershipReq `xml:"memberships>Membership"`
	MeNames     []string          `xml:"contacts>Contact>contactInfo>displayName"`
}

func (s *Server) handleABCH(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var env abRequest
	if err := xml.Unmarshal(raw, &env); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var m abMethod
	if err := xml.Unmarshal(bytes.TrimSpace(env.Body.Inner), &m); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	tok := strings.TrimSpace(env.Ticket)
	tok = strings.TrimPrefix(tok, "t=")
	if len(tok) > 20 {
		tok = tok[:20]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var sess *nsConn
	for c := range s.conns {
		if !c.dead && c.acct != nil && c.tok == tok && tok != "" {
			sess = c
			break
		}
	}
	if sess == nil {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if m.DeltasOnly == "true" || m.DeltasOnly2 == "true" {
		abFault(w, "FullSyncRequired", "Full sync required.  Details: Delta syncs disabled.")
		return
	}
	a := sess.acct
	method := m.XMLName.Local
	var body string
	switch method {
	case "FindMembership":
		body = s.findMembership(a)
	case "ABFindAll", "ABFindContactsPaged":
		body = s.abFind(a, method)
	case "ABContactAdd":
		var ids []string
		for _, p := range m.Passports {
			b := s.accounts[key(p)]
			if b == nil {
				abFault(w, "InvalidPassportUser", "Invalid passport user: "+p)
				return
			}
			bits := listFL
			if m.AllowMgmt == "true" {
				bits |= listAL
			}
			sess.listAdd(b, bits)
			ids = append(ids, b.uuid)
		}
		body = "<ABContactAddResult><guid>" + strings.Join(ids, "") + "</guid></ABContactAddResult>"
	case "ABContactDelete":
		for _, id := range m.ContactIDs {
			for _, b := range s.accounts {
				if b.uuid == strings.TrimSpace(id) {
					sess.listRemove(b, listFL)
				}
			}
		}
	case "ABContactUpdate":
		if len(m.MeNames) > 0 && m.MeNames[0] != "" {
			a.name = m.MeNames[0]
		}
	case "AddMember", "DeleteMember":
		for _, ms := range m.Memberships {
			bit := map[string]int{"Allow": listAL, "Block": listBL, "Reverse": listRL, "Pending": listPL}[ms.Role]
			if bit == 0 {
				abFault(w, "BadArgument", "unknown role "+ms.Role)
				return
			}
			for _, mem := range ms.Members {
				b := s.accounts[key(mem.PassportName)]
				if b == nil && mem.MembershipID != "" {
					_, id, _ := strings.Cut(mem.MembershipID, "/")
					for _, x := range s.accounts {
						if x.uuid == id {
							b = x
						}
					}
				}
				if b == nil {
					abFault(w, "MemberDoesNotExist", "no such member")
					return
				}
				if method == "AddMember" {
					sess.listAdd(b, bit&(listAL|listBL))
				} else if bit == listPL {
					if ct := a.contacts[key(b.email)]; ct != nil {
						ct.pending = false
					}
				} else {
					sess.listRemove(b, bit&(listAL|listBL))
				}
			}
		}
	default:
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soap:Body><%sResponse xmlns="%s">%s</%sResponse></soap:Body></soap:Envelope>`, method, abNS, body, method)
}

func abFault(w http.ResponseWriter, code, text string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>%s</faultstring><detail><errorcode xmlns="%s">%s</errorcode></detail></soap:Fault></soap:Body></soap:Envelope>`, xmlEscape(text), abNS, code)
}

// findMembership lists a's Allow, Block, Reverse and Pending members;
// pending contacts are left out of the other three, as on Escargot.
func (s *Server) findMembership(a *account) string {
	roles := []struct {
		name string
		bit  int
	}{{"Allow", listAL}, {"Block", listBL}, {"Reverse", listRL}, {"Pending", listPL}}
	var sb strings.Builder
	sb.WriteString("<FindMembershipResult><Services><Service><Memberships>")
	for _, r := range roles {
		sb.WriteString("<Membership><MemberRole>" + r.name + "</MemberRole><Members>")
		for _, k := range a.order {
			ct := a.contacts[k]
			in := ct.lists&r.bit != 0 && !ct.pending
			if r.bit == listPL {
				in = ct.pending
			}
			if !in {
				continue
			}
			b := s.accounts[k]
			fmt.Fprintf(&sb, `<Member xsi:type="PassportMember"><MembershipId>%s/%s</MembershipId><Type>Passport</Type><DisplayName>%s</DisplayName><State>Accepted</State><Deleted>false</Deleted><PassportName>%s</PassportName><CID>%s</CID></Member>`,
				r.name, b.uuid, xmlEscape(b.name), xmlEscape(b.email), cid(b.uuid))
		}
		sb.WriteString("</Members></Membership>")
	}
	sb.WriteString("</Memberships><Info><Handle><Id>1</Id><Type>Messenger</Type></Handle></Info></Service></Services></FindMembershipResult>")
	return sb.String()
}

// abFind is the address book: the Me contact, then every FL contact.
func (s *Server) abFind(a *account, method string) string {
	groups, contacts := "groups", "contacts"
	if method == "ABFindContactsPaged" {
		groups, contacts = "Groups", "Contacts"
	}
	var sb strings.Builder
	sb.WriteString("<" + method + "Result><" + groups + "></" + groups + "><" + contacts + ">")
	blp := "1"
	if a.blp == "BL" {
		blp = "2"
	}
	fmt.Fprintf(&sb, `<Contact><contactId>%s</contactId><contactInfo><annotations><Annotation><Name>MSN.IM.BLP</Name><Value>%s</Value></Annotation><Annotation><Name>MSN.IM.MPOP</Name><Value>1</Value></Annotation></annotations><contactType>Me</contactType><quickName>%s</quickName><passportName>%s</passportName><displayName>%s</displayName><isMessengerUser>true</isMessengerUser><CID>%s</CID></contactInfo><fDeleted>false</fDeleted></Contact>`,
		a.uuid, blp, xmlEscape(a.name), xmlEscape(a.email), xmlEscape(a.name), cid(a.uuid))
	for _, k := range a.order {
		if a.contacts[k].lists&listFL == 0 {
			continue
		}
		b := s.accounts[k]
		fmt.Fprintf(&sb, `<Contact><contactId>%s</contactId><contactInfo><contactType>Regular</contactType><quickName>%s</quickName><passportName>%s</passportName><displayName>%s</displayName><isMessengerUser>true</isMessengerUser><CID>%s</CID></contactInfo><fDeleted>false</fDeleted></Contact>`,
			b.uuid, xmlEscape(b.name), xmlEscape(b.email), xmlEscape(b.name), cid(b.uuid))
	}
	sb.WriteString("</" + contacts + ">")
	if method == "ABFindContactsPaged" {
		sb.WriteString("<CircleResult><CircleTicket>&lt;SignedTicket/&gt;</CircleTicket></CircleResult>")
	}
	sb.WriteString("</" + method + "Result>")
	return sb.String()
}

// listAdd puts b on bits of the session's account, with what follows:
// adding FL puts the account on b's RL (pending) and tells b's endpoints.
// Called with s.mu held.
func (c *nsConn) listAdd(b *account, bits int) {
	a := c.acct
	if bits == 0 {
		return
	}
	old := a.contacts[key(b.email)]
	wasFL := old != nil && old.lists&listFL != 0
	ct := a.setLists(b, bits)
	if bits&(listAL|listBL) != 0 {
		ct.pending = false
	}
	if bits&listBL != 0 {
		a.clearLists(b, listAL)
	} else if bits&listAL != 0 {
		a.clearLists(b, listBL)
	}
	if bits&listFL != 0 && !wasFL {
		bc := b.setLists(a, listRL)
		if bc.lists&(listAL|listBL) == 0 {
			bc.pending = true
		}
		for _, bs := range c.s.endpoints(key(b.email)) {
			bs.addedMe(a)
		}
	}
	c.s.refreshWatchers(a)
}

// listRemove takes b off bits of the session's account.
func (c *nsConn) listRemove(b *account, bits int) {
	a := c.acct
	ct := a.contacts[key(b.email)]
	if ct == nil {
		return
	}
	wasFL := ct.lists&listFL != 0
	a.clearLists(b, bits)
	if bits&listFL != 0 && wasFL {
		delete(c.seen, key(b.email))
		b.clearLists(a, listRL)
		if bc := b.contacts[key(a.email)]; bc != nil && bc.lists&listRL == 0 {
			bc.pending = false
		}
		for _, bs := range c.s.endpoints(key(b.email)) {
			bs.removedMe(a)
		}
	}
	c.s.refreshWatchers(a)
}
