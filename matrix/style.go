package matrix

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/msnbridge/msnbridge/bridge"
)

// maxStyleDepth bounds how many nested wrappers uniformStyle unwraps.
const maxStyleDepth = 8

// uniformStyle finds the styling that covers a whole Matrix HTML message
// (MSN can only style a message as a whole): when the body is wrapped in
// <b>, <i>, <u>, <del>/<s>/<strike> or a coloured <font>/<span>, and in
// nothing else, it returns the HTML inside those wrappers and the style.
// Partial styling stays in the text as HTMLToMSN renders it.
func uniformStyle(formatted string) (inner string, style bridge.Text) {
	nodes, err := html.ParseFragment(strings.NewReader(formatted), &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div})
	if err != nil {
		return formatted, bridge.Text{}
	}
	for depth := 0; depth < maxStyleDepth; depth++ {
		only := onlyElement(nodes)
		if only == nil || !applyStyle(only, &style) {
			break
		}
		nodes = nil
		for c := only.FirstChild; c != nil; c = c.NextSibling {
			nodes = append(nodes, c)
		}
	}
	var sb strings.Builder
	for _, n := range nodes {
		if n.Parent != nil {
			n.Parent.RemoveChild(n)
		}
		if err := html.Render(&sb, n); err != nil {
			return formatted, bridge.Text{}
		}
	}
	return sb.String(), style
}

// onlyElement returns the single element among nodes when everything else
// is blank text, or nil.
func onlyElement(nodes []*html.Node) *html.Node {
	var only *html.Node
	for _, n := range nodes {
		switch {
		case n.Type == html.TextNode && strings.TrimSpace(n.Data) == "":
		case n.Type == html.ElementNode && only == nil:
			only = n
		default:
			return nil
		}
	}
	return only
}

func applyStyle(n *html.Node, style *bridge.Text) bool {
	switch n.DataAtom {
	case atom.B, atom.Strong:
		style.Bold = true
	case atom.I, atom.Em:
		style.Italic = true
	case atom.U:
		style.Underline = true
	case atom.Del, atom.S, atom.Strike:
		style.Strike = true
	case atom.Font, atom.Span:
		color := ""
		for _, a := range n.Attr {
			if (a.Key == "data-mx-color" || (a.Key == "color" && n.DataAtom == atom.Font)) && colorRe.MatchString(a.Val) {
				color = strings.ToLower(a.Val)
			}
		}
		if color == "" {
			return false
		}
		style.Color = color
	default:
		return false
	}
	return true
}
