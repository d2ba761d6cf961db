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
// The notification server speaks MSNP8 to MSNP14 with Tweener login and
// MSNP15 to MSNP18 with SSO (the dialects of the twn_msnp8/11/12/13/14 and
// sso_msnp15/18 transcripts, checked line by line by this package's
// conformance tests). Its HTTP side serves /rdr/pprdr.asp and /nexus-mock
// (PassportURLs: DALogin=LoginURL), /login (Passport 1.4; tokens live 30 s),
// Escargot's /NotRST.srf shortcut, /RST.srf and /RST2.srf (SSO: a wrong
// password is a SOAP fault with HTTP 200), the address book
// (/abservice/SharingService.asmx, /abservice/abservice.asmx) backed by the
// same lists as the NS, and offline messages (/OimWS/oim.asmx Store2 with
// the lockkey challenge, /rsi/rsi.asmx). MSNP16+ endpoints of one account
// with distinct machine GUIDs stay signed in side by side (MPOP), under
// Escargot's rule for when a login boots the others. Fault hooks: Drop,
// Kick, SendRaw, RefuseLogins, SetChallenge, SetTokenLifetime,
// RevokeTokens, StoreOIM. Inspection: Online, Status, Received, Lists,
// FriendlyName, PSM, OIMCount and the Wait* functions, which block on
// events instead of sleeping.
//
// The switchboard (SBAddr, handed out by XFR SB and RNG) opens sessions
// with USR, joins them with ANS, rings contacts with CAL and relays MSG
// verbatim, ACKing unconditionally as Escargot does. On MSNP16+ it deals
// in endpoints ("email;{guid}" in USR, ANS, IRO, JOI and BYE) and rings
// every endpoint of the invitee not yet in the session, so an account can
// CAL itself to bring its other endpoints in, as WLM 2009 does; a message
// goes to every connection but the sender's, naming the bare account.
// Its fault hooks:
// SetSBIdleTimeout, DropSwitchboards, DropNextMessage, NAKNext, RefuseCAL;
// inspection: Delivered, WaitDelivered, SBReceived, SBParticipants,
// WaitSBParticipants, WaitSBSessions, SwitchboardsOpened.
//
// Peer (NewPeer) is a scripted MSN user of the server for P2P tests: it
// signs in over TCP with its own raw-line MSNP12 client and speaks its own
// MSNP2P v1, independent of package msnp's, serving its display picture
// (SetDisplayPicture), fetching others' (FetchDisplayPicture), sending files
// (SendFile) and receiving them (WaitFile, DeclineFiles). It is strict:
// Violations lists what the other side got wrong (acks, headers, chunk
// sizes, SHA1D, file contexts…), and WaitIdle waits for its sessions to end
// first. A CHG with a new msnobj alone reaches the contacts in NLN.
//
// Not modelled yet: contact groups, phone numbers, address-book
// notifications, UUM delivery to an online recipient (UBM), circles, and
// MD5 (MSNP≤7) logins. Presence notifications go out at once, where
// Escargot batches them every 0.2 s.
package msnptest
