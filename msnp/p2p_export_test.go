package msnp

import "time"

// SetP2PTimeouts shortens the P2P layer's timeouts for tests: a session
// without progress, and an offer nobody decides on.
func SetP2PTimeouts(c *Client, idle, offer time.Duration) {
	c.p2p.mu.Lock()
	defer c.p2p.mu.Unlock()
	c.p2p.timeout, c.p2p.offerTimeout = idle, offer
}

// SendSLP sends m to peer as c's P2P layer sends its own MSNSLP: split
// into 1202-byte packets of one Identifier.
func SendSLP(c *Client, peer string, m *SLPMessage) {
	c.p2p.mu.Lock()
	l := c.linkLocked(peer)
	c.p2p.mu.Unlock()
	l.queueControl(l.slpPackets(m)...)
}

// FileContext exposes the file context builder.
var FileContext = fileContext
