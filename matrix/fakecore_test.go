package matrix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/msnbridge/msnbridge/bridge"
	"github.com/msnbridge/msnbridge/bridge/config"
)

// fakeCore stands in for the bridge core: it records every call and keeps
// portals, management rooms, media and frontend values in memory. The
// homeserver in the integration test is real; only the core is faked.
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
	files    []fakeFile
	media    map[bridge.MediaID]fakeMedia
	avatars  map[string]fakeMedia
	pictures []fakePicture
	values   map[string]string // by frontend + "/" + key
	maxFile  int64             // SendFile refuses more; 0 for no limit
	fileErr  error             // SendFile fails with it when set
	picErr   error             // SetDisplayPicture fails with it when set
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
		media:   map[bridge.MediaID]fakeMedia{},
		avatars: map[string]fakeMedia{},
		values:  map[string]string{},
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

type fakeFile struct {
	User   string
	Portal bridge.PortalID
	File   bridge.OutgoingFile // Data is nil: the bytes are in Data below
	Data   []byte
}

type fakeMedia struct {
	Name, MIME string
	Data       []byte
}

type fakePicture struct {
	User  string
	Image []byte // nil clears
}

// SendFile reads the file the way the core does (never past Size) and
// refuses group portals and files over maxFile, as the core does.
func (c *fakeCore) SendFile(_ context.Context, u bridge.UserID, pid bridge.PortalID, f bridge.OutgoingFile) error {
	c.mu.Lock()
	p, ok := c.portals[pid]
	limit := c.maxFile
	fail := c.fileErr
	c.mu.Unlock()
	if !ok {
		return errFakeNotFound
	}
	if p.Kind != bridge.PortalDirect {
		return errors.New("fakeCore: files go to one contact only")
	}
	if fail != nil {
		return fail
	}
	if limit > 0 && f.Size > limit {
		return fmt.Errorf("fakeCore: %d bytes is over the limit", f.Size)
	}
	data, err := io.ReadAll(io.LimitReader(f.Data, f.Size+1))
	if err != nil {
		return err
	}
	if int64(len(data)) != f.Size {
		return fmt.Errorf("fakeCore: read %d bytes, announced %d", len(data), f.Size)
	}
	f.Data = nil
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files = append(c.files, fakeFile{u.ID, pid, f, data})
	c.record("SendFile " + f.Name)
	return nil
}

func (c *fakeCore) OpenMedia(_ context.Context, mid bridge.MediaID) (*bridge.Media, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("OpenMedia " + string(mid))
	m, ok := c.media[mid]
	if !ok {
		return nil, bridge.ErrNoSuchMedia
	}
	return &bridge.Media{ReadSeekCloser: nopSeekCloser{bytes.NewReader(m.Data)}, Name: m.Name, Size: int64(len(m.Data)), MIME: m.MIME}, nil
}

type nopSeekCloser struct{ io.ReadSeeker }

func (nopSeekCloser) Close() error { return nil }

func (c *fakeCore) Avatar(_ context.Context, hash string) ([]byte, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("Avatar " + hash)
	m, ok := c.avatars[hash]
	if !ok {
		return nil, "", bridge.ErrNoSuchMedia
	}
	return m.Data, m.MIME, nil
}

func (c *fakeCore) SetDisplayPicture(_ context.Context, u bridge.UserID, image []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pictures = append(c.pictures, fakePicture{u.ID, image})
	c.record("SetDisplayPicture")
	return c.picErr
}

func (c *fakeCore) FrontendValue(_ context.Context, frontend, key string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.values[frontend+"/"+key], nil
}

func (c *fakeCore) SetFrontendValue(_ context.Context, frontend, key, value string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.values[frontend+"/"+key] = value
	c.record("SetFrontendValue " + key)
	return nil
}

// count returns how many recorded calls start with prefix.
func (c *fakeCore) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, call := range c.calls {
		if strings.HasPrefix(call, prefix) {
			n++
		}
	}
	return n
}

var _ bridge.Core = (*fakeCore)(nil)
