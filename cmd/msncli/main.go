// Command msncli is a small MSN Messenger client for the terminal: it logs
// an account in to a notification server and prints what happens as JSON
// lines, one event per line. It exists to try servers and the msnp library
// by hand and from scripts.
//
// Exit codes: 0 ok, 2 usage, 3 authentication failed, 4 network failure,
// 5 protocol error, 6 message not accepted (contact offline, not allowed,
// switchboard failures).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/msnp"
)

const (
	exitOK       = 0
	exitUsage    = 2
	exitAuth     = 3
	exitNetwork  = 4
	exitProtocol = 5
	exitNotSent  = 6
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(runContext(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: msncli --server HOST:PORT [--login-url URL | --nexus-url URL]
              [--rst-url URL [--soap-url URL] [--machine-guid GUID]]
              --passport P --password-file F [--protocol MSNP18] [--debug]
              [--picture PNG] [--files DIR]
              login | contacts | listen | status STATUS [PSM] | send TO TEXT
              | sendfile TO PATH | getpicture CONTACT OUT

  A login or nexus URL enables MSNP8–12 (Tweener), --rst-url MSNP15–18
  (SSO); with both, MSNP18 is offered first and the server may pick less.

  login     log in and out; prints the session
  contacts  log in and print the contact list
  listen    log in, go online and print events (presence, messages,
            typing, nudges) until interrupted
  status    log in, set STATUS (NLN BSY IDL BRB AWY PHN LUN HDN) and,
            from MSNP11, the personal message PSM; then log out
  send      log in, go online, send TEXT to the contact TO and log out;
            exits 0 once the switchboard accepted it, 6 if it did not
  sendfile  log in, go online, offer the file PATH to TO (MSNP2P through
            the switchboard); exits 0 once they received it all, 6 if they
            declined or the transfer failed
  getpicture  log in, go online, wait for CONTACT's display picture to be
            advertised and fetch it (MSNP2P) into the file OUT

  --picture PNG sets this account's display picture (sent as it is, so
  96x96 PNG is best) before going online, and serves it to contacts.
  With --files DIR, listen accepts files contacts offer into DIR (as
  FileReceived events); without it, it declines them.
`

func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run, stopped early (for listen) when ctx ends.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("msncli", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	server := fs.String("server", "", "notification server host:port")
	loginURL := fs.String("login-url", "", "Passport 1.4 login URL")
	nexusURL := fs.String("nexus-url", "", "Passport nexus URL")
	passport := fs.String("passport", "", "account")
	pwFile := fs.String("password-file", "", "file holding the password")
	rstURL := fs.String("rst-url", "", "SSO token service URL (…/RST.srf), for MSNP15–18")
	soapURL := fs.String("soap-url", "", "base URL of the address-book and OIM services (default: the RST URL's host)")
	machineGUID := fs.String("machine-guid", "", "this endpoint's machine GUID on MSNP16+ (default: a new one)")
	proto := fs.String("protocol", "", "protocol version to offer first (MSNP8…MSNP18)")
	debug := fs.Bool("debug", false, "print redacted protocol traces on stderr")
	timeout := fs.Duration("timeout", 60*time.Second, "login timeout")
	picture := fs.String("picture", "", "PNG to use as this account's display picture")
	filesDir := fs.String("files", "", "listen: accept offered files into this directory")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	rest := fs.Args()
	bad := func(msg string) int {
		fmt.Fprintf(stderr, "msncli: %s\n", msg)
		fs.Usage()
		return exitUsage
	}
	if *server == "" || *passport == "" || *pwFile == "" || (*loginURL == "" && *nexusURL == "" && *rstURL == "") {
		return bad("--server, --passport, --password-file and a login, nexus or RST URL are required")
	}
	if len(rest) == 0 {
		return bad("missing command")
	}
	cmd := rest[0]
	var status msnp.Status
	var psm *string
	var to, text string
	switch cmd {
	case "send":
		if len(rest) != 3 || !strings.Contains(rest[1], "@") {
			return bad("send takes TO TEXT")
		}
		to, text = rest[1], rest[2]
	case "sendfile", "getpicture":
		if len(rest) != 3 || !strings.Contains(rest[1], "@") {
			return bad(cmd + " takes CONTACT PATH")
		}
		to, text = rest[1], rest[2]
	case "login", "contacts", "listen":
		if len(rest) != 1 {
			return bad(cmd + " takes no arguments")
		}
	case "status":
		if len(rest) < 2 || len(rest) > 3 {
			return bad("status takes STATUS [PSM]")
		}
		status = msnp.Status(strings.ToUpper(rest[1]))
		if !status.Valid() {
			return bad("unknown status " + rest[1])
		}
		if len(rest) == 3 {
			psm = &rest[2]
		}
	default:
		return bad("unknown command " + cmd)
	}
	pw, err := os.ReadFile(*pwFile)
	if err != nil {
		return bad(err.Error())
	}
	var pictureData []byte
	if *picture != "" {
		if pictureData, err = os.ReadFile(*picture); err != nil {
			return bad(err.Error())
		}
	}
	if *filesDir != "" {
		if st, err := os.Stat(*filesDir); err != nil || !st.IsDir() {
			return bad("--files needs an existing directory")
		}
	}
	cfg := msnp.Config{Server: *server, LoginURL: *loginURL, NexusURL: *nexusURL,
		RSTURL: *rstURL, SOAPBaseURL: *soapURL, MachineGUID: *machineGUID}
	if *proto != "" {
		p, err := msnp.ParseProtocol(*proto)
		if err != nil {
			return bad(err.Error())
		}
		tweener := *loginURL != "" || *nexusURL != ""
		if (p >= msnp.MSNP15 && *rstURL == "") || (p < msnp.MSNP15 && !tweener) {
			return bad(p.String() + " needs " + map[bool]string{true: "--rst-url", false: "a login or nexus URL"}[p >= msnp.MSNP15])
		}
		// Offer the chosen version, then the older ones the URLs given
		// allow, as fallbacks.
		cfg.Protocols = []msnp.Protocol{p}
		for _, q := range msnp.SupportedProtocols() {
			if q < p && (q >= msnp.MSNP15 && *rstURL != "" || q < msnp.MSNP15 && tweener) {
				cfg.Protocols = append(cfg.Protocols, q)
			}
		}
	}
	if *debug {
		cfg.Logger = zerolog.New(stderr).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	}

	out := &lineEncoder{enc: json.NewEncoder(stdout)}
	events := make(chan msnp.Event, 64)
	printing := make(chan struct{})
	done := make(chan msnp.Disconnected, 1)
	go func() {
		defer close(printing)
		for ev := range events {
			_ = out.Encode(eventJSON(ev))
			if d, ok := ev.(msnp.Disconnected); ok {
				done <- d
			}
		}
	}()
	synced := make(chan struct{}, 1)
	var transfers sync.WaitGroup
	defer transfers.Wait()
	c, err := msnp.New(cfg, *passport, strings.TrimRight(string(pw), "\r\n"), func(ev msnp.Event) {
		if _, ok := ev.(msnp.PresenceSynced); ok {
			synced <- struct{}{}
		}
		if offer, ok := ev.(msnp.FileOffer); ok {
			// Accept blocks until the transfer ends: not on this
			// goroutine, which every later event waits for.
			transfers.Add(1)
			go func() {
				defer transfers.Done()
				receiveFile(ctx, out, offer, *filesDir)
			}()
		}
		events <- ev
	})
	if err != nil {
		return bad(err.Error())
	}
	finish := func(code int) int {
		c.Close()
		// Close delivers Disconnected; wait for it to be printed.
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return code
	}
	lctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := c.Connect(lctx); err != nil {
		return fail(stderr, out, err)
	}
	li := map[string]any{"event": "LoggedIn", "passport": c.Passport(), "protocol": c.Protocol().String(), "friendly_name": c.FriendlyName()}
	if c.Protocol() >= msnp.MSNP16 {
		li["machine_guid"] = c.MachineGUID()
	}
	_ = out.Encode(li)
	if pictureData != nil {
		if _, err := c.SetDisplayPicture(lctx, pictureData); err != nil {
			return finish(fail(stderr, out, err))
		}
	}
	switch cmd {
	case "login":
	case "contacts":
		for _, ct := range c.Contacts() {
			m := structMap(ct)
			m["event"] = "Contact"
			_ = out.Encode(m)
		}
	case "status":
		if err := c.SetStatus(lctx, status); err != nil {
			return finish(fail(stderr, out, err))
		}
		if psm != nil {
			if err := c.SetPersonalMessage(lctx, *psm); err != nil {
				return finish(fail(stderr, out, err))
			}
		}
	case "send":
		if err := c.SetStatus(lctx, msnp.StatusOnline); err != nil {
			return finish(fail(stderr, out, err))
		}
		if err := c.Chat(to).SendText(lctx, text, msnp.DefaultTextFormat()); err != nil {
			fmt.Fprintf(stderr, "msncli: sending to %s: %v\n", to, err)
			_ = out.Encode(map[string]any{"event": "NotSent", "to": to, "error": err.Error(), "exit": exitNotSent})
			return finish(exitNotSent)
		}
		_ = out.Encode(map[string]any{"event": "Sent", "to": to})
	case "sendfile":
		if err := c.SetStatus(lctx, msnp.StatusOnline); err != nil {
			return finish(fail(stderr, out, err))
		}
		if code := sendFile(ctx, c, out, stderr, to, text); code != exitOK {
			return finish(code)
		}
	case "getpicture":
		if err := c.SetStatus(lctx, msnp.StatusOnline); err != nil {
			return finish(fail(stderr, out, err))
		}
		if code := getPicture(lctx, c, out, stderr, to, text); code != exitOK {
			return finish(code)
		}
	case "listen":
		if err := c.SetStatus(lctx, msnp.StatusOnline); err != nil {
			return finish(fail(stderr, out, err))
		}
		select {
		case <-ctx.Done():
			return finish(exitOK)
		case d := <-done:
			if d.Reason == msnp.ReasonLoggedOut {
				return exitOK
			}
			return exitNetwork
		}
	}
	return finish(exitOK)
}

// sendFile offers the file at path to contact and waits for the end of
// the transfer.
func sendFile(ctx context.Context, c *msnp.Client, out *lineEncoder, stderr io.Writer, to, path string) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "msncli: %v\n", err)
		return exitUsage
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fmt.Fprintf(stderr, "msncli: %v\n", err)
		return exitUsage
	}
	name := filepath.Base(path)
	if err := c.SendFile(ctx, to, msnp.OutgoingFile{Name: name, Size: st.Size(), Data: f}); err != nil {
		fmt.Fprintf(stderr, "msncli: sending %s to %s: %v\n", name, to, err)
		_ = out.Encode(map[string]any{"event": "FileNotSent", "to": to, "name": name, "error": err.Error(), "exit": exitNotSent})
		return exitNotSent
	}
	_ = out.Encode(map[string]any{"event": "FileSent", "to": to, "name": name, "size": st.Size()})
	return exitOK
}

// getPicture waits until contact advertises a display picture, fetches it
// into path and prints its MSNObject.
func getPicture(ctx context.Context, c *msnp.Client, out *lineEncoder, stderr io.Writer, contact, path string) int {
	var obj msnp.MSNObject
	for {
		if ct, ok := c.Contact(contact); ok && ct.MSNObject != "" {
			var err error
			if obj, err = msnp.ParseMSNObject(ct.MSNObject); err != nil {
				fmt.Fprintf(stderr, "msncli: %s advertises a bad msnobj: %v\n", contact, err)
				return exitProtocol
			}
			break
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(stderr, "msncli: %s advertised no display picture (are they online?)\n", contact)
			return exitNotSent
		case <-time.After(100 * time.Millisecond):
		}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "msncli: %v\n", err)
		return exitUsage
	}
	err = c.FetchMSNObject(ctx, contact, obj, f, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		fmt.Fprintf(stderr, "msncli: fetching %s's display picture: %v\n", contact, err)
		_ = out.Encode(map[string]any{"event": "PictureNotFetched", "from": contact, "error": err.Error(), "exit": exitNotSent})
		return exitNotSent
	}
	_ = out.Encode(map[string]any{"event": "PictureFetched", "from": contact, "size": obj.Size, "sha1d": obj.SHA1D, "path": path})
	return exitOK
}

// receiveFile accepts offer into dir, or declines it when dir is "".
func receiveFile(ctx context.Context, out *lineEncoder, offer msnp.FileOffer, dir string) {
	if dir == "" {
		_ = offer.Transfer.Decline()
		_ = out.Encode(map[string]any{"event": "FileDeclined", "from": offer.From, "name": offer.Name})
		return
	}
	// The name is the sender's: keep only its last element, so that it
	// cannot climb out of dir.
	name := filepath.Base(filepath.Clean("/" + strings.ReplaceAll(offer.Name, "\\", "/")))
	if name == "/" || name == "." {
		name = "file"
	}
	f, err := os.CreateTemp(dir, name+".part-*")
	if err == nil {
		err = offer.Transfer.Accept(ctx, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), filepath.Join(dir, name))
		}
		if err != nil {
			os.Remove(f.Name())
		}
	} else {
		_ = offer.Transfer.Decline()
	}
	if err != nil {
		_ = out.Encode(map[string]any{"event": "FileFailed", "from": offer.From, "name": offer.Name, "error": err.Error()})
		return
	}
	_ = out.Encode(map[string]any{"event": "FileReceived", "from": offer.From, "name": name, "size": offer.Size, "path": filepath.Join(dir, name)})
}

// fail prints err and maps it to an exit code.
func fail(stderr io.Writer, out *lineEncoder, err error) int {
	fmt.Fprintf(stderr, "msncli: %v\n", err)
	code := exitProtocol
	switch {
	case errors.Is(err, msnp.ErrAuthentication):
		code = exitAuth
	case errors.Is(err, msnp.ErrNetwork), errors.Is(err, context.DeadlineExceeded):
		code = exitNetwork
	}
	_ = out.Encode(map[string]any{"event": "Error", "error": err.Error(), "exit": code})
	return code
}

// lineEncoder writes JSON lines from the event goroutine and the command
// alike, one whole line at a time.
type lineEncoder struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (l *lineEncoder) Encode(v any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.enc.Encode(v)
}

// eventJSON renders an event as an object with its type under "event".
// A conversation event names its conversation flat ("conversation",
// "group", "participants"); a message's format is its X-MMS-IM-Format
// value. Switchboard cookies are left out: they are credentials.
func eventJSON(ev msnp.Event) map[string]any {
	m := structMap(ev)
	m["event"] = reflect.TypeOf(ev).Name()
	if info, ok := m["conversation"].(msnp.ConversationInfo); ok {
		m["conversation"] = info.ID
		m["group"] = info.Group
		m["participants"] = info.Participants
	}
	if f, ok := m["format"].(msnp.TextFormat); ok {
		m["format"] = f.Header()
	}
	if _, ok := ev.(msnp.SwitchboardInvite); ok {
		delete(m, "cookie")
	}
	delete(m, "transfer") // a FileOffer's handle, nothing to print
	return m
}

func structMap(v any) map[string]any {
	m := map[string]any{}
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rv.Field(i).Interface()
		switch x := f.(type) {
		case error:
			f = x.Error()
		case msnp.DisconnectReason:
			f = x.String()
		}
		if rv.Field(i).Kind() == reflect.Interface && rv.Field(i).IsNil() {
			continue
		}
		m[snake(rt.Field(i).Name)] = f
	}
	return m
}

func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 && !(s[i-1] >= 'A' && s[i-1] <= 'Z') {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
