package bridge

import (
	"fmt"
	"strings"
)

// Permissions decides what each user may do, from the config's
// bridge.permissions table. The most specific entry wins: the exact user
// (an MXID or a bare JID), then its server or domain, then "*". Users that
// match nothing get PermissionNone.
type Permissions struct {
	entries map[string]Permission
}

// ParsePermissions builds a Permissions from level names ("admin", "user",
// "none"). Keys are matched case-insensitively for XMPP and as given for
// Matrix.
func ParsePermissions(table map[string]string) (*Permissions, error) {
	p := &Permissions{entries: make(map[string]Permission, len(table))}
	for key, level := range table {
		var lv Permission
		switch strings.ToLower(level) {
		case "admin":
			lv = PermissionAdmin
		case "user":
			lv = PermissionUser
		case "none", "":
			lv = PermissionNone
		default:
			return nil, fmt.Errorf("bridge: permission %q for %q: want admin, user or none", level, key)
		}
		p.entries[strings.ToLower(key)] = lv
	}
	return p, nil
}

// Of returns the permission of user.
func (p *Permissions) Of(user UserID) Permission {
	if p == nil {
		return PermissionNone
	}
	id := strings.ToLower(user.ID)
	if lv, ok := p.entries[id]; ok {
		return lv
	}
	if d := userDomain(user); d != "" {
		if lv, ok := p.entries[d]; ok {
			return lv
		}
	}
	if lv, ok := p.entries["*"]; ok {
		return lv
	}
	return PermissionNone
}

// userDomain is the server part of an MXID (@local:server) or the domain of
// a bare JID (local@domain).
func userDomain(u UserID) string {
	id := strings.ToLower(u.ID)
	if strings.HasPrefix(id, "@") {
		if i := strings.IndexByte(id, ':'); i >= 0 {
			return id[i+1:]
		}
		return ""
	}
	if i := strings.LastIndexByte(id, '@'); i >= 0 {
		d := id[i+1:]
		if j := strings.IndexByte(d, '/'); j >= 0 {
			d = d[:j]
		}
		return d
	}
	return id
}
