package xmpp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/oob"

	"github.com/msnbridge/msnbridge/bridge"
)

// Files both ways.
//
// From MSN: the core has the whole file in its media store (a File event).
// The gateway offers it as a link: on the user's server's HTTP upload
// service (XEP-0363) when it has one that takes the file, else on the
// bridge's own HTTP listener (http.public_url + /media/<id>/<name>, served
// by MediaHandler from Core.OpenMedia). The message's body is the URL and it
// carries jabber:x:oob (XEP-0066), which is how XMPP clients show an
// uploaded file. With neither, the user is told a file arrived and could
// not be offered.
//
// To MSN: a message whose jabber:x:oob URL (or whose whole body, when it is
// one http(s) URL of a file) names a file is fetched by the gateway and
// given to Core.SendFile; the DeliveryResult ends as a receipt or an error
// like a text message's.

const (
	// maxTransfers bounds the fetches for Core.SendFile running at once,
	// over all users.
	maxTransfers = 8
	// maxRedirects bounds the redirects a fetched link may take.
	maxRedirects = 5
	// maxFileName bounds the names the gateway passes on, in bytes.
	maxFileName = 200
)

// fileState is what the gateway keeps for files.
type fileState struct {
	mu        sync.Mutex
	publicURL string // http.public_url, without a trailing slash; "" for none

	running sync.WaitGroup // fetches under way, for Run to wait on
	slots   chan struct{}  // one per running fetch
	once    sync.Once

	uploadClient, fetchClient *http.Client
}

func (f *fileState) init(allowPrivate bool) {
	f.once.Do(func() {
		f.slots = make(chan struct{}, maxTransfers)
		// Uploads go where the user's server said; no redirects (a PUT body
		// is not replayed).
		f.uploadClient = &http.Client{
			Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: dialTimeout}).DialContext,
				TLSHandshakeTimeout: dialTimeout, ResponseHeaderTimeout: time.Minute},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		// Fetches go where a user's link says: never to the bridge's own
		// network (loopback, private, link-local) unless the operator
		// allows it, checked on the address actually dialled, and only
		// over http(s), redirects included.
		d := &net.Dialer{Timeout: dialTimeout}
		if !allowPrivate {
			d.Control = refusePrivate
		}
		f.fetchClient = &http.Client{
			Transport: &http.Transport{Proxy: nil, DialContext: d.DialContext,
				TLSHandshakeTimeout: dialTimeout, ResponseHeaderTimeout: time.Minute},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= maxRedirects {
					return errors.New("too many redirects")
				}
				if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
					return fmt.Errorf("redirect to a %s URL", req.URL.Scheme)
				}
				return nil
			},
		}
	})
}

// errPrivateAddress refuses a link to the bridge's own network.
var errPrivateAddress = errors.New("links to loopback, private or link-local addresses are not fetched")

func refusePrivate(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return errPrivateAddress
	}
	return nil
}

func (g *Gateway) httpClient() *http.Client {
	g.files.init(g.cfg.AllowPrivateURLs)
	return g.files.uploadClient
}

func (g *Gateway) fetchClient() *http.Client {
	g.files.init(g.cfg.AllowPrivateURLs)
	return g.files.fetchClient
}

func (g *Gateway) publicURL() string {
	g.files.mu.Lock()
	defer g.files.mu.Unlock()
	return g.files.publicURL
}

// MediaHandler serves the core's media store at /media/<MediaID>/<name>
// (GET and HEAD; the id is the capability, the name is for the user's
// client) and makes the gateway offer files from MSN there, at publicURL
// (how XMPP clients reach the listener the handler is mounted on), when
// the user's server has no upload service. Mount it at /media/; call it
// before Run.
func (g *Gateway) MediaHandler(publicURL string) (http.Handler, error) {
	u, err := httpURL(publicURL)
	if err != nil {
		return nil, fmt.Errorf("xmpp: public URL: %w", err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("xmpp: public URL %q has a query or fragment", publicURL)
	}
	g.files.mu.Lock()
	g.files.publicURL = strings.TrimRight(u.String(), "/")
	g.files.mu.Unlock()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /media/{id}/{name}", g.serveMedia)
	return mux, nil
}

// mediaURL is where MediaHandler serves id, at base.
func mediaURL(base string, id bridge.MediaID, name string) string {
	return base + "/media/" + url.PathEscape(string(id)) + "/" + url.PathEscape(name)
}

// validMediaID rejects ids that could not have come from the core, before
// asking it.
func validMediaID(id string) bool {
	if id == "" || len(id) > 256 || id == "." || id == ".." {
		return false
	}
	for _, r := range id {
		if !(r == '-' || r == '_' || r == '.' || r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return false
		}
	}
	return true
}

// inlineTypes are shown by browsers without running anything.
func inline(mimeType string) bool {
	switch {
	case mimeType == "image/svg+xml":
		return false // scripts
	case strings.HasPrefix(mimeType, "image/"), strings.HasPrefix(mimeType, "audio/"),
		strings.HasPrefix(mimeType, "video/"), mimeType == "text/plain":
		return true
	}
	return false
}

// errNoSuchFile is the answer for a well-formed id the core does not have.
const errNoSuchFile = "no such file: links to files from MSN expire"

func (g *Gateway) serveMedia(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("name")
	if !validMediaID(id) || name == "" {
		http.NotFound(w, r)
		return
	}
	m, err := g.core.OpenMedia(r.Context(), bridge.MediaID(id))
	if errors.Is(err, bridge.ErrNoSuchMedia) {
		http.Error(w, errNoSuchFile, http.StatusNotFound)
		return
	}
	if err != nil {
		g.log.Warn().Err(err).Msg("media store unavailable")
		http.Error(w, "media store unavailable", http.StatusServiceUnavailable)
		return
	}
	defer m.Close()
	mimeType, _, err := mime.ParseMediaType(m.MIME)
	if err != nil {
		mimeType = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", mimeType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, max-age=86400")
	disposition := "attachment"
	if inline(mimeType) {
		disposition = "inline"
	}
	fileName := m.Name
	if fileName == "" {
		fileName = name
	}
	if v := mime.FormatMediaType(disposition, map[string]string{"filename": safeFileName(fileName)}); v != "" {
		h.Set("Content-Disposition", v)
	} else {
		h.Set("Content-Disposition", disposition)
	}
	// The listener's write timeout is for small answers; a file gets time
	// for its size.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(transferTimeout(m.Size)))
	http.ServeContent(w, r, "", m.ModTime, m)
}

// safeFileName makes a name from MSN or a link fit to pass on: no path
// separators or control characters, bounded, never empty.
func safeFileName(name string) string {
	name = strings.ToValidUTF8(name, "_")
	name = strings.Map(func(r rune) rune {
		switch {
		case r == '/' || r == '\\' || unicode.IsControl(r) || r == utf8.RuneError:
			return '_'
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	for len(name) > maxFileName {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name == "" || name == "." || name == ".." {
		name = "file"
	}
	return name
}

// deliverFile shows a file from MSN as a link message from the contact.
func (g *Gateway) deliverFile(ctx context.Context, user bridge.UserID, f bridge.File) (string, error) {
	sender := f.Sender
	portal, perr := g.portalOf(ctx, user, f.Portal)
	if f.FromSelf {
		if perr != nil {
			if errors.Is(perr, bridge.ErrNoSuchPortal) || errors.Is(perr, bridge.ErrNotLoggedIn) {
				return "", undeliverable("a file sent elsewhere in a portal that is gone: %v", perr)
			}
			return "", fmt.Errorf("portal of a file sent elsewhere: %w", perr)
		}
		sender = portal.Contact
	}
	from, err := g.ContactJID(sender)
	if err != nil {
		return "", undeliverable("file from a sender without a JID: %v", err)
	}
	name := safeFileName(f.Name)
	link, why, err := g.offerFile(ctx, user, f, name)
	if err != nil {
		return "", err
	}
	id := newID()
	msg := outMessage{ID: id, Type: "chat", From: from.String(), To: user.ID}
	if link != "" {
		msg.Body = link
		msg.Extra = append(msg.Extra, oob.Data{URL: link, Desc: name})
	} else {
		who := "They sent"
		if f.FromSelf {
			who = "You sent them, from another MSN client,"
		}
		msg.Body = fmt.Sprintf("%s a file, %q (%s), that could not be offered here: %s.", who, name, bridge.HumanSize(f.Size), why)
	}
	if !f.Time.IsZero() {
		msg.Extra = append(msg.Extra, delay{Stamp: f.Time.UTC().Format("2006-01-02T15:04:05.000Z"), From: g.domain.String()})
	}
	if err := g.sendCtx(ctx, msg); err != nil {
		return "", err
	}
	return id, nil
}

// offerFile makes the link to a file from MSN, or says why there is none.
// Its error is ErrNotConnected (the core retries the event later).
func (g *Gateway) offerFile(ctx context.Context, user bridge.UserID, f bridge.File, name string) (link, why string, err error) {
	u, err := jid.Parse(user.ID)
	if err != nil {
		return "", "", undeliverable("user %q: %v", user.ID, err)
	}
	why = "the XMPP server has no HTTP upload service (XEP-0363) for it, and the bridge has no http.public_url to serve it from"
	dctx, cancel := context.WithTimeout(ctx, 3*iqTimeout)
	svc, derr := g.uploadServiceFor(dctx, u.Domainpart())
	cancel()
	switch {
	case errors.Is(derr, ErrNotConnected):
		return "", "", derr
	case derr != nil:
		g.log.Info().Err(derr).Str("domain", u.Domainpart()).Msg("looking for an HTTP upload service failed")
	case svc != nil && svc.maxSize > 0 && f.Size > svc.maxSize:
		why = fmt.Sprintf("it is larger than the XMPP server's upload limit (%s), and the bridge has no http.public_url to serve it from", bridge.HumanSize(svc.maxSize))
		svc = nil
	}
	if svc != nil {
		m, err := g.core.OpenMedia(ctx, f.Media)
		if errors.Is(err, bridge.ErrNoSuchMedia) {
			return "", "the bridge no longer has it (it expired)", nil
		}
		if err != nil {
			return "", "", fmt.Errorf("xmpp: opening a file from MSN: %w", err)
		}
		link, err = g.uploadMedia(ctx, svc, name, m)
		m.Close()
		if err == nil {
			return link, "", nil
		}
		if errors.Is(err, ErrNotConnected) {
			return "", "", err
		}
		g.log.Warn().Err(err).Str("service", svc.jid).Msg("HTTP upload of a file from MSN failed")
		// The service may have gone or changed: look for it again next time.
		g.uploads.forget(u.Domainpart())
		why = "the XMPP server's upload service refused it (" + err.Error() + "), and the bridge has no http.public_url to serve it from"
	}
	if base := g.publicURL(); base != "" {
		return mediaURL(base, f.Media, name), "", nil
	}
	return "", why, nil
}

// fileLink finds a file to send in a user's message: the jabber:x:oob URL,
// or a body that is a single http(s) URL whose path ends in a file name.
// explicit says it came with jabber:x:oob.
func fileLink(st *inStanza) (link string, explicit bool) {
	if u := strings.TrimSpace(st.Child(oob.NS, "x").Child("", "url").Text()); u != "" {
		return u, true
	}
	body := strings.TrimSpace(st.Child("", "body").Text())
	if body == "" || strings.ContainsAny(body, " \t\r\n") {
		return "", false
	}
	u, err := httpURL(body)
	if err != nil {
		return "", false
	}
	base := path.Base(u.Path)
	ext := strings.ToLower(path.Ext(base))
	if ext == "" || base == ext {
		return "", false
	}
	switch ext {
	case ".html", ".htm", ".php", ".asp", ".aspx", ".jsp", ".cgi":
		return "", false // a web page, not an upload
	}
	return body, false
}

// errNotAFile says a bare link in a body turned out to be a web page (or
// could not be fetched): it is sent as the text it is.
var errNotAFile = errors.New("the link is not a file")

// sendLinkedFile fetches link and gives it to the core as a file for the
// portal's contact, in the background: a download must not hold up the
// user's other stanzas. Errors go back to the user as an error reply to st.
// A link that came as a bare body (not explicit) and is no file is sent as
// text instead.
func (g *Gateway) sendLinkedFile(st *inStanza, portal bridge.Portal, link string, explicit bool) {
	g.files.init(g.cfg.AllowPrivateURLs)
	select {
	case g.files.slots <- struct{}{}:
	default:
		g.replyError(st, newErr(errWait, "resource-constraint", "too many files being sent at once; try again later"))
		return
	}
	g.mu.Lock()
	ctx := g.ctx
	g.mu.Unlock()
	g.files.running.Add(1)
	go func() {
		defer g.files.running.Done()
		defer func() { <-g.files.slots }()
		err := g.sendLinked(ctx, st, portal, link, explicit)
		if errors.Is(err, errNotAFile) {
			cctx, cancel := context.WithTimeout(ctx, coreTimeout)
			defer cancel()
			g.sendText(cctx, st, portal, st.Child("", "body").Text())
			return
		}
		if err != nil {
			g.log.Info().Err(err).Str("user", st.user.ID).Msg("file not sent to MSN")
			g.replyError(st, newErr(errCancel, "not-acceptable", "the file was not sent: "+err.Error()))
		}
	}()
}

func (g *Gateway) sendLinked(ctx context.Context, st *inStanza, portal bridge.Portal, link string, explicit bool) error {
	u, err := httpURL(link)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := g.fetchClient().Do(req)
	if err != nil && !explicit {
		return fmt.Errorf("%w: %v", errNotAFile, err)
	}
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is the user's own; no need to repeat it
		}
		return fmt.Errorf("fetching it failed: %w", err)
	}
	defer resp.Body.Close()
	mimeType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if !explicit && (resp.StatusCode != http.StatusOK || mimeType == "text/html" || mimeType == "application/xhtml+xml") {
		return fmt.Errorf("%w: %s, %s", errNotAFile, resp.Status, mimeType)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching it failed: %s", resp.Status)
	}
	if resp.ContentLength < 0 {
		return errors.New("its server did not say how large it is")
	}
	name := ""
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		name = params["filename"]
	}
	if name == "" {
		name, _ = url.PathUnescape(path.Base(resp.Request.URL.Path))
	}
	name = safeFileName(name)
	fid := newID()
	g.state.addPending(st.user.ID, fid, pendingMessage{
		to:      st.from.String(),
		from:    st.to.Bare().String(),
		id:      st.Attr("id"),
		receipt: st.Child(nsReceipts, "request") != nil && st.Attr("id") != "",
		file:    name,
		at:      time.Now(),
	})
	err = g.core.SendFile(ctx, st.user, portal.ID, bridge.OutgoingFile{
		FrontendID: fid, Name: name, Size: resp.ContentLength, MIME: mimeType,
		Data: io.LimitReader(resp.Body, resp.ContentLength),
	})
	if err != nil {
		g.state.takePending(st.user.ID, fid)
		return err
	}
	return nil
}
