package msnp

import (
	"crypto/md5"
	"encoding/hex"
	"testing"
)

func TestChallenge11Vectors(t *testing.T) {
	for _, v := range []struct{ chl, id, key, want string }{
		{"22210219642164014968", "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL", "85ecb0db8f32113df79ce0892b9a102c"},
		{"13038318816579321232", "PROD0118R6%2WYOS", "YIXPX@5I2P0UT*LK", "c1f8fb8a2625af1774b0e003451691e5"},
		{"1663122458434562624782678054", "PROD0120PW!CCV9@", "C1BX{V4W}Q3*10SM", "f379e91748f9722568da550eccefec47"},
	} {
		if got := challenge11(v.chl, product{v.id, v.key}); got != v.want {
			t.Errorf("challenge11(%s, %s) = %s, want %s", v.chl, v.id, got, v.want)
		}
	}
}

func TestChallengeMD5(t *testing.T) {
	sum := md5.Sum([]byte("15570131571988941333Q1P7W2E4J9R8U3S5"))
	if got, want := challengeMD5("15570131571988941333", productMSN6), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("challengeMD5 = %s, want %s", got, want)
	}
}
