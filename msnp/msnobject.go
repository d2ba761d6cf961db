package msnp

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
)

// MSNObject describes a piece of content a contact offers over P2P: a
// display picture, a custom emoticon, a wink (FACTS.md §5.6). It travels
// URL-encoded in CHG/ILN/NLN and as plain XML in emoticon declarations.
type MSNObject struct {
	Creator  string
	Size     int64
	Type     int // 3 display picture, 2 custom emoticon, 8 wink, …
	Location string
	Friendly string // decoded text (it travels as base64 UTF-16LE plus a NUL)
	SHA1D    string // base64 SHA-1 of the data
	SHA1C    string // base64 SHA-1 of the other fields, as sent
}

// MSNObject types.
const (
	MSNObjectAvatar         = 1
	MSNObjectEmoticon       = 2
	MSNObjectDisplayPicture = 3
	MSNObjectSharedFile     = 4
	MSNObjectBackground     = 5
	MSNObjectWink           = 8
	MSNObjectVoiceClip      = 11
)

// ErrBadMSNObject is wrapped by every MSNObject parse error.
var ErrBadMSNObject = errors.New("msnp: malformed msnobj")

// maxMSNObject bounds what ParseMSNObject reads: real objects are a few
// hundred bytes.
const maxMSNObject = 4096

type xmlMSNObject struct {
	XMLName  xml.Name `xml:"msnobj"`
	Creator  string   `xml:"Creator,attr"`
	Size     string   `xml:"Size,attr"`
	Type     string   `xml:"Type,attr"`
	Location string   `xml:"Location,attr"`
	Friendly string   `xml:"Friendly,attr"`
	SHA1D    string   `xml:"SHA1D,attr"`
	SHA1C    string   `xml:"SHA1C,attr,omitempty"`
}

// ParseMSNObject reads an <msnobj …/> element (already URL-decoded).
// "<msnobj/>" and "0" (what servers and clients send for none) give a zero
// MSNObject and no error.
func ParseMSNObject(s string) (MSNObject, error) {
	if s == "" || s == "0" || s == "<msnobj/>" {
		return MSNObject{}, nil
	}
	if len(s) > maxMSNObject {
		return MSNObject{}, fmt.Errorf("%w: %d bytes", ErrBadMSNObject, len(s))
	}
	var x xmlMSNObject
	d := xml.NewDecoder(bytes.NewReader([]byte(s)))
	d.Strict = false // clients write sloppy XML
	if err := d.Decode(&x); err != nil {
		return MSNObject{}, fmt.Errorf("%w: %v", ErrBadMSNObject, err)
	}
	o := MSNObject{Creator: x.Creator, Location: x.Location, SHA1D: x.SHA1D, SHA1C: x.SHA1C}
	var err error
	if x.Size != "" {
		if o.Size, err = strconv.ParseInt(x.Size, 10, 64); err != nil || o.Size < 0 {
			return MSNObject{}, fmt.Errorf("%w: Size %q", ErrBadMSNObject, x.Size)
		}
	}
	if x.Type != "" {
		if o.Type, err = strconv.Atoi(x.Type); err != nil || o.Type < 0 || o.Type > 1000 {
			return MSNObject{}, fmt.Errorf("%w: Type %q", ErrBadMSNObject, x.Type)
		}
	}
	o.Friendly = decodeFriendly(x.Friendly)
	return o, nil
}

// decodeFriendly reads base64 UTF-16LE text with a trailing NUL; anything
// else (some clients put plain text there) is kept as it is.
func decodeFriendly(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%2 != 0 {
		return s
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, uint16(b[i])|uint16(b[i+1])<<8)
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u))
}

func encodeFriendly(s string) string {
	u := append(utf16.Encode([]rune(s)), 0)
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = append(b, byte(c), byte(c>>8))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// ComputeSHA1C is the checksum over the other fields, as the official
// clients compute it: SHA-1 of "Creator"+creator+"Size"+size+… in a fixed
// order, base64.
func (o MSNObject) ComputeSHA1C() string {
	s := "Creator" + o.Creator + "Size" + strconv.FormatInt(o.Size, 10) + "Type" + strconv.Itoa(o.Type) +
		"Location" + o.Location + "Friendly" + encodeFriendly(o.Friendly) + "SHA1D" + o.SHA1D
	sum := sha1.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// NewMSNObject describes data offered by creator, with its SHA1D and SHA1C.
func NewMSNObject(creator string, typ int, location, friendly string, data []byte) MSNObject {
	d := sha1.Sum(data)
	o := MSNObject{Creator: creator, Size: int64(len(data)), Type: typ, Location: location,
		Friendly: friendly, SHA1D: base64.StdEncoding.EncodeToString(d[:])}
	o.SHA1C = o.ComputeSHA1C()
	return o
}

// String renders the object as the <msnobj/> element (not URL-encoded).
func (o MSNObject) String() string {
	x := xmlMSNObject{Creator: o.Creator, Size: strconv.FormatInt(o.Size, 10), Type: strconv.Itoa(o.Type),
		Location: o.Location, Friendly: encodeFriendly(o.Friendly), SHA1D: o.SHA1D, SHA1C: o.SHA1C}
	b, err := xml.Marshal(x)
	if err != nil {
		return "<msnobj/>"
	}
	// encoding/xml writes <msnobj …></msnobj>; clients expect the short form.
	return string(bytes.Replace(b, []byte("></msnobj>"), []byte("/>"), 1))
}
