package msnptest

import (
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/msnbridge/msnbridge/msnp"
)

// Presence formats per version (FACTS.md §5.3) and the MSNP13+ list
// commands ADL, RML and FQY (§4.3).

// who is how this session's dialect names an account in NLN, ILN, FLN and
// UBX: "email" (≤13), "email 1" (14–17), "1:email" (18).
func (c *nsConn) who(email string) []string {
	switch {
	case c.dialect >= 18:
		return []string{"1:" + email}
	case c.dialect >= 14:
		return []string{email, "1"}
	}
	return []string{email}
}

// capsFor formats a client id for this session: "caps:ext" on 16+, the
// plain word below.
func (c *nsConn) capsFor(caps string) string {
	if caps == "" {
		caps = "0"
	}
	base, ext, hasExt := strings.Cut(caps, ":")
	if c.dialect >= 16 {
		if !hasExt {
			ext = "0"
		}
		return base + ":" + ext
	}
	return base
}

// sendFLN tells this session that b went offline.
func (c *nsConn) sendFLN(b *account) {
	parts := append([]string{"FLN"}, c.who(b.email)...)
	switch {
	case c.dialect >= 16:
		parts = append(parts, "0:0")
	case c.dialect >= 14:
		parts = append(parts, "0")
	}
	c.send(parts...)
}

// presence sends b's presence to this client: ILN trid (initial or after
// an add; never on MSNP18) or NLN, then on MSNP11+ the UBX when withUBX.
func (c *nsConn) presence(trid string, b *account, withUBX bool) {
	bs := c.s.sessions[key(b.email)]
	st := c.s.seenStatus(b, c.acct)
	if c.acct == b {
		st = bs.status
	}
	head := []string{"NLN", st}
	if trid != "" && c.dialect < 18 {
		head = []string{"ILN", trid, st}
	}
	parts := append(head, c.who(b.email)...)
	parts = append(parts, esc(b.name), c.capsFor(bs.caps))
	if c.dialect >= 9 {
		parts = append(parts, or(bs.msnobj, "%3Cmsnobj%2F%3E"))
	}
	c.send(parts...)
	if withUBX && c.dialect >= 11 {
		c.sendPayload(c.ubxPayload(b), append([]string{"UBX"}, c.who(b.email)...)...)
	}
}

// ubxPayload is b's status data as this session's dialect shows it.
func (c *nsConn) ubxPayload(b *account) []byte {
	var sb strings.Builder
	sb.WriteString("<Data><PSM>" + xmlEscape(b.psm) + "</PSM><CurrentMedia>" + xmlEscape(b.media) + "</CurrentMedia>")
	bs := c.s.sessions[key(b.email)]
	if c.dialect >= 13 && bs != nil && bs.uuxGUID != "" {
		// Escargot echoes the GUID the endpoint's UUX named.
		sb.WriteString("<MachineGuid>" + xmlEscape(bs.uuxGUID) + "</MachineGuid>")
	}
	if c.dialect >= 16 {
		sb.WriteString("<DDP></DDP><SignatureSound></SignatureSound><Scene></Scene><ColorScheme></ColorScheme>")
		for _, ep := range c.s.endpoints(key(b.email)) {
			if ep.guid == "" || ep.dialect < 16 {
				continue
			}
			sb.WriteString(`<EndpointData id="{` + ep.guid + `}"><Capabilities>` + ep.capsFor(ep.caps) + `</Capabilities></EndpointData>`)
			if c.acct == b {
				// Only the account's own endpoints see each other's
				// names and states.
				sb.WriteString(`<PrivateEndpointData id="{` + ep.guid + `}">` + ep.private + `</PrivateEndpointData>`)
			}
		}
	}
	sb.WriteString("</Data>")
	return []byte(sb.String())
}

// endpoints returns the live, authenticated sessions of the account k.
// Called with s.mu held.
func (s *Server) endpoints(k string) []*nsConn {
	var out []*nsConn
	for c := range s.conns {
		if !c.dead && c.acct != nil && key(c.acct.email) == k {
			out = append(out, c)
		}
	}
	// A stable order, so UBX lists the endpoints the same way each time.
	sort.Slice(out, func(i, j int) bool { return out[i].guid < out[j].guid })
	return out
}

// sendML pushes an "ADL 0" (added) or "RML 0" (removed) naming a for the
// given list, as Escargot tells MSNP13+ clients about their reverse list.
func (c *nsConn) sendML(a *account, lst int, added bool) {
	local, domain, _ := strings.Cut(a.email, "@")
	ent := `<c n="` + xmlEscape(local) + `" t="1" l="` + strconv.Itoa(lst) + `"`
	name := "RML"
	if added {
		name = "ADL"
		ent += ` f="` + xmlEscape(url.PathEscape(a.name)) + `"`
	}
	ml := `<ml><d n="` + xmlEscape(domain) + `">` + ent + `/></d></ml>`
	c.sendPayload([]byte(ml), name, "0")
}

// adl is "ADL trid len" with an <ml> payload. The initial one (l="1") is
// acknowledged and otherwise ignored: the server's list is authoritative.
// Later ones add the bits; adding FL pushes the contact's presence.
func (c *nsConn) adl(trid string, payload []byte) {
	if c.dialect < 13 {
		c.closeAfterFlush()
		return
	}
	ents, err := msnp.ParseML(payload)
	if err != nil {
		c.closeAfterFlush()
		return
	}
	if strings.Contains(string(payload), `<ml l="1"`) {
		c.send("ADL", trid, "OK")
		return
	}
	a := c.acct
	for _, e := range ents {
		if int(e.Lists)&(listRL|listPL) != 0 {
			c.send("241", trid)
			c.closeAfterFlush()
			return
		}
		if c.s.accounts[key(e.Email)] == nil {
			c.send("208", trid)
			return
		}
	}
	c.send("ADL", trid, "OK")
	for _, e := range ents {
		b := c.s.accounts[key(e.Email)]
		bits := int(e.Lists) & (listFL | listAL | listBL)
		c.listAdd(b, bits)
		// Escargot pushes the contact's presence for every FL ADL.
		if bits&listFL != 0 && c.ilnSent && c.s.seenStatus(b, a) != "FLN" {
			c.seen[key(b.email)] = true
			c.presence("", b, true)
		}
	}
}

// rml is "RML trid len": it takes the bits off.
func (c *nsConn) rml(trid string, payload []byte) {
	if c.dialect < 13 {
		c.closeAfterFlush()
		return
	}
	ents, err := msnp.ParseML(payload)
	if err != nil {
		c.closeAfterFlush()
		return
	}
	a := c.acct
	for _, e := range ents {
		b := c.s.accounts[key(e.Email)]
		if b == nil || a.contacts[key(b.email)] == nil {
			c.send("216", trid)
			return
		}
	}
	c.send("RML", trid, "OK")
	for _, e := range ents {
		c.listRemove(c.s.accounts[key(e.Email)], int(e.Lists)&(listFL|listAL|listBL))
	}
}

// fqy answers every queried address as a Passport (t="1") user, as
// Escargot does.
func (c *nsConn) fqy(trid string, payload []byte) {
	if c.dialect < 14 {
		c.closeAfterFlush()
		return
	}
	ents, err := msnp.ParseML(payload)
	if err != nil {
		c.closeAfterFlush()
		return
	}
	var sb strings.Builder
	sb.WriteString("<ml>")
	for _, e := range ents {
		local, domain, _ := strings.Cut(e.Email, "@")
		sb.WriteString(`<d n="` + xmlEscape(domain) + `"><c n="` + xmlEscape(local) + `" t="1" /></d>`)
	}
	sb.WriteString("</ml>")
	c.sendPayload([]byte(sb.String()), "FQY", trid)
}

// validCaps reports whether s is a client id word (the part before the
// ":ext" of MSNP16+).
func validCaps(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}
