package msnp

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Response samples are modelled on Escargot's templates
// front/msn/tmpl/sharing/FindMembershipResponse.xml and
// tmpl/abservice/ABFindAllResponse.xml / ABFindContactsPagedResponse.xml
// (element names and nesting; values shortened), as rendered for the
// sso_msnp15/18 transcripts' alice and bob.

const sampleFindMembership = `<FindMembershipResponse xmlns="http://www.msn.com/webservices/AddressBook"><FindMembershipResult><Services><Service><Memberships>
<Membership><MemberRole>Allow</MemberRole><Members>
 <Member xsi:type="PassportMember"><MembershipId>Allow/6c2b8a1e-0000-4000-8000-000000000001</MembershipId><Type>Passport</Type><DisplayName>Bob &#x26; Co</DisplayName><State>Accepted</State><Deleted>false</Deleted><LastChanged>2026-11-24T18:45:25Z</LastChanged><JoinedDate>2026-11-24T18:45:25Z</JoinedDate><ExpirationDate>0001-01-01T00:00:00</ExpirationDate><Changes /><PassportName>bob@example.com</PassportName><IsPassportNameHidden>false</IsPassportNameHidden><PassportId>0</PassportId><CID>1234567890</CID><PassportChanges /></Member>
 <Member xsi:type="PassportMember"><MembershipId>Allow/x</MembershipId><Type>Passport</Type><State>Accepted</State><Deleted>true</Deleted><PassportName>gone@example.com</PassportName></Member>
</Members><MembershipIsComplete>true</MembershipIsComplete></Membership>
<Membership><MemberRole>Block</MemberRole><Members><Member xsi:type="PassportMember"><Type>Passport</Type><State>Accepted</State><Deleted>false</Deleted><PassportName>eve@example.com</PassportName></Member></Members></Membership>
<Membership><MemberRole>Reverse</MemberRole><Members><Member xsi:type="PassportMember"><Type>Passport</Type><State>Accepted</State><Deleted>false</Deleted><PassportName>bob@example.com</PassportName></Member></Members></Membership>
<Membership><MemberRole>Pending</MemberRole><Members><Member xsi:type="PassportMember"><Type>Passport</Type><DisplayName>Carol</DisplayName><State>Accepted</State><Deleted>false</Deleted><PassportName>carol@example.org</PassportName></Member></Members></Membership>
</Memberships><Info><Handle><Id>1</Id><Type>Messenger</Type><ForeignId /></Handle><InverseRequired>false</InverseRequired><AuthorizationCriteria>Everyone</AuthorizationCriteria><IsBot>false</IsBot></Info><Changes /><LastChange>2026-11-24T18:45:25Z</LastChange><Deleted>false</Deleted></Service></Services><OwnerNamespace><Info><Handle><Id>00000000-0000-0000-0000-000000000000</Id><IsPassportNameHidden>false</IsPassportNameHidden><CID>0</CID></Handle></Info></OwnerNamespace></FindMembershipResult></FindMembershipResponse>`

const sampleABContacts = `<contactId>11111111-2222-4333-8444-555555555555</contactId><contactInfo><contactType>Me</contactType><quickName>Alice</quickName><passportName>alice@example.com</passportName><IsPassportNameHidden>false</IsPassportNameHidden><displayName>Alice</displayName><puid>0</puid><CID>42</CID><IsNotMobileVisible>false</IsNotMobileVisible><isMobileIMEnabled>false</isMobileIMEnabled><isMessengerUser>false</isMessengerUser><isFavorite>false</isFavorite><isSmtp>false</isSmtp><hasSpace>false</hasSpace><spotWatchState>NoDevice</spotWatchState><birthdate>0001-01-01T00:00:00</birthdate><primaryEmailType>ContactEmailPersonal</primaryEmailType><PrimaryLocation>ContactLocationPersonal</PrimaryLocation><PrimaryPhone>ContactPhonePersonal</PrimaryPhone><IsPrivate>false</IsPrivate><Gender>Unspecified</Gender><TimeZone>None</TimeZone><annotations><Annotation><Name>MSN.IM.BLP</Name><Value>1</Value></Annotation><Annotation><Name>MSN.IM.MPOP</Name><Value>1</Value></Annotation></annotations></contactInfo><propertiesChanged /><fDeleted>false</fDeleted><lastChange>2026-11-24T18:45:25Z</lastChange></Contact>
<Contact><contactId>aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee</contactId><contactInfo><contactType>Regular</contactType><quickName>Bob</quickName><passportName>bob@example.com</passportName><displayName>Bob &#x26; Co</displayName><groupIds><guid>f00df00d-0000-4000-8000-000000000001</guid></groupIds><CID>1234567890</CID><isMessengerUser>true</isMessengerUser></contactInfo><fDeleted>false</fDeleted></Contact>
<Contact><contactId>dddddddd-bbbb-4ccc-8ddd-eeeeeeeeeeee</contactId><contactInfo><contactType>Regular</contactType><passportName>old@example.com</passportName><isMessengerUser>true</isMessengerUser></contactInfo><fDeleted>true</fDeleted>`

const sampleABGroup = `<Group><groupId>f00df00d-0000-4000-8000-000000000001</groupId><groupInfo><annotations><Annotation><Name>MSN.IM.Display</Name><Value>1</Value></Annotation></annotations><groupType>c8529ce2-6ead-434d-881f-341e17db3ff8</groupType><name>Friends</name><IsNotMobileVisible>false</IsNotMobileVisible><IsPrivate>false</IsPrivate><IsFavorite>false</IsFavorite></groupInfo><propertiesChanged /><fDeleted>false</fDeleted><lastChange>2026-11-24T18:45:25Z</lastChange></Group>`

const sampleABFindAll = `<ABFindAllResponse xmlns="http://www.msn.com/webservices/AddressBook"><ABFindAllResult><groups>` + sampleABGroup + `</groups><contacts><Contact>` + sampleABContacts + `</Contact></contacts><ab><abId>00000000-0000-0000-0000-000000000000</abId><abInfo><ownerPuid>0</ownerPuid><OwnerCID>42</OwnerCID><ownerEmail>alice@example.com</ownerEmail><fDefault>true</fDefault><joinedNamespace>false</joinedNamespace><IsBot>false</IsBot><IsParentManaged>false</IsParentManaged><SubscribeExternalPartner>false</SubscribeExternalPartner><NotifyExternalPartner>false</NotifyExternalPartner><AddressBookType>Individual</AddressBookType></abInfo><lastChange>2026-11-24T18:45:25Z</lastChange><DynamicItemLastChanged>0001-01-01T00:00:00</DynamicItemLastChanged><createDate>2026-11-24T18:45:25Z</createDate><propertiesChanged /></ab></ABFindAllResult></ABFindAllResponse>`

const sampleABFindContactsPaged = `<ABFindContactsPagedResponse xmlns="http://www.msn.com/webservices/AddressBook"><ABFindContactsPagedResult><Groups>` + sampleABGroup + `</Groups><Contacts><Contact>` + sampleABContacts + `</Contact></Contacts><CircleResult><CircleTicket>&lt;?xml version="1.0" encoding="utf-16"?&gt;&lt;SignedTicket/&gt;</CircleTicket></CircleResult><Ab><abId>00000000-0000-0000-0000-000000000000</abId></Ab></ABFindContactsPagedResult></ABFindContactsPagedResponse>`

const testContactsTicket = "t=54488f5ab27c6513a778Y6+H31sT&p="

type abTestHeaders struct {
	App  abApplicationHeader `xml:"http://www.msn.com/webservices/AddressBook ABApplicationHeader"`
	Auth abAuthHeader        `xml:"http://www.msn.com/webservices/AddressBook ABAuthHeader"`
}

// abTestServer routes by SOAPAction, checks the ABCH headers and lets
// each case decode the request body itself.
func abTestServer(t *testing.T, handle func(action string, w http.ResponseWriter, raw string)) (*httptest.Server, *ABService) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := readAll(t, r)
		var h abTestHeaders
		decodeTestRequestBytes(t, raw, &h, nil)
		if h.Auth.TicketToken != testContactsTicket {
			t.Errorf("TicketToken = %q", h.Auth.TicketToken)
		}
		if !strings.Contains(raw, "t=54488f5ab27c6513a778Y6+H31sT&amp;p=") {
			t.Error("ticket not XML-escaped on the wire")
		}
		if h.App.ApplicationID != ABDefaultApplicationID || h.App.PartnerScenario == "" {
			t.Errorf("ABApplicationHeader %+v", h.App)
		}
		action := strings.TrimPrefix(r.Header.Get("SOAPAction"), "http://www.msn.com/webservices/AddressBook/")
		wantPath := "/abservice/abservice.asmx"
		if action == "FindMembership" || action == "AddMember" || action == "DeleteMember" {
			wantPath = "/abservice/SharingService.asmx"
		}
		if r.URL.Path != wantPath {
			t.Errorf("%s posted to %s", action, r.URL.Path)
		}
		handle(action, w, raw)
	}))
	t.Cleanup(srv.Close)
	return srv, NewABService(srv.URL, testContactsTicket, srv.Client())
}

func TestABFindMembership(t *testing.T) {
	_, ab := abTestServer(t, func(action string, w http.ResponseWriter, raw string) {
		if action != "FindMembership" {
			t.Errorf("action %q", action)
		}
		var req abFindMembershipRequest
		decodeTestRequestBytes(t, raw, nil, &req)
		if len(req.ServiceTypes) == 0 || req.ServiceTypes[0] != "Messenger" {
			t.Errorf("service filter %v", req.ServiceTypes)
		}
		soapReply(w, 200, sampleFindMembership)
	})
	m, err := ab.FindMembership(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Allow) != 1 || m.Allow[0].PassportName != "bob@example.com" || m.Allow[0].DisplayName != "Bob & Co" || m.Allow[0].CID != "1234567890" {
		t.Errorf("Allow = %+v", m.Allow)
	}
	if len(m.Block) != 1 || m.Block[0].PassportName != "eve@example.com" {
		t.Errorf("Block = %+v", m.Block)
	}
	if len(m.Role(ABRoleReverse)) != 1 || len(m.Role(ABRolePending)) != 1 || m.Pending[0].DisplayName != "Carol" {
		t.Errorf("Reverse %+v Pending %+v", m.Reverse, m.Pending)
	}
}

func checkSampleAB(t *testing.T, book *ABAddressBook) {
	t.Helper()
	if len(book.Contacts) != 2 {
		t.Fatalf("contacts %+v", book.Contacts)
	}
	me, ok := book.Me()
	if !ok || me.PassportName != "alice@example.com" || me.Annotations["MSN.IM.BLP"] != "1" {
		t.Errorf("me %+v", me)
	}
	bob := book.Contacts[1]
	if bob.PassportName != "bob@example.com" || bob.DisplayName != "Bob & Co" || !bob.IsMessengerUser ||
		bob.ContactID != "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee" || len(bob.GroupIDs) != 1 || bob.GroupIDs[0] != book.Groups[0].ID {
		t.Errorf("bob %+v", bob)
	}
	if len(book.Groups) != 1 || book.Groups[0].Name != "Friends" {
		t.Errorf("groups %+v", book.Groups)
	}
}

func TestABFindAll(t *testing.T) {
	_, ab := abTestServer(t, func(action string, w http.ResponseWriter, raw string) {
		var req abFindAllRequest
		decodeTestRequestBytes(t, raw, nil, &req)
		if action != "ABFindAll" || req.ABID != abZeroID || req.ABView != "Full" || req.DeltasOnly {
			t.Errorf("%s %+v", action, req)
		}
		soapReply(w, 200, sampleABFindAll)
	})
	book, err := ab.FindAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkSampleAB(t, book)
}

func TestABFindContactsPaged(t *testing.T) {
	_, ab := abTestServer(t, func(action string, w http.ResponseWriter, raw string) {
		var req abFindContactsPagedRequest
		decodeTestRequestBytes(t, raw, nil, &req)
		if action != "ABFindContactsPaged" || req.ExtendedContent != "AB AllGroups CircleResult" || req.DeltasOnly {
			t.Errorf("%s %+v", action, req)
		}
		soapReply(w, 200, sampleABFindContactsPaged)
	})
	book, err := ab.FindContactsPaged(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkSampleAB(t, book)
	// The same result with lower-case groups/contacts (as some servers send).
	lower := strings.NewReplacer("<Groups>", "<groups>", "</Groups>", "</groups>", "<Contacts>", "<contacts>", "</Contacts>", "</contacts>").Replace(sampleABFindContactsPaged)
	var resp abFindContactsPagedResponse
	if err := decodeSOAPResponse([]byte(`<Envelope><Body>`+lower+`</Body></Envelope>`), 200, "200 OK", &resp); err != nil {
		t.Fatal(err)
	}
	checkSampleAB(t, convertAB(&resp.Result))
	if !strings.Contains(book.CircleTicket, "<SignedTicket/>") {
		t.Errorf("circle ticket %q", book.CircleTicket)
	}
}

func TestABFullSyncFault(t *testing.T) {
	// Escargot's tmpl/abservice/Fault.fullsync.xml, shortened.
	_, ab := abTestServer(t, func(action string, w http.ResponseWriter, raw string) {
		soapReply(w, 500, `<soap:Fault><faultcode>soap:Client</faultcode><faultstring>Full sync required.  Details: Delta syncs disabled.</faultstring><faultactor>http://www.msn.com/webservices/AddressBook/ABFindAll</faultactor><detail><errorcode xmlns="http://www.msn.com/webservices/AddressBook">FullSyncRequired</errorcode></detail></soap:Fault>`)
	})
	_, err := ab.FindAll(context.Background())
	var f *SOAPFault
	if !errors.As(err, &f) || f.DetailValue("errorcode") != "FullSyncRequired" {
		t.Fatalf("err = %v", err)
	}
}

func TestABContactAddDelete(t *testing.T) {
	_, ab := abTestServer(t, func(action string, w http.ResponseWriter, raw string) {
		switch action {
		case "ABContactAdd":
			var req abContactAddRequest
			decodeTestRequestBytes(t, raw, nil, &req)
			if len(req.Contacts) != 1 || req.Contacts[0].Info.PassportName != "bob@example.com" ||
				req.Contacts[0].Info.ContactType != "LivePending" || !req.Contacts[0].Info.IsMessengerUser ||
				req.Contacts[0].Info.DisplayName != "Bob <3" || !req.Options.EnableAllowListManagement {
				t.Errorf("ABContactAdd %+v", req)
			}
			soapReply(w, 200, `<ABContactAddResponse xmlns="http://www.msn.com/webservices/AddressBook"><ABContactAddResult><guid>aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee</guid></ABContactAddResult></ABContactAddResponse>`)
		case "ABContactDelete":
			var req abContactDeleteRequest
			decodeTestRequestBytes(t, raw, nil, &req)
			if len(req.ContactIDs) != 1 || req.ContactIDs[0] != "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee" {
				t.Errorf("ABContactDelete %+v", req)
			}
			soapReply(w, 200, `<ABContactDeleteResponse xmlns="http://www.msn.com/webservices/AddressBook"/>`)
		default:
			t.Errorf("action %q", action)
		}
	})
	id, err := ab.ContactAdd(context.Background(), "bob@example.com", "Bob <3")
	if err != nil || id != "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee" {
		t.Fatalf("ContactAdd = %q, %v", id, err)
	}
	if err := ab.ContactDelete(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := ab.ContactAdd(context.Background(), "", ""); err == nil {
		t.Error("empty passport accepted")
	}
	if err := ab.ContactDelete(context.Background()); err == nil {
		t.Error("no ids accepted")
	}
}

func TestABUpdateMyDisplayName(t *testing.T) {
	called := false
	_, ab := abTestServer(t, func(action string, w http.ResponseWriter, raw string) {
		var req abContactUpdateRequest
		decodeTestRequestBytes(t, raw, nil, &req)
		if action != "ABContactUpdate" || len(req.Contacts) != 1 || req.Contacts[0].Info.ContactType != "Me" ||
			req.Contacts[0].Info.DisplayName != "Alice & <friends>" || req.Contacts[0].PropertiesChanged != "DisplayName" {
			t.Errorf("%s %+v", action, req)
		}
		called = true
		soapReply(w, 200, `<ABContactUpdateResponse xmlns="http://www.msn.com/webservices/AddressBook"/>`)
	})
	if err := ab.UpdateMyDisplayName(context.Background(), "Alice & <friends>"); err != nil || !called {
		t.Fatalf("err %v called %v", err, called)
	}
}

func TestABAddDeleteMember(t *testing.T) {
	var seen []string
	_, ab := abTestServer(t, func(action string, w http.ResponseWriter, raw string) {
		var ms []abMembershipChange
		var h abServiceHandle
		switch action {
		case "AddMember":
			var req abAddMemberRequest
			decodeTestRequestBytes(t, raw, nil, &req)
			ms, h = req.Memberships, req.Handle
		case "DeleteMember":
			var req abDeleteMemberRequest
			decodeTestRequestBytes(t, raw, nil, &req)
			ms, h = req.Memberships, req.Handle
		}
		if h.Type != "Messenger" || h.ID != "0" || len(ms) != 1 || len(ms[0].Members) != 1 {
			t.Fatalf("%s handle %+v memberships %+v", action, h, ms)
		}
		m := ms[0].Members[0]
		if m.XSIType != "PassportMember" || m.Type != "Passport" || m.State != "Accepted" {
			t.Errorf("member %+v", m)
		}
		if !strings.Contains(raw, `xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="PassportMember"`) {
			t.Errorf("xsi:type not written conventionally: %s", raw)
		}
		seen = append(seen, action+" "+ms[0].Role+" "+m.PassportName+" "+m.MembershipID)
		soapReply(w, 200, `<`+action+`Response xmlns="http://www.msn.com/webservices/AddressBook"/>`)
	})
	ctx := context.Background()
	for _, step := range []func() error{
		func() error { return ab.AddMember(ctx, ABRoleBlock, "eve@example.com") },
		func() error {
			return ab.DeleteMember(ctx, ABRoleAllow, "eve@example.com", "Allow/6c2b8a1e-0000-4000-8000-000000000001")
		},
		func() error { return ab.DeleteMember(ctx, ABRolePending, "carol@example.org", "") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	want := "AddMember Block eve@example.com |DeleteMember Allow eve@example.com Allow/6c2b8a1e-0000-4000-8000-000000000001|DeleteMember Pending carol@example.org "
	if got := strings.Join(seen, "|"); got != want {
		t.Errorf("got %s", got)
	}
	if err := ab.AddMember(ctx, ABRole("Friends"), "x@y"); err == nil {
		t.Error("unknown role accepted")
	}
}

func TestABForbidden(t *testing.T) {
	// Escargot answers 403 when the ticket has no live NS session.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) }))
	defer srv.Close()
	_, err := NewABService(srv.URL, "t=x&p=", srv.Client()).FindMembership(context.Background())
	var he *SOAPHTTPError
	if !errors.As(err, &he) || he.StatusCode != 403 {
		t.Fatalf("err = %v", err)
	}
}

func TestBuildADL(t *testing.T) {
	got, err := BuildADL([]MLEntry{{Email: "bob@example.com", Lists: MLForward | MLAllow}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `<ml l="1"><d n="example.com"><c n="bob" l="3" t="1"></c></d></ml>` {
		t.Errorf("got %s", got)
	}
	got, err = BuildADL([]MLEntry{
		{Email: "bob@example.com", Lists: MLForward},
		{Email: "x&y@example.org", Lists: MLBlock, Network: MLNetworkYahoo},
		{Email: "carol@example.com", Lists: MLAllow},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `<ml><d n="example.com"><c n="bob" l="1" t="1"></c><c n="carol" l="2" t="1"></c></d><d n="example.org"><c n="x&amp;y" l="4" t="32"></c></d></ml>`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []MLEntry{
		{Email: "bob@example.com", Lists: MLForward | MLReverse},
		{Email: "bob@example.com", Lists: MLPending},
		{Email: "bob@example.com", Lists: 0},
		{Email: "bob@example.com", Lists: 64},
		{Email: "bob", Lists: MLForward},
		{Email: "@example.com", Lists: MLForward},
		{Email: "a@b@c", Lists: MLForward},
	} {
		if _, err := BuildADL([]MLEntry{bad}, false); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	if _, err := BuildADL(nil, true); err == nil {
		t.Error("empty list accepted")
	}
	rml, err := BuildRML([]MLEntry{{Email: "bob@example.com", Lists: MLForward}})
	if err != nil || string(rml) != `<ml><d n="example.com"><c n="bob" l="1" t="1"></c></d></ml>` {
		t.Errorf("RML %s %v", rml, err)
	}
	fqy, err := BuildFQY([]string{"bob@yahoo.com"})
	if err != nil || string(fqy) != `<ml l="2"><d n="yahoo.com"><c n="bob"></c></d></ml>` {
		t.Errorf("FQY %s %v", fqy, err)
	}
}

func TestBuildADLChunks(t *testing.T) {
	var entries []MLEntry
	for i := 0; i < 300; i++ {
		entries = append(entries, MLEntry{Email: "contact" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "@example" + string(rune('a'+i%3)) + ".com", Lists: MLForward | MLAllow})
	}
	chunks, err := BuildADLChunks(entries, true, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) < 2 {
		t.Fatalf("%d chunks", len(chunks))
	}
	var back []MLEntry
	for _, c := range chunks {
		if len(c) > 1000 || !bytes.HasPrefix(c, []byte(`<ml l="1">`)) {
			t.Fatalf("chunk %d bytes: %.30s", len(c), c)
		}
		e, err := ParseML(c)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, e...)
	}
	if len(back) != len(entries) {
		t.Fatalf("%d entries back, want %d", len(back), len(entries))
	}
	if _, err := BuildADLChunks(entries[:1], false, 20); err == nil {
		t.Error("oversized single entry accepted")
	}
}

func TestParseMLNotification(t *testing.T) {
	// The server's `ADL 0` when bob adds you (FACTS.md §4.2), and an FQY reply.
	e, err := ParseML([]byte(`<ml><d n="example.com"><c n="bob" t="1" l="8" f="Bob%20Name%20%E2%9C%93"/></d></ml>`))
	if err != nil {
		t.Fatal(err)
	}
	if len(e) != 1 || e[0].Email != "bob@example.com" || e[0].Lists != MLReverse || e[0].Network != 1 || e[0].FriendlyName != "Bob Name ✓" {
		t.Errorf("got %+v", e)
	}
	e, err = ParseML([]byte(`<ml><d n="yahoo.com"><c n="bob" t="1" /></d></ml>`))
	if err != nil || len(e) != 1 || e[0].Lists != 0 || e[0].Network != 1 {
		t.Errorf("FQY reply %+v %v", e, err)
	}
	for _, bad := range []string{``, `<ml`, `<ml><d><c n="x"/></d></ml>`, `<ml><d n="x"><c/></d></ml>`, `<ml><d n="x"><c n="y" l="q"/></d></ml>`, `<ml><d n="x"><c n="y" l="3abc"/></d></ml>`, `<ml><d n="x"><c n="y" t="-1"/></d></ml>`, `<notml/>`} {
		if _, err := ParseML([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseML(f *testing.F) {
	f.Add([]byte(`<ml l="1"><d n="example.com"><c n="bob" l="3" t="1" /></d></ml>`))
	f.Add([]byte(`<ml><d n="example.com"><c n="bob" t="1" l="8" f="Bob%20Name"/></d></ml>`))
	f.Add([]byte(`<ml><d n="a"><c n="b" l="99999999999999999999"/></d></ml>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseML(data)
		if err != nil {
			return
		}
		// Whatever parses must rebuild (as an RML of the client-side bits)
		// and parse back to the same addresses.
		var keep []MLEntry
		for _, e := range entries {
			if !strings.Contains(e.Email, "@") {
				t.Fatalf("bad entry %+v", e)
			}
			if l := e.Lists & (MLForward | MLAllow | MLBlock); l != 0 && strings.Count(e.Email, "@") == 1 {
				keep = append(keep, MLEntry{Email: e.Email, Lists: l, Network: e.Network})
			}
		}
		if len(keep) == 0 {
			return
		}
		payload, err := BuildRML(keep)
		if err != nil {
			return // e.g. names that are not valid XML text
		}
		back, err := ParseML(payload)
		if err != nil {
			t.Fatalf("rebuilt payload does not parse: %v\n%s", err, payload)
		}
		if len(back) != len(keep) {
			t.Fatalf("%d entries back, want %d", len(back), len(keep))
		}
	})
}
