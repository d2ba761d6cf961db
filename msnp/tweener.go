package msnp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ErrLogin is matched by Passport login failures that are neither wrong
// credentials nor network trouble: an unexpected status, a missing header.
var ErrLogin = errors.New("msnp: Passport login failed")

// tweener runs the Passport 1.4 exchange for the USR TWN S challenge and
// returns the ticket (from-PP) to send back.
func (c *Client) tweener(ctx context.Context, challenge string) (string, error) {
	login := c.cfg.LoginURL
	if login == "" {
		var err error
		if login, err = c.nexus(ctx); err != nil {
			return "", err
		}
	}
	auth := "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in=" +
		pctEncode(c.passport) + ",pwd=" + pctEncode(c.password) + "," + challenge
	hc := *c.cfg.httpClient()
	// Redirects are followed by hand: the Authorization header must go
	// along, and net/http drops it when the host changes.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	target := login
	for hops := 0; hops < 5; hops++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return "", fmt.Errorf("%w: login URL %q: %v", ErrLogin, target, err)
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("User-Agent", "MSMSGS")
		req.Header.Set("Cache-Control", "no-cache")
		resp, err := hc.Do(req)
		if err != nil {
			return "", &NetworkError{Op: "passport login", Err: scrubURLError(err)}
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		c.log.Debug().Str("url", target).Int("status", resp.StatusCode).Msg("passport login")
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			return "", fmt.Errorf("%w (Passport login refused the credentials)", ErrAuthentication)
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := resp.Location()
			if err != nil {
				return "", fmt.Errorf("%w: redirect without a Location", ErrLogin)
			}
			target = loc.String()
			continue
		case resp.StatusCode != http.StatusOK:
			return "", fmt.Errorf("%w: HTTP %d", ErrLogin, resp.StatusCode)
		}
		info := resp.Header.Get("Authentication-Info")
		_, rest, ok := strings.Cut(info, "from-PP='")
		ticket, _, ok2 := strings.Cut(rest, "'")
		if !ok || !ok2 || ticket == "" || strings.ContainsAny(ticket, " \r\n\t") {
			if strings.Contains(info, "da-status=failed") {
				return "", fmt.Errorf("%w (Passport login refused the credentials)", ErrAuthentication)
			}
			return "", fmt.Errorf("%w: no ticket in the answer", ErrLogin)
		}
		return ticket, nil
	}
	return "", fmt.Errorf("%w: too many redirects", ErrLogin)
}

// nexus asks the Passport nexus where the login server is.
func (c *Client) nexus(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.NexusURL, nil)
	if err != nil {
		return "", fmt.Errorf("%w: nexus URL: %v", ErrLogin, err)
	}
	resp, err := c.cfg.httpClient().Do(req)
	if err != nil {
		return "", &NetworkError{Op: "passport nexus", Err: err}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: nexus answered HTTP %d", ErrLogin, resp.StatusCode)
	}
	login := parseDALogin(resp.Header.Get("PassportURLs"))
	if login == "" {
		return "", fmt.Errorf("%w: nexus gave no DALogin", ErrLogin)
	}
	return login, nil
}

// parseDALogin reads DALogin from "DARealm=…,DALogin=host/path,…"; a
// value without a scheme gets https://.
func parseDALogin(h string) string {
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(k, "DALogin") || v == "" {
			continue
		}
		if !strings.Contains(v, "://") {
			v = "https://" + v
		}
		return v
	}
	return ""
}

// pctEncode percent-encodes everything but unreserved characters and '@',
// so commas, '=' and '%' in a password survive the server's split-and-
// unquote of the Authorization header.
func pctEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-_.~@", ch) >= 0 {
			b.WriteByte(ch)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&15])
		}
	}
	return b.String()
}

// scrubURLError keeps a URL error's cause; the URL holds no secret, but
// keeping error text short keeps it readable.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, ue.URL, ue.Err)
	}
	return err
}
