// Package demo is the MSN side of `make demo`: an in-process MSN server
// (msnptest) with a demo account for the newcomer and three seeded friends
// who are signed in and answer what they are sent, so that the whole bridge
// can be tried on one machine without a revival-server account.
package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/msnbridge/msnbridge/msnp"
	"github.com/msnbridge/msnbridge/msnp/msnptest"
)

// The accounts the newcomer logs the bridge in with: one for the Matrix
// side and one for the XMPP side, since an MSN account signed in twice
// signs its first session out. Both have every friend as a contact.
const (
	MatrixUser = "matrix@demo.msn"
	XMPPUser   = "xmpp@demo.msn"
	Password   = "demo"
)

// Users are the newcomer's accounts.
var Users = []string{MatrixUser, XMPPUser}

// Friend is one seeded account that talks back.
type Friend struct {
	Passport, Name, PSM string
	Status              msnp.Status
	// Answer makes the reply to text (the n-th message of the chat).
	Answer func(text string, n int) string
}

// Friends are the seeded contacts of User.
var Friends = []Friend{
	{Passport: "alice@demo.msn", Name: "Alice", PSM: "I repeat what you say", Status: msnp.StatusOnline,
		Answer: func(text string, _ int) string { return "You said: " + text }},
	{Passport: "bob@demo.msn", Name: "Bob", PSM: "brb, mum needs the phone line", Status: msnp.StatusBusy,
		Answer: func(_ string, n int) string { return bobLines[n%len(bobLines)] }},
	{Passport: "carol@demo.msn", Name: "Carol", PSM: "counting your messages", Status: msnp.StatusAway,
		Answer: func(text string, n int) string {
			return fmt.Sprintf("Message #%d, %d characters. Nudge me!", n+1, len([]rune(text)))
		}},
}

var bobLines = []string{
	"hey! long time no see",
	"lol",
	"did you see my new display picture?",
	"what's your favourite Winamp skin?",
	"gtg, ttyl",
}

// Options tune the demo.
type Options struct {
	// ReplyDelay is how long a friend "types" before answering (default
	// 1 s; tests use less).
	ReplyDelay time.Duration
	Log        zerolog.Logger
}

// Server is the running demo.
type Server struct {
	MSN     *msnptest.Server
	opts    Options
	clients []*msnp.Client
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

// Start starts the MSN server, seeds the accounts and signs the friends in.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.ReplyDelay <= 0 {
		opts.ReplyDelay = time.Second
	}
	srv := msnptest.NewServer()
	for _, u := range Users {
		srv.AddAccount(u, Password, "You")
	}
	for _, f := range Friends {
		srv.AddAccount(f.Passport, "friend", f.Name)
		for _, u := range Users {
			srv.AddContact(u, f.Passport)
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	s := &Server{MSN: srv, opts: opts, ctx: rctx, cancel: cancel}
	for _, f := range Friends {
		if err := s.signIn(ctx, f); err != nil {
			s.Close()
			return nil, fmt.Errorf("demo: signing %s in: %w", f.Passport, err)
		}
	}
	return s, nil
}

// Config is the msnp configuration that reaches the demo server.
func (s *Server) Config() msnp.Config {
	return msnp.Config{Server: s.MSN.NSAddr(), LoginURL: s.MSN.LoginURL(), Protocols: []msnp.Protocol{msnp.MSNP12}}
}

func (s *Server) signIn(ctx context.Context, f Friend) error {
	var c *msnp.Client
	var mu sync.Mutex
	counts := map[string]int{}
	c, err := msnp.New(s.Config(), f.Passport, "friend", func(ev msnp.Event) {
		switch e := ev.(type) {
		case msnp.ConversationMessage:
			if e.Self || strings.TrimSpace(e.Text) == "" {
				return
			}
			mu.Lock()
			n := counts[e.Conversation.ID]
			counts[e.Conversation.ID]++
			mu.Unlock()
			s.reply(c, e.Conversation, f.Answer(e.Text, n))
		case msnp.ConversationNudge:
			s.nudgeBack(c, e.Conversation)
		}
	})
	if err != nil {
		return err
	}
	s.clients = append(s.clients, c)
	if err := c.Connect(ctx); err != nil {
		return err
	}
	if err := c.SetStatus(ctx, f.Status); err != nil {
		return err
	}
	return c.SetPersonalMessage(ctx, f.PSM)
}

// conversation finds the chat an event came from, to answer in it.
func conversation(c *msnp.Client, cv msnp.ConversationInfo) *msnp.Conversation {
	if cv.Group {
		return c.Group(cv.ID, cv.Participants)
	}
	return c.Chat(cv.Participants[0])
}

// reply answers off the event goroutine: sending waits for the server, and
// the client's events must keep flowing meanwhile.
func (s *Server) reply(c *msnp.Client, info msnp.ConversationInfo, text string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		cv := conversation(c, info)
		_ = cv.SendTyping(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.opts.ReplyDelay): // the friend types
		}
		if err := cv.SendText(ctx, text, msnp.DefaultTextFormat()); err != nil && !errors.Is(err, context.Canceled) {
			s.opts.Log.Warn().Err(err).Str("friend", c.Passport()).Msg("demo: could not answer")
		}
	}()
}

func (s *Server) nudgeBack(c *msnp.Client, info msnp.ConversationInfo) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		cv := conversation(c, info)
		if err := cv.SendNudge(ctx); err == nil {
			_ = cv.SendText(ctx, "Nudged you back!", msnp.DefaultTextFormat())
		}
	}()
}

// Close signs the friends out and stops the server.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
	for _, c := range s.clients {
		c.Close()
	}
	s.MSN.Close()
}
