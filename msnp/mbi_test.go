package msnp

import (
	"bytes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// The vector is FACTS.md §2.3's, checked against Escargot's verifier.
const (
	mbiVecSecret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"
	mbiVecNonce  = "E4Fhehbe0q2Je+SUSp7IRnJV+rN4uME75ljIpUjIZ1Si+DgmrfuiIL+AFmkMA6Wv"
	mbiVecBlob   = "HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAAAECAwQFBgcIUu3h6QkO/DckKaEB1aoBAjGzC5oYx4s2I4zZ4O5kq5PA2vwlKoQpLZreW6yTp+GrPzW8rOy1oA0MvH/PMyqEbaqsd0XLAQ70oP1oSZodFzvcwzCIcWEVCLYYAUM="
)

func TestMBIKeysVector(t *testing.T) {
	k, err := DeriveMBIKeys(mbiVecSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(k.Hash); got != "06af2ac1f46df3fde6e65fef60a13bd21eabb69f09a542c0" {
		t.Errorf("key2 = %s", got)
	}
	if got := hex.EncodeToString(k.Encrypt); got != "2dd0114b936beb17cc1d7fa10191010bb4b7b487404c43e3" {
		t.Errorf("key3 = %s", got)
	}
}

func TestMBIResponseVector(t *testing.T) {
	iv, _ := hex.DecodeString("0102030405060708")
	got, err := MBIResponseWithIV(mbiVecSecret, mbiVecNonce, bytes.NewReader(iv))
	if err != nil {
		t.Fatal(err)
	}
	if got != mbiVecBlob {
		t.Fatalf("blob mismatch\n got %s\nwant %s", got, mbiVecBlob)
	}
}

func TestMBIResponseRandomIV(t *testing.T) {
	a, err := MBIResponse(mbiVecSecret, mbiVecNonce)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := MBIResponse(mbiVecSecret, mbiVecNonce)
	if len(a) != 172 || !strings.HasPrefix(a, "HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAA") {
		t.Fatalf("bad blob %q (len %d)", a, len(a))
	}
	if a == b {
		t.Fatal("two blobs with random IVs are equal")
	}
}

func TestMBIResponseErrors(t *testing.T) {
	if _, err := MBIResponse("!!notbase64", mbiVecNonce); err == nil {
		t.Error("bad base64 secret accepted")
	}
	if _, err := MBIResponse("", mbiVecNonce); err == nil {
		t.Error("empty secret accepted")
	}
	if _, err := MBIResponse(mbiVecSecret, ""); err == nil {
		t.Error("empty nonce accepted")
	}
	if _, err := MBIResponseWithIV(mbiVecSecret, mbiVecNonce, bytes.NewReader([]byte{1, 2})); err == nil {
		t.Error("short IV accepted")
	}
}

// TestMBIVerifies checks a random-IV blob the way Escargot's verifier does:
// decrypt with key3, compare the nonce, recompute the hash with key2.
func TestMBIVerifies(t *testing.T) {
	const secret = "g/LI9nmBdQzJO07Sx+20e90N6Lfc0OkK" // from sso_msnp15.txt
	const nonce = "WsWbVL7ig+BJDuQShEyy8WTaxCS6Cf7uSLygY385+8Cfq/o3uR92Ul+GczW0yfDm"
	blobB64, err := MBIResponse(secret, nonce)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := base64.StdEncoding.DecodeString(blobB64)
	if err != nil || len(blob) != 128 {
		t.Fatalf("blob %d bytes, %v", len(blob), err)
	}
	keys, _ := DeriveMBIKeys(secret)
	iv, hash, ct := blob[28:36], blob[36:56], blob[56:]
	block, _ := des.NewTripleDESCipher(keys.Encrypt)
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	if string(plain[:64]) != nonce || !bytes.Equal(plain[64:], bytes.Repeat([]byte{8}, 8)) {
		t.Fatalf("decrypted %q", plain)
	}
	m := hmac.New(sha1.New, keys.Hash)
	m.Write([]byte(nonce))
	if !hmac.Equal(m.Sum(nil), hash) {
		t.Fatal("hash does not verify")
	}
}
