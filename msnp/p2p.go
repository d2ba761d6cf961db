package msnp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MSNP2P version 1 packets (FACTS.md §7.5): the body of an
// application/x-msnmsgrp2p message is a 48-byte little-endian header, up to
// p2pMaxChunk bytes of data, and a 4-byte big-endian footer naming the
// application (0 for MSNSLP, 1 for MSNObjects, 2 for files).

// P2PHeader is the 48-byte little-endian MSNP2P v1 binary header.
type P2PHeader struct {
	SessionID, Identifier      uint32
	Offset, TotalSize          uint64
	MessageLength, Flags       uint32
	AckIdentifier, AckUniqueID uint32
	AckDataSize                uint64
}

// P2P header flags (libpurple p2p.h P2P_*; MSNPSharp P2PFlag).
const (
	P2PFlagNone       uint32 = 0x00
	P2PFlagNak        uint32 = 0x01
	P2PFlagAck        uint32 = 0x02
	P2PFlagWaiting    uint32 = 0x04
	P2PFlagError      uint32 = 0x08
	P2PFlagMSNObjData uint32 = 0x20
	P2PFlagCancel     uint32 = 0x40 // the sender closed the session
	P2PFlagTLPError   uint32 = 0x80
	P2PFlagDCHello    uint32 = 0x100
	P2PFlagWLM2009    uint32 = 0x01000000 // "WLM 2009 compatible", or-ed into SLP and data
	P2PFlagFileData   uint32 = 0x01000030
)

// P2P application ids, the packet footer and the SLP AppID field.
const (
	P2PAppSLP       uint32 = 0
	P2PAppMSNObject uint32 = 1
	P2PAppFile      uint32 = 2
)

const (
	p2pHeaderLen = 48
	p2pFooterLen = 4
	// p2pMaxChunk is the most data one switchboard packet carries, as
	// every official client and libpurple (MSN_SBCONN_MAX_SIZE) send it.
	p2pMaxChunk = 1202
	// p2pMaxPacketData bounds what a received packet may carry: the
	// switchboard itself drops a MSG over SwitchboardMaxMessage.
	p2pMaxPacketData = SwitchboardMaxMessage
)

// ErrBadP2P is wrapped by every P2P packet parse error.
var ErrBadP2P = errors.New("msnp: malformed P2P packet")

// ParseP2P splits an application/x-msnmsgrp2p body into its header, data and
// footer. data aliases body. It checks what a receiver relies on: the body
// holds the header, MessageLength bytes and the footer exactly, and the data
// lies inside TotalSize.
func ParseP2P(body []byte) (h P2PHeader, data []byte, appID uint32, err error) {
	if len(body) < p2pHeaderLen+p2pFooterLen {
		return h, nil, 0, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header and footer", ErrBadP2P, len(body), p2pHeaderLen+p2pFooterLen)
	}
	le := binary.LittleEndian
	h = P2PHeader{
		SessionID:     le.Uint32(body[0:]),
		Identifier:    le.Uint32(body[4:]),
		Offset:        le.Uint64(body[8:]),
		TotalSize:     le.Uint64(body[16:]),
		MessageLength: le.Uint32(body[24:]),
		Flags:         le.Uint32(body[28:]),
		AckIdentifier: le.Uint32(body[32:]),
		AckUniqueID:   le.Uint32(body[36:]),
		AckDataSize:   le.Uint64(body[40:]),
	}
	n := len(body) - p2pHeaderLen - p2pFooterLen
	if n > p2pMaxPacketData {
		return h, nil, 0, fmt.Errorf("%w: %d data bytes, over %d", ErrBadP2P, n, p2pMaxPacketData)
	}
	if uint64(h.MessageLength) != uint64(n) {
		return h, nil, 0, fmt.Errorf("%w: MessageLength %d but %d data bytes", ErrBadP2P, h.MessageLength, n)
	}
	// Offset+MessageLength cannot overflow once Offset <= TotalSize is known
	// and MessageLength <= TotalSize-Offset is checked by subtraction.
	if h.Offset > h.TotalSize || uint64(h.MessageLength) > h.TotalSize-h.Offset {
		return h, nil, 0, fmt.Errorf("%w: data at offset %d, length %d beyond TotalSize %d", ErrBadP2P, h.Offset, h.MessageLength, h.TotalSize)
	}
	data = body[p2pHeaderLen : p2pHeaderLen+n]
	appID = binary.BigEndian.Uint32(body[len(body)-p2pFooterLen:])
	return h, data, appID, nil
}

// AppendP2P appends the header (its MessageLength set to len(data)), data
// and footer to dst.
func AppendP2P(dst []byte, h P2PHeader, data []byte, appID uint32) []byte {
	h.MessageLength = uint32(len(data))
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, h.SessionID)
	dst = le.AppendUint32(dst, h.Identifier)
	dst = le.AppendUint64(dst, h.Offset)
	dst = le.AppendUint64(dst, h.TotalSize)
	dst = le.AppendUint32(dst, h.MessageLength)
	dst = le.AppendUint32(dst, h.Flags)
	dst = le.AppendUint32(dst, h.AckIdentifier)
	dst = le.AppendUint32(dst, h.AckUniqueID)
	dst = le.AppendUint64(dst, h.AckDataSize)
	dst = append(dst, data...)
	return binary.BigEndian.AppendUint32(dst, appID)
}

// isP2PData reports whether flags mark a data packet (libpurple
// msn_p2p_msg_is_data, which also accepts the WLM 2009 variant).
func isP2PData(flags uint32) bool {
	return flags == P2PFlagMSNObjData || flags == P2PFlagWLM2009|P2PFlagMSNObjData || flags == P2PFlagFileData || flags == 0x30
}

// p2pAckFor is the acknowledgement of a complete message whose last (or
// only) packet had header h: libpurple msn_p2p_info_create_ack.
func p2pAckFor(h P2PHeader, id uint32) P2PHeader {
	return P2PHeader{
		SessionID:     h.SessionID,
		Identifier:    id,
		TotalSize:     h.TotalSize,
		Flags:         P2PFlagAck,
		AckIdentifier: h.Identifier,
		AckUniqueID:   h.AckIdentifier,
		AckDataSize:   h.TotalSize,
	}
}
