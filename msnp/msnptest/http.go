package msnptest

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// httpHandler serves Escargot's Tweener endpoints (FACTS.md §2.2, Appendix A).
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	nexus := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("PassportURLs", "DALogin="+s.LoginURL())
		w.WriteHeader(http.StatusOK)
	}
	mux.HandleFunc("/rdr/pprdr.asp", nexus)
	mux.HandleFunc("/nexus-mock", nexus)
	mux.HandleFunc("/login", s.handleLogin)
	mux.HandleFunc("/NotRST.srf", s.handleNotRST)
	mux.HandleFunc("/RST.srf", s.handleRST)
	mux.HandleFunc("/RST2.srf", s.handleRST)
	mux.HandleFunc("/abservice/SharingService.asmx", s.handleABCH)
	mux.HandleFunc("/abservice/abservice.asmx", s.handleABCH)
	mux.HandleFunc("/OimWS/oim.asmx", s.handleOIMStore)
	mux.HandleFunc("/rsi/rsi.asmx", s.handleRSI)
	return mux
}

// passportCredentials reads sign-in and pwd from a Passport1.4
// Authorization header the way Escargot does: split on ',' and URL-decode
// each key=value.
func passportCredentials(h string) (email, pwd string) {
	h = strings.TrimSpace(h)
	if i := strings.IndexByte(h, ' '); i >= 0 && strings.HasPrefix(strings.ToLower(h), "passport1.4") {
		h = h[i+1:]
	}
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		k, err := url.PathUnescape(strings.TrimSpace(k))
		if err != nil {
			continue
		}
		v, err = url.PathUnescape(v)
		if err != nil {
			continue
		}
		switch k {
		case "sign-in":
			email = v
		case "pwd":
			pwd = v
		}
	}
	return email, pwd
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	email, pwd := passportCredentials(r.Header.Get("Authorization"))
	tok, ok := s.issueToken(email, pwd, 0)
	if !ok {
		w.Header().Set("WWW-Authenticate", "Passport1.4 da-status=failed")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Authentication-Info", "Passport1.4 da-status=success,from-PP='"+tok+"'")
	w.WriteHeader(http.StatusOK)
}

// handleNotRST is Escargot's shortcut: X-User and X-Password headers give
// an X-Token header that lives 24 h.
func (s *Server) handleNotRST(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	tok, ok := s.issueToken(r.Header.Get("X-User"), r.Header.Get("X-Password"), 24*time.Hour)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("X-Token", tok)
	w.WriteHeader(http.StatusOK)
}

// issueToken checks the credentials and returns a fresh 20-hex token; a
// lifetime of 0 means the server's Tweener token lifetime.
func (s *Server) issueToken(email, pwd string, life time.Duration) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[key(email)]
	if a == nil || a.password != pwd {
		return "", false
	}
	if life == 0 {
		life = s.tokenLife
	}
	tok := newToken(20)
	s.tokens[tok] = token{passport: a.email, expires: time.Now().Add(life)}
	// Forget expired tokens so that the map stays bounded.
	now := time.Now()
	for t, v := range s.tokens {
		if !now.Before(v.expires) && t != tok {
			delete(s.tokens, t)
		}
	}
	return tok, true
}
