// Package bridge is the protocol-neutral puppeting core: it logs users'
// MSN accounts in through msnp, maps MSN contacts to ghosts and MSN
// conversations to portals, translates events in both directions and
// delivers them to the frontends (Matrix, XMPP) through a small interface
// those frontends implement. It imports msnp and store, never a frontend.
package bridge
