package xmpp

import (
	"context"
	"strings"
	"time"

	"github.com/msnbridge/msnbridge/bridge"
)

func (g *Gateway) handleMessage(st *inStanza) {
	user := st.user
	if g.isRoomJID(st.to) {
		g.handleRoomMessage(st)
		return
	}
	switch st.typ() {
	case "error":
		g.log.Debug().Str("user", user.ID).Str("to", st.to.String()).Msg("message error from user")
		return
	case "headline":
		return
	case "groupchat":
		g.replyError(st, newErr(errModify, "not-acceptable", "group chats happen in the rooms the gateway invites you to"))
		return
	}
	if st.toGateway() {
		g.messageToGateway(st)
		return
	}
	if e := g.authorize(user, true); e != nil {
		g.replyError(st, e)
		return
	}
	passport, err := PassportOf(g.domain, st.to)
	if err != nil {
		g.replyError(st, newErr(errModify, "jid-malformed", err.Error()))
		return
	}
	body := st.Child("", "body").Text()
	hasBody := strings.TrimSpace(body) != ""
	attention := st.Child(nsAttention, "attention") != nil
	composing := st.Child(nsChatStates, "composing") != nil
	stopped := st.Child(nsChatStates, "paused") != nil || st.Child(nsChatStates, "active") != nil ||
		st.Child(nsChatStates, "inactive") != nil || st.Child(nsChatStates, "gone") != nil

	if hasBody || attention {
		// MSN cannot reach an offline contact; say so at once rather than
		// after a round trip that can only fail.
		if c, ok := g.state.contact(user.ID, passport); ok && c.Status == bridge.StatusOffline {
			g.replyError(st, newErr(errCancel, "recipient-unavailable", passport+" is offline on MSN"))
			return
		}
	}
	ctx, cancel := g.coreCtx()
	defer cancel()
	portal, err := g.core.DirectPortal(ctx, user, passport)
	if err != nil {
		g.log.Info().Err(err).Str("user", user.ID).Str("contact", passport).Msg("no portal")
		g.replyError(st, newErr(errWait, "recipient-unavailable", "cannot open a conversation: "+err.Error()))
		return
	}
	g.state.setPortal(user.ID, portal)

	if composing && !hasBody {
		if err := g.core.SendTyping(ctx, user, portal.ID, true); err != nil {
			g.log.Debug().Err(err).Str("user", user.ID).Msg("typing not sent")
		}
	} else if stopped && !hasBody && !attention {
		if err := g.core.SendTyping(ctx, user, portal.ID, false); err != nil {
			g.log.Debug().Err(err).Str("user", user.ID).Msg("typing stop not sent")
		}
	}
	if attention {
		if err := g.core.SendNudge(ctx, user, portal.ID); err != nil {
			g.replyError(st, newErr(errWait, "recipient-unavailable", "nudge not sent: "+err.Error()))
			return
		}
	}
	if link, explicit := fileLink(st); link != "" {
		g.sendLinkedFile(st, portal, link, explicit)
		// Text beside a jabber:x:oob link (not just the link again) is sent
		// as a message too.
		if !explicit || strings.TrimSpace(body) == link {
			return
		}
	}
	if !hasBody {
		return
	}
	g.sendText(ctx, st, portal, body)
}

// sendText sends a user's message body to the portal, remembering it for
// its DeliveryResult.
func (g *Gateway) sendText(ctx context.Context, st *inStanza, portal bridge.Portal, body string) {
	user := st.user
	text := bridge.Text{Body: body}
	if st.Child(nsStyling, "unstyled") == nil {
		text = parseStyling(body)
	}
	fid := newID()
	g.state.addPending(user.ID, fid, pendingMessage{
		to:      st.from.String(),
		from:    st.to.Bare().String(),
		id:      st.Attr("id"),
		receipt: st.Child(nsReceipts, "request") != nil && st.Attr("id") != "",
		at:      time.Now(),
	})
	if err := g.core.SendMessage(ctx, user, portal.ID, bridge.OutgoingMessage{FrontendID: fid, Text: text}); err != nil {
		g.state.takePending(user.ID, fid)
		g.replyError(st, newErr(errWait, "recipient-unavailable", "not sent: "+err.Error()))
	}
}

// messageToGateway answers chat to the gateway itself with a pointer to
// the ad-hoc commands, where everything the gateway does is.
func (g *Gateway) messageToGateway(st *inStanza) {
	if e := g.authorize(st.user, false); e != nil {
		g.replyError(st, e)
		return
	}
	if strings.TrimSpace(st.Child("", "body").Text()) == "" {
		return
	}
	var b strings.Builder
	b.WriteString("This is the " + g.name + ". Register your MSN account through service discovery (or jabber:iq:register), then chat with your contacts as <passport with @ written \\40>@" + g.domain.String() + ".\nCommands (XEP-0050 ad-hoc):")
	for _, c := range commandList {
		b.WriteString("\n  " + c.node + " — " + c.name)
	}
	_ = g.send(outMessage{Type: "chat", From: g.domain.String(), To: st.from.String(), Body: b.String()})
}
