package msnp

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
)

// The MBI_KEY_OLD proof (FACTS.md §2.3) binds the NS login to the
// messengerclear.live.com session key without sending the key: the client
// encrypts the server's nonce with a key derived from the BinarySecret.
// MSNP15 servers (Escargot) accept a login without it; MSNP16+ verify it.

const (
	mbiHashMagic    = "WS-SecureConversationSESSION KEY HASH"
	mbiEncryptMagic = "WS-SecureConversationSESSION KEY ENCRYPTION"
	mbiHeaderSize   = 28
)

// mbiDerive is the WS-SecureConversation key derivation MSN used:
// h2 ‖ h4[:4] where h1 = H(magic), h2 = H(h1‖magic), h3 = H(h1), h4 = H(h3‖magic).
func mbiDerive(key []byte, magic string) []byte {
	mac := func(parts ...[]byte) []byte {
		h := hmac.New(sha1.New, key)
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum(nil)
	}
	m := []byte(magic)
	h1 := mac(m)
	h2 := mac(h1, m)
	h3 := mac(h1)
	h4 := mac(h3, m)
	return append(h2, h4[:4]...)
}

// MBIKeys are the two keys derived from the BinarySecret; exposed for tests
// and diagnostics only.
type MBIKeys struct {
	Hash    []byte // key2, 24 bytes: HMAC-SHA1 key for the nonce hash
	Encrypt []byte // key3, 24 bytes: 3DES key for the nonce
}

// DeriveMBIKeys derives key2 and key3 from a base64 BinarySecret.
func DeriveMBIKeys(binarySecret string) (MBIKeys, error) {
	key1, err := base64.StdEncoding.DecodeString(binarySecret)
	if err != nil {
		return MBIKeys{}, fmt.Errorf("msnp: MBI: bad BinarySecret: %w", err)
	}
	if len(key1) == 0 {
		return MBIKeys{}, fmt.Errorf("msnp: MBI: empty BinarySecret")
	}
	return MBIKeys{Hash: mbiDerive(key1, mbiHashMagic), Encrypt: mbiDerive(key1, mbiEncryptMagic)}, nil
}

// MBIResponse computes the base64 MBI_KEY_OLD blob (172 characters) that
// follows the ticket in `USR trid SSO S <ticket> <blob>`. binarySecret is the
// messengerclear.live.com BinarySecret, nonce the last argument of
// `USR trid SSO S MBI_KEY_OLD <nonce>`, used as ASCII bytes (never decoded).
func MBIResponse(binarySecret, nonce string) (string, error) {
	return MBIResponseWithIV(binarySecret, nonce, rand.Reader)
}

// MBIResponseWithIV is MBIResponse reading the 8-byte IV from iv, so tests
// can reproduce a known blob.
func MBIResponseWithIV(binarySecret, nonce string, iv io.Reader) (string, error) {
	keys, err := DeriveMBIKeys(binarySecret)
	if err != nil {
		return "", err
	}
	if nonce == "" {
		return "", fmt.Errorf("msnp: MBI: empty nonce")
	}
	block, err := des.NewTripleDESCipher(keys.Encrypt)
	if err != nil {
		return "", fmt.Errorf("msnp: MBI: %w", err)
	}
	ivb := make([]byte, des.BlockSize)
	if _, err := io.ReadFull(iv, ivb); err != nil {
		return "", fmt.Errorf("msnp: MBI: reading IV: %w", err)
	}
	n := []byte(nonce)
	h := hmac.New(sha1.New, keys.Hash)
	h.Write(n)
	hash := h.Sum(nil)

	// PKCS#5 padding; the 64-byte nonce gets a full block of 0x08.
	pad := des.BlockSize - len(n)%des.BlockSize
	plain := make([]byte, len(n)+pad)
	copy(plain, n)
	for i := len(n); i < len(plain); i++ {
		plain[i] = byte(pad)
	}
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, ivb).CryptBlocks(ct, plain)

	blob := make([]byte, 0, mbiHeaderSize+len(ivb)+len(hash)+len(ct))
	for _, v := range []uint32{mbiHeaderSize, 1, 0x6603, 0x8004, uint32(len(ivb)), uint32(len(hash)), uint32(len(ct))} {
		blob = binary.LittleEndian.AppendUint32(blob, v)
	}
	blob = append(blob, ivb...)
	blob = append(blob, hash...)
	blob = append(blob, ct...)
	return base64.StdEncoding.EncodeToString(blob), nil
}
