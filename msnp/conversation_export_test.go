package msnp

import (
	"context"
	"errors"
	"strings"
)

// WaitPeerGone waits until the conversation's switchboard no longer holds
// passport, so that tests can order a send after the client saw a BYE.
func (cv *Conversation) WaitPeerGone(ctx context.Context, passport string) error {
	cv.c.conv.mu.Lock()
	s := cv.sb
	cv.c.conv.mu.Unlock()
	if s == nil {
		return nil
	}
	p := strings.ToLower(passport)
	err := s.wait(ctx, func() bool { return !s.hasLocked(p) })
	if errors.Is(err, ErrSwitchboardClosed) {
		return nil
	}
	return err
}
