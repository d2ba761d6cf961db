package msnp

import "errors"

// P2PHeader is the 48-byte little-endian MSNP2P v1 binary header.
type P2PHeader struct {
	SessionID, Identifier      uint32
	Offset, TotalSize          uint64
	MessageLength, Flags       uint32
	AckIdentifier, AckUniqueID uint32
	AckDataSize                uint64
}

// ParseP2P splits an application/x-msnmsgrp2p body.
func ParseP2P(body []byte) (h P2PHeader, data []byte, appID uint32, err error) {
	return h, nil, 0, errors.New("msnp: p2p: not implemented yet")
}

// AppendP2P appends the header, data and footer to dst.
func AppendP2P(dst []byte, h P2PHeader, data []byte, appID uint32) []byte {
	return dst
}
