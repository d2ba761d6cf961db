package msnptest

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"math/big"
)

// productKeys maps the challenge product IDs clients use to their keys
// (FACTS.md §3).
var productKeys = map[string]string{
	"msmsgs@msnmsgr.com": "Q1P7W2E4J9R8U3S5",
	"PROD0038W!61ZTF9":   "VT6PX?UQTM4WM%YR",
	"PROD0058#7IL2{QD":   "QHDCY@7R1TB6W?5B",
	"PROD0061VRRZH@4F":   "JXQ6J@TUOGYV@N0M",
	"PROD00504RLUG%WL":   "I2EBK%PYNLZL5_J4",
	"PROD0076ENE8*@AW":   "CEQJ8}OE0!WTSWII",
	"PROD0090YUAUV{2B":   "YMM8C_H7KCQ2S_KL",
	"PROD0101{0RM?UBW":   "CFHUR$52U_{VIX5T",
	"PROD01065C%ZFN6F":   "O4BG@C7BWLYQX?5G",
	"PROD0112J1LW7%NB":   "RH96F{PHI8PPX_TJ",
	"PROD0113H11T8$X_":   "RG@XY*28Q5QHS%Q5",
	"PROD0114ES4Z%Q5W":   "PK}_A_0N_K%O?A9S",
	"PROD0118R6%2WYOS":   "YIXPX@5I2P0UT*LK",
	"PROD0119GSJUC$18":   "ILTXC!4IXB5FB*PX",
	"PROD0120PW!CCV9@":   "C1BX{V4W}Q3*10SM",
}

// challengeDigits returns a 20-digit challenge like the servers sent.
func challengeDigits() string {
	n, err := rand.Int(rand.Reader, big.NewInt(9e18))
	if err != nil {
		panic(err)
	}
	s := n.String()
	for len(s) < 19 {
		s = "0" + s
	}
	return "1" + s
}

// checkChallenge is the server's check of a QRY answer. It is written
// independently of the client's code in package msnp on purpose: the two
// must agree only through the test vectors.
func checkChallenge(dialect int, chl, productID, answer string) bool {
	pk, ok := productKeys[productID]
	if !ok {
		return false
	}
	return answer == challengeAnswer(dialect, chl, productID, pk)
}

// challengeAnswer computes the expected QRY payload: MD5 hex below MSNP11,
// the MSNP11 hash from 11 on, with the unmasked MD5 words in the final XOR
// as real clients do (FACTS.md §3).
func challengeAnswer(dialect int, chl, productID, productKey string) string {
	sum := md5.Sum([]byte(chl + productKey))
	if dialect < 11 {
		return hex.EncodeToString(sum[:])
	}
	var h, k [4]uint64
	for i := range 4 {
		h[i] = uint64(binary.LittleEndian.Uint32(sum[4*i:]))
		k[i] = h[i] & 0x7FFFFFFF
	}
	s := []byte(chl + productID)
	for pad := 8 - len(s)%8; pad > 0; pad-- {
		s = append(s, '0')
	}
	const mod = 0x7FFFFFFF
	var high, low uint64
	for i := 0; i+8 <= len(s); i += 8 {
		c0 := uint64(binary.LittleEndian.Uint32(s[i:]))
		c1 := uint64(binary.LittleEndian.Uint32(s[i+4:]))
		t := (c0*0x0E79A9C1)%mod + high
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
