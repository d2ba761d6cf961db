package provisioning_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/internal/bridgetest"
	"github.com/msnbridge/msnbridge/provisioning"
)

// FuzzRequests: whatever the body and user parameter, the API answers with
// a JSON object and a client-error or success status, never a 5xx or a
// panic.
func FuzzRequests(f *testing.F) {
	f.Add("matrix:@alice:example.org", `{"user":"matrix:@alice:example.org"}`)
	f.Add(":", `{"user":null}`)
	f.Add("matrix:", `[]`)
	f.Add("xmpp:a@b", `{"user":"matrix:@bob:example.org","passport":"@","password":""}`)
	env := bridgetest.New(f, nil)
	api, err := provisioning.New(provisioning.Options{Core: env.Core, Secret: secret, Frontends: []string{"matrix"}, Log: zerolog.Nop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, user, body string) {
		for _, req := range []*http.Request{
			httptest.NewRequest("GET", provisioning.Prefix+"status?user="+url.QueryEscape(user), nil),
			httptest.NewRequest("GET", provisioning.Prefix+"contacts?user="+url.QueryEscape(user), nil),
			httptest.NewRequest("POST", provisioning.Prefix+"logout", strings.NewReader(body)),
		} {
			req.Header.Set("Authorization", "Bearer "+secret)
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s %s: %d %s", req.Method, req.URL, rec.Code, rec.Body)
			}
			var out map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("%s %s: answer is not a JSON object: %q", req.Method, req.URL, rec.Body)
			}
		}
	})
}
