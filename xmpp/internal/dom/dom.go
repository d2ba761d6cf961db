// Package dom is the small XML tree the XMPP gateway and its test client
// both read stanzas into: an element decoded whole, so that code looks
// children up by name and namespace without a struct per stanza, and
// lookups on a nil *Node return zero values, so they chain:
// n.Child(ns, "query").Child("", "item").Attr("jid").
package dom

import (
	"encoding/xml"
	"strings"

	"mellium.im/xmpp/jid"
)

// NSStanzas is the namespace of stanza error conditions.
const NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

// Node is an element and everything in it.
type Node struct {
	Name     xml.Name
	Attrs    []xml.Attr
	Children []*Node
	CharData string
}

// Bounds of one decoded element: the server already bounds a stanza's
// size; these bound the work done on it.
const (
	MaxNodes = 4096
	MaxDepth = 64
)

// ErrTooComplex is returned for an element past MaxNodes or MaxDepth.
var ErrTooComplex error = complexityError{}

type complexityError struct{}

func (complexityError) Error() string { return "stanza too deeply nested or too large" }

// UnmarshalXML decodes an element and everything in it.
func (n *Node) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	count := 0
	return n.decode(d, start, &count, 0)
}

func (n *Node) decode(d *xml.Decoder, start xml.StartElement, count *int, depth int) error {
	n.Name, n.Attrs = start.Name, start.Attr
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			*count++
			if *count > MaxNodes || depth > MaxDepth {
				return ErrTooComplex
			}
			child := &Node{}
			if err := child.decode(d, t, count, depth+1); err != nil {
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
// space "" matches any namespace (a stanza's own children, like <body/>,
// take the stream's).
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

// First returns the first child element: the payload of an IQ.
func (n *Node) First() *Node {
	if n == nil || len(n.Children) == 0 {
		return nil
	}
	return n.Children[0]
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
