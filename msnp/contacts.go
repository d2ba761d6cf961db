package msnp

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// List is a set of contact-list bits (FACTS.md §4.1).
type List uint8

// The lists.
const (
	FL List = 1  // forward: my contacts
	AL List = 2  // allowed to see me
	BL List = 4  // blocked
	RL List = 8  // reverse: has me as a contact
	PL List = 16 // pending: added me, not yet answered
)

// String names a single list ("FL"); for several bits, the numeric value.
func (l List) String() string {
	switch l {
	case FL:
		return "FL"
	case AL:
		return "AL"
	case BL:
		return "BL"
	case RL:
		return "RL"
	case PL:
		return "PL"
	}
	return fmt.Sprint(uint8(l))
}

func parseList(s string) (List, bool) {
	switch s {
	case "FL":
		return FL, true
	case "AL":
		return AL, true
	case "BL":
		return BL, true
	case "RL":
		return RL, true
	case "PL":
		return PL, true
	}
	return 0, false
}

// Contact is one entry of the account's contact list.
type Contact struct {
	Passport     string
	FriendlyName string
	GUID         string // MSNP10+: the server's id for an FL entry
	Lists        List
	Groups       []string
	Network      int // 1 = Passport (MSN)

	Status          Status // StatusOffline until presence says otherwise
	ClientID        uint32
	MSNObject       string
	PersonalMessage string
	CurrentMedia    string
}

// Group is a contact group.
type Group struct {
	ID   string
	Name string
}

// Contacts returns a snapshot of the contact list, sorted by passport.
func (c *Client) Contacts() []Contact {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Contact, 0, len(c.contacts))
	for _, ct := range c.contacts {
		cp := *ct
		cp.Groups = append([]string(nil), ct.Groups...)
		if cp.Status == "" {
			cp.Status = StatusOffline
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Passport < out[j].Passport })
	return out
}

// Privacy returns the server's BLP setting ("AL": everyone not blocked
// may see and contact the account; "BL": only the allow list) and GTC
// setting ("A": notify when someone adds the account; "N": do not), as
// the contact-list sync reported them.
func (c *Client) Privacy() (blp, gtc string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blp, c.gtc
}

// Groups returns the contact groups.
func (c *Client) Groups() []Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Group, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Contact returns one contact by passport.
func (c *Client) Contact(passport string) (Contact, bool) {
	for _, ct := range c.Contacts() {
		if strings.EqualFold(ct.Passport, passport) {
			return ct, true
		}
	}
	return Contact{}, false
}

// contact returns the entry for passport, creating it. c.mu must be held.
func (c *Client) contactLocked(passport string) *Contact {
	k := strings.ToLower(passport)
	ct := c.contacts[k]
	if ct == nil {
		ct = &Contact{Passport: passport, FriendlyName: passport, Network: 1, Status: StatusOffline}
		c.contacts[k] = ct
	}
	return ct
}

func validPassport(p string) error {
	if !strings.Contains(p, "@") || strings.ContainsAny(p, " \t\r\n%,") || len(p) > 129 {
		return fmt.Errorf("msnp: invalid passport %q", p)
	}
	return nil
}

func (c *Client) addTo(ctx context.Context, cn *conn, list List, passport string) error {
	if usesABCH(cn.d.protocol()) {
		return c.abAdd(ctx, cn, list, passport)
	}
	name, args := cn.d.addCmd(list, passport, passport)
	_, err := cn.request(ctx, name, nil, args...)
	return err
}

func (c *Client) remFrom(ctx context.Context, cn *conn, list List, passport string) error {
	if usesABCH(cn.d.protocol()) {
		return c.abRemove(ctx, cn, list, passport)
	}
	var ct *Contact
	c.mu.Lock()
	if x := c.contacts[strings.ToLower(passport)]; x != nil {
		cp := *x
		ct = &cp
	}
	c.mu.Unlock()
	if list == FL && cn.d.protocol() >= MSNP10 && (ct == nil || ct.GUID == "") {
		return fmt.Errorf("msnp: %s is not on the forward list: %w", passport, &ServerError{Code: ErrNotOnList})
	}
	_, err := cn.request(ctx, "REM", nil, cn.d.remArgs(list, ct, passport)...)
	return err
}

// ignore lets "already on / not on that list" pass: the goal state holds.
func ignore(err error, codes ...ErrorCode) error {
	for _, code := range codes {
		if CodeOf(err) == code {
			return nil
		}
	}
	return err
}

func (c *Client) listOp(ctx context.Context, passport string, f func(cn *conn) error) error {
	if err := validPassport(passport); err != nil {
		return err
	}
	cn := c.current()
	if cn == nil {
		return ErrNotConnected
	}
	return f(cn)
}

// AddContact adds passport to the forward list and allows it to see this
// account.
func (c *Client) AddContact(ctx context.Context, passport string) error {
	return c.listOp(ctx, passport, func(cn *conn) error {
		if err := c.addTo(ctx, cn, FL, passport); err != nil {
			return err
		}
		if c.onList(passport, BL) {
			return nil
		}
		return ignore(c.addTo(ctx, cn, AL, passport), ErrAlreadyOnList)
	})
}

// RemoveContact removes passport from the forward list (it stays allowed
// or blocked as it was).
func (c *Client) RemoveContact(ctx context.Context, passport string) error {
	return c.listOp(ctx, passport, func(cn *conn) error {
		return c.remFrom(ctx, cn, FL, passport)
	})
}

// Block moves passport from the allow list to the block list.
func (c *Client) Block(ctx context.Context, passport string) error {
	return c.listOp(ctx, passport, func(cn *conn) error {
		if c.onList(passport, AL) {
			if err := ignore(c.remFrom(ctx, cn, AL, passport), ErrNotOnList); err != nil {
				return err
			}
		}
		return ignore(c.addTo(ctx, cn, BL, passport), ErrAlreadyOnList)
	})
}

// Unblock moves passport from the block list to the allow list.
func (c *Client) Unblock(ctx context.Context, passport string) error {
	return c.listOp(ctx, passport, func(cn *conn) error {
		if err := ignore(c.remFrom(ctx, cn, BL, passport), ErrNotOnList); err != nil {
			return err
		}
		return ignore(c.addTo(ctx, cn, AL, passport), ErrAlreadyOnList)
	})
}

// AcceptPending answers an AddedBy: allow passport and add it back.
func (c *Client) AcceptPending(ctx context.Context, passport string) error {
	return c.listOp(ctx, passport, func(cn *conn) error {
		if err := ignore(c.addTo(ctx, cn, AL, passport), ErrAlreadyOnList); err != nil {
			return err
		}
		if err := ignore(c.addTo(ctx, cn, FL, passport), ErrAlreadyOnList); err != nil {
			return err
		}
		c.clearPending(passport)
		return nil
	})
}

// DeclinePending answers an AddedBy by blocking passport.
func (c *Client) DeclinePending(ctx context.Context, passport string) error {
	return c.listOp(ctx, passport, func(cn *conn) error {
		if err := ignore(c.addTo(ctx, cn, BL, passport), ErrAlreadyOnList); err != nil {
			return err
		}
		c.clearPending(passport)
		return nil
	})
}

func (c *Client) clearPending(passport string) {
	c.mu.Lock()
	if ct := c.contacts[strings.ToLower(passport)]; ct != nil {
		ct.Lists &^= PL
	}
	c.mu.Unlock()
}

func (c *Client) onList(passport string, l List) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ct := c.contacts[strings.ToLower(passport)]
	return ct != nil && ct.Lists&l != 0
}

// applyListReply updates the list from an ADD/ADC/REM reply or push and
// returns the reverse-list event, if any.
func (c *Client) applyListChange(d dialect, cmd *Command) Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.contacts == nil {
		return nil
	}
	switch cmd.Name {
	case "ADD", "ADC":
		l, who, name, guid, ok := d.parseAdded(cmd)
		if !ok {
			return nil
		}
		var ct *Contact
		if who == "" {
			for _, x := range c.contacts {
				if x.GUID == guid {
					ct = x
				}
			}
			if ct == nil {
				return nil
			}
		} else {
			ct = c.contactLocked(who)
		}
		ct.Lists |= l
		if name != "" {
			ct.FriendlyName = name
		}
		if guid != "" {
			ct.GUID = guid
		}
		if l == RL {
			if ct.Lists&(AL|BL) == 0 {
				ct.Lists |= PL
			}
			return AddedBy{Passport: ct.Passport, Name: ct.FriendlyName}
		}
	case "REM":
		l, who, ok := d.parseRemoved(cmd)
		if !ok {
			return nil
		}
		var ct *Contact
		for k, x := range c.contacts {
			if k == strings.ToLower(who) || (x.GUID != "" && x.GUID == who) {
				ct = x
			}
		}
		if ct == nil {
			return nil
		}
		ct.Lists &^= l
		if l == FL {
			ct.GUID = ""
			ct.Groups = nil
		}
		if l == RL {
			ct.Lists &^= PL
		}
		if ct.Lists == 0 {
			delete(c.contacts, strings.ToLower(ct.Passport))
		}
		if l == RL {
			return RemovedBy{Passport: ct.Passport}
		}
	}
	return nil
}
