package xmpp

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/msnbridge/msnbridge/bridge"
)

// XEP-0050 ad-hoc commands. Each command is at most two steps (a form, then
// its submission), so no session state is kept: a submission carries all
// it needs, and the session id only echoes back.

type commandDef struct {
	node, name string
	needLogin  bool
	// form, when set, is shown first; run then gets its submitted values.
	form func(g *Gateway, user bridge.UserID) *dataForm
	run  func(ctx context.Context, g *Gateway, user bridge.UserID, values map[string]string) (note string, result *dataForm, err error)
}

var commandList []*commandDef

func init() {
	passportForm := func(title string) func(*Gateway, bridge.UserID) *dataForm {
		return func(*Gateway, bridge.UserID) *dataForm {
			return &dataForm{Type: "form", Title: title, Fields: []formField{
				{Var: "passport", Type: "text-single", Label: "MSN passport (e-mail) or contact JID", Required: required},
			}}
		}
	}
	contactCommand := func(node, name, done string, call func(bridge.Core) func(context.Context, bridge.UserID, string) error) *commandDef {
		return &commandDef{node: node, name: name, needLogin: true, form: passportForm(name),
			run: func(ctx context.Context, g *Gateway, user bridge.UserID, v map[string]string) (string, *dataForm, error) {
				p, err := g.passportArg(v["passport"])
				if err != nil {
					return "", nil, err
				}
				if err := call(g.core)(ctx, user, p); err != nil {
					return "", nil, err
				}
				return fmt.Sprintf(done, p), nil, nil
			}}
	}
	commandList = []*commandDef{
		{node: "status", name: "Show MSN connection status", run: cmdStatus},
		{node: "set-status", name: "Set MSN status", needLogin: true, form: statusForm, run: cmdSetStatus},
		{node: "set-personal-message", name: "Set personal message", needLogin: true,
			form: func(*Gateway, bridge.UserID) *dataForm {
				return &dataForm{Type: "form", Title: "Set personal message", Fields: []formField{
					{Var: "message", Type: "text-single", Label: "Personal message (empty clears it)"}}}
			},
			run: func(ctx context.Context, g *Gateway, user bridge.UserID, v map[string]string) (string, *dataForm, error) {
				if err := g.core.SetPersonalMessage(ctx, user, v["message"]); err != nil {
					return "", nil, err
				}
				return "Personal message set.", nil, nil
			}},
		{node: "set-friendly-name", name: "Set friendly name", needLogin: true,
			form: func(*Gateway, bridge.UserID) *dataForm {
				return &dataForm{Type: "form", Title: "Set friendly name", Fields: []formField{
					{Var: "name", Type: "text-single", Label: "Friendly name", Required: required}}}
			},
			run: func(ctx context.Context, g *Gateway, user bridge.UserID, v map[string]string) (string, *dataForm, error) {
				if strings.TrimSpace(v["name"]) == "" {
					return "", nil, errors.New("a friendly name cannot be empty")
				}
				if err := g.core.SetFriendlyName(ctx, user, v["name"]); err != nil {
					return "", nil, err
				}
				return "Friendly name set.", nil, nil
			}},
		contactCommand("add-contact", "Add a contact", "Added %s.", func(c bridge.Core) func(context.Context, bridge.UserID, string) error { return c.AddContact }),
		contactCommand("remove-contact", "Remove a contact", "Removed %s.", func(c bridge.Core) func(context.Context, bridge.UserID, string) error { return c.RemoveContact }),
		contactCommand("block-contact", "Block a contact", "Blocked %s.", func(c bridge.Core) func(context.Context, bridge.UserID, string) error { return c.BlockContact }),
		contactCommand("unblock-contact", "Unblock a contact", "Unblocked %s.", func(c bridge.Core) func(context.Context, bridge.UserID, string) error { return c.UnblockContact }),
		{node: "list-contacts", name: "List contacts", needLogin: true, run: cmdListContacts},
		{node: "reconnect", name: "Reconnect to MSN", needLogin: true,
			run: func(ctx context.Context, g *Gateway, user bridge.UserID, _ map[string]string) (string, *dataForm, error) {
				if err := g.core.Relogin(ctx, user); err != nil {
					return "", nil, err
				}
				return "Reconnecting to MSN.", nil, nil
			}},
		{node: "logout", name: "Log out of MSN", needLogin: true,
			run: func(ctx context.Context, g *Gateway, user bridge.UserID, _ map[string]string) (string, *dataForm, error) {
				if err := g.core.Logout(ctx, user); err != nil {
					return "", nil, err
				}
				g.allOffline(user)
				g.forgetUserPicture(ctx, user)
				return "Logged out of MSN; your login was forgotten. Register again to log back in.", nil, nil
			}},
	}
}

func findCommand(node string) *commandDef {
	for _, c := range commandList {
		if c.node == node {
			return c
		}
	}
	return nil
}

// passportArg accepts a passport or a contact JID.
func (g *Gateway) passportArg(s string) (string, error) {
	s = strings.TrimSpace(s)
	if j, err := jid.Parse(s); err == nil && j.Domainpart() == g.domain.Domainpart() && j.Localpart() != "" {
		return PassportOf(g.domain, j)
	}
	if !strings.Contains(s, "@") {
		return "", fmt.Errorf("%q is not a passport (an e-mail address)", s)
	}
	if _, err := g.ContactJID(s); err != nil {
		return "", err
	}
	return NormalizePassport(s), nil
}

func (g *Gateway) executeCommand(st *inStanza, q *node) {
	cmd := findCommand(q.Attr("node"))
	if cmd == nil {
		g.replyError(st, newErr(errCancel, "item-not-found", "no such command"))
		return
	}
	sessionID := q.Attr("sessionid")
	if sessionID == "" {
		sessionID = newID()
	}
	resp := command{Node: cmd.node, SessionID: sessionID}
	if q.Attr("action") == "cancel" {
		resp.Status = "canceled"
		g.iqResult(st, resp)
		return
	}
	if e := g.authorize(st.user, cmd.needLogin); e != nil {
		g.replyError(st, e)
		return
	}
	var values map[string]string
	if x := q.Child(nsData, "x"); x != nil && x.Attr("type") == "submit" {
		values = formValues(x)
	} else if cmd.form != nil {
		resp.Status = "executing"
		resp.Actions = &struct {
			Execute  string    `xml:"execute,attr,omitempty"`
			Next     *struct{} `xml:"next,omitempty"`
			Complete *struct{} `xml:"complete,omitempty"`
		}{Execute: "complete", Complete: &struct{}{}}
		resp.Form = cmd.form(g, st.user)
		g.iqResult(st, resp)
		return
	}
	ctx, cancel := g.coreCtx()
	defer cancel()
	note, result, err := cmd.run(ctx, g, st.user, values)
	if err != nil {
		g.replyError(st, newErr(errModify, "bad-request", err.Error()))
		return
	}
	resp.Status = "completed"
	resp.Form = result
	if note != "" {
		resp.Note = &struct {
			Type  string `xml:"type,attr"`
			Value string `xml:",chardata"`
		}{Type: "info", Value: note}
	}
	g.iqResult(st, resp)
}

func cmdStatus(ctx context.Context, g *Gateway, user bridge.UserID, _ map[string]string) (string, *dataForm, error) {
	st, err := g.core.Status(ctx, user)
	if err != nil || st.Passport == "" {
		return "Not registered: register your MSN account with the gateway first.", nil, nil
	}
	s := fmt.Sprintf("Passport: %s\nConnection: %s\nStatus: %s", st.Passport, st.State, st.Status)
	if st.Protocol != "" {
		s += "\nProtocol: " + st.Protocol
	}
	return s, nil, nil
}

// settableStatuses are the statuses a user may pick, in menu order.
var settableStatuses = []struct {
	status bridge.Status
	label  string
}{
	{bridge.StatusOnline, "Online"},
	{bridge.StatusBusy, "Busy"},
	{bridge.StatusBRB, "Be right back"},
	{bridge.StatusAway, "Away"},
	{bridge.StatusPhone, "On the phone"},
	{bridge.StatusLunch, "Out to lunch"},
	{bridge.StatusIdle, "Idle"},
	{bridge.StatusInvisible, "Appear offline"},
}

func statusForm(*Gateway, bridge.UserID) *dataForm {
	f := formField{Var: "status", Type: "list-single", Label: "Status", Required: required, Values: []string{string(bridge.StatusOnline)}}
	for _, s := range settableStatuses {
		f.Options = append(f.Options, formOption{Label: s.label, Value: string(s.status)})
	}
	return &dataForm{Type: "form", Title: "Set MSN status", Fields: []formField{f}}
}

func cmdSetStatus(ctx context.Context, g *Gateway, user bridge.UserID, v map[string]string) (string, *dataForm, error) {
	for _, s := range settableStatuses {
		if string(s.status) == v["status"] {
			if err := g.core.SetStatus(ctx, user, s.status); err != nil {
				return "", nil, err
			}
			g.state.applyStatus(user.ID, s.status)
			return "Status set to " + s.label + ".", nil, nil
		}
	}
	return "", nil, fmt.Errorf("unknown status %q", v["status"])
}

func cmdListContacts(ctx context.Context, g *Gateway, user bridge.UserID, _ map[string]string) (string, *dataForm, error) {
	contacts, err := g.core.Contacts(ctx, user)
	if err != nil {
		return "", nil, err
	}
	sort.Slice(contacts, func(i, j int) bool { return contacts[i].Passport < contacts[j].Passport })
	form := &dataForm{Type: "result", Title: fmt.Sprintf("%d contacts", len(contacts))}
	form.Reported = &struct {
		Fields []formField `xml:"field"`
	}{Fields: []formField{
		{Var: "jid", Type: "jid-single", Label: "JID"},
		{Var: "passport", Label: "Passport"},
		{Var: "name", Label: "Friendly name"},
		{Var: "status", Label: "Status"},
		{Var: "lists", Label: "Lists"},
	}}
	for _, c := range contacts {
		j, _ := g.ContactJID(c.Passport)
		var lists []string
		if c.OnContactList {
			lists = append(lists, "contact list")
		}
		if c.Blocked {
			lists = append(lists, "blocked")
		}
		if c.Pending {
			lists = append(lists, "pending")
		}
		form.Items = append(form.Items, formItem{Fields: []formField{
			{Var: "jid", Values: []string{j.String()}},
			{Var: "passport", Values: []string{c.Passport}},
			{Var: "name", Values: []string{c.FriendlyName}},
			{Var: "status", Values: []string{string(c.Status)}},
			{Var: "lists", Values: []string{strings.Join(lists, ", ")}},
		}})
	}
	return "", form, nil
}
