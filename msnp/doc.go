// Package msnp is an MSN Messenger Protocol (MSNP) client library.
//
// It owns everything about talking to an MSN notification server and its
// switchboards as a client: the wire codec (Reader, Writer, Command), error
// codes, login (Tweener, SSO), challenges, the contact list, presence,
// switchboard connections (Switchboard), the conversations built on them
// (Conversation: one live switchboard each, ordered sends that survive the
// switchboard dying, invitations answered and attached), the payload formats
// carried in MSG, and MSNP2P v1 over switchboards (display pictures and
// file transfers: p2p.go, slp.go, p2psession.go). It knows nothing of bridges and imports nothing else of this module, so it can be
// used alone.
//
// The dialects it speaks are those recorded in the revival servers'
// transcripts: MSNP8 to MSNP14 over Tweener (13 and 14 already keep the
// list in the address book) and MSNP15 to MSNP18 over SSO; MSNP18 first.
package msnp
