package xmpp

import (
	"github.com/msnbridge/msnbridge/bridge"
)

// XEP-0356: a server may let the component edit its users' rosters (Prosody
// with mod_privilege, see scripts/prosody.sh). With that privilege the
// gateway keeps each contact's roster name (the MSN friendly name) and
// groups current. It never sets subscriptions that way: those still go
// through presence, so the user approves every contact.

// grantPrivileges records the permissions a server host announced.
func (g *Gateway) grantPrivileges(host string, priv *node) {
	roster := false
	for _, perm := range priv.All(nsPrivilege, "perm") {
		if perm.Attr("access") == "roster" && (perm.Attr("type") == "set" || perm.Attr("type") == "both") {
			roster = true
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.rosterHosts == nil {
		g.rosterHosts = make(map[string]bool)
	}
	g.rosterHosts[host] = roster
	g.log.Info().Str("host", host).Bool("roster", roster).Msg("server granted privileges")
}

// rosterPrivileged reports whether the gateway may edit rosters at host.
func (g *Gateway) rosterPrivileged(host string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rosterHosts[host]
}

// pushRosterItem names and groups contact c in user's roster, when the
// user's server allows it. The subscription is left as it is.
func (g *Gateway) pushRosterItem(user string, c bridge.Contact) {
	u, err := parseBare(user)
	if err != nil || !g.rosterPrivileged(u.Domainpart()) {
		return
	}
	j, err := g.ContactJID(c.Passport)
	if err != nil {
		return
	}
	name := c.FriendlyName
	if name == "" {
		name = c.Passport
	}
	groups := c.Groups
	if len(groups) == 0 {
		groups = []string{"MSN"}
	}
	iq := outIQ{ID: newID(), Type: "set", From: g.domain.String(), To: u.String(),
		Payload: rosterQuery{Items: []rosterItem{{JID: j.String(), Name: name, Groups: groups}}}}
	if err := g.send(iq); err != nil {
		g.log.Debug().Err(err).Str("user", user).Msg("roster push not sent")
	}
}
