package xmpptest

import "github.com/msnbridge/msnbridge/xmpp/internal/dom"

// Node is a received stanza (or one of its elements), decoded whole: the
// same tree the gateway reads stanzas into. Lookups on a nil Node return
// zero values, so tests can chain them:
// n.Child(ns, "query").Child("", "item").Attr("jid").
type Node = dom.Node
