package bridge

import "testing"

func TestPermissions(t *testing.T) {
	p, err := ParsePermissions(map[string]string{
		"example.org":          "user",
		"@boss:example.org":    "admin",
		"@banned:example.org":  "none",
		"jabber.example":       "user",
		"Admin@Jabber.Example": "admin",
		"*":                    "none",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		u    UserID
		want Permission
	}{
		{UserID{"matrix", "@alice:example.org"}, PermissionUser},
		{UserID{"matrix", "@boss:example.org"}, PermissionAdmin},
		{UserID{"matrix", "@banned:example.org"}, PermissionNone},
		{UserID{"matrix", "@eve:evil.example"}, PermissionNone},
		{UserID{"xmpp", "bob@jabber.example"}, PermissionUser},
		{UserID{"xmpp", "admin@jabber.example"}, PermissionAdmin},
		{UserID{"xmpp", "mallory@evil.example"}, PermissionNone},
		// A domain-looking MXID localpart must not match the domain entry.
		{UserID{"matrix", "@example.org:evil.example"}, PermissionNone},
	} {
		if got := p.Of(c.u); got != c.want {
			t.Errorf("Of(%v) = %v, want %v", c.u, got, c.want)
		}
	}
	if _, err := ParsePermissions(map[string]string{"x": "root"}); err == nil {
		t.Error("unknown level accepted")
	}
	var nilp *Permissions
	if nilp.Of(UserID{"matrix", "@a:b"}) != PermissionNone {
		t.Error("nil Permissions grants access")
	}
}
