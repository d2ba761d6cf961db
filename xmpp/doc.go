// Package xmpp is the XMPP frontend: an XEP-0114 component (on
// mellium.im/xmpp) acting as an MSN transport, with MSN contacts as JIDs at
// the gateway's domain.
package xmpp
