package xmpp

import (
	"strings"
	"sync"
	"time"

	"github.com/msnbridge/msnbridge/bridge"
)

// state is what the gateway keeps in memory, per user: the last known
// presence of each contact (to answer probes), the user's XMPP resources
// (to derive one MSN status), portals, and messages awaiting their
// DeliveryResult. Nothing here is authoritative; the core is.
type state struct {
	mu        sync.Mutex
	contacts  map[string]map[string]bridge.Contact // user -> passport -> contact
	resources map[string]map[string]bridge.Status  // user -> resource -> status
	applied   map[string]bridge.Status             // user -> last status given to the core
	portals   map[string]bridge.Portal             // user+portal id -> portal
	pending   map[string]pendingMessage            // user+frontend id -> message
	// noAvatar holds contacts (user+passport) whose picture went away
	// while they were online: their presence says so (an empty XEP-0153
	// photo) rather than "not known yet".
	noAvatar map[string]bool
}

// pendingMessage is a message sent to the core, remembered until its
// DeliveryResult says whether to send a receipt or an error.
type pendingMessage struct {
	to      string // the user's full JID that sent it
	from    string // the contact JID it was sent to
	id      string // the stanza id the user gave it
	receipt bool   // the user asked for an XEP-0184 receipt
	file    string // the file's name, when it is a file
	at      time.Time
}

const (
	maxPending = 10000
	pendingTTL = 10 * time.Minute
)

func (s *state) init() {
	s.contacts = make(map[string]map[string]bridge.Contact)
	s.resources = make(map[string]map[string]bridge.Status)
	s.applied = make(map[string]bridge.Status)
	s.portals = make(map[string]bridge.Portal)
	s.pending = make(map[string]pendingMessage)
	s.noAvatar = make(map[string]bool)
}

func key(user, id string) string { return user + "\x00" + id }

func (s *state) contact(user, passport string) (bridge.Contact, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.contacts[user][passport]
	return c, ok
}

func (s *state) userContacts(user string) []bridge.Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]bridge.Contact, 0, len(s.contacts[user]))
	for _, c := range s.contacts[user] {
		out = append(out, c)
	}
	return out
}

// setContact records what an event said of a contact. Only Presence
// events (setPresence) speak for the picture: others leave it as it was.
func (s *state) setContact(user string, c bridge.Contact) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := NormalizePassport(c.Passport)
	if old, known := s.contacts[user][p]; known && c.Avatar == "" {
		c.Avatar = old.Avatar
	}
	s.putLocked(user, p, c)
}

// setPresence records a contact from a Presence event, picture included: a
// picture that goes away while they are online is known to be gone.
func (s *state) setPresence(user string, c bridge.Contact) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := NormalizePassport(c.Passport)
	old, known := s.contacts[user][p]
	switch {
	case c.Avatar != "":
		delete(s.noAvatar, key(user, p))
	case known && old.Avatar != "" && c.Status != bridge.StatusOffline && c.Status != "":
		s.noAvatar[key(user, p)] = true
	}
	s.putLocked(user, p, c)
}

func (s *state) putLocked(user, passport string, c bridge.Contact) {
	m := s.contacts[user]
	if m == nil {
		m = make(map[string]bridge.Contact)
		s.contacts[user] = m
	}
	m[passport] = c
}

// avatarGone says the contact's picture went away while they were online.
func (s *state) avatarGone(user, passport string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noAvatar[key(user, NormalizePassport(passport))]
}

func (s *state) removeContact(user, passport string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.contacts[user], NormalizePassport(passport))
	delete(s.noAvatar, key(user, NormalizePassport(passport)))
}

// forgetUser drops everything about user (after unregistering).
func (s *state) forgetUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.contacts, user)
	delete(s.applied, user)
	for k := range s.noAvatar {
		if strings.HasPrefix(k, user+"\x00") {
			delete(s.noAvatar, k)
		}
	}
	for k := range s.portals {
		if len(k) > len(user) && k[:len(user)+1] == user+"\x00" {
			delete(s.portals, k)
		}
	}
}

// onlineContacts maps every user the gateway knows (by contacts or by
// resources) to their contacts not shown as offline.
func (s *state) onlineContacts() map[string][]bridge.Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]bridge.Contact)
	for u := range s.resources {
		out[u] = nil
	}
	for u, m := range s.contacts {
		out[u] = out[u][:0:0]
		for _, c := range m {
			if c.Status != bridge.StatusOffline && c.Status != "" {
				out[u] = append(out[u], c)
			}
		}
	}
	return out
}

// knownUsers lists users with an online resource.
func (s *state) knownUsers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.resources))
	for u := range s.resources {
		out = append(out, u)
	}
	return out
}

// setResource records a resource's status (or its going offline, when
// status is StatusOffline) and returns the user's combined status before
// and after: the most available of their resources, offline when none.
func (s *state) setResource(user, resource string, status bridge.Status) (before, after bridge.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before = combine(s.resources[user])
	m := s.resources[user]
	if status == bridge.StatusOffline {
		delete(m, resource)
		if len(m) == 0 {
			delete(s.resources, user)
		}
	} else {
		if m == nil {
			m = make(map[string]bridge.Status)
			s.resources[user] = m
		}
		m[resource] = status
	}
	return before, combine(s.resources[user])
}

// combinedStatus is the user's status from all their resources.
func (s *state) combinedStatus(user string) bridge.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return combine(s.resources[user])
}

// appliedStatus is the status last given to the core ("" for none).
func (s *state) appliedStatus(user string) bridge.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied[user]
}

// applyStatus records the status last given to the core and reports
// whether it changed.
func (s *state) applyStatus(user string, status bridge.Status) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.applied[user] == status {
		return false
	}
	s.applied[user] = status
	return true
}

func (s *state) portal(user string, id bridge.PortalID) (bridge.Portal, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.portals[key(user, string(id))]
	return p, ok
}

func (s *state) setPortal(user string, p bridge.Portal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.portals[key(user, string(p.ID))] = p
}

func (s *state) addPending(user, fid string, p pendingMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) >= maxPending {
		for k, v := range s.pending {
			if time.Since(v.at) > pendingTTL {
				delete(s.pending, k)
			}
		}
	}
	if len(s.pending) < maxPending {
		s.pending[key(user, fid)] = p
	}
}

func (s *state) takePending(user, fid string) (pendingMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[key(user, fid)]
	delete(s.pending, key(user, fid))
	return p, ok
}

// statusRank orders statuses by availability, for combining resources.
var statusRank = map[bridge.Status]int{
	bridge.StatusOnline: 3,
	bridge.StatusBusy:   2,
	bridge.StatusAway:   1,
}

func combine(resources map[string]bridge.Status) bridge.Status {
	best, rank := bridge.StatusOffline, 0
	for _, st := range resources {
		if r := statusRank[st]; r > rank {
			best, rank = st, r
		}
	}
	return best
}
