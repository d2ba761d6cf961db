package xmpptest

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// NSUpload is HTTP File Upload (XEP-0363).
const NSUpload = "urn:xmpp:http:upload:0"

// Upload uploads data the way an XMPP client does (XEP-0363: a slot from
// the server's upload service, then PUT with the slot's headers) and
// returns the GET URL.
func (c *Client) Upload(t testing.TB, service, name, mime string, data []byte) string {
	t.Helper()
	r := c.IQ(t, "get", service, `<request xmlns='`+NSUpload+`' filename='`+name+`' size='`+strconv.Itoa(len(data))+`' content-type='`+mime+`'/>`)
	slot := r.Child(NSUpload, "slot")
	if slot == nil {
		t.Fatalf("no upload slot: %s", r.Condition())
	}
	req, err := http.NewRequest(http.MethodPut, slot.Child("", "put").Attr("url"), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range slot.Child("", "put").All("", "header") {
		req.Header.Set(h.Attr("name"), h.Text())
	}
	req.Header.Set("Content-Type", mime)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %s", resp.Status)
	}
	return slot.Child("", "get").Attr("url")
}

// Fetch GETs link, as a client opening a shared file does, and returns the
// body; anything but 200 fails the test.
func Fetch(t testing.TB, link string) []byte {
	t.Helper()
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", link, resp.Status, err)
	}
	return data
}
