// Package provisioning is the bridge's provisioning API: an HTTP interface,
// in the manner of the mautrix bridges', through which clients and admin
// panels log users in and out of MSN and read their status and contacts.
// It is a client of bridge.Core like the frontends, but it receives no
// events; it lives outside bridge/ so that the core stays free of HTTP, and
// outside cmd/ so that it is tested against the real core.
//
// Every request carries "Authorization: Bearer <secret>" (the configured
// http.provisioning_secret) and names the bridge user it acts for, as
// "frontend:id" (matrix:@alice:example.org, xmpp:alice@example.org); that
// user must still be allowed by bridge.permissions. Answers and errors are
// JSON; an error is {"errcode": "...", "error": "..."}.
//
//	POST /_msnbridge/provision/v1/login    {"user", "passport", "password"}
//	POST /_msnbridge/provision/v1/logout   {"user"}
//	GET  /_msnbridge/provision/v1/status?user=...
//	GET  /_msnbridge/provision/v1/contacts?user=...
package provisioning

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/bridge"
)

// Prefix is where the API is mounted.
const Prefix = "/_msnbridge/provision/v1/"

// maxBody bounds a request body: the largest legitimate one is a login.
const maxBody = 64 << 10

// Options configures the API.
type Options struct {
	Core bridge.Core
	// Secret is the bearer token every request must carry. It must not be
	// empty.
	Secret string
	// Frontends are the frontend kinds running ("matrix", "xmpp"); users of
	// any other are refused, since nothing could show them their events.
	Frontends []string
	Log       zerolog.Logger
}

// API is the provisioning API's http.Handler, to be mounted at Prefix.
type API struct {
	core       bridge.Core
	secretHash [sha256.Size]byte
	frontends  []string
	log        zerolog.Logger
	mux        *http.ServeMux
}

// New builds the API.
func New(opts Options) (*API, error) {
	if opts.Core == nil {
		return nil, errors.New("provisioning: no core")
	}
	if opts.Secret == "" {
		return nil, errors.New("provisioning: an empty secret would let anyone in")
	}
	a := &API{core: opts.Core, secretHash: sha256.Sum256([]byte(opts.Secret)),
		frontends: slices.Clone(opts.Frontends), log: opts.Log, mux: http.NewServeMux()}
	a.mux.HandleFunc("POST "+Prefix+"login", a.login)
	a.mux.HandleFunc("POST "+Prefix+"logout", a.logout)
	a.mux.HandleFunc("GET "+Prefix+"status", a.status)
	a.mux.HandleFunc("GET "+Prefix+"contacts", a.contacts)
	return a, nil
}

// ServeHTTP checks the secret, then routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="msnbridge"`)
		writeError(w, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "missing or wrong Authorization: Bearer token")
		return
	}
	h, pattern := a.mux.Handler(r)
	if pattern == "" {
		// The mux's own 404 and 405 pages are plain text; keep errors JSON.
		if known := strings.TrimPrefix(r.URL.Path, Prefix); slices.Contains([]string{"login", "logout", "status", "contacts"}, known) {
			writeError(w, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "wrong method for "+r.URL.Path)
			return
		}
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "no such endpoint")
		return
	}
	h.ServeHTTP(w, r)
}

// authorized compares the bearer token with the secret in constant time.
// Both are hashed first so that the comparison does not even leak the
// secret's length.
func (a *API) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return false
	}
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(h[:], a.secretHash[:]) == 1
}

type loginRequest struct {
	User     string `json:"user"`
	Passport string `json:"passport"`
	Password string `json:"password"`
}

type userRequest struct {
	User string `json:"user"`
}

// Status is the answer to status and login.
type Status struct {
	User     string `json:"user"`
	LoggedIn bool   `json:"logged_in"`
	Passport string `json:"passport,omitempty"`
	// State is a bridge.LoginState: connecting, connected, bad_credentials,
	// signed_in_elsewhere, server_down, logged_out.
	State string `json:"state"`
	// Status is the MSN presence while connected (online, busy...).
	Status   string `json:"status,omitempty"`
	Protocol string `json:"protocol,omitempty"`
}

// Contact is one entry of the contacts answer.
type Contact struct {
	Passport        string   `json:"passport"`
	FriendlyName    string   `json:"friendly_name"`
	PersonalMessage string   `json:"personal_message,omitempty"`
	Status          string   `json:"status"`
	OnContactList   bool     `json:"on_contact_list"`
	Blocked         bool     `json:"blocked"`
	Pending         bool     `json:"pending"`
	Groups          []string `json:"groups,omitempty"`
}

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !decode(w, r, &req) {
		return
	}
	user, ok := a.user(w, req.User)
	if !ok {
		return
	}
	if strings.TrimSpace(req.Passport) == "" || req.Password == "" {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "passport and password are required")
		return
	}
	a.log.Info().Str("user", user.String()).Str("passport", req.Passport).Msg("provisioning: login")
	if err := a.core.Login(r.Context(), user, req.Passport, req.Password); err != nil {
		writeCoreError(w, err, http.StatusBadRequest)
		return
	}
	// Login returns at once; the state says how far it got.
	a.writeStatus(w, r.Context(), user, http.StatusAccepted)
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !decode(w, r, &req) {
		return
	}
	user, ok := a.user(w, req.User)
	if !ok {
		return
	}
	a.log.Info().Str("user", user.String()).Msg("provisioning: logout")
	if err := a.core.Logout(r.Context(), user); err != nil {
		writeCoreError(w, err, http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, Status{User: user.String(), State: string(bridge.LoginLoggedOut)})
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	user, ok := a.user(w, r.URL.Query().Get("user"))
	if !ok {
		return
	}
	a.writeStatus(w, r.Context(), user, http.StatusOK)
}

func (a *API) writeStatus(w http.ResponseWriter, ctx context.Context, user bridge.UserID, code int) {
	st, err := a.core.Status(ctx, user)
	if errors.Is(err, bridge.ErrNotLoggedIn) {
		writeJSON(w, code, Status{User: user.String(), State: string(bridge.LoginLoggedOut)})
		return
	}
	if err != nil {
		writeCoreError(w, err, http.StatusInternalServerError)
		return
	}
	if st.State == "" {
		st.State = bridge.LoginConnecting // the login has not reported a state yet
	}
	out := Status{User: user.String(), LoggedIn: true, Passport: st.Passport, State: string(st.State), Protocol: st.Protocol}
	if st.State == bridge.LoginConnected {
		out.Status = string(st.Status)
	}
	writeJSON(w, code, out)
}

func (a *API) contacts(w http.ResponseWriter, r *http.Request) {
	user, ok := a.user(w, r.URL.Query().Get("user"))
	if !ok {
		return
	}
	cs, err := a.core.Contacts(r.Context(), user)
	if err != nil {
		writeCoreError(w, err, http.StatusInternalServerError)
		return
	}
	out := make([]Contact, 0, len(cs))
	for _, c := range cs {
		out = append(out, Contact{Passport: c.Passport, FriendlyName: c.FriendlyName,
			PersonalMessage: c.PersonalMessage, Status: string(c.Status), OnContactList: c.OnContactList,
			Blocked: c.Blocked, Pending: c.Pending, Groups: c.Groups})
	}
	slices.SortFunc(out, func(x, y Contact) int { return strings.Compare(x.Passport, y.Passport) })
	writeJSON(w, http.StatusOK, map[string]any{"user": user.String(), "contacts": out})
}

// user parses "frontend:id" and checks that the frontend runs and that the
// user may use the bridge; it writes the error itself.
func (a *API) user(w http.ResponseWriter, s string) (bridge.UserID, bool) {
	kind, id, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || kind == "" || id == "" || len(s) > 512 {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM",
			`user must be "frontend:id", e.g. "matrix:@alice:example.org" or "xmpp:alice@example.org"`)
		return bridge.UserID{}, false
	}
	if !slices.Contains(a.frontends, kind) {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM",
			fmt.Sprintf("frontend %q is not running here (running: %s)", kind, strings.Join(a.frontends, ", ")))
		return bridge.UserID{}, false
	}
	user := bridge.UserID{Frontend: kind, ID: id}
	if a.core.Permission(user) < bridge.PermissionUser {
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", bridge.ErrNotPermitted.Error())
		return bridge.UserID{}, false
	}
	return user, true
}

// decode reads a bounded, strictly shaped JSON body.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "request body too large")
			return false
		}
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "request body is not the expected JSON: "+err.Error())
		return false
	}
	if dec.Decode(new(json.RawMessage)) != io.EOF {
		writeError(w, http.StatusBadRequest, "M_BAD_JSON", "request body holds more than one JSON value")
		return false
	}
	return true
}

// writeCoreError maps the core's errors to HTTP statuses; other errors get
// fallback.
func writeCoreError(w http.ResponseWriter, err error, fallback int) {
	switch {
	case errors.Is(err, bridge.ErrNotPermitted):
		writeError(w, http.StatusForbidden, "M_FORBIDDEN", err.Error())
	case errors.Is(err, bridge.ErrNotLoggedIn):
		writeError(w, http.StatusNotFound, "NOT_LOGGED_IN", err.Error())
	case errors.Is(err, bridge.ErrAlreadyLogged):
		writeError(w, http.StatusConflict, "ALREADY_LOGGED_IN", err.Error())
	case errors.Is(err, bridge.ErrRateLimited):
		w.Header().Set("Retry-After", fmt.Sprint(int((20 * time.Second).Seconds())))
		writeError(w, http.StatusTooManyRequests, "M_LIMIT_EXCEEDED", err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "M_UNKNOWN", "the request was cancelled or timed out")
	default:
		writeError(w, fallback, "M_UNKNOWN", err.Error())
	}
}

func writeError(w http.ResponseWriter, code int, errcode, msg string) {
	writeJSON(w, code, map[string]string{"errcode": errcode, "error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
