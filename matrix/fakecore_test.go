package matrix

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
)

// fakeCore stands in for the bridge core, which does not exist yet: it
// records every call and keeps portals and management rooms in memory.
// The homeserver in the integration test is real; only the core is faked.
type fakeCore struct {
	mu       sync.Mutex
	perms    map[string]bridge.Permission // by user ID; default PermissionUser
	contacts []bridge.Contact
	portals  map[bridge.PortalID]bridge.Portal
	mgmt     map[string]string
	logins   []fakeLogin
	sent     []fakeSent
	nudges   []bridge.PortalID
	typing   []fakeTyping
	calls    []string
	changed  chan struct{} // gets a value after every recorded call
}

type testCfg = config.Matrix

type fakeLogin struct{ User, Passport, Password string }
type fakeSent struct {
	User   string
	Portal bridge.PortalID
	Msg    bridge.OutgoingMessage
}
type fakeTyping struct {
	Portal bridge.PortalID
	Active bool
}

func newFakeCore() *fakeCore {
	return &fakeCore{
		perms:   map[string]bridge.Permission{},
		portals: map[bridge.PortalID]bridge.Portal{},
		mgmt:    map[string]string{},
		changed: make(chan struct{}, 1),
	}
}

var errFakeNotFound = errors.New("not found")

func (c *fakeCore) record(call string) {
	c.calls = append(c.calls, call)
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *fakeCore) Permission(u bridge.UserID) bridge.Permission {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.perms[u.ID]; ok {
		return p
	}
	return bridge.PermissionUser
}

func (c *fakeCore) Login(_ context.Context, u bridge.UserID, passport, password string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logins = append(c.logins, fakeLogin{u.ID, passport, password})
	c.record("Login")
	return nil
}

func (c *fakeCore) simple(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(name)
	return nil
}

func (c *fakeCore) Logout(context.Context, bridge.UserID) error  { return c.simple("Logout") }
func (c *fakeCore) Relogin(context.Context, bridge.UserID) error { return c.simple("Relogin") }
func (c *fakeCore) Status(context.Context, bridge.UserID) (bridge.LoginStatus, error) {
	return bridge.LoginStatus{Passport: "alice@example.com", State: bridge.LoginConnected, Status: bridge.StatusOnline, Protocol: "MSNP12"}, c.simple("Status")
}
func (c *fakeCore) Contacts(context.Context, bridge.UserID) ([]bridge.Contact, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("Contacts")
	return append([]bridge.Contact(nil), c.contacts...), nil
}
func (c *fakeCore) AddContact(_ context.Context, _ bridge.UserID, p string) error {
	return c.simple("AddContact " + p)
}
func (c *fakeCore) RemoveContact(_ context.Context, _ bridge.UserID, p string) error {
	return c.simple("RemoveContact " + p)
}
func (c *fakeCore) BlockContact(_ context.Context, _ bridge.UserID, p string) error {
	return c.simple("BlockContact " + p)
}
func (c *fakeCore) UnblockContact(_ context.Context, _ bridge.UserID, p string) error {
	return c.simple("UnblockContact " + p)
}
func (c *fakeCore) SetStatus(_ context.Context, _ bridge.UserID, s bridge.Status) error {
	return c.simple("SetStatus " + string(s))
}
func (c *fakeCore) SetPersonalMessage(_ context.Context, _ bridge.UserID, t string) error {
	return c.simple("SetPersonalMessage " + t)
}
func (c *fakeCore) SetFriendlyName(_ context.Context, _ bridge.UserID, n string) error {
	return c.simple("SetFriendlyName " + n)
}

func (c *fakeCore) DirectPortal(_ context.Context, u bridge.UserID, passport string) (bridge.Portal, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("DirectPortal " + passport)
	pid := bridge.PortalID(fmt.Sprintf("%s|%s", u.ID, passport))
	if p, ok := c.portals[pid]; ok {
		return p, nil
	}
	p := bridge.Portal{ID: pid, Kind: bridge.PortalDirect, Contact: passport}
	c.portals[pid] = p
	return p, nil
}

func (c *fakeCore) Portal(_ context.Context, _ bridge.UserID, pid bridge.PortalID) (bridge.Portal, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.portals[pid]
	if !ok {
		return bridge.Portal{}, errFakeNotFound
	}
	return p, nil
}

func (c *fakeCore) PortalByRoom(_ context.Context, _ bridge.UserID, room string) (bridge.Portal, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.portals {
		if p.Room == room {
			return p, nil
		}
	}
	return bridge.Portal{}, errFakeNotFound
}

func (c *fakeCore) SetPortalRoom(_ context.Context, _ bridge.UserID, pid bridge.PortalID, room string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.portals[pid]
	if !ok {
		return errFakeNotFound
	}
	p.Room = room
	c.portals[pid] = p
	c.record("SetPortalRoom")
	return nil
}

func (c *fakeCore) Invite(_ context.Context, _ bridge.UserID, _ bridge.PortalID, p string) error {
	return c.simple("Invite " + p)
}
func (c *fakeCore) LeavePortal(context.Context, bridge.UserID, bridge.PortalID) error {
	return c.simple("LeavePortal")
}

func (c *fakeCore) SendMessage(_ context.Context, u bridge.UserID, pid bridge.PortalID, msg bridge.OutgoingMessage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, fakeSent{u.ID, pid, msg})
	c.record("SendMessage")
	return nil
}

func (c *fakeCore) SendTyping(_ context.Context, _ bridge.UserID, pid bridge.PortalID, active bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.typing = append(c.typing, fakeTyping{pid, active})
	c.record("SendTyping")
	return nil
}

func (c *fakeCore) SendNudge(_ context.Context, _ bridge.UserID, pid bridge.PortalID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nudges = append(c.nudges, pid)
	c.record("SendNudge")
	return nil
}

func (c *fakeCore) ManagementRoom(_ context.Context, u bridge.UserID) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mgmt[u.ID], nil
}

func (c *fakeCore) SetManagementRoom(_ context.Context, u bridge.UserID, room string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mgmt[u.ID] = room
	c.record("SetManagementRoom")
	return nil
}

// TEMPORARY: the media half of the contract (issue 11), to be made real.
func (c *fakeCore) SendFile(context.Context, bridge.UserID, bridge.PortalID, bridge.OutgoingFile) error {
	return errors.New("fakeCore: no files")
}
func (c *fakeCore) OpenMedia(context.Context, bridge.MediaID) (*bridge.Media, error) {
	return nil, bridge.ErrNoSuchMedia
}
func (c *fakeCore) Avatar(context.Context, string) ([]byte, string, error) {
	return nil, "", bridge.ErrNoSuchMedia
}
func (c *fakeCore) SetDisplayPicture(context.Context, bridge.UserID, []byte) error {
	return errors.New("fakeCore: no pictures")
}
func (c *fakeCore) FrontendValue(context.Context, string, string) (string, error) { return "", nil }
func (c *fakeCore) SetFrontendValue(context.Context, string, string, string) error {
	return nil
}

var _ bridge.Core = (*fakeCore)(nil)
