package msnp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MSNP15–18 (FACTS.md §2.3, §4.3, §5.3): SSO login, the contact list in
// the address book (ABCH SOAP) announced to the NS with ADL, presence
// names with a network id, and on 16+ several endpoints of one account
// signed in side by side (MPOP), told apart by the machine GUID.

var (
	productMSN8    = product{"PROD01065C%ZFN6F", "O4BG@C7BWLYQX?5G"} // MSNP13–14
	productWLM85   = product{"PROD0119GSJUC$18", "ILTXC!4IXB5FB*PX"} // MSNP15–17
	productWLM2009 = product{"PROD0120PW!CCV9@", "C1BX{V4W}Q3*10SM"} // MSNP18
)

// dialect15 is MSNP13–18 (13 and 14 log in with Tweener, and keep the
// list in the address book already).
type dialect15 struct{ dialect10 }

func (d dialect15) hasPSM() bool { return true }
func (d dialect15) product() product {
	switch {
	case d.p >= MSNP18:
		return productWLM2009
	case d.p >= MSNP15:
		return productWLM85
	}
	return productMSN8
}
func (d dialect15) answerChallenge(chl string) string { return challenge11(chl, d.product()) }

// usesABCH reports whether the contact list lives in the address book
// (MSNP13+) rather than in SYN.
func usesABCH(p Protocol) bool { return p >= MSNP13 }

// EndpointID is how this client names itself to a switchboard (USR, ANS):
// "email;{GUID}" on MSNP16+, where one account may have several
// endpoints, and the plain e-mail address below.
func (c *Client) EndpointID() string {
	if c.Protocol() >= MSNP16 {
		return FormatEndpoint(c.passport, c.machineGUID)
	}
	return c.passport
}

// MachineGUID returns the GUID this client signs in with on MSNP16+, in
// the braced upper-case form ("{…}"). Store it per login and pass it back in
// Config.MachineGUID, so that the account's other clients see one stable
// endpoint rather than a new one at every reconnect.
func (c *Client) MachineGUID() string { return c.machineGUID }

// staleTokensError is an authentication failure with cached SSO tokens:
// Connect retries it once with fresh ones.
type staleTokensError struct{ err error }

func (e *staleTokensError) Error() string { return e.err.Error() }
func (e *staleTokensError) Unwrap() error { return e.err }

// loginSSO runs USR SSO I/S (FACTS.md §2.3).
func (c *Client) loginSSO(ctx context.Context, cn *conn) error {
	p := cn.d.protocol()
	r, err := cn.request(ctx, "USR", nil, "SSO", "I", c.passport)
	if err != nil {
		return err
	}
	// USR trid SSO S policy nonce
	if r.Arg(1) != "SSO" || r.Arg(2) != "S" || r.Arg(4) == "" {
		return &ProtocolError{Line: cut(Redact(r)), Err: errors.New("unexpected USR reply")}
	}
	c.sso.Request.Policy = r.Arg(3)
	cached := !c.sso.RenewAt().IsZero()
	tokens, err := c.sso.Tokens(ctx)
	if err != nil {
		return err
	}
	ticket, mbi, err := SSOLoginArgs(tokens, r.Arg(4))
	if err != nil {
		return err
	}
	args := []string{"SSO", "S", ticket, mbi}
	if p >= MSNP16 {
		args = append(args, c.machineGUID)
	}
	cn.mu.Lock()
	cn.tokens = tokens
	cn.mu.Unlock()
	r, err = cn.request(ctx, "USR", nil, args...)
	if err != nil {
		if errors.Is(err, ErrAuthentication) {
			// The tokens may be what the server refused (it restarted,
			// or revoked them): fetch new ones, and if these were cached,
			// have Connect try once more before calling it a wrong
			// password.
			c.sso.Invalidate()
			if cached {
				return &staleTokensError{err}
			}
		}
		return err
	}
	if r.Arg(1) != "OK" {
		return &ProtocolError{Line: cut(Redact(r)), Err: errors.New("unexpected USR reply")}
	}
	return nil
}

// sessionTokens are the SSO tokens the connection logged in with.
// Escargot knows a SOAP caller only by the token of a live NS session, so
// the services are called with these rather than with renewed ones; the
// token cache renews before a login when they near expiry.
func (cn *conn) sessionTokens() (*SSOTokens, error) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.tokens == nil {
		return nil, fmt.Errorf("%w: no SSO session", ErrUnsupported)
	}
	return cn.tokens, nil
}

// abService returns the address-book client for the connection.
func (c *Client) abService(cn *conn) (*ABService, error) {
	tokens, err := cn.sessionTokens()
	if err != nil {
		return nil, err
	}
	t, ok := tokens.Get(SSOAddressContacts)
	if !ok {
		return nil, &SSOAuthError{Reason: "no " + SSOAddressContacts + " ticket"}
	}
	return NewABService(c.soapBase(), t.Ticket, c.cfg.httpClient()), nil
}

func (c *Client) soapBase() string {
	if c.cfg.SOAPBaseURL != "" {
		return c.cfg.SOAPBaseURL
	}
	// Escargot serves login and SOAP on one host.
	for _, s := range []string{c.cfg.RSTURL, c.cfg.LoginURL, c.cfg.NexusURL} {
		if u, err := url.Parse(s); err == nil && s != "" {
			return u.Scheme + "://" + u.Host
		}
	}
	return ""
}

// tweenerTokens makes an MSNP13/14 session's Tweener ticket the token
// set the SOAP services are called with: Escargot knows the caller by the
// same 20-character token either way.
func tweenerTokens(ticket string) *SSOTokens {
	t := ticket
	if !strings.HasPrefix(t, "t=") {
		t = "t=" + t + "&p="
	}
	set := &SSOTokens{Tokens: map[string]SSOToken{}, Received: time.Now()}
	for _, a := range []string{SSOAddressMessengerClear, SSOAddressContacts} {
		set.Tokens[a] = SSOToken{Address: a, Ticket: t, Expires: time.Now().Add(SSODefaultLifetime)}
	}
	return set
}

// syncAB downloads memberships and the address book, builds the contact
// list callers see from Contacts, and sends BLP and the initial ADL.
func (c *Client) syncAB(ctx context.Context, cn *conn) error {
	ab, err := c.abService(cn)
	if err != nil {
		return err
	}
	mem, err := ab.FindMembership(ctx)
	if err != nil {
		return err
	}
	var book *ABAddressBook
	if cn.d.protocol() >= MSNP18 {
		book, err = ab.FindContactsPaged(ctx)
	} else {
		book, err = ab.FindAll(ctx)
	}
	if err != nil {
		return err
	}
	blp := "AL"
	var added []AddedBy
	c.mu.Lock()
	for _, g := range book.Groups {
		c.groups[g.ID] = Group(g)
	}
	for _, x := range book.Contacts {
		if x.ContactType == "Me" {
			if x.DisplayName != "" {
				c.friendlyName = x.DisplayName
			}
			if x.Annotations["MSN.IM.BLP"] == "0" {
				blp = "BL"
			}
			continue
		}
		if x.PassportName == "" || !x.IsMessengerUser || validPassport(x.PassportName) != nil {
			continue
		}
		ct := c.contactLocked(x.PassportName)
		ct.Lists |= FL
		ct.GUID = x.ContactID
		ct.Groups = x.GroupIDs
		if x.DisplayName != "" {
			ct.FriendlyName = x.DisplayName
		}
	}
	for _, role := range []struct {
		r ABRole
		l List
	}{{ABRoleAllow, AL}, {ABRoleBlock, BL}, {ABRoleReverse, RL}, {ABRolePending, PL | RL}} {
		for _, m := range mem.Role(role.r) {
			if validPassport(m.PassportName) != nil {
				continue
			}
			ct := c.contactLocked(m.PassportName)
			ct.Lists |= role.l
			if ct.Lists&FL == 0 && m.DisplayName != "" {
				ct.FriendlyName = m.DisplayName
			}
		}
	}
	var entries []MLEntry
	for _, ct := range c.contacts {
		if ct.Lists&PL != 0 {
			added = append(added, AddedBy{Passport: ct.Passport, Name: ct.FriendlyName})
		}
		if bits := ct.Lists & (FL | AL | BL); bits != 0 {
			entries = append(entries, MLEntry{Email: ct.Passport, Lists: bits, Network: MLNetworkPassport})
		}
	}
	c.blp = blp
	c.mu.Unlock()
	for _, ev := range added {
		if err := c.emit(ev); err != nil {
			return err
		}
	}
	if _, err := cn.request(ctx, "BLP", nil, blp); err != nil {
		return err
	}
	chunks, err := BuildADLChunks(entries, true, 0)
	if err != nil {
		return err
	}
	if len(chunks) == 0 {
		chunks = [][]byte{[]byte(`<ml l="1"></ml>`)}
	}
	for _, ch := range chunks {
		if _, err := cn.requestPayload(ctx, "ADL", ch, nil); err != nil {
			return err
		}
	}
	return nil
}

// abAdd puts passport on list through the address book, then tells the
// NS with ADL.
func (c *Client) abAdd(ctx context.Context, cn *conn, list List, passport string) error {
	if c.onList(passport, list) {
		return fmt.Errorf("msnp: %s is already on %s: %w", passport, list, &ServerError{Code: ErrAlreadyOnList})
	}
	ab, err := c.abService(cn)
	if err != nil {
		return err
	}
	var guid string
	switch list {
	case FL:
		guid, err = ab.ContactAdd(ctx, passport, "")
	case AL:
		err = ab.AddMember(ctx, ABRoleAllow, passport)
	case BL:
		err = ab.AddMember(ctx, ABRoleBlock, passport)
	default:
		return fmt.Errorf("msnp: cannot add to %s", list)
	}
	if err != nil {
		return err
	}
	payload, err := BuildADL([]MLEntry{{Email: passport, Lists: list, Network: MLNetworkPassport}}, false)
	if err != nil {
		return err
	}
	if _, err := cn.requestPayload(ctx, "ADL", payload, nil); err != nil {
		return err
	}
	c.mu.Lock()
	ct := c.contactLocked(passport)
	ct.Lists |= list
	if guid != "" {
		ct.GUID = guid
	}
	c.mu.Unlock()
	return nil
}

// abRemove takes passport off list through the address book and RML.
func (c *Client) abRemove(ctx context.Context, cn *conn, list List, passport string) error {
	var guid string
	c.mu.Lock()
	ct := c.contacts[strings.ToLower(passport)]
	on := ct != nil && ct.Lists&list != 0
	if ct != nil {
		guid = ct.GUID
	}
	c.mu.Unlock()
	if !on || (list == FL && guid == "") {
		return fmt.Errorf("msnp: %s is not on %s: %w", passport, list, &ServerError{Code: ErrNotOnList})
	}
	ab, err := c.abService(cn)
	if err != nil {
		return err
	}
	switch list {
	case FL:
		err = ab.ContactDelete(ctx, guid)
	case AL:
		err = ab.DeleteMember(ctx, ABRoleAllow, passport, "")
	case BL:
		err = ab.DeleteMember(ctx, ABRoleBlock, passport, "")
	default:
		return fmt.Errorf("msnp: cannot remove from %s", list)
	}
	if err != nil {
		return err
	}
	payload, err := BuildRML([]MLEntry{{Email: passport, Lists: list, Network: MLNetworkPassport}})
	if err != nil {
		return err
	}
	if _, err := cn.requestPayload(ctx, "RML", payload, nil); err != nil {
		return err
	}
	c.mu.Lock()
	if ct := c.contacts[strings.ToLower(passport)]; ct != nil {
		ct.Lists &^= list
		if list == FL {
			ct.GUID = ""
			ct.Groups = nil
		}
		if ct.Lists == 0 {
			delete(c.contacts, strings.ToLower(passport))
		}
	}
	c.mu.Unlock()
	return nil
}

// serverML handles "ADL 0" and "RML 0": someone added or removed the
// account (the reverse list).
func (c *Client) serverML(cmd *Command) error {
	ents, err := ParseML(cmd.Payload)
	if err != nil {
		c.log.Debug().Err(err).Str("cmd", cmd.Name).Msg("ignoring bad list notification")
		return nil
	}
	for _, e := range ents {
		if e.Lists&MLReverse == 0 || validPassport(e.Email) != nil {
			continue
		}
		var ev Event
		c.mu.Lock()
		if c.contacts != nil {
			if cmd.Name == "ADL" {
				ct := c.contactLocked(e.Email)
				ct.Lists |= RL
				if ct.Lists&(AL|BL) == 0 {
					ct.Lists |= PL
				}
				name := e.FriendlyName
				if name == "" {
					name = ct.FriendlyName
				} else if ct.Lists&FL == 0 {
					ct.FriendlyName = name
				}
				ev = AddedBy{Passport: ct.Passport, Name: name}
			} else if ct := c.contacts[strings.ToLower(e.Email)]; ct != nil {
				ct.Lists &^= RL | PL
				if ct.Lists == 0 {
					delete(c.contacts, strings.ToLower(e.Email))
				}
				ev = RemovedBy{Passport: ct.Passport}
			}
		}
		c.mu.Unlock()
		if ev != nil {
			if err := c.emit(ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// normalizePresence rewrites an MSNP14+ NLN, ILN, FLN or UBX into the
// MSNP13 shape the parsers read: "email 1" and "1:email" become "email".
// It reports false for the account's own endpoints (MSNP16+ tell a client
// about its siblings), which are not contacts.
func (c *Client) normalizePresence(p Protocol, cmd *Command) (*Command, bool) {
	i := map[string]int{"NLN": 1, "ILN": 2, "FLN": 0, "UBX": 0}[cmd.Name]
	if i >= len(cmd.Args) {
		return cmd, true
	}
	args := append([]string(nil), cmd.Args...)
	who := args[i]
	if n, rest, ok := strings.Cut(who, ":"); ok && strings.Contains(rest, "@") {
		if _, err := strconv.Atoi(n); err == nil {
			args[i] = rest
		}
	} else if p >= MSNP14 && i+1 < len(args) {
		// "email 1": the network id follows the address.
		if _, err := strconv.Atoi(args[i+1]); err == nil {
			args = append(args[:i+1], args[i+2:]...)
		}
	}
	if strings.EqualFold(Unescape(args[i]), c.passport) {
		return nil, false
	}
	out := *cmd
	out.Args = args
	return &out, true
}
