package xmpp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/upload"

	"github.com/msnbridge/msnbridge/bridge"
)

// XEP-0363 HTTP File Upload, used by the gateway itself: a file from MSN is
// put on the user's server's upload service (the component asks for the
// slot in its own name), and the user gets the GET URL. Which service, if
// any, is found by service discovery on the user's domain and cached.

const (
	// uploadFound and uploadMissing are how long a discovery result is kept;
	// a failed discovery (a timeout) is retried sooner.
	uploadFound   = 30 * time.Minute
	uploadMissing = 10 * time.Minute
	uploadFailed  = time.Minute
	// maxDiscoItems bounds the disco#info queries made per discovery.
	maxDiscoItems = 20
)

// uploadService is an upload service and the largest file it accepts
// (0: it did not say).
type uploadService struct {
	jid     string
	maxSize int64
}

type uploadEntry struct {
	svc     *uploadService // nil: the domain has none
	expires time.Time
}

// uploadCache remembers, per domain, which upload service it has.
type uploadCache struct {
	mu sync.Mutex
	m  map[string]uploadEntry
}

func (c *uploadCache) get(domain string) (uploadEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[domain]
	if !ok || time.Now().After(e.expires) {
		return uploadEntry{}, false
	}
	return e, true
}

func (c *uploadCache) set(domain string, svc *uploadService, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]uploadEntry)
	}
	c.m[domain] = uploadEntry{svc: svc, expires: time.Now().Add(ttl)}
}

// forget drops what is known of domain's service (after a slot request
// failed, the service may have gone).
func (c *uploadCache) forget(domain string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, domain)
}

// uploadServiceFor finds the upload service of domain: the domain itself or
// one of its disco items with the urn:xmpp:http:upload:0 feature. It
// returns nil when there is none.
func (g *Gateway) uploadServiceFor(ctx context.Context, domain string) (*uploadService, error) {
	if e, ok := g.uploads.get(domain); ok {
		return e.svc, nil
	}
	svc, err := g.discoverUpload(ctx, domain)
	switch {
	case errors.Is(err, ErrNotConnected):
		return nil, err
	case err != nil:
		g.uploads.set(domain, nil, uploadFailed)
		return nil, err
	case svc == nil:
		g.uploads.set(domain, nil, uploadMissing)
	default:
		g.uploads.set(domain, svc, uploadFound)
	}
	return svc, nil
}

func (g *Gateway) discoverUpload(ctx context.Context, domain string) (*uploadService, error) {
	if svc, err := g.uploadFeature(ctx, domain); svc != nil || errors.Is(err, ErrNotConnected) {
		return svc, err
	}
	items, err := g.request(ctx, domain, discoItems{})
	if err != nil {
		return nil, fmt.Errorf("disco#items of %s: %w", domain, err)
	}
	n := 0
	for _, it := range items.Child(nsDiscoItems, "query").All("", "item") {
		j := it.Attr("jid")
		if j == "" || it.Attr("node") != "" || j == g.domain.String() || j == domain {
			continue
		}
		if n++; n > maxDiscoItems {
			break
		}
		svc, err := g.uploadFeature(ctx, j)
		if errors.Is(err, ErrNotConnected) {
			return nil, err
		}
		if svc != nil {
			return svc, nil
		}
	}
	return nil, nil
}

// uploadFeature asks j for its disco#info and returns it as an upload
// service if it is one.
func (g *Gateway) uploadFeature(ctx context.Context, j string) (*uploadService, error) {
	info, err := g.request(ctx, j, discoInfo{})
	if err != nil {
		return nil, err
	}
	return parseUploadInfo(j, info.Child(nsDiscoInfo, "query")), nil
}

// parseUploadInfo reads a disco#info answer: an upload service if it has
// the feature, with the max-file-size of its XEP-0128 form.
func parseUploadInfo(j string, q *node) *uploadService {
	found := false
	for _, f := range q.All("", "feature") {
		if f.Attr("var") == upload.NS {
			found = true
		}
	}
	if !found {
		return nil
	}
	svc := &uploadService{jid: j}
	for _, x := range q.All(nsData, "x") {
		v := formValues(x)
		if v["FORM_TYPE"] != upload.NS {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v["max-file-size"]), 10, 64); err == nil && n > 0 {
			svc.maxSize = n
		}
	}
	return svc
}

// parseSlot reads a slot answer. Both URLs must be http(s); only the
// headers XEP-0363 allows are kept (mellium's Slot.Put filters them too).
func parseSlot(iq *node) (upload.Slot, error) {
	var s upload.Slot
	x := iq.Child(upload.NS, "slot")
	if x == nil {
		return s, errors.New("upload slot answer without a slot")
	}
	put, get := x.Child("", "put"), x.Child("", "get")
	var err error
	if s.PutURL, err = httpURL(put.Attr("url")); err != nil {
		return s, fmt.Errorf("upload slot PUT URL: %w", err)
	}
	if s.GetURL, err = httpURL(get.Attr("url")); err != nil {
		return s, fmt.Errorf("upload slot GET URL: %w", err)
	}
	s.Header = make(http.Header)
	for _, h := range put.All("", "header") {
		name := http.CanonicalHeaderKey(h.Attr("name"))
		if name == "Authorization" || name == "Cookie" || name == "Expires" {
			s.Header.Add(name, strings.TrimSpace(h.Text()))
		}
	}
	return s, nil
}

// httpURL parses an absolute http(s) URL.
func httpURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", s)
	}
	return u, nil
}

// transferTimeout bounds one upload or download: a floor, plus time for the data at a
// slow but honest rate.
func transferTimeout(size int64) time.Duration {
	return 2*time.Minute + time.Duration(size/(64<<10))*time.Second
}

// uploadMedia puts m on svc and returns the URL to GET it from.
func (g *Gateway) uploadMedia(ctx context.Context, svc *uploadService, name string, m *bridge.Media) (string, error) {
	mimeType := m.MIME
	if mimeType == "" {
		mimeType = "application/octet-stream"
	}
	if m.Size > int64(^uint(0)>>1) {
		return "", errors.New("file too large for this platform")
	}
	iq, err := g.request(ctx, svc.jid, upload.File{Name: name, Size: int(m.Size), Type: mimeType})
	if err != nil {
		return "", fmt.Errorf("upload slot from %s: %w", svc.jid, err)
	}
	slot, err := parseSlot(iq)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, transferTimeout(m.Size))
	defer cancel()
	// The body is only the media's Size bytes, whatever the file holds now.
	req, err := slot.Put(ctx, io.LimitReader(m, m.Size))
	if err != nil {
		return "", err
	}
	req.ContentLength = m.Size
	req.Header.Set("Content-Type", mimeType)
	resp, err := g.httpClient().Do(req)
	if err != nil {
		return "", fmt.Errorf("upload PUT: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("upload PUT: %s", resp.Status)
	}
	return slot.GetURL.String(), nil
}
