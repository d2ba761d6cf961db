package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

// bobPeer signs bob in as msnptest's scripted peer, whose MSNP2P is written
// independently of msnp's, and fails the test if it saw a protocol
// violation by the end.
func bobPeer(t *testing.T, s *msnptest.Server) *msnptest.Peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := s.NewPeer(ctx, "bob@example.com", "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.WaitIdle(ctx)
		if v := p.Violations(); len(v) > 0 {
			t.Errorf("the peer saw protocol violations: %q", v)
		}
		p.Close()
	})
	return p
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSendFileCommand(t *testing.T) {
	s, args := setup(t, "pw")
	bob := bobPeer(t, s)
	data := randomBytes(t, 50_000) // several dozen P2P chunks
	path := filepath.Join(t.TempDir(), "holiday.jpg")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(append(args, "sendfile", "bob@example.com", path), &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := bob.WaitFile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.From != "alice@example.com" || f.Name != "holiday.jpg" || !bytes.Equal(f.Data, data) {
		t.Errorf("bob got %q from %s, %d bytes (equal: %v)", f.Name, f.From, len(f.Data), bytes.Equal(f.Data, data))
	}
	if !hasEvent(lines(t, out.String()), "FileSent") {
		t.Errorf("no FileSent line: %s", out.String())
	}

	bob.DeclineFiles(true)
	out.Reset()
	if code := run(append(args, "sendfile", "bob@example.com", path), &out, &errb); code != exitNotSent {
		t.Fatalf("a declined file: exit %d, want %d", code, exitNotSent)
	}
	if !hasEvent(lines(t, out.String()), "FileNotSent") {
		t.Errorf("no FileNotSent line: %s", out.String())
	}
}

func TestGetPictureCommand(t *testing.T) {
	s, args := setup(t, "pw")
	bob := bobPeer(t, s)
	pic := randomBytes(t, 5000)
	obj := bob.SetDisplayPicture(pic)
	path := filepath.Join(t.TempDir(), "bob.png")
	var out, errb bytes.Buffer
	if code := run(append(args, "getpicture", "bob@example.com", path), &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, pic) {
		t.Fatalf("picture: %d bytes, %v; want the %d bob set", len(got), err, len(pic))
	}
	ms := lines(t, out.String())
	if !hasEvent(ms, "PictureFetched") {
		t.Errorf("no PictureFetched line: %s", out.String())
	}
	for _, m := range ms {
		if m["event"] == "PictureFetched" && m["sha1d"] != obj.SHA1D {
			t.Errorf("sha1d %v, want %s", m["sha1d"], obj.SHA1D)
		}
	}
}

// TestListenFilesAndPicture: listen with --files accepts a file into the
// directory (a name that tries to climb out of it stays inside), and
// --picture is served to a contact who asks; without --files, offers are
// declined.
func TestListenFilesAndPicture(t *testing.T) {
	s, args := setup(t, "pw")
	bob := bobPeer(t, s)
	dir := t.TempDir()
	pic := randomBytes(t, 3000)
	picPath := filepath.Join(t.TempDir(), "me.png")
	if err := os.WriteFile(picPath, pic, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := newSyncBuffer(), newSyncBuffer()
	code := make(chan int, 1)
	go func() {
		code <- runContext(ctx, append(args, "--files", dir, "--picture", picPath, "listen"), out, errb)
	}()
	defer func() {
		cancel()
		<-code
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	obj, err := bob.WaitMSNObject(wctx, "alice@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := bob.FetchDisplayPicture(wctx, "alice@example.com", obj)
	if err != nil || !bytes.Equal(got, pic) {
		t.Fatalf("bob fetched %d bytes, %v; want alice's %d", len(got), err, len(pic))
	}
	data := randomBytes(t, 20_000)
	if err := bob.SendFile(wctx, "alice@example.com", "../../escape.txt", data); err != nil {
		t.Fatal(err)
	}
	// SendFile returns once bob's data is acknowledged; the file is
	// renamed into place just after.
	saved := filepath.Join(dir, "escape.txt")
	for {
		if b, err := os.ReadFile(saved); err == nil && bytes.Equal(b, data) {
			break
		}
		select {
		case <-wctx.Done():
			entries, _ := os.ReadDir(dir)
			t.Fatalf("the file never landed as %s; dir has %v; out: %s", saved, entries, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	<-code
	code <- 0 // for the deferred receive
	if err := s.WaitOffline(wctx, "alice@example.com"); err != nil {
		t.Fatal(err)
	}

	// Without --files the offer is declined.
	ctx2, cancel2 := context.WithCancel(context.Background())
	code2 := make(chan int, 1)
	go func() { code2 <- runContext(ctx2, append(args, "listen"), newSyncBuffer(), newSyncBuffer()) }()
	defer func() {
		cancel2()
		<-code2
	}()
	if err := s.WaitStatus(wctx, "alice@example.com", "NLN"); err != nil {
		t.Fatal(err)
	}
	if err := bob.SendFile(wctx, "alice@example.com", "unwanted.bin", data); !errors.Is(err, msnptest.ErrDeclined) {
		t.Errorf("sending to a listen without --files: %v, want ErrDeclined", err)
	}
}

func hasEvent(ms []map[string]any, name string) bool {
	for _, m := range ms {
		if m["event"] == name {
			return true
		}
	}
	return false
}
