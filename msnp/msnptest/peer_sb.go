package msnptest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/msnbridge/msnbridge/msnp"
)

// peerSB is one switchboard connection of a Peer (FACTS.md §6): opened
// with XFR SB, USR and CAL, or joined after RNG with ANS.
type peerSB struct {
	p    *Peer
	conn net.Conn
	wmu  sync.Mutex

	// Guarded by p.mu.
	trid    uint32
	members map[string]bool               // lower-cased passports of the others
	waiters map[uint32]chan *msnp.Command // replies (USR, ANS, CAL, ACK, NAK, errors) by trid
	unacked int                           // MSGs sent with ack A/D awaiting ACK
	dead    bool

	done chan struct{}
}

// sbWindow bounds the MSGs a Peer has in flight on one switchboard (sent
// with ack D or A, no ACK yet), as libpurple sends the next P2P chunk when
// the switchboard ACKed the previous one.
const sbWindow = 8

func (p *Peer) newSB(conn net.Conn) *peerSB {
	sb := &peerSB{p: p, conn: conn, members: map[string]bool{}, waiters: map[uint32]chan *msnp.Command{}, done: make(chan struct{})}
	p.mu.Lock()
	p.sbs[sb] = struct{}{}
	p.mu.Unlock()
	return sb
}

// answerRNG joins the session an RNG invites to:
// "RNG session host:port CKI cookie caller callerName".
func (p *Peer) answerRNG(c *msnp.Command) {
	if len(c.Args) < 5 {
		p.violation("malformed RNG: %s", c.String())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Arg(1))
	if err != nil {
		return
	}
	sb := p.newSB(conn)
	p.wg.Add(1)
	go sb.read()
	if _, err := sb.call(ctx, "ANS", p.passport, c.Arg(3), c.Arg(0)); err != nil {
		sb.close()
	}
}

// openSB opens a switchboard with to in it: XFR SB, USR, CAL, and the JOI.
func (p *Peer) openSB(ctx context.Context, to string) (*peerSB, error) {
	x, err := p.nsCall(ctx, "XFR", "SB")
	if err != nil {
		return nil, fmt.Errorf("XFR SB: %w", err)
	}
	// XFR trid SB host:port CKI cookie
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", x.Arg(2))
	if err != nil {
		return nil, err
	}
	sb := p.newSB(conn)
	p.wg.Add(1)
	go sb.read()
	if _, err := sb.call(ctx, "USR", p.passport, x.Arg(4)); err != nil {
		sb.close()
		return nil, fmt.Errorf("USR: %w", err)
	}
	if _, err := sb.call(ctx, "CAL", to); err != nil {
		sb.close()
		return nil, fmt.Errorf("CAL %s: %w", to, err)
	}
	err = p.waitFor(ctx, func() bool { return sb.members[key(to)] || sb.dead })
	if err == nil && sb.dead {
		err = errors.New("switchboard closed before JOI")
	}
	if err != nil {
		sb.close()
		return nil, err
	}
	return sb, nil
}

// sbWith returns a live switchboard whose only other participant is to,
// opening one when there is none.
func (p *Peer) sbWith(ctx context.Context, to string) (*peerSB, error) {
	p.mu.Lock()
	for sb := range p.sbs {
		if !sb.dead && len(sb.members) == 1 && sb.members[key(to)] {
			p.mu.Unlock()
			return sb, nil
		}
	}
	p.mu.Unlock()
	return p.openSB(ctx, to)
}

// call sends "name trid args…" and waits for the reply with that trid.
func (sb *peerSB) call(ctx context.Context, name string, args ...string) (*msnp.Command, error) {
	trid, ch, err := sb.register()
	if err != nil {
		return nil, err
	}
	defer sb.unregister(trid)
	if err := sb.writeLine(strings.Join(append([]string{name, strconv.FormatUint(uint64(trid), 10)}, args...), " ")); err != nil {
		return nil, err
	}
	return sb.await(ctx, ch)
}

func (sb *peerSB) register() (uint32, chan *msnp.Command, error) {
	p := sb.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if sb.dead {
		return 0, nil, errors.New("switchboard closed")
	}
	sb.trid++
	ch := make(chan *msnp.Command, 1)
	sb.waiters[sb.trid] = ch
	return sb.trid, ch, nil
}

func (sb *peerSB) unregister(trid uint32) {
	sb.p.mu.Lock()
	delete(sb.waiters, trid)
	sb.p.mu.Unlock()
}

func (sb *peerSB) await(ctx context.Context, ch chan *msnp.Command) (*msnp.Command, error) {
	select {
	case c := <-ch:
		if c.IsError() || c.Name == "NAK" {
			return c, fmt.Errorf("%s", c.String())
		}
		return c, nil
	case <-sb.done:
		return nil, errors.New("switchboard closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (sb *peerSB) writeLine(line string) error {
	return sb.write([]byte(line + "\r\n"))
}

func (sb *peerSB) write(b []byte) error {
	sb.wmu.Lock()
	defer sb.wmu.Unlock()
	sb.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := sb.conn.Write(b)
	return err
}

// sendMSG sends a MSG with ack type ack. With ack A or D it first waits
// for room in the window; wait makes it wait for the ACK itself. It must
// not be called from the switchboard's reader (which reads the ACKs): that
// uses post.
func (sb *peerSB) sendMSG(ctx context.Context, ack string, payload []byte, wait bool) error {
	p := sb.p
	if ack == "A" || ack == "D" {
		if err := p.waitFor(ctx, func() bool { return sb.dead || sb.unacked < sbWindow }); err != nil {
			return err
		}
	}
	trid, ch, err := sb.post(ack, payload, wait)
	if err != nil || !wait {
		return err
	}
	defer sb.unregister(trid)
	_, err = sb.await(ctx, ch)
	return err
}

// post writes a MSG without waiting; the ACK (or a NAK, which Escargot
// never sends and so is a violation) is collected by the reader. With
// keep the caller gets the reply channel and must unregister trid.
func (sb *peerSB) post(ack string, payload []byte, keep bool) (uint32, chan *msnp.Command, error) {
	p := sb.p
	trid, ch, err := sb.register()
	if err != nil {
		return 0, nil, err
	}
	if !keep {
		sb.unregister(trid)
	}
	if ack == "A" || ack == "D" {
		p.mu.Lock()
		sb.unacked++
		p.mu.Unlock()
	}
	head := fmt.Sprintf("MSG %d %s %d\r\n", trid, ack, len(payload))
	return trid, ch, sb.write(append([]byte(head), payload...))
}

// read handles the switchboard's lines until it closes.
func (sb *peerSB) read() {
	p := sb.p
	defer p.wg.Done()
	defer sb.close()
	r := msnp.NewReader(sb.conn)
	for {
		c, err := r.ReadCommand()
		if err != nil {
			return
		}
		switch c.Name {
		case "IRO":
			// IRO trid index total email friendly [caps]
			p.mu.Lock()
			sb.members[key(c.Arg(3))] = true
			p.notifyLocked()
			p.mu.Unlock()
			continue
		case "JOI":
			p.mu.Lock()
			sb.members[key(c.Arg(0))] = true
			p.notifyLocked()
			p.mu.Unlock()
			continue
		case "BYE":
			p.mu.Lock()
			delete(sb.members, key(c.Arg(0)))
			p.notifyLocked()
			p.mu.Unlock()
			continue
		case "MSG":
			p.handleMSG(sb, c.Arg(0), c.Payload)
			continue
		case "ACK", "NAK":
			p.mu.Lock()
			if sb.unacked > 0 {
				sb.unacked--
			}
			if c.Name == "NAK" {
				p.violationLocked("switchboard sent %s (Escargot never NAKs)", c.String())
			}
			p.notifyLocked()
			p.mu.Unlock()
		}
		if trid, ok := c.TrID(); ok {
			p.mu.Lock()
			ch := sb.waiters[trid]
			p.mu.Unlock()
			if ch != nil {
				select {
				case ch <- c:
				default:
				}
			}
		}
	}
}

func (sb *peerSB) close() {
	p := sb.p
	p.mu.Lock()
	if sb.dead {
		p.mu.Unlock()
		return
	}
	sb.dead = true
	delete(p.sbs, sb)
	close(sb.done)
	p.notifyLocked()
	p.mu.Unlock()
	sb.writeLine("OUT")
	sb.conn.Close()
}

// SendText sends a plain-text message to "to" (in a switchboard with only
// them, opened when needed) with ack A and waits for the ACK.
func (p *Peer) SendText(ctx context.Context, to, text string) error {
	sb, err := p.sbWith(ctx, to)
	if err != nil {
		return err
	}
	payload := "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Arial; EF=; CO=0; CS=0; PF=22\r\n\r\n" + text
	return sb.sendMSG(ctx, "A", []byte(payload), true)
}

// handleMSG dispatches a switchboard MSG: P2P goes to the P2P layer, the
// rest is ignored.
func (p *Peer) handleMSG(sb *peerSB, from string, payload []byte) {
	head, body, ok := strings.Cut(string(payload), "\r\n\r\n")
	if !ok {
		p.violation("MSG from %s without a blank line after its headers", from)
		return
	}
	var ctype, dest string
	for _, l := range strings.Split(head, "\r\n") {
		k, v, _ := strings.Cut(l, ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "content-type":
			ctype = v
		case "p2p-dest":
			dest = v
		}
	}
	if strings.HasPrefix(ctype, "text/plain") {
		p.mu.Lock()
		if len(p.texts) < 1000 {
			p.texts = append(p.texts, ReceivedText{From: from, Text: body})
		}
		p.notifyLocked()
		p.mu.Unlock()
		return
	}
	if ctype != msnp.ContentTypeP2P {
		return
	}
	if !strings.EqualFold(dest, p.passport) {
		p.violation("P2P MSG from %s with P2P-Dest %q, want %q", from, dest, p.passport)
		return
	}
	p.handleP2P(sb, from, []byte(body))
}

// ReceivedText is a plain-text message someone sent a Peer.
type ReceivedText struct {
	From, Text string
}

// WaitText returns the next plain-text message someone sent the peer, in
// the order they arrived.
func (p *Peer) WaitText(ctx context.Context) (ReceivedText, error) {
	var m ReceivedText
	err := p.waitFor(ctx, func() bool {
		if len(p.texts) == 0 {
			return false
		}
		m, p.texts = p.texts[0], p.texts[1:]
		return true
	})
	return m, err
}
