package msnp

import "time"

// SetP2PTimeouts shortens the P2P layer's timeouts for tests: a session
// without progress, and an offer nobody decides on.
func SetP2PTimeouts(c *Client, idle, offer time.Duration) {
	c.p2p.mu.Lock()
	defer c.p2p.mu.Unlock()
	c.p2p.timeout, c.p2p.offerTimeout = idle, offer
}
