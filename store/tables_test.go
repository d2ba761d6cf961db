package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"

	"github.com/msnbridge/msnbridge/store/upgrades"
)

func TestContacts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		l := mustLogin(t, s, alice, "alice@hotmail.com")
		_, err := s.Contacts.Get(ctx, l.ID, "bob@hotmail.com")
		wantErr(t, err, ErrNotFound)

		c := Contact{LoginID: l.ID, Passport: "Bob@Hotmail.com", FriendlyName: "Bob", ListBits: ListForward | ListAllow | ListReverse,
			Groups: []string{"g1", "g2"}, PersonalMessage: "hi", Status: "busy", Avatar: "aa11"}
		if err := s.Contacts.Upsert(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.Contacts.Get(ctx, l.ID, "bob@hotmail.com")
		if err != nil {
			t.Fatal(err)
		}
		if got.UpdatedAt.IsZero() {
			t.Fatal("UpdatedAt not set")
		}
		got.UpdatedAt = time.Time{}
		c.Passport = "bob@hotmail.com"
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("Get = %+v\nwant %+v", got, c)
		}

		c.FriendlyName, c.ListBits, c.Groups, c.Status, c.Avatar = "Bobby", ListForward|ListBlock, nil, "offline", ""
		if err := s.Contacts.Upsert(ctx, c); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Contacts.Get(ctx, l.ID, "bob@hotmail.com"); err != nil || got.Avatar != "" {
			t.Fatalf("after an Upsert without a picture: %+v, %v; want no Avatar", got, err)
		}
		if err := s.Contacts.Upsert(ctx, Contact{LoginID: l.ID, Passport: "carol@hotmail.com"}); err != nil {
			t.Fatal(err)
		}
		list, err := s.Contacts.List(ctx, l.ID)
		if err != nil || len(list) != 2 {
			t.Fatalf("List = %+v, %v", list, err)
		}
		if list[0].Passport != "bob@hotmail.com" || list[0].FriendlyName != "Bobby" || list[0].ListBits != ListForward|ListBlock ||
			list[0].Groups != nil || list[1].Passport != "carol@hotmail.com" {
			t.Fatalf("List after update = %+v", list)
		}
		if err := s.Contacts.Delete(ctx, l.ID, "BOB@hotmail.com"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, s.Contacts.Delete(ctx, l.ID, "bob@hotmail.com"), ErrNotFound)
		if err := s.Contacts.Upsert(ctx, Contact{LoginID: 9999, Passport: "x@y.z"}); err == nil {
			t.Fatal("Upsert for a missing login succeeded")
		}
		if err := s.Contacts.Upsert(ctx, Contact{LoginID: l.ID}); err == nil {
			t.Fatal("Upsert without a passport succeeded")
		}
	})
}

// SetAvatar changes the picture alone; Replace (the list MSN sends at
// sign-in, which has no pictures) keeps it for the contacts that stay.
func TestContactsAvatar(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		l := mustLogin(t, s, alice, "alice@hotmail.com")
		other := mustLogin(t, s, bob, "bob@hotmail.com")
		wantErr(t, s.Contacts.SetAvatar(ctx, l.ID, "bob@hotmail.com", "aa"), ErrNotFound)
		if err := s.Contacts.Replace(ctx, l.ID, []Contact{{Passport: "bob@hotmail.com", FriendlyName: "Bob", Status: "busy"}, {Passport: "carol@hotmail.com"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Contacts.Upsert(ctx, Contact{LoginID: other.ID, Passport: "bob@hotmail.com"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Contacts.SetAvatar(ctx, l.ID, "Bob@Hotmail.com", "b0b"); err != nil {
			t.Fatal(err)
		}
		if err := s.Contacts.SetAvatar(ctx, l.ID, "carol@hotmail.com", "ca401"); err != nil {
			t.Fatal(err)
		}
		got, err := s.Contacts.Get(ctx, l.ID, "bob@hotmail.com")
		if err != nil || got.Avatar != "b0b" || got.FriendlyName != "Bob" || got.Status != "busy" {
			t.Fatalf("after SetAvatar: %+v, %v; want the picture and the rest unchanged", got, err)
		}
		if o, err := s.Contacts.Get(ctx, other.ID, "bob@hotmail.com"); err != nil || o.Avatar != "" {
			t.Fatalf("SetAvatar touched another login's contact: %+v, %v", o, err)
		}
		// The next sign-in's list: bob stays (his picture with him), carol
		// names a new one, dave is new.
		if err := s.Contacts.Replace(ctx, l.ID, []Contact{{Passport: "BOB@hotmail.com", FriendlyName: "Bobby"}, {Passport: "carol@hotmail.com", Avatar: "ca402"}, {Passport: "dave@hotmail.com"}}); err != nil {
			t.Fatal(err)
		}
		list, err := s.Contacts.List(ctx, l.ID)
		if err != nil || len(list) != 3 {
			t.Fatalf("List = %+v, %v", list, err)
		}
		for i, want := range []string{"b0b", "ca402", ""} {
			if list[i].Avatar != want {
				t.Errorf("%s has Avatar %q after Replace, want %q", list[i].Passport, list[i].Avatar, want)
			}
		}
		if list[0].FriendlyName != "Bobby" {
			t.Errorf("Replace did not update bob: %+v", list[0])
		}
		// A picture taken away is gone, and stays gone through a Replace.
		if err := s.Contacts.SetAvatar(ctx, l.ID, "bob@hotmail.com", ""); err != nil {
			t.Fatal(err)
		}
		if err := s.Contacts.Replace(ctx, l.ID, []Contact{{Passport: "bob@hotmail.com"}}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Contacts.Get(ctx, l.ID, "bob@hotmail.com"); err != nil || got.Avatar != "" {
			t.Fatalf("a cleared picture came back: %+v, %v", got, err)
		}
		// A contact that leaves the list leaves its picture behind: back
		// on the list, it has none until it shows one again.
		if err := s.Contacts.Replace(ctx, l.ID, []Contact{{Passport: "carol@hotmail.com"}}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Contacts.Get(ctx, l.ID, "carol@hotmail.com"); err != nil || got.Avatar != "" {
			t.Fatalf("carol, back on the list: %+v, %v; want no Avatar", got, err)
		}
	})
}

// A database from before contacts had pictures (v2) upgrades with its
// contacts kept, none with a picture.
func TestContactsUpgradeFromV2(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		uri := b.newDB(t)
		driver, dsn := "postgres", uri
		if b.dbType == "sqlite3" {
			driver, dsn = "sqlite3", sqliteDSN(uri)
		}
		raw, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		old, err := dbutil.NewWithDB(raw, driver)
		if err != nil {
			t.Fatal(err)
		}
		old.Owner, old.VersionTable, old.UpgradeTable = Owner, VersionTable, upgrades.Table[:2]
		if err := old.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			"INSERT INTO users (frontend, user_id, created_at) VALUES ('matrix', '@alice:example.org', 1)",
			"INSERT INTO msn_logins (frontend, user_id, passport, created_at, updated_at) VALUES ('matrix', '@alice:example.org', 'alice@hotmail.com', 1, 1)",
			"INSERT INTO contacts (login_id, passport, friendly_name, updated_at) SELECT id, 'bob@hotmail.com', 'Bob', 1 FROM msn_logins",
		} {
			if _, err := old.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}
		s := b.openAt(t, uri)
		if v, err := s.Version(ctx); err != nil || v != LatestVersion() {
			t.Fatalf("version after upgrading = %d, %v; want %d", v, err, LatestVersion())
		}
		l, err := s.Logins.GetByUser(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Contacts.Get(ctx, l.ID, "bob@hotmail.com")
		if err != nil || c.FriendlyName != "Bob" || c.Avatar != "" {
			t.Fatalf("bob after the upgrade = %+v, %v", c, err)
		}
		if err := s.Contacts.SetAvatar(ctx, l.ID, "bob@hotmail.com", "b0b"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestContactsReplace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		l := mustLogin(t, s, alice, "alice@hotmail.com")
		other := mustLogin(t, s, bob, "bob@hotmail.com")
		if err := s.Contacts.Upsert(ctx, Contact{LoginID: other.ID, Passport: "gone@hotmail.com"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Contacts.Replace(ctx, l.ID, []Contact{{Passport: "gone@hotmail.com"}, {Passport: "stay@hotmail.com", FriendlyName: "old"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Contacts.Replace(ctx, l.ID, []Contact{{Passport: "stay@hotmail.com", FriendlyName: "new"}, {Passport: "fresh@hotmail.com"}}); err != nil {
			t.Fatal(err)
		}
		list, err := s.Contacts.List(ctx, l.ID)
		if err != nil || len(list) != 2 || list[0].Passport != "fresh@hotmail.com" || list[1].FriendlyName != "new" {
			t.Fatalf("List after Replace = %+v, %v", list, err)
		}
		if _, err := s.Contacts.Get(ctx, other.ID, "gone@hotmail.com"); err != nil {
			t.Fatalf("Replace touched another login: %v", err)
		}
		// A failing Replace changes nothing.
		if err := s.Contacts.Replace(ctx, l.ID, []Contact{{Passport: "x@hotmail.com"}, {Passport: ""}}); err == nil {
			t.Fatal("Replace with an empty passport succeeded")
		}
		if after, _ := s.Contacts.List(ctx, l.ID); len(after) != 2 {
			t.Fatalf("failed Replace was not rolled back: %+v", after)
		}
	})
}

func TestGhosts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		_, err := s.Ghosts.Get(ctx, "matrix", "bob@hotmail.com")
		wantErr(t, err, ErrNotFound)
		g := Ghost{Frontend: "matrix", Passport: "bob@hotmail.com", FrontendID: "@msn_bob:example.org", DisplayName: "Bob", AvatarHash: "abc"}
		if err := s.Ghosts.Upsert(ctx, g); err != nil {
			t.Fatal(err)
		}
		// The same passport on another frontend is another ghost.
		if err := s.Ghosts.Upsert(ctx, Ghost{Frontend: "xmpp", Passport: "bob@hotmail.com", FrontendID: "bob%hotmail.com@msn.example.org"}); err != nil {
			t.Fatal(err)
		}
		g.DisplayName = "Bobby"
		if err := s.Ghosts.Upsert(ctx, g); err != nil {
			t.Fatal(err)
		}
		got, err := s.Ghosts.Get(ctx, "matrix", "BOB@hotmail.com")
		if err != nil || got.DisplayName != "Bobby" || got.FrontendID != g.FrontendID || got.AvatarHash != "abc" || got.UpdatedAt.IsZero() {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		if got, err := s.Ghosts.GetByFrontendID(ctx, "xmpp", "bob%hotmail.com@msn.example.org"); err != nil || got.Passport != "bob@hotmail.com" {
			t.Fatalf("GetByFrontendID = %+v, %v", got, err)
		}
		_, err = s.Ghosts.GetByFrontendID(ctx, "xmpp", "@msn_bob:example.org")
		wantErr(t, err, ErrNotFound)
		if err := s.Ghosts.Upsert(ctx, Ghost{Passport: "x@y.z"}); err == nil {
			t.Fatal("Upsert without a frontend succeeded")
		}
	})
}

func TestPortalsDirect(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		l := mustLogin(t, s, alice, "alice@hotmail.com")
		_, err := s.Portals.GetDirect(ctx, l.ID, "bob@hotmail.com")
		wantErr(t, err, ErrNotFound)

		p, created, err := s.Portals.GetOrCreateDirect(ctx, l.ID, "Bob@Hotmail.com")
		if err != nil || !created {
			t.Fatalf("GetOrCreateDirect = %+v, %v, %v", p, created, err)
		}
		if len(p.ID) != 32 || p.Kind != PortalDirect || p.MSNKey != "bob@hotmail.com" || p.LoginID != l.ID || p.Room != "" {
			t.Fatalf("new portal = %+v", p)
		}
		again, created, err := s.Portals.GetOrCreateDirect(ctx, l.ID, "bob@hotmail.com")
		if err != nil || created || again != p {
			t.Fatalf("second GetOrCreateDirect = %+v, %v, %v; want %+v", again, created, err, p)
		}
		if got, err := s.Portals.Get(ctx, p.ID); err != nil || got != p {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		_, err = s.Portals.Get(ctx, "nope")
		wantErr(t, err, ErrNotFound)

		// Another login gets its own portal with the same contact.
		l2 := mustLogin(t, s, bob, "bob2@hotmail.com")
		other, created, err := s.Portals.GetOrCreateDirect(ctx, l2.ID, "bob@hotmail.com")
		if err != nil || !created || other.ID == p.ID {
			t.Fatalf("other login's portal = %+v, %v, %v", other, created, err)
		}

		// Rooms: set, look up, unique per login, clear.
		_, err = s.Portals.GetByRoom(ctx, l.ID, "!room:example.org")
		wantErr(t, err, ErrNotFound)
		if err := s.Portals.SetRoom(ctx, p.ID, "!room:example.org"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Portals.GetByRoom(ctx, l.ID, "!room:example.org"); err != nil || got.ID != p.ID || got.Room != "!room:example.org" {
			t.Fatalf("GetByRoom = %+v, %v", got, err)
		}
		_, err = s.Portals.GetByRoom(ctx, l2.ID, "!room:example.org")
		wantErr(t, err, ErrNotFound)
		p2, _, err := s.Portals.GetOrCreateDirect(ctx, l.ID, "carol@hotmail.com")
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, s.Portals.SetRoom(ctx, p2.ID, "!room:example.org"), ErrDuplicate)
		// Portals without rooms do not collide with each other.
		if err := s.Portals.SetRoom(ctx, p.ID, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.Portals.SetRoom(ctx, p2.ID, "!room:example.org"); err != nil {
			t.Fatalf("room freed by clearing is still taken: %v", err)
		}
		_, err = s.Portals.GetByRoom(ctx, l.ID, "")
		wantErr(t, err, ErrNotFound)
		wantErr(t, s.Portals.SetRoom(ctx, "nope", "!x:example.org"), ErrNotFound)

		if err := s.Portals.SetName(ctx, p.ID, "Bob"); err != nil {
			t.Fatal(err)
		}
		list, err := s.Portals.List(ctx, l.ID)
		if err != nil || len(list) != 2 {
			t.Fatalf("List = %+v, %v", list, err)
		}
		byID := map[string]Portal{list[0].ID: list[0], list[1].ID: list[1]}
		if byID[p.ID].Name != "Bob" || byID[p2.ID].Room != "!room:example.org" {
			t.Fatalf("List = %+v", list)
		}
		if err := s.Portals.Delete(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		wantErr(t, s.Portals.Delete(ctx, p.ID), ErrNotFound)
		if _, _, err := s.Portals.GetOrCreateDirect(ctx, 9999, "x@y.z"); err == nil {
			t.Fatal("portal for a missing login was created")
		}
	})
}

func TestPortalsGroup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		l := mustLogin(t, s, alice, "alice@hotmail.com")
		g, err := s.Portals.CreateGroup(ctx, l.ID, "Friends", []string{"Carol@hotmail.com", "bob@hotmail.com"})
		if err != nil {
			t.Fatal(err)
		}
		g2, err := s.Portals.CreateGroup(ctx, l.ID, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if g.Kind != PortalGroup || g.Name != "Friends" || g.MSNKey == "" || g.ID == g2.ID || g.MSNKey == g2.MSNKey {
			t.Fatalf("groups = %+v, %+v", g, g2)
		}
		members, err := s.Portals.Members(ctx, g.ID)
		if err != nil || !reflect.DeepEqual(members, []string{"bob@hotmail.com", "carol@hotmail.com"}) {
			t.Fatalf("Members = %v, %v", members, err)
		}
		if err := s.Portals.AddMember(ctx, g.ID, "dave@hotmail.com"); err != nil {
			t.Fatal(err)
		}
		if err := s.Portals.AddMember(ctx, g.ID, "DAVE@hotmail.com"); err != nil {
			t.Fatalf("adding a member twice: %v", err)
		}
		if err := s.Portals.RemoveMember(ctx, g.ID, "bob@hotmail.com"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, s.Portals.RemoveMember(ctx, g.ID, "bob@hotmail.com"), ErrNotFound)
		members, err = s.Portals.Members(ctx, g.ID)
		if err != nil || !reflect.DeepEqual(members, []string{"carol@hotmail.com", "dave@hotmail.com"}) {
			t.Fatalf("Members after changes = %v, %v", members, err)
		}
		if m, err := s.Portals.Members(ctx, g2.ID); err != nil || len(m) != 0 {
			t.Fatalf("empty group Members = %v, %v", m, err)
		}
		wantErr(t, s.Portals.AddMember(ctx, "nope", "x@y.z"), ErrNotFound)
		if err := s.Portals.Delete(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if m, err := s.Portals.Members(ctx, g.ID); err != nil || len(m) != 0 {
			t.Fatalf("members survived their portal: %v, %v", m, err)
		}
	})
}

func TestMessages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		l := mustLogin(t, s, alice, "alice@hotmail.com")
		p, _, err := s.Portals.GetOrCreateDirect(ctx, l.ID, "bob@hotmail.com")
		if err != nil {
			t.Fatal(err)
		}
		p2, _, err := s.Portals.GetOrCreateDirect(ctx, l.ID, "carol@hotmail.com")
		if err != nil {
			t.Fatal(err)
		}
		ts := time.UnixMilli(1_700_000_000_123)
		m := MessageMapping{PortalID: p.ID, MSNID: "msn-1", FrontendID: "$ev1", Direction: FromMSN, Time: ts}
		if err := s.Messages.Put(ctx, m); err != nil {
			t.Fatal(err)
		}
		for name, get := range map[string]func() (MessageMapping, error){
			"ByMSNID":      func() (MessageMapping, error) { return s.Messages.ByMSNID(ctx, p.ID, "msn-1") },
			"ByFrontendID": func() (MessageMapping, error) { return s.Messages.ByFrontendID(ctx, p.ID, "$ev1") },
		} {
			got, err := get()
			if err != nil || !got.Time.Equal(ts) {
				t.Fatalf("%s = %+v, %v", name, got, err)
			}
			got.Time = ts
			if got != m {
				t.Fatalf("%s = %+v, want %+v", name, got, m)
			}
		}
		// De-duplication on either id, per portal.
		wantErr(t, s.Messages.Put(ctx, MessageMapping{PortalID: p.ID, MSNID: "msn-1", FrontendID: "$ev2", Direction: FromMSN}), ErrDuplicate)
		wantErr(t, s.Messages.Put(ctx, MessageMapping{PortalID: p.ID, MSNID: "msn-2", FrontendID: "$ev1", Direction: ToMSN}), ErrDuplicate)
		if err := s.Messages.Put(ctx, MessageMapping{PortalID: p2.ID, MSNID: "msn-1", FrontendID: "$ev1", Direction: ToMSN}); err != nil {
			t.Fatalf("same ids in another portal: %v", err)
		}
		if _, err := s.Messages.ByMSNID(ctx, p.ID, "msn-2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("rejected duplicate was stored: %v", err)
		}
		_, err = s.Messages.ByFrontendID(ctx, p.ID, "$nope")
		wantErr(t, err, ErrNotFound)
		wantErr(t, s.Messages.Put(ctx, MessageMapping{PortalID: "nope", MSNID: "a", FrontendID: "b", Direction: ToMSN}), ErrNotFound)
		for _, bad := range []MessageMapping{
			{PortalID: p.ID, FrontendID: "b", Direction: ToMSN},
			{PortalID: p.ID, MSNID: "a", Direction: ToMSN},
			{PortalID: p.ID, MSNID: "a", FrontendID: "b", Direction: "sideways"},
		} {
			if err := s.Messages.Put(ctx, bad); err == nil {
				t.Fatalf("Put(%+v) succeeded", bad)
			}
		}
		// Pruning removes old mappings only.
		if err := s.Messages.Put(ctx, MessageMapping{PortalID: p.ID, MSNID: "new", FrontendID: "$new", Direction: FromMSN}); err != nil {
			t.Fatal(err)
		}
		n, err := s.Messages.DeleteBefore(ctx, time.Now().Add(-time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("DeleteBefore = %d, %v; want the 1 old mapping", n, err)
		}
		if _, err := s.Messages.ByMSNID(ctx, p.ID, "new"); err != nil {
			t.Fatalf("recent mapping pruned: %v", err)
		}
	})
}

// Deleting a login takes everything that hangs off it.
func TestLoginDeleteCascades(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		l := mustLogin(t, s, alice, "alice@hotmail.com")
		keep := mustLogin(t, s, alice, "other@hotmail.com")
		for _, login := range []Login{l, keep} {
			if err := s.Contacts.Upsert(ctx, Contact{LoginID: login.ID, Passport: "bob@hotmail.com"}); err != nil {
				t.Fatal(err)
			}
		}
		direct, _, err := s.Portals.GetOrCreateDirect(ctx, l.ID, "bob@hotmail.com")
		if err != nil {
			t.Fatal(err)
		}
		group, err := s.Portals.CreateGroup(ctx, l.ID, "", []string{"bob@hotmail.com"})
		if err != nil {
			t.Fatal(err)
		}
		keptPortal, _, err := s.Portals.GetOrCreateDirect(ctx, keep.ID, "bob@hotmail.com")
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range []Portal{direct, group, keptPortal} {
			if err := s.Messages.Put(ctx, MessageMapping{PortalID: p.ID, MSNID: fmt.Sprint(i), FrontendID: fmt.Sprint(i), Direction: FromMSN}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Ghosts.Upsert(ctx, Ghost{Frontend: "matrix", Passport: "bob@hotmail.com"}); err != nil {
			t.Fatal(err)
		}

		if err := s.Logins.Delete(ctx, l.ID); err != nil {
			t.Fatal(err)
		}
		count := func(table string) int {
			var n int
			if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		for table, want := range map[string]int{"contacts": 1, "portals": 1, "portal_members": 0, "message_map": 1, "ghosts": 1} {
			if got := count(table); got != want {
				t.Errorf("%s has %d rows after deleting the login, want %d", table, got, want)
			}
		}
		if _, err := s.Portals.Get(ctx, keptPortal.ID); err != nil {
			t.Fatalf("other login's portal went too: %v", err)
		}
		if _, err := s.Messages.ByMSNID(ctx, keptPortal.ID, "2"); err != nil {
			t.Fatalf("other login's message went too: %v", err)
		}
	})
}

func TestQueue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t, WithSealer(testSealer(t, 1)), WithQueueLimit(3))
		ctx := context.Background()
		if n, err := s.Queue.Len(ctx, alice); err != nil || n != 0 {
			t.Fatalf("Len of empty queue = %d, %v", n, err)
		}
		if evs, err := s.Queue.Peek(ctx, alice, 10); err != nil || len(evs) != 0 {
			t.Fatalf("Peek of empty queue = %v, %v", evs, err)
		}
		var ids []int64
		for _, payload := range []string{"one", "two", "three"} {
			id, err := s.Queue.Push(ctx, alice, []byte(payload))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		// Bob's queue is separate, and interleaving does not disturb order.
		if _, err := s.Queue.Push(ctx, bob, []byte("bob")); err != nil {
			t.Fatal(err)
		}
		_, err := s.Queue.Push(ctx, alice, []byte("four"))
		wantErr(t, err, ErrQueueFull)
		var full *QueueFullError
		if !errors.As(err, &full) || full.Limit != 3 || full.User != alice {
			t.Fatalf("error %v is not a *QueueFullError for alice with limit 3", err)
		}
		if s.Queue.Limit() != 3 {
			t.Fatalf("Limit = %d", s.Queue.Limit())
		}
		if n, err := s.Queue.Len(ctx, alice); err != nil || n != 3 {
			t.Fatalf("Len = %d, %v", n, err)
		}

		evs, err := s.Queue.Peek(ctx, alice, 2)
		if err != nil || len(evs) != 2 || string(evs[0].Payload) != "one" || string(evs[1].Payload) != "two" ||
			evs[0].ID != ids[0] || evs[0].User != alice || evs[0].CreatedAt.IsZero() {
			t.Fatalf("Peek(2) = %+v, %v", evs, err)
		}
		// Peek does not consume.
		if again, _ := s.Queue.Peek(ctx, alice, 2); len(again) != 2 || again[0].ID != ids[0] {
			t.Fatalf("second Peek = %+v", again)
		}
		wantErr(t, s.Queue.Delete(ctx, bob, ids[0]), ErrNotFound) // not bob's event
		if err := s.Queue.Delete(ctx, alice, ids[0]); err != nil {
			t.Fatal(err)
		}
		wantErr(t, s.Queue.Delete(ctx, alice, ids[0]), ErrNotFound)
		// Room again after a delivery; order continues after the older ones.
		if _, err := s.Queue.Push(ctx, alice, []byte("four")); err != nil {
			t.Fatal(err)
		}
		evs, err = s.Queue.Peek(ctx, alice, 10)
		var got []string
		for _, ev := range evs {
			got = append(got, string(ev.Payload))
		}
		if err != nil || !reflect.DeepEqual(got, []string{"two", "three", "four"}) {
			t.Fatalf("queue = %v, %v", got, err)
		}
		users, err := s.Queue.Users(ctx)
		if err != nil || !reflect.DeepEqual(users, []UserID{alice, bob}) {
			t.Fatalf("Users = %v, %v", users, err)
		}
		if evs, err := s.Queue.Peek(ctx, alice, 0); err != nil || evs != nil {
			t.Fatalf("Peek(0) = %v, %v", evs, err)
		}
		// Deleting the user drops their queue.
		if err := s.Users.Delete(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Queue.Len(ctx, alice); err != nil || n != 0 {
			t.Fatalf("Len after deleting the user = %d, %v", n, err)
		}
	})
}

// The queue survives a restart, in order, and ids keep increasing even
// after the newest event was deleted (AUTOINCREMENT never reuses ids).
func TestQueuePersistsAcrossReopen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		path := b.newDB(t)
		s := b.openAt(t, path)
		first, _ := s.Queue.Push(ctx, alice, []byte("a"))
		last, err := s.Queue.Push(ctx, alice, []byte("b"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Queue.Delete(ctx, alice, last); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = b.openAt(t, path)
		next, err := s.Queue.Push(ctx, alice, []byte("c"))
		if err != nil || next <= last {
			t.Fatalf("id after reopen = %d (last was %d), %v", next, last, err)
		}
		evs, err := s.Queue.Peek(ctx, alice, 10)
		if err != nil || len(evs) != 2 || evs[0].ID != first || string(evs[1].Payload) != "c" {
			t.Fatalf("queue after reopen = %+v, %v", evs, err)
		}
	})
}

// Concurrent pushes never exceed the limit (the count and the insert are
// one immediate transaction).
func TestQueueBoundUnderConcurrency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t, WithQueueLimit(5))
		ctx := context.Background()
		errs := make(chan error, 20)
		for i := 0; i < 20; i++ {
			go func() {
				_, err := s.Queue.Push(ctx, alice, []byte("x"))
				errs <- err
			}()
		}
		ok := 0
		for i := 0; i < 20; i++ {
			if err := <-errs; err == nil {
				ok++
			} else if !errors.Is(err, ErrQueueFull) {
				t.Fatalf("Push: %v", err)
			}
		}
		if n, _ := s.Queue.Len(ctx, alice); ok != 5 || n != 5 {
			t.Fatalf("%d pushes succeeded, queue holds %d; want 5 and 5", ok, n)
		}
	})
}
