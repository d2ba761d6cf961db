// Package matrix is the Matrix frontend: a Matrix application service (on
// maunium.net/go/mautrix) that shows MSN contacts as ghost users and MSN
// conversations as portal rooms, with a bot for logins and commands.
package matrix
