package xmpptest

import (
	"encoding/xml"
	"errors"
	"strings"

	"mellium.im/xmpp/jid"
)

// Node is a received stanza (or one of its elements), decoded whole.
// Lookups on a nil Node return zero values, so tests can chain them:
// n.Child(ns, "query").Child("", "item").Attr("jid").
type Node struct {
	Name     xml.Name
	Attrs    []xml.Attr
	Children []*Node
	CharData string
}

// UnmarshalXML decodes an element and everything in it.
func (n *Node) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return n.decode(d, start, 0)
}

func (n *Node) decode(d *xml.Decoder, start xml.StartElement, depth int) error {
	if depth > 100 {
		return errors.New("xmpptest: stanza nested too deeply")
	}
	n.Name, n.Attrs = start.Name, start.Attr
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			child := &Node{}
			if err := child.decode(d, t, depth+1); err != nil {
				return err
			}
			n.Children = append(n.Children, child)
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			n.CharData = text.String()
			return nil
		}
	}
}

// Attr returns the attribute named local (in no namespace), or "".
func (n *Node) Attr(local string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attrs {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// Child returns the first child element named local in namespace space;
// space "" matches any namespace.
func (n *Node) Child(space, local string) *Node {
	if n == nil {
		return nil
	}
	for _, c := range n.Children {
		if c.Name.Local == local && (space == "" || c.Name.Space == space) {
			return c
		}
	}
	return nil
}

// All returns every child element named local in namespace space.
func (n *Node) All(space, local string) []*Node {
	if n == nil {
		return nil
	}
	var out []*Node
	for _, c := range n.Children {
		if c.Name.Local == local && (space == "" || c.Name.Space == space) {
			out = append(out, c)
		}
	}
	return out
}

// Text is the element's character data.
func (n *Node) Text() string {
	if n == nil {
		return ""
	}
	return n.CharData
}

// Is says the element is a stanza of kind ("message", "presence", "iq")
// and type typ ("" for none, as in available presence).
func (n *Node) Is(kind, typ string) bool {
	return n != nil && n.Name.Local == kind && n.Attr("type") == typ
}

// From says the stanza came from bare (any resource of it).
func (n *Node) From(bare string) bool {
	if n == nil {
		return false
	}
	j, err := jid.Parse(n.Attr("from"))
	return err == nil && j.Bare().String() == bare
}

// Body is a message's body text.
func (n *Node) Body() string { return n.Child("", "body").Text() }

// Condition is the defined condition of an error stanza, "" when none.
func (n *Node) Condition() string {
	e := n.Child("", "error")
	if e == nil {
		return ""
	}
	for _, c := range e.Children {
		if c.Name.Space == NSStanzas && c.Name.Local != "text" {
			return c.Name.Local
		}
	}
	return ""
}
