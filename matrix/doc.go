// Package matrix is the Matrix frontend: a Matrix application service (on
// maunium.net/go/mautrix) that shows MSN contacts as ghost users and MSN
// conversations as portal rooms, with a bot for logins and commands.
//
// It owns everything Matrix-specific: the registration (NewRegistration),
// the reversible passport ↔ ghost ID mapping (GhostID, PassportFromGhost),
// MSN text ↔ Matrix HTML (RenderHTML, MatrixToMSN), the bot's command
// language (ParseCommand), portal room creation and the typing /sync
// fallback for homeservers that do not push ephemeral events, and moving
// pictures and files between the core and the homeserver's media
// repository (ghost avatars, the user's avatar as their display picture,
// m.image/m.file both ways). Everything about MSN accounts, contacts and
// portals is asked of bridge.Core.
package matrix
