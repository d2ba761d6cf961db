package store

import (
	"context"
	"testing"
)

func TestLoginsRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		_, err := s.Logins.GetByUser(ctx, alice)
		wantErr(t, err, ErrNotFound)

		l, err := s.Logins.Put(ctx, Login{User: alice, Passport: " Alice@Hotmail.com ", Protocol: "MSNP12", MachineGUID: "{1234}"}, "hunter2")
		if err != nil {
			t.Fatal(err)
		}
		if l.ID == 0 || l.User != alice || l.Passport != "alice@hotmail.com" || l.Protocol != "MSNP12" ||
			l.MachineGUID != "{1234}" || !l.HasPassword || l.CreatedAt.IsZero() {
			t.Fatalf("Put returned %+v", l)
		}
		if _, err := s.Users.Get(ctx, alice); err != nil {
			t.Fatalf("Put did not create the user: %v", err)
		}
		// The password is stored sealed, never as plaintext.
		var raw []byte
		if err := s.db.QueryRow(ctx, "SELECT password FROM msn_logins WHERE id=$1", l.ID).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if len(raw) == 0 || string(raw) == "hunter2" {
			t.Fatalf("stored password = %q", raw)
		}
		if pw, err := s.Logins.Password(ctx, l.ID); err != nil || pw != "hunter2" {
			t.Fatalf("Password = %q, %v", pw, err)
		}

		for name, get := range map[string]func() (Login, error){
			"Get":           func() (Login, error) { return s.Logins.Get(ctx, l.ID) },
			"GetByUser":     func() (Login, error) { return s.Logins.GetByUser(ctx, alice) },
			"GetByPassport": func() (Login, error) { return s.Logins.GetByPassport(ctx, alice, "ALICE@hotmail.com") },
		} {
			if got, err := get(); err != nil || got != l {
				t.Fatalf("%s = %+v, %v; want %+v", name, got, err, l)
			}
		}

		// Put again: same row, updated fields; "" keeps the password.
		l2, err := s.Logins.Put(ctx, Login{User: alice, Passport: "alice@hotmail.com", Protocol: "MSNP15", MachineGUID: "{1234}"}, "")
		if err != nil || l2.ID != l.ID || l2.Protocol != "MSNP15" {
			t.Fatalf("second Put = %+v, %v", l2, err)
		}
		if pw, err := s.Logins.Password(ctx, l.ID); err != nil || pw != "hunter2" {
			t.Fatalf("Password after Put with empty password = %q, %v", pw, err)
		}
		if _, err := s.Logins.Put(ctx, Login{User: alice, Passport: "alice@hotmail.com"}, "newpass"); err != nil {
			t.Fatal(err)
		}
		if pw, err := s.Logins.Password(ctx, l.ID); err != nil || pw != "newpass" {
			t.Fatalf("Password after change = %q, %v", pw, err)
		}

		if err := s.Logins.SetState(ctx, l.ID, "bad_credentials", "911"); err != nil {
			t.Fatal(err)
		}
		if err := s.Logins.SetProtocol(ctx, l.ID, "MSNP18"); err != nil {
			t.Fatal(err)
		}
		got, err := s.Logins.Get(ctx, l.ID)
		if err != nil || got.State != "bad_credentials" || got.LastError != "911" || got.Protocol != "MSNP18" {
			t.Fatalf("after SetState = %+v, %v", got, err)
		}
		wantErr(t, s.Logins.SetState(ctx, 9999, "x", ""), ErrNotFound)
		_, err = s.Logins.Get(ctx, 9999)
		wantErr(t, err, ErrNotFound)
		_, err = s.Logins.Password(ctx, 9999)
		wantErr(t, err, ErrNotFound)
		if _, err := s.Logins.Put(ctx, Login{User: alice, Passport: "  "}, "x"); err == nil {
			t.Fatal("Put accepted an empty passport")
		}
	})
}

func TestLoginsSeveralPerUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		a1 := mustLogin(t, s, alice, "a1@hotmail.com")
		a2 := mustLogin(t, s, alice, "a2@hotmail.com")
		b1 := mustLogin(t, s, bob, "a1@hotmail.com") // same passport, another user
		if a1.ID == a2.ID || a1.ID == b1.ID {
			t.Fatalf("ids collide: %d %d %d", a1.ID, a2.ID, b1.ID)
		}
		list, err := s.Logins.ListByUser(ctx, alice)
		if err != nil || len(list) != 2 || list[0].ID != a1.ID || list[1].ID != a2.ID {
			t.Fatalf("ListByUser = %+v, %v", list, err)
		}
		if got, err := s.Logins.GetByUser(ctx, alice); err != nil || got.ID != a1.ID {
			t.Fatalf("GetByUser = %+v, %v; want the oldest", got, err)
		}
		all, err := s.Logins.All(ctx)
		if err != nil || len(all) != 3 {
			t.Fatalf("All = %+v, %v", all, err)
		}
		if n, err := s.Logins.Count(ctx); err != nil || n != 3 {
			t.Fatalf("Count = %d, %v", n, err)
		}
		if err := s.Logins.Delete(ctx, a2.ID); err != nil {
			t.Fatal(err)
		}
		wantErr(t, s.Logins.Delete(ctx, a2.ID), ErrNotFound)
		// Deleting a user removes their logins.
		if err := s.Users.Delete(ctx, alice); err != nil {
			t.Fatal(err)
		}
		_, err = s.Logins.Get(ctx, a1.ID)
		wantErr(t, err, ErrNotFound)
		if _, err := s.Logins.Get(ctx, b1.ID); err != nil {
			t.Fatalf("bob's login went with alice: %v", err)
		}
	})
}

func TestLoginsKeyChecks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		path := b.newDB(t)

		// No key: passwords cannot be stored; no logins means nothing to refuse.
		noKey := b.openAt(t, path, WithQueueLimit(DefaultQueueLimit))
		_, err := noKey.Logins.Put(ctx, Login{User: alice, Passport: "a@hotmail.com"}, "pw")
		wantErr(t, err, ErrNoKey)
		if has, err := noKey.HasLoginsWithoutKey(ctx); err != nil || has {
			t.Fatalf("HasLoginsWithoutKey on empty store = %v, %v", has, err)
		}
		if err := noKey.CheckKey(ctx); err != nil {
			t.Fatalf("CheckKey on empty store = %v", err)
		}
		noKey.Close()

		withKey := b.openAt(t, path, WithSealer(testSealer(t, 1)))
		l := mustLogin(t, withKey, alice, "a@hotmail.com")
		if err := withKey.CheckKey(ctx); err != nil {
			t.Fatalf("CheckKey with the right key = %v", err)
		}
		if has, err := withKey.HasLoginsWithoutKey(ctx); err != nil || has {
			t.Fatalf("HasLoginsWithoutKey with a key = %v, %v", has, err)
		}
		withKey.Close()

		noKey = b.openAt(t, path, WithQueueLimit(DefaultQueueLimit))
		if has, err := noKey.HasLoginsWithoutKey(ctx); err != nil || !has {
			t.Fatalf("HasLoginsWithoutKey = %v, %v; want true", has, err)
		}
		wantErr(t, noKey.CheckKey(ctx), ErrNoKey)
		_, err = noKey.Logins.Password(ctx, l.ID)
		wantErr(t, err, ErrNoKey)
		// Reading logins without the key still works (state, passport).
		if _, err := noKey.Logins.Get(ctx, l.ID); err != nil {
			t.Fatal(err)
		}
		noKey.Close()

		wrongKey := b.openAt(t, path, WithSealer(testSealer(t, 2)))
		wantErr(t, wrongKey.CheckKey(ctx), ErrWrongKey)
		_, err = wrongKey.Logins.Password(ctx, l.ID)
		wantErr(t, err, ErrWrongKey)
	})
}
