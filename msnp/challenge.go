package msnp

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
)

// product is a client's identity for CHL/QRY: the id sent in QRY and the
// key mixed into the hash (FACTS.md §3).
type product struct{ id, key string }

var (
	productMSN6 = product{"msmsgs@msnmsgr.com", "Q1P7W2E4J9R8U3S5"} // MSNP6–10
	productMSN7 = product{"PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL"}   // MSNP11–12
)

// challengeMD5 answers an MSNP6–10 challenge: hex(MD5(challenge ‖ key)).
func challengeMD5(challenge string, p product) string {
	sum := md5.Sum([]byte(challenge + p.key))
	return hex.EncodeToString(sum[:])
}

// challenge11 answers an MSNP11+ challenge (FACTS.md §3, libpurple's
// msn_handle_chl). The output XORs the unmasked MD5 words.
func challenge11(challenge string, p product) string {
	sum := md5.Sum([]byte(challenge + p.key))
	var h, k [4]uint64
	for i := range h {
		h[i] = uint64(binary.LittleEndian.Uint32(sum[4*i:]))
		k[i] = h[i] & 0x7FFFFFFF
	}
	s := []byte(challenge + p.id)
	pad := 8 - len(s)%8
	for i := 0; i < pad; i++ {
		s = append(s, '0')
	}
	const mod = 0x7FFFFFFF
	var high, low uint64
	for i := 0; i+8 <= len(s); i += 8 {
		c0 := uint64(binary.LittleEndian.Uint32(s[i:]))
		c1 := uint64(binary.LittleEndian.Uint32(s[i+4:]))
		t := ((c0*0x0E79A9C1)%mod + high)
		t = (t*k[0] + k[1]) % mod
		high = (c1 + t) % mod
		high = (high*k[2] + k[3]) % mod
		low += high + t
	}
	high = (high + k[1]) % mod
	low = (low + k[3]) % mod
	var out [16]byte
	binary.LittleEndian.PutUint32(out[0:], uint32(h[0]^high))
	binary.LittleEndian.PutUint32(out[4:], uint32(h[1]^low))
	binary.LittleEndian.PutUint32(out[8:], uint32(h[2]^high))
	binary.LittleEndian.PutUint32(out[12:], uint32(h[3]^low))
	return hex.EncodeToString(out[:])
}
