package xmpp

import "encoding/xml"

// Namespaces the gateway speaks.
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsRegister   = "jabber:iq:register"
	nsGateway    = "jabber:iq:gateway"
	nsCommands   = "http://jabber.org/protocol/commands"
	nsData       = "jabber:x:data"
	nsChatStates = "http://jabber.org/protocol/chatstates"
	nsAttention  = "urn:xmpp:attention:0"
	nsReceipts   = "urn:xmpp:receipts"
	nsNick       = "http://jabber.org/protocol/nick"
	nsVCard      = "vcard-temp"
	nsPing       = "urn:xmpp:ping"
	nsVersion    = "jabber:iq:version"
	nsStanzas    = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsStyling    = "urn:xmpp:styling:0"
	nsPrivilege  = "urn:xmpp:privilege:2"
	nsRoster     = "jabber:iq:roster"
	nsVCardX     = "vcard-temp:x:update"
)

// Outgoing stanzas. Top-level elements have no namespace: mellium puts them
// in the stream's (jabber:component:accept), and children without one
// inherit it. Text always goes through encoding/xml, which escapes it.

type outMessage struct {
	XMLName xml.Name   `xml:"message"`
	ID      string     `xml:"id,attr,omitempty"`
	Type    string     `xml:"type,attr,omitempty"`
	From    string     `xml:"from,attr"`
	To      string     `xml:"to,attr,omitempty"`
	Body    string     `xml:"body,omitempty"`
	Error   *stanzaErr `xml:"error,omitempty"`
	Extra   []any
}

type outPresence struct {
	XMLName  xml.Name     `xml:"presence"`
	ID       string       `xml:"id,attr,omitempty"`
	Type     string       `xml:"type,attr,omitempty"`
	From     string       `xml:"from,attr"`
	To       string       `xml:"to,attr,omitempty"`
	Show     string       `xml:"show,omitempty"`
	Status   string       `xml:"status,omitempty"`
	Priority string       `xml:"priority,omitempty"`
	Nick     *nick        `xml:",omitempty"`
	Avatar   *vcardUpdate `xml:",omitempty"`
	Error    *stanzaErr   `xml:"error,omitempty"`
}

type outIQ struct {
	XMLName xml.Name   `xml:"iq"`
	ID      string     `xml:"id,attr"`
	Type    string     `xml:"type,attr"`
	From    string     `xml:"from,attr"`
	To      string     `xml:"to,attr,omitempty"`
	Payload any        `xml:",omitempty"`
	Error   *stanzaErr `xml:"error,omitempty"`
}

// stanzaErr is an RFC 6120 stanza error.
type stanzaErr struct {
	XMLName xml.Name `xml:"error"`
	Type    string   `xml:"type,attr"`
	Cond    struct {
		XMLName xml.Name
	}
	Text *struct {
		XMLName xml.Name `xml:"urn:ietf:params:xml:ns:xmpp-stanzas text"`
		Lang    string   `xml:"xml:lang,attr,omitempty"`
		Value   string   `xml:",chardata"`
	} `xml:",omitempty"`
}

// Error makes stanzaErr usable as a Go error inside the gateway.
func (e *stanzaErr) Error() string {
	s := e.Cond.XMLName.Local
	if e.Text != nil {
		s += ": " + e.Text.Value
	}
	return s
}

// Stanza error types and the conditions the gateway uses.
const (
	errCancel = "cancel"
	errAuth   = "auth"
	errModify = "modify"
	errWait   = "wait"
)

func newErr(typ, cond, text string) *stanzaErr {
	e := &stanzaErr{Type: typ}
	e.Cond.XMLName = xml.Name{Space: nsStanzas, Local: cond}
	if text != "" {
		e.Text = &struct {
			XMLName xml.Name `xml:"urn:ietf:params:xml:ns:xmpp-stanzas text"`
			Lang    string   `xml:"xml:lang,attr,omitempty"`
			Value   string   `xml:",chardata"`
		}{Value: text}
	}
	return e
}

// empty is an element with no content, e.g. <composing xmlns='…'/>.
type empty struct{ XMLName xml.Name }

func el(space, local string) empty { return empty{XMLName: xml.Name{Space: space, Local: local}} }

type nick struct {
	XMLName xml.Name `xml:"http://jabber.org/protocol/nick nick"`
	Value   string   `xml:",chardata"`
}

type receiptReceived struct {
	XMLName xml.Name `xml:"urn:xmpp:receipts received"`
	ID      string   `xml:"id,attr"`
}

// XEP-0030.

type discoInfo struct {
	XMLName    xml.Name        `xml:"http://jabber.org/protocol/disco#info query"`
	Node       string          `xml:"node,attr,omitempty"`
	Identities []discoIdentity `xml:"identity"`
	Features   []discoFeature  `xml:"feature"`
}

type discoIdentity struct {
	Category string `xml:"category,attr"`
	Type     string `xml:"type,attr"`
	Name     string `xml:"name,attr,omitempty"`
}

type discoFeature struct {
	Var string `xml:"var,attr"`
}

type discoItems struct {
	XMLName xml.Name    `xml:"http://jabber.org/protocol/disco#items query"`
	Node    string      `xml:"node,attr,omitempty"`
	Items   []discoItem `xml:"item"`
}

type discoItem struct {
	JID  string `xml:"jid,attr"`
	Node string `xml:"node,attr,omitempty"`
	Name string `xml:"name,attr,omitempty"`
}

// XEP-0004.

type dataForm struct {
	XMLName      xml.Name    `xml:"jabber:x:data x"`
	Type         string      `xml:"type,attr"`
	Title        string      `xml:"title,omitempty"`
	Instructions string      `xml:"instructions,omitempty"`
	Fields       []formField `xml:"field"`
	Reported     *struct {
		Fields []formField `xml:"field"`
	} `xml:"reported,omitempty"`
	Items []formItem `xml:"item"`
}

type formItem struct {
	Fields []formField `xml:"field"`
}

type formField struct {
	Var      string       `xml:"var,attr,omitempty"`
	Type     string       `xml:"type,attr,omitempty"`
	Label    string       `xml:"label,attr,omitempty"`
	Desc     string       `xml:"desc,omitempty"`
	Required *struct{}    `xml:"required,omitempty"`
	Values   []string     `xml:"value"`
	Options  []formOption `xml:"option"`
}

type formOption struct {
	Label string `xml:"label,attr,omitempty"`
	Value string `xml:"value"`
}

var required = &struct{}{}

// XEP-0077 and XEP-0100.

type registerQuery struct {
	XMLName      xml.Name  `xml:"jabber:iq:register query"`
	Instructions string    `xml:"instructions,omitempty"`
	Registered   *struct{} `xml:"registered,omitempty"`
	Username     *string   `xml:"username"`
	Password     *string   `xml:"password"`
	Form         *dataForm
}

type gatewayQuery struct {
	XMLName xml.Name `xml:"jabber:iq:gateway query"`
	Desc    string   `xml:"desc,omitempty"`
	Prompt  string   `xml:"prompt,omitempty"`
	JID     string   `xml:"jid,omitempty"`
}

// XEP-0050.

type command struct {
	XMLName   xml.Name `xml:"http://jabber.org/protocol/commands command"`
	Node      string   `xml:"node,attr"`
	SessionID string   `xml:"sessionid,attr,omitempty"`
	Status    string   `xml:"status,attr"`
	Actions   *struct {
		Execute  string    `xml:"execute,attr,omitempty"`
		Next     *struct{} `xml:"next,omitempty"`
		Complete *struct{} `xml:"complete,omitempty"`
	} `xml:"actions,omitempty"`
	Note *struct {
		Type  string `xml:"type,attr"`
		Value string `xml:",chardata"`
	} `xml:"note,omitempty"`
	Form *dataForm
}

// vcard-temp.

type vcard struct {
	XMLName  xml.Name `xml:"vcard-temp vCard"`
	FN       string   `xml:"FN,omitempty"`
	Nickname string   `xml:"NICKNAME,omitempty"`
	Email    *struct {
		Internet *struct{} `xml:"INTERNET"`
		UserID   string    `xml:"USERID"`
	} `xml:"EMAIL,omitempty"`
	Desc  string      `xml:"DESC,omitempty"`
	Photo *vcardPhoto `xml:"PHOTO,omitempty"`
}

type vcardPhoto struct {
	Type   string `xml:"TYPE"`
	BinVal string `xml:"BINVAL"`
}

// vcardUpdate is XEP-0153's avatar hash in presence. Photo nil: the
// gateway does not know yet (clients keep what they have); "": the contact
// has no picture; else the hex SHA-1 of the picture.
type vcardUpdate struct {
	XMLName xml.Name `xml:"vcard-temp:x:update x"`
	Photo   *string  `xml:"photo"`
}

type versionQuery struct {
	XMLName xml.Name `xml:"jabber:iq:version query"`
	Name    string   `xml:"name"`
	Version string   `xml:"version"`
}

// RFC 6121 roster items, pushed with XEP-0356 privilege.

type rosterQuery struct {
	XMLName xml.Name     `xml:"jabber:iq:roster query"`
	Items   []rosterItem `xml:"item"`
}

type rosterItem struct {
	JID          string   `xml:"jid,attr"`
	Name         string   `xml:"name,attr,omitempty"`
	Subscription string   `xml:"subscription,attr,omitempty"`
	Groups       []string `xml:"group"`
}
