package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a Sealer key: AES-256.
const KeySize = 32

// Sealed data is: version (1 byte) | key id (4 bytes) | nonce (12 bytes) |
// AES-256-GCM ciphertext and tag. The key id (the start of SHA-256 of the
// key) lets Open tell a wrong key from tampered data; it is also
// authenticated as additional data.
const (
	sealVersion   = 1
	sealKeyIDSize = 4
	sealNonceSize = 12
	sealTagSize   = 16
	sealHeader    = 1 + sealKeyIDSize + sealNonceSize
)

var (
	// ErrWrongKey means sealed data was made with another key.
	ErrWrongKey = errors.New("store: sealed data was encrypted with a different key")
	// ErrTampered means sealed data failed authentication: it was altered
	// or truncated.
	ErrTampered = errors.New("store: sealed data is corrupt or was tampered with")
	// ErrBadKey means a key is not 32 bytes (or not valid base64).
	ErrBadKey = errors.New("store: encryption key must be 32 bytes")
)

// Sealer encrypts small secrets (MSN passwords) at rest with AES-256-GCM.
// It is safe for concurrent use.
type Sealer struct {
	aead  cipher.AEAD
	keyID [sealKeyIDSize]byte
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w, got %d", ErrBadKey, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: creating cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("store: creating GCM: %w", err)
	}
	s := &Sealer{aead: aead}
	sum := sha256.Sum256(append([]byte("msnbridge sealer key id\x00"), key...))
	copy(s.keyID[:], sum[:])
	return s, nil
}

// NewSealerBase64 returns a Sealer for a base64-encoded (standard or URL
// alphabet, padded or not) 32-byte key, the form the config takes.
func NewSealerBase64(encoded string) (*Sealer, error) {
	encoded = strings.TrimSpace(encoded)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(encoded); err == nil {
			return NewSealer(key)
		}
	}
	return nil, fmt.Errorf("%w: not valid base64", ErrBadKey)
}

// GenerateKey returns a new random key, base64-encoded, for the config.
func GenerateKey() string {
	key := make([]byte, KeySize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+)
	return base64.StdEncoding.EncodeToString(key)
}

// Seal encrypts plaintext with a fresh random nonce.
func (s *Sealer) Seal(plaintext []byte) []byte {
	out := make([]byte, sealHeader, sealHeader+len(plaintext)+sealTagSize)
	out[0] = sealVersion
	copy(out[1:], s.keyID[:])
	_, _ = rand.Read(out[1+sealKeyIDSize : sealHeader])
	return s.aead.Seal(out, out[1+sealKeyIDSize:sealHeader], plaintext, out[:1+sealKeyIDSize])
}

// Open decrypts what Seal made. It returns ErrWrongKey when the data was
// sealed with another key and ErrTampered when it fails authentication.
func (s *Sealer) Open(sealed []byte) ([]byte, error) {
	if len(sealed) < sealHeader+sealTagSize {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrTampered, len(sealed))
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrTampered, sealed[0])
	}
	if subtle.ConstantTimeCompare(sealed[1:1+sealKeyIDSize], s.keyID[:]) != 1 {
		return nil, ErrWrongKey
	}
	plaintext, err := s.aead.Open(nil, sealed[1+sealKeyIDSize:sealHeader], sealed[sealHeader:], sealed[:1+sealKeyIDSize])
	if err != nil {
		return nil, ErrTampered
	}
	return plaintext, nil
}
