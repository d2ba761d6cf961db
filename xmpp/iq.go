package xmpp

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"mellium.im/xmpp/oob"

	"github.com/msnbridge/msnbridge/bridge"
)

// Version is reported by jabber:iq:version.
var Version = "dev"

func (g *Gateway) handleIQ(st *inStanza) {
	typ := st.typ()
	if typ != "get" && typ != "set" {
		return // results and errors: the gateway sends no IQs that await them
	}
	payload := st.First()
	if payload == nil {
		g.replyError(st, newErr(errModify, "bad-request", "IQ without payload"))
		return
	}
	if g.isRoomJID(st.to) {
		g.handleRoomIQ(st)
		return
	}
	ns, local := payload.Name.Space, payload.Name.Local
	get := typ == "get"
	// Discovery, ping and version are open to anyone: they show what the
	// gateway is, never a user's data.
	switch {
	case get && ns == nsDiscoInfo && local == "query":
		g.discoInfo(st, payload)
		return
	case get && ns == nsDiscoItems && local == "query":
		g.discoItems(st, payload)
		return
	case get && ns == nsPing && local == "ping":
		g.iqResult(st, nil)
		return
	case get && ns == nsVersion && local == "query" && st.toGateway():
		g.iqResult(st, versionQuery{Name: g.name, Version: Version})
		return
	}
	if e := g.authorize(st.user, false); e != nil {
		g.replyError(st, e)
		return
	}
	switch {
	case ns == nsRegister && local == "query" && st.toGateway():
		if get {
			g.registerForm(st)
		} else {
			g.register(st, payload)
		}
	case ns == nsGateway && local == "query" && st.toGateway():
		g.gatewayPrompt(st, payload, get)
	case ns == nsCommands && local == "command" && !get && st.toGateway():
		g.executeCommand(st, payload)
	case ns == nsVCard && local == "vCard" && get:
		if e := g.authorize(st.user, !st.toGateway()); e != nil {
			g.replyError(st, e) // a contact's card is for the user's own contacts
			return
		}
		g.vcard(st)
	default:
		g.replyError(st, newErr(errCancel, "service-unavailable", ""))
	}
}

// Features of the gateway and of contact JIDs: only what is implemented.
var (
	gatewayFeatures = []string{nsDiscoInfo, nsDiscoItems, nsRegister, nsGateway, nsCommands, nsPing, nsVersion, nsVCard}
	contactFeatures = []string{nsDiscoInfo, nsChatStates, nsAttention, nsReceipts, nsVCard, nsPing, oob.NS}
)

func features(vars []string) []discoFeature {
	out := make([]discoFeature, len(vars))
	for i, v := range vars {
		out[i] = discoFeature{Var: v}
	}
	return out
}

func (g *Gateway) discoInfo(st *inStanza, q *node) {
	node := q.Attr("node")
	switch {
	case st.toGateway() && node == "":
		g.iqResult(st, discoInfo{
			Identities: []discoIdentity{{Category: "gateway", Type: "msn", Name: g.name}},
			Features:   features(gatewayFeatures),
		})
	case st.toGateway() && node == nsCommands:
		g.iqResult(st, discoInfo{Node: node,
			Identities: []discoIdentity{{Category: "automation", Type: "command-list", Name: "Commands"}},
		})
	case st.toGateway() && findCommand(node) != nil:
		g.iqResult(st, discoInfo{Node: node,
			Identities: []discoIdentity{{Category: "automation", Type: "command-node", Name: findCommand(node).name}},
			Features:   features([]string{nsCommands, nsData}),
		})
	case !st.toGateway() && node == "":
		passport, err := PassportOf(g.domain, st.to)
		if err != nil {
			g.replyError(st, newErr(errCancel, "item-not-found", err.Error()))
			return
		}
		name := passport
		if g.core.Permission(st.user) != bridge.PermissionNone {
			if c, ok := g.state.contact(st.user.ID, passport); ok && c.FriendlyName != "" {
				name = c.FriendlyName
			}
		}
		g.iqResult(st, discoInfo{
			Identities: []discoIdentity{{Category: "client", Type: "pc", Name: name}},
			Features:   features(contactFeatures),
		})
	default:
		g.replyError(st, newErr(errCancel, "item-not-found", ""))
	}
}

func (g *Gateway) discoItems(st *inStanza, q *node) {
	node := q.Attr("node")
	switch {
	case node == "":
		g.iqResult(st, discoItems{})
	case node == nsCommands && st.toGateway():
		items := discoItems{Node: node}
		if g.core.Permission(st.user) != bridge.PermissionNone {
			for _, c := range commandList {
				items.Items = append(items.Items, discoItem{JID: g.domain.String(), Node: c.node, Name: c.name})
			}
		}
		g.iqResult(st, items)
	default:
		g.replyError(st, newErr(errCancel, "item-not-found", ""))
	}
}

// XEP-0077 in-band registration, as XEP-0100 uses it.

const registerInstructions = "Enter your MSN passport (e-mail address) and password."

func (g *Gateway) registerForm(st *inStanza) {
	login, registered := g.loginStatus(st.user)
	user, pass := "", ""
	q := registerQuery{Instructions: registerInstructions, Username: &user, Password: &pass}
	passportField := formField{Var: "passport", Type: "text-single", Label: "MSN passport (e-mail)", Required: required}
	if registered {
		q.Registered = &struct{}{}
		user = login.Passport
		passportField.Values = []string{login.Passport}
	}
	q.Form = &dataForm{
		Type:         "form",
		Title:        "Register with " + g.name,
		Instructions: registerInstructions,
		Fields: []formField{
			{Var: "FORM_TYPE", Type: "hidden", Values: []string{nsRegister}},
			passportField,
			{Var: "password", Type: "text-private", Label: "Password", Required: required},
		},
	}
	g.iqResult(st, q)
}

// registration is what a register set carries.
type registration struct {
	remove             bool
	passport, password string
}

// parseRegistration reads a jabber:iq:register set: a submitted data form
// (fields passport or username, and password), the legacy <username/> and
// <password/> elements, or <remove/>.
func parseRegistration(q *node) (registration, *stanzaErr) {
	if q.Child("", "remove") != nil {
		return registration{remove: true}, nil
	}
	var r registration
	if x := q.Child(nsData, "x"); x != nil {
		if t := x.Attr("type"); t != "submit" {
			return r, newErr(errModify, "bad-request", "expected a submitted form, got type "+t)
		}
		fields := formValues(x)
		r.passport = fields["passport"]
		if r.passport == "" {
			r.passport = fields["username"]
		}
		r.password = fields["password"]
	} else {
		r.passport = q.Child("", "username").Text()
		r.password = q.Child("", "password").Text()
	}
	r.passport = strings.TrimSpace(r.passport)
	if r.passport == "" || r.password == "" {
		return r, newErr(errModify, "not-acceptable", "both passport and password are required")
	}
	if !strings.Contains(r.passport, "@") || len(r.passport) > maxPassportLen {
		return r, newErr(errModify, "not-acceptable", "a passport is an e-mail address")
	}
	return r, nil
}

// formValues returns each field's first value of a submitted form.
func formValues(x *node) map[string]string {
	out := make(map[string]string)
	for _, f := range x.All("", "field") {
		v := f.Attr("var")
		if _, seen := out[v]; seen || v == "" {
			continue
		}
		out[v] = f.Child("", "value").Text()
	}
	return out
}

func (g *Gateway) register(st *inStanza, q *node) {
	r, e := parseRegistration(q)
	if e != nil {
		g.replyError(st, e)
		return
	}
	user := st.user
	if r.remove {
		g.unregister(st)
		return
	}
	ctx, cancel := g.coreCtx()
	err := g.core.Login(ctx, user, r.passport, r.password)
	cancel()
	if err != nil {
		g.log.Info().Err(err).Str("user", user.ID).Str("passport", r.passport).Msg("registration refused")
		g.replyError(st, newErr(errModify, "not-acceptable", "MSN login refused: "+err.Error()))
		return
	}
	g.log.Info().Str("user", user.ID).Str("passport", r.passport).Msg("registered")
	g.iqResult(st, nil)
	// XEP-0100 §4.1: the gateway asks to see the user's presence, so that
	// their availability reaches MSN.
	_ = g.send(outPresence{Type: "subscribe", From: g.domain.String(), To: user.ID})
}

func (g *Gateway) unregister(st *inStanza) {
	user := st.user
	ctx, cancel := g.coreCtx()
	defer cancel()
	contacts, _ := g.core.Contacts(ctx, user)
	if err := g.core.Logout(ctx, user); err != nil {
		g.replyError(st, newErr(errWait, "internal-server-error", "could not remove the registration: "+err.Error()))
		return
	}
	g.iqResult(st, nil)
	// XEP-0100 §4.3: take the contacts and the gateway off the roster.
	seen := make(map[string]bool)
	for _, c := range append(contacts, g.state.userContacts(user.ID)...) {
		j, err := g.ContactJID(c.Passport)
		if err != nil || seen[j.String()] {
			continue
		}
		seen[j.String()] = true
		_ = g.send(outPresence{Type: "unavailable", From: j.String(), To: user.ID})
		_ = g.send(outPresence{Type: "unsubscribe", From: j.String(), To: user.ID})
		_ = g.send(outPresence{Type: "unsubscribed", From: j.String(), To: user.ID})
	}
	_ = g.send(outPresence{Type: "unavailable", From: g.domain.String(), To: user.ID})
	_ = g.send(outPresence{Type: "unsubscribe", From: g.domain.String(), To: user.ID})
	_ = g.send(outPresence{Type: "unsubscribed", From: g.domain.String(), To: user.ID})
	g.closeUserRooms(user.ID)
	g.state.forgetUser(user.ID)
	g.forgetUserPicture(ctx, user)
	g.log.Info().Str("user", user.ID).Msg("unregistered")
}

// XEP-0100 §6.3: jabber:iq:gateway turns a passport into a contact JID.
func (g *Gateway) gatewayPrompt(st *inStanza, q *node, get bool) {
	if get {
		g.iqResult(st, gatewayQuery{Desc: "Enter the MSN passport (e-mail address) of the contact.", Prompt: "MSN passport"})
		return
	}
	j, err := g.ContactJID(strings.TrimSpace(q.Child("", "prompt").Text()))
	if err != nil {
		g.replyError(st, newErr(errModify, "not-acceptable", err.Error()))
		return
	}
	g.iqResult(st, gatewayQuery{JID: j.String()})
}

func (g *Gateway) vcard(st *inStanza) {
	if st.toGateway() {
		g.iqResult(st, vcard{FN: g.name, Desc: "Gateway to MSN Messenger"})
		return
	}
	passport, err := PassportOf(g.domain, st.to)
	if err != nil {
		g.replyError(st, newErr(errCancel, "item-not-found", err.Error()))
		return
	}
	c, ok := g.state.contact(st.user.ID, passport)
	if !ok {
		ctx, cancel := g.coreCtx()
		contacts, _ := g.core.Contacts(ctx, st.user)
		cancel()
		for _, x := range contacts {
			if NormalizePassport(x.Passport) == passport {
				c = x
			}
		}
	}
	name := c.FriendlyName
	if name == "" {
		name = passport
	}
	v := vcard{FN: name, Nickname: name, Desc: c.PersonalMessage}
	v.Email = &struct {
		Internet *struct{} `xml:"INTERNET"`
		UserID   string    `xml:"USERID"`
	}{Internet: &struct{}{}, UserID: passport}
	v.Photo = g.photo(c.Avatar)
	g.iqResult(st, v)
}

// maxPhoto bounds the picture put in a vCard: base64 of it must fit in a
// stanza the user's server accepts (Prosody: 256 KiB from clients).
const maxPhoto = 128 << 10

// photo is the vCard PHOTO of a cached display picture, nil when there is
// none (or it is too large for a stanza).
func (g *Gateway) photo(hash string) *vcardPhoto {
	if hash == "" {
		return nil
	}
	ctx, cancel := g.coreCtx()
	defer cancel()
	data, mimeType, err := g.core.Avatar(ctx, hash)
	if err != nil {
		if !errors.Is(err, bridge.ErrNoSuchMedia) {
			g.log.Info().Err(err).Msg("display picture unavailable")
		}
		return nil
	}
	if len(data) > maxPhoto {
		g.log.Info().Int("bytes", len(data)).Msg("display picture too large for a vCard")
		return nil
	}
	if mimeType == "" {
		mimeType = http.DetectContentType(data)
	}
	return &vcardPhoto{Type: mimeType, BinVal: base64.StdEncoding.EncodeToString(data)}
}
