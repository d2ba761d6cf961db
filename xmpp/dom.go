package xmpp

import (
	"encoding/xml"
	"strings"
)

// node is an incoming stanza decoded whole, so that handlers look children
// up by name and namespace without each defining a struct, and so that a
// stanza is read to its end before any handler runs (the session's read
// lock is released as soon as the element is consumed).
type node struct {
	Name  xml.Name
	Attr  []xml.Attr
	Nodes []*node
	Text  string
}

// maxNodes bounds how many elements one stanza may carry; the server
// already bounds the stanza's size, this bounds the work done on it.
const maxNodes = 4096

func (n *node) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	count := 0
	return n.decode(d, start, &count, 0)
}

func (n *node) decode(d *xml.Decoder, start xml.StartElement, count *int, depth int) error {
	n.Name = start.Name
	n.Attr = start.Attr
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			*count++
			if *count > maxNodes || depth > 64 {
				return errTooComplex
			}
			child := &node{}
			if err := child.decode(d, t, count, depth+1); err != nil {
				return err
			}
			n.Nodes = append(n.Nodes, child)
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			n.Text = text.String()
			return nil
		}
	}
}

type complexityError struct{}

func (complexityError) Error() string { return "stanza too deeply nested or too large" }

var errTooComplex error = complexityError{}

// attr returns the value of the attribute named local (any namespace but xml:).
func (n *node) attr(local string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// child returns the first child with this name; an empty space matches any
// namespace (the stanza's own children, like <body/>, take the stream's).
func (n *node) child(space, local string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.Nodes {
		if c.Name.Local == local && (space == "" || c.Name.Space == space) {
			return c
		}
	}
	return nil
}

func (n *node) children(space, local string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, c := range n.Nodes {
		if c.Name.Local == local && (space == "" || c.Name.Space == space) {
			out = append(out, c)
		}
	}
	return out
}

// first returns the first child element, the payload of an IQ.
func (n *node) first() *node {
	if n == nil || len(n.Nodes) == 0 {
		return nil
	}
	return n.Nodes[0]
}

func (n *node) text() string {
	if n == nil {
		return ""
	}
	return n.Text
}
