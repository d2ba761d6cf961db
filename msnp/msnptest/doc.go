// Package msnptest runs an in-process MSN server for tests, in the manner of
// net/http/httptest: a notification server and the Tweener HTTP endpoints on
// 127.0.0.1, behaving as the revival server's transcripts show, with hooks
// for tests to inject faults and inspect what clients sent.
//
//	s := msnptest.NewServer()
//	defer s.Close()
//	s.AddAccount("alice@example.com", "pw", "")
//	s.AddAccount("bob@example.com", "pw", "Bob")
//	s.AddContact("alice@example.com", "bob@example.com")
//	// point the client at s.NSAddr() and s.NexusURL()
//
// The notification server speaks MSNP8 to MSNP12 with Tweener login (the
// dialects of twn_msnp8/11/12.txt, checked line by line by this package's
// conformance tests). Its HTTP side serves /rdr/pprdr.asp and /nexus-mock
// (PassportURLs: DALogin=LoginURL), /login (Passport 1.4; tokens live 30 s)
// and Escargot's /NotRST.srf shortcut. Fault hooks: Drop, Kick, SendRaw,
// RefuseLogins, SetChallenge, SetTokenLifetime. Inspection: Online, Status,
// Received, Lists, FriendlyName, PSM and the Wait* functions, which block
// on events instead of sleeping.
//
// The switchboard (SBAddr, handed out by XFR SB and RNG) opens sessions
// with USR, joins them with ANS, rings contacts with CAL and relays MSG
// verbatim, ACKing unconditionally as Escargot does. Its fault hooks:
// SetSBIdleTimeout, DropSwitchboards, DropNextMessage, NAKNext, RefuseCAL;
// inspection: Delivered, WaitDelivered, SBReceived, SBParticipants,
// WaitSBParticipants, WaitSBSessions, SwitchboardsOpened.
//
// Not modelled yet: contact groups, phone numbers, OIMs, SSO (MSNP15+)
// and MD5 (MSNP≤7) logins.
package msnptest
