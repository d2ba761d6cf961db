package store

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func TestAvatars(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		const hash = "0a4d55a8d778e5022fab701977c5d840bbc486d0"
		if ok, err := s.Avatars.Has(ctx, hash); err != nil || ok {
			t.Fatalf("Has on an empty cache = %v, %v", ok, err)
		}
		_, err := s.Avatars.Get(ctx, hash)
		wantErr(t, err, ErrNotFound)
		data := []byte("\x89PNG\r\n\x1a\nnot really")
		when := time.UnixMilli(1_700_000_000_000)
		if err := s.Avatars.Put(ctx, Avatar{Hash: hash, Data: data, MIME: "image/png", FetchedAt: when}); err != nil {
			t.Fatal(err)
		}
		// The same hash is the same content: a second Put keeps the first.
		if err := s.Avatars.Put(ctx, Avatar{Hash: hash, Data: []byte("other"), MIME: "image/gif"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Avatars.Get(ctx, hash)
		if err != nil || !bytes.Equal(got.Data, data) || got.MIME != "image/png" || !got.FetchedAt.Equal(when) {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		if ok, err := s.Avatars.Has(ctx, hash); err != nil || !ok {
			t.Fatalf("Has after Put = %v, %v", ok, err)
		}
		if err := s.Avatars.Put(ctx, Avatar{Hash: "x"}); err == nil {
			t.Fatal("Put without data succeeded")
		}
	})
}

func TestMedia(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		old := MediaFile{ID: "00112233445566778899aabbccddeeff", Owner: alice, Name: "holiday.jpg", Size: 1234,
			MIME: "image/jpeg", Path: "00112233445566778899aabbccddeeff", CreatedAt: time.UnixMilli(1_000_000)}
		fresh := MediaFile{ID: "ffeeddccbbaa99887766554433221100", Owner: bob, Name: "notes.txt", Size: 5,
			MIME: "text/plain; charset=utf-8", Path: "ffeeddccbbaa99887766554433221100", CreatedAt: time.UnixMilli(3_000_000)}
		for _, m := range []MediaFile{old, fresh} {
			if err := s.Media.Put(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		wantErr(t, s.Media.Put(ctx, old), ErrDuplicate)
		got, err := s.Media.Get(ctx, old.ID)
		if err != nil || got != old {
			t.Fatalf("Get = %+v, %v\nwant %+v", got, err, old)
		}
		_, err = s.Media.Get(ctx, "nope")
		wantErr(t, err, ErrNotFound)

		expired, err := s.Media.CreatedBefore(ctx, time.UnixMilli(2_000_000), 10)
		if err != nil || len(expired) != 1 || expired[0].ID != old.ID {
			t.Fatalf("CreatedBefore = %+v, %v", expired, err)
		}
		all, err := s.Media.CreatedBefore(ctx, time.UnixMilli(4_000_000), 1)
		if err != nil || len(all) != 1 || all[0].ID != old.ID {
			t.Fatalf("CreatedBefore with limit 1 = %+v, %v (want the oldest only)", all, err)
		}
		if err := s.Media.Delete(ctx, old.ID); err != nil {
			t.Fatal(err)
		}
		wantErr(t, s.Media.Delete(ctx, old.ID), ErrNotFound)
		if _, err := s.Media.Get(ctx, fresh.ID); err != nil {
			t.Fatalf("deleting one file lost another: %v", err)
		}
		if err := s.Media.Put(ctx, MediaFile{ID: "x"}); err == nil {
			t.Fatal("Put without a path succeeded")
		}
	})
}

func TestDisplayPictures(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.openTest(t)
		ctx := context.Background()
		wantErr(t, s.DisplayPictures.Set(ctx, alice, []byte("png")), ErrNotFound) // no such user yet
		if _, err := s.Users.Ensure(ctx, alice, 1); err != nil {
			t.Fatal(err)
		}
		_, err := s.DisplayPictures.Get(ctx, alice)
		wantErr(t, err, ErrNotFound)
		for _, data := range [][]byte{[]byte("first"), []byte("second")} {
			if err := s.DisplayPictures.Set(ctx, alice, data); err != nil {
				t.Fatal(err)
			}
			got, err := s.DisplayPictures.Get(ctx, alice)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Get = %q, %v, want %q", got, err, data)
			}
		}
		if err := s.DisplayPictures.Set(ctx, alice, nil); err != nil {
			t.Fatal(err)
		}
		_, err = s.DisplayPictures.Get(ctx, alice)
		wantErr(t, err, ErrNotFound)
		if err := s.DisplayPictures.Set(ctx, alice, nil); err != nil {
			t.Fatalf("clearing twice: %v", err)
		}
	})
}
