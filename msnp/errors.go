package msnp

import (
	"errors"
	"fmt"
)

// ErrorCode is a three-digit MSNP error code (FACTS.md §1.6).
type ErrorCode int

// Error codes a client acts on. The full table of names is errorNames.
const (
	ErrSyntax              ErrorCode = 200
	ErrInvalidParameter    ErrorCode = 201
	ErrInvalidUser         ErrorCode = 205
	ErrDomainMissing       ErrorCode = 206
	ErrAlreadyLoggedIn     ErrorCode = 207
	ErrInvalidPrincipal    ErrorCode = 208
	ErrNicknameIllegal     ErrorCode = 209
	ErrListFull            ErrorCode = 210
	ErrAlreadyOnList       ErrorCode = 215
	ErrNotOnList           ErrorCode = 216
	ErrUserNotOnline       ErrorCode = 217
	ErrAlreadyInMode       ErrorCode = 218
	ErrOnOppositeList      ErrorCode = 219
	ErrSwitchboardFailed   ErrorCode = 280
	ErrTransferFailed      ErrorCode = 281
	ErrBadP2PMessage       ErrorCode = 282
	ErrNotLoggedIn         ErrorCode = 302
	ErrContactListError    ErrorCode = 403
	ErrInternal            ErrorCode = 500
	ErrCommandDisabled     ErrorCode = 502
	ErrChallengeFailed     ErrorCode = 540
	ErrServerBusy          ErrorCode = 600
	ErrServerUnavailable   ErrorCode = 601
	ErrGoingDown           ErrorCode = 604
	ErrBadCVR              ErrorCode = 710
	ErrTooActive           ErrorCode = 713
	ErrTooManySessions     ErrorCode = 714
	ErrUnexpected          ErrorCode = 715
	ErrChangingTooFast     ErrorCode = 800
	ErrAuthFailed          ErrorCode = 911
	ErrNotAllowedOffline   ErrorCode = 913
	ErrAuthFailed2         ErrorCode = 917
	ErrNotAcceptingUsers   ErrorCode = 920
	ErrKidsPassport        ErrorCode = 923
	ErrPassportNotVerified ErrorCode = 924
	ErrBadTicket           ErrorCode = 928
)

var errorNames = map[ErrorCode]string{
	200: "syntax error",
	201: "invalid parameter",
	205: "invalid user (principal does not exist)",
	206: "domain name missing",
	207: "already logged in",
	208: "invalid principal",
	209: "nickname change illegal",
	210: "list full",
	215: "already on list",
	216: "not on list",
	217: "user not online",
	218: "already in that mode",
	219: "user is on the opposite list",
	223: "too many groups",
	224: "invalid group",
	225: "user not in group",
	228: "group already exists",
	229: "group name too long",
	230: "cannot remove group 0",
	231: "invalid group",
	240: "empty domain in contact list XML",
	241: "invalid contact list XML",
	280: "switchboard failed",
	281: "transfer to switchboard failed",
	282: "bad P2P message",
	300: "required field missing",
	302: "not logged in",
	403: "contact list error",
	500: "internal server error",
	502: "command disabled",
	540: "challenge response failed",
	600: "server busy",
	601: "server unavailable",
	604: "server going down",
	710: "bad CVR parameters",
	711: "write is blocking",
	712: "session overload",
	713: "too active (calling too rapidly)",
	714: "too many sessions",
	715: "command not expected in this state",
	800: "changing too fast",
	911: "authentication failed",
	913: "not allowed while offline or invisible",
	917: "authentication failed",
	920: "not accepting new users",
	923: "Kids Passport without parental consent",
	924: "Passport account not verified",
	928: "bad ticket",
	933: "invalid circle membership",
}

// String names the code, e.g. "911 authentication failed".
func (c ErrorCode) String() string {
	if n, ok := errorNames[c]; ok {
		return fmt.Sprintf("%d %s", int(c), n)
	}
	if c >= 910 && c <= 922 {
		return fmt.Sprintf("%d server too busy or unavailable", int(c))
	}
	return fmt.Sprintf("%d unknown error", int(c))
}

// Temporary reports whether retrying later may succeed (the server is busy,
// unavailable or going down), as opposed to a refusal that will repeat.
func (c ErrorCode) Temporary() bool {
	switch {
	case c == 500 || c == 600 || c == 601 || c == 604 || c == 712 || c == 713 || c == 714:
		return true
	case c >= 910 && c <= 922 && c != 911 && c != 913 && c != 917 && c != 920:
		return true
	}
	return false
}

// ServerError is an error reply from the server to the command with TrID.
type ServerError struct {
	Code ErrorCode
	TrID uint32
}

func (e *ServerError) Error() string { return "msnp: server error " + e.Code.String() }

// Is lets errors.Is match a ServerError against ErrAuthentication.
func (e *ServerError) Is(target error) bool {
	return target == ErrAuthentication && (e.Code == ErrAuthFailed || e.Code == ErrAuthFailed2)
}

// ErrAuthentication is matched (errors.Is) by every failure that means the
// passport or password is wrong: a 911/917 reply, a 401 from the Passport
// login server, a SOAP fault from the token service. Retrying will not help.
var ErrAuthentication = errors.New("msnp: authentication failed")

// CodeOf returns the MSNP error code inside err, or 0.
func CodeOf(err error) ErrorCode {
	var se *ServerError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}
