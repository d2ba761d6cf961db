package xmpp

import "github.com/msnbridge/msnbridge/xmpp/internal/dom"

// node is an incoming stanza decoded whole (xmpp/internal/dom, the tree
// the test client reads too), so that handlers look children up by name
// and namespace without each defining a struct, and so that a stanza is
// read to its end before any handler runs (the session's read lock is
// released as soon as the element is consumed). Its size is bounded by
// dom.MaxNodes and dom.MaxDepth.
type node = dom.Node
