package msnp

import (
	"bufio"
	"bytes"
	"mime"
	"net/textproto"
	"strconv"
	"strings"
)

// applyReply updates state from a reply to one of our requests before the
// waiting request sees it (and before the reader reads on).
func (c *Client) applyReply(cn *conn, cmd *Command) error {
	if cmd.IsError() {
		return nil
	}
	switch cmd.Name {
	case "VER":
		// The dialect is set here, by the reader, so that the lines after
		// the reply are already read in it.
		if p, err := ParseProtocol(cmd.Arg(1)); err == nil && containsProto(c.cfg.Protocols, p) {
			cn.d = dialectFor(p)
		}
	case "SYN":
		n, g, ok := cn.d.synCounts(cmd)
		if !ok {
			return errBadLine(cmd)
		}
		cn.mu.Lock()
		cn.syncLeft = n + g
		cn.mu.Unlock()
		cn.syncStep(0)
	case "CHG":
		c.mu.Lock()
		c.status = Status(cmd.Arg(1))
		c.mu.Unlock()
		cn.mu.Lock()
		first := !cn.chgEchoed
		cn.chgEchoed = true
		cn.mu.Unlock()
		if first {
			// The ILN burst follows the echo at once; a ping's QNG marks
			// its end where no initial-mail MSG does (MSNP8–10).
			select {
			case cn.pingNow <- struct{}{}:
			default:
			}
		}
	case "ADD", "ADC", "REM":
		if ev := c.applyListChange(cn.d, cmd); ev != nil {
			return c.emit(ev)
		}
	case "PRP", "REA":
		// PRP trid MFN name | REA trid ser email name
		var name string
		if cmd.Name == "PRP" && cmd.Arg(1) == "MFN" {
			name = cmd.Arg(2)
		} else if cmd.Name == "REA" && strings.EqualFold(Unescape(cmd.Arg(2)), c.passport) {
			name = cmd.Arg(3)
		}
		if name != "" {
			c.mu.Lock()
			c.friendlyName = Unescape(name)
			c.mu.Unlock()
			return c.emit(FriendlyNameChanged{Name: Unescape(name)})
		}
	}
	return nil
}

// syncStep counts contact-list lines after SYN and signals completion.
func (cn *conn) syncStep(n int) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	select {
	case <-cn.synced:
		return nil // late lines (e.g. BPR) after completion are fine
	default:
	}
	cn.syncLeft -= n
	if cn.syncLeft <= 0 {
		close(cn.synced)
	}
	return nil
}

// dispatch handles everything that is not a reply to a pending request.
func (c *Client) dispatch(cn *conn, cmd *Command) error {
	if cn.d == nil {
		// Nothing but replies makes sense before VER.
		c.log.Debug().Str("cmd", cmd.Name).Msg("ignoring command before VER")
		return nil
	}
	switch cmd.Name {
	case "LST":
		ct, err := cn.d.parseLST(cmd)
		if err != nil {
			return err
		}
		// Someone who added the account while it was away: on the reverse
		// list and on neither allow nor block list (MSNP10+ also say PL).
		pending := ct.Lists&PL != 0 || (ct.Lists&RL != 0 && ct.Lists&(AL|BL) == 0)
		if pending {
			ct.Lists |= PL
		}
		c.mu.Lock()
		if c.contacts != nil {
			e := c.contactLocked(ct.Passport)
			st := e.Status
			*e = ct
			e.Status = st
		}
		c.mu.Unlock()
		if pending {
			if err := c.emit(AddedBy{Passport: ct.Passport, Name: ct.FriendlyName}); err != nil {
				return err
			}
		}
		return cn.syncStep(1)
	case "LSG":
		g, err := cn.d.parseLSG(cmd)
		if err != nil {
			return err
		}
		c.mu.Lock()
		if c.groups != nil {
			c.groups[g.ID] = g
		}
		c.mu.Unlock()
		return cn.syncStep(1)
	case "GTC", "BLP":
		v := cmd.Arg(len(cmd.Args) - 1)
		c.mu.Lock()
		if cmd.Name == "GTC" {
			c.gtc = v
		} else {
			c.blp = v
		}
		c.mu.Unlock()
	case "PRP":
		if cmd.Arg(0) == "MFN" && len(cmd.Args) >= 2 {
			c.mu.Lock()
			c.friendlyName = Unescape(cmd.Arg(1))
			c.mu.Unlock()
		}
	case "ILN", "NLN":
		p, ok := parsePresence(cmd)
		if !ok {
			return errBadLine(cmd)
		}
		c.mu.Lock()
		if ct := c.contacts[strings.ToLower(p.Passport)]; ct != nil {
			ct.Status, ct.FriendlyName, ct.ClientID, ct.MSNObject = p.Status, p.FriendlyName, p.ClientID, p.MSNObject
		}
		c.mu.Unlock()
		return c.emit(p)
	case "FLN":
		who := Unescape(cmd.Arg(0))
		if who == "" {
			return errBadLine(cmd)
		}
		c.mu.Lock()
		if ct := c.contacts[strings.ToLower(who)]; ct != nil {
			ct.Status = StatusOffline
		}
		c.mu.Unlock()
		return c.emit(ContactOffline{Passport: who})
	case "UBX":
		who := Unescape(cmd.Arg(0))
		text, media, err := parseUBX(cmd.Payload)
		if err != nil {
			// A contact's malformed status text is not worth the session.
			c.log.Debug().Err(err).Str("contact", who).Msg("ignoring UBX")
			return nil
		}
		c.mu.Lock()
		if ct := c.contacts[strings.ToLower(who)]; ct != nil {
			ct.PersonalMessage, ct.CurrentMedia = text, media
		}
		c.mu.Unlock()
		return c.emit(PersonalMessage{Passport: who, Text: text, CurrentMedia: media})
	case "ADD", "ADC", "REM":
		if ev := c.applyListChange(cn.d, cmd); ev != nil {
			return c.emit(ev)
		}
	case "MSG":
		return c.serverMessage(cn, cmd)
	case "RNG":
		// RNG session addr CKI cookie inviter name
		if len(cmd.Args) < 5 {
			return errBadLine(cmd)
		}
		inv := SwitchboardInvite{SessionID: cmd.Arg(0), Addr: cmd.Arg(1), Cookie: cmd.Arg(3),
			Inviter: Unescape(cmd.Arg(4)), InviterName: Unescape(cmd.Arg(5))}
		// The event goes first, so that it precedes the conversation's.
		if err := c.emit(inv); err != nil {
			return err
		}
		if !c.cfg.ManualSwitchboards {
			c.answerInvite(inv)
		}
		return nil
	case "OUT":
		cn.mu.Lock()
		cn.outSeen = true
		switch cmd.Arg(0) {
		case "OTH":
			cn.outReason = ReasonOtherLogin
		case "SSD":
			cn.outReason = ReasonServerShutdown
		default:
			cn.outReason = ReasonConnectionLost
		}
		cn.mu.Unlock()
	case "CHL":
		chl := cmd.Arg(1)
		if chl == "" {
			return errBadLine(cmd)
		}
		p := cn.d.product()
		// Servers that check answer "QRY trid" or 540; Escargot answers
		// nothing, so nothing waits for the reply.
		_, err := cn.send("QRY", []byte(cn.d.answerChallenge(chl)), p.id)
		return err
	case "QNG":
		cn.mu.Lock()
		cn.awaitingQNG = false
		cn.qngInterval = parseQNG(cmd)
		cn.mu.Unlock()
		return c.presenceSyncMarker(cn)
	case "NOT", "SBS", "GCF", "IPG", "UBN", "QRY", "BPR", "CHG", "SYN", "UUX", "VER", "CVR":
		// ABCH notifications, the unexplained SBS, late or unmatched
		// replies: nothing to do.
	default:
		if cmd.IsError() {
			c.log.Debug().Str("error", cmd.Err().Error()).Msg("unsolicited error")
			return nil
		}
		c.log.Debug().Str("cmd", cmd.Name).Msg("ignoring unknown command")
	}
	return nil
}

// presenceSyncMarker emits PresenceSynced at the first end marker after
// the first CHG echo.
func (c *Client) presenceSyncMarker(cn *conn) error {
	cn.mu.Lock()
	fire := cn.chgEchoed && !cn.presSynced
	if fire {
		cn.presSynced = true
	}
	cn.mu.Unlock()
	if fire {
		return c.emit(PresenceSynced{})
	}
	return nil
}

// serverMessage handles "MSG Hotmail Hotmail": the login profile, mail
// notifications, maintenance notices.
func (c *Client) serverMessage(cn *conn, cmd *Command) error {
	hdr, body := parseMIME(cmd.Payload)
	ct := hdr.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(ct))
	}
	switch mt {
	case "text/x-msmsgsprofile":
		return nil // holds MSPAuth: kept out of events and logs
	case "text/x-msmsgsinitialmdatanotification":
		if err := c.emit(ServerNotice{ContentType: mt, Header: hdr, Body: body}); err != nil {
			return err
		}
		return c.presenceSyncMarker(cn)
	}
	n := ServerNotice{ContentType: mt, Header: hdr, Body: body}
	if mt == "application/x-msmsgssystemmessage" {
		bh, _ := parseMIME([]byte(body))
		if bh.Get("Type") == "1" {
			n.MaintenanceMinutes, _ = strconv.Atoi(strings.TrimSpace(bh.Get("Arg1")))
		}
	}
	return c.emit(n)
}

// parseMIME splits an MSG payload into its header and body. It is lenient:
// a payload without a blank line is all header.
func parseMIME(p []byte) (textproto.MIMEHeader, string) {
	head, body := p, []byte(nil)
	if i := bytes.Index(p, []byte("\r\n\r\n")); i >= 0 {
		head, body = p[:i+2], p[i+4:]
	}
	hdr := textproto.MIMEHeader{}
	sc := bufio.NewScanner(bytes.NewReader(head))
	sc.Buffer(make([]byte, 4096), len(p)+1)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) == "" {
			continue
		}
		hdr.Add(textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k)), strings.TrimSpace(v))
	}
	return hdr, string(body)
}
