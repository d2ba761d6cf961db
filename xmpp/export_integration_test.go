//go:build integration

package xmpp

// dropConnection closes the current connection, as a network failure would.
func (g *Gateway) dropConnection() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn != nil {
		g.conn.Close()
	}
}
