package matrix

import (
	"html"
	"regexp"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/format"
	"maunium.net/go/mautrix/id"

	"github.com/msnbridge/msnbridge/bridge"
)

var colorRe = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// RenderHTML turns an MSN message into Matrix HTML. Everything from MSN is
// escaped; the only markup is what the bridge adds for the message-wide
// styling MSN carries (colour, bold, italic, underline, strike). The font
// face is not carried: Matrix HTML has no safe font attribute.
func RenderHTML(t bridge.Text) string {
	body := html.EscapeString(t.Body)
	body = strings.ReplaceAll(body, "\r\n", "\n")
	body = strings.ReplaceAll(body, "\n", "<br>")
	var open, closing []string
	if colorRe.MatchString(t.Color) {
		c := strings.ToLower(t.Color)
		open = append(open, `<font color="`+c+`" data-mx-color="`+c+`">`)
		closing = append(closing, "</font>")
	}
	for _, s := range []struct {
		on  bool
		tag string
	}{{t.Bold, "b"}, {t.Italic, "i"}, {t.Underline, "u"}, {t.Strike, "del"}} {
		if s.on {
			open = append(open, "<"+s.tag+">")
			closing = append(closing, "</"+s.tag+">")
		}
	}
	var sb strings.Builder
	for _, o := range open {
		sb.WriteString(o)
	}
	sb.WriteString(body)
	for i := len(closing) - 1; i >= 0; i-- {
		sb.WriteString(closing[i])
	}
	return sb.String()
}

// messageContent is the Matrix event content for an MSN message.
func messageContent(t bridge.Text) *event.MessageEventContent {
	return &event.MessageEventContent{
		MsgType:       event.MsgText,
		Body:          t.Body,
		Format:        event.FormatHTML,
		FormattedBody: RenderHTML(t),
	}
}

// HTMLToMSN turns Matrix HTML into the plain text MSN shows: markup
// dropped, links kept as their address, lists and quotes as text.
func HTMLToMSN(formatted string) string {
	return strings.TrimSpace(format.HTMLToMarkdown(formatted))
}

// contentText is the text of a message content, from its HTML when it has
// some.
func contentText(c *event.MessageEventContent) string {
	if c.Format == event.FormatHTML && c.FormattedBody != "" {
		if t := HTMLToMSN(c.FormattedBody); t != "" {
			return t
		}
	}
	return c.Body
}

// MatrixToMSN turns a Matrix message into the text MSN gets, with a
// readable fallback for everything MSN cannot carry: edits become
// "* new text", media become a link to the file, emotes "/me". The
// download base is the homeserver's public URL. ok is false for content
// that carries nothing to say.
func MatrixToMSN(c *event.MessageEventContent, homeserverURL string) (text string, ok bool) {
	if c == nil {
		return "", false
	}
	if c.RelatesTo != nil && c.RelatesTo.Type == event.RelReplace && c.NewContent != nil {
		inner, ok := MatrixToMSN(c.NewContent, homeserverURL)
		if !ok {
			return "", false
		}
		return "* " + inner, true
	}
	switch c.MsgType {
	case event.MsgText, event.MsgNotice, "":
		return nonEmpty(contentText(c))
	case event.MsgEmote:
		return "/me " + contentText(c), true
	case event.MsgImage, event.MsgFile, event.MsgVideo, event.MsgAudio:
		name := c.GetFileName()
		what := map[event.MessageType]string{
			event.MsgImage: "an image", event.MsgFile: "a file",
			event.MsgVideo: "a video", event.MsgAudio: "an audio clip",
		}[c.MsgType]
		link := downloadURL(homeserverURL, c.URL)
		if c.File != nil {
			link = "(encrypted, cannot be bridged)"
		}
		out := "sent " + what
		if name != "" {
			out += " " + name
		}
		if link != "" {
			out += ": " + link
		}
		if caption := c.GetCaption(); caption != "" {
			out += "\n" + caption
		}
		return out, true
	case event.MsgLocation:
		return "sent a location: " + c.GeoURI + " " + c.Body, true
	default:
		return nonEmpty(contentText(c))
	}
}

func nonEmpty(t string) (string, bool) {
	if strings.TrimSpace(t) == "" {
		return "", false
	}
	return t, true
}

// MatrixToMSNText is MatrixToMSN with the styling that covers the whole
// message (bold, italic, underline, strike, colour) carried over, for an
// ordinary text message.
func MatrixToMSNText(c *event.MessageEventContent, homeserverURL string) (bridge.Text, bool) {
	if c != nil && c.MsgType == event.MsgText && c.RelatesTo == nil &&
		c.Format == event.FormatHTML && c.FormattedBody != "" {
		inner, style := uniformStyle(c.FormattedBody)
		if style != (bridge.Text{}) {
			if body, ok := nonEmpty(HTMLToMSN(inner)); ok {
				style.Body = body
				return style, true
			}
		}
	}
	text, ok := MatrixToMSN(c, homeserverURL)
	return bridge.Text{Body: text}, ok
}

// downloadURL makes an mxc:// URI fetchable over HTTP from the homeserver.
func downloadURL(homeserverURL string, uri id.ContentURIString) string {
	parsed, err := uri.Parse()
	if err != nil || parsed.IsEmpty() {
		return string(uri)
	}
	return strings.TrimRight(homeserverURL, "/") + "/_matrix/media/v3/download/" +
		parsed.Homeserver + "/" + parsed.FileID
}
