package msnp

import (
	"regexp"
	"strings"
	"testing"
)

func TestMachineGUID(t *testing.T) {
	// Escargot's MSNP16+ check (FACTS.md §2.3).
	re := regexp.MustCompile(`^\{[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}\}$`)
	a, err := NewMachineGUID()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewMachineGUID()
	if !re.MatchString(a) || a == b || a[15] != '4' {
		t.Fatalf("GUIDs %s %s", a, b)
	}
	for in, want := range map[string]string{
		"{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}": "{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}",
		"F52973B6-C926-4BAD-9BA8-7C1E840E4AB0":   "{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}",
	} {
		if got, err := ParseMachineGUID(in); err != nil || got != want {
			t.Errorf("ParseMachineGUID(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "{}", "{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0", "F52973B6C9264BAD9BA87C1E840E4AB0", "{G52973B6-C926-4BAD-9BA8-7C1E840E4AB0}", "{F52973B6-C926-4BAD-9BA8+7C1E840E4AB0}"} {
		if _, err := ParseMachineGUID(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestEndpoint(t *testing.T) {
	// From sso_msnp18.txt: the server lower-cases the GUID in JOI/IRO/BYE.
	email, guid, err := ParseEndpoint("bob@example.com;{0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}")
	if err != nil || email != "bob@example.com" || guid != "{0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D}" {
		t.Fatalf("%q %q %v", email, guid, err)
	}
	if FormatEndpoint(email, guid) != "bob@example.com;{0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D}" {
		t.Errorf("format %q", FormatEndpoint(email, guid))
	}
	if e, g, err := ParseEndpoint("alice@example.com"); err != nil || e != "alice@example.com" || g != "" {
		t.Errorf("bare: %q %q %v", e, g, err)
	}
	if FormatEndpoint("alice@example.com", "") != "alice@example.com" {
		t.Error("empty guid not bare")
	}
	for _, bad := range []string{"", ";{0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D}", "a@b;junk"} {
		if _, _, err := ParseEndpoint(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestEndpointCaps(t *testing.T) {
	c, err := ParseEndpointCaps("2788999212:48")
	if err != nil || c.Caps != 2788999212 || c.CapsEx != 48 || !c.HasEx || c.String() != "2788999212:48" {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = ParseEndpointCaps("1986986028")
	if err != nil || c.HasEx || c.String() != "1986986028" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{"", "x", "1:", ":1", "4294967296", "1:2:3"} {
		if _, err := ParseEndpointCaps(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestParseUBXData(t *testing.T) {
	// Alice's own-endpoint UBX from sso_msnp18.txt, with Escargot's
	// numeric entities in the PSM.
	payload := `<Data><PSM>a &#x26; b &#x3C;3 &#x3D; &#x5C;o/</PSM><CurrentMedia></CurrentMedia><MachineGuid>{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}</MachineGuid><DDP></DDP><SignatureSound></SignatureSound><Scene></Scene><ColorScheme></ColorScheme><EndpointData id="{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}"><Capabilities>2788999212:48</Capabilities></EndpointData><PrivateEndpointData id="{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}"><EpName>Bridge</EpName><Idle>true</Idle><ClientType>1</ClientType><State>AWY</State></PrivateEndpointData></Data>`
	d, err := ParseUBXData([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	if d.PSM != `a & b <3 = \o/` || d.MachineGUID != "{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}" {
		t.Errorf("%+v", d)
	}
	if len(d.Endpoints) != 1 || d.Endpoints[0].ID != d.MachineGUID || d.Endpoints[0].Capabilities.CapsEx != 48 {
		t.Errorf("endpoints %+v", d.Endpoints)
	}
	if len(d.Private) != 1 || d.Private[0].EpName != "Bridge" || !d.Private[0].Idle || d.Private[0].ClientType != 1 || d.Private[0].State != "AWY" {
		t.Errorf("private %+v", d.Private)
	}
	// MSNP11–13 form and the empty UBX.
	d, err = ParseUBXData([]byte(`<Data><PSM></PSM><CurrentMedia>\0Music\01\0{0} - {1}\0Title\0Artist\0</CurrentMedia></Data>`))
	if err != nil || !strings.HasPrefix(d.CurrentMedia, `\0Music`) || len(d.Endpoints) != 0 {
		t.Errorf("old form %+v %v", d, err)
	}
	if d, err := ParseUBXData(nil); err != nil || d.PSM != "" {
		t.Errorf("empty %+v %v", d, err)
	}
	for _, bad := range []string{`<Data>`, `<Data><EndpointData id="x"><Capabilities>q</Capabilities></EndpointData></Data>`, `<Data><PrivateEndpointData><ClientType>x</ClientType></PrivateEndpointData></Data>`, `<Other/>`} {
		if _, err := ParseUBXData([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseUBXData(f *testing.F) {
	f.Add([]byte(`<Data><PSM>psm</PSM><CurrentMedia></CurrentMedia><MachineGuid>{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}</MachineGuid><EndpointData id="{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}"><Capabilities>2788999212:48</Capabilities></EndpointData><PrivateEndpointData id="{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}"></PrivateEndpointData></Data>`))
	f.Add([]byte(`<Data><PSM>a &#x26; b</PSM></Data>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseUBXData(data)
		if err != nil {
			return
		}
		// What parses can be republished: the UUX builder must accept it.
		if _, err := BuildUUX(UUXData{PSM: d.PSM, CurrentMedia: d.CurrentMedia}, 18); err != nil {
			t.Fatalf("BuildUUX: %v", err)
		}
	})
}

func TestBuildUUX(t *testing.T) {
	d := UUXData{PSM: "psm of alice@example.com", MachineGUID: "{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}"}
	got, err := BuildUUX(d, 15)
	if err != nil {
		t.Fatal(err)
	}
	// Byte for byte what the MSNP15 transcript sends.
	if string(got) != `<Data><PSM>psm of alice@example.com</PSM><CurrentMedia></CurrentMedia><MachineGuid>{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}</MachineGuid></Data>` {
		t.Errorf("MSNP15: %s", got)
	}
	got, _ = BuildUUX(UUXData{PSM: "a & <b>"}, 12)
	if string(got) != `<Data><PSM>a &amp; &lt;b&gt;</PSM><CurrentMedia></CurrentMedia></Data>` {
		t.Errorf("MSNP12: %s", got)
	}
	got, _ = BuildUUX(d, 18)
	if !strings.Contains(string(got), `<DDP></DDP><SignatureSound></SignatureSound><Scene></Scene><ColorScheme></ColorScheme></Data>`) {
		t.Errorf("MSNP18: %s", got)
	}
	back, err := ParseUBXData(got)
	if err != nil || back.PSM != d.PSM || back.MachineGUID != "{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}" {
		t.Errorf("round trip %+v %v", back, err)
	}
	if _, err := BuildUUX(UUXData{MachineGUID: "nope"}, 18); err == nil {
		t.Error("bad GUID accepted")
	}
	if _, err := BuildUUX(d, 10); err == nil {
		t.Error("MSNP10 accepted")
	}
	pe, err := BuildUUXPrivateEndpoint(UBXPrivateEndpoint{EpName: "msnbridge & co"})
	if err != nil || string(pe) != `<PrivateEndpointData><EpName>msnbridge &amp; co</EpName><Idle>false</Idle><ClientType>1</ClientType><State>NLN</State></PrivateEndpointData>` {
		t.Errorf("private endpoint %s %v", pe, err)
	}
}
