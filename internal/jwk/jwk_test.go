package jwk

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
func TestThumbprintRFC8037(t *testing.T) {
	x, _ := b64.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	got, err := Thumbprint(ed25519.PublicKey(x))
	if err != nil {
		t.Fatal(err)
	}
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("Thumbprint = %s, want %s", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, pub := range []any{&rsaKey.PublicKey, &ecKey.PublicKey, edPub} {
		kid, err := Thumbprint(pub)
		if err != nil {
			t.Fatal(err)
		}
		j, err := FromPublic(pub, kid, "X")
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(Set{Keys: []JWK{j}})
		keys, err := ParseSet(data)
		if err != nil {
			t.Fatalf("%T: %v", pub, err)
		}
		if len(keys) != 1 || keys[0].Kid != kid || keys[0].Alg != "X" || !reflect.DeepEqual(keys[0].Public, pub) {
			t.Fatalf("%T: round trip gave %+v", pub, keys)
		}
		if again, _ := Thumbprint(keys[0].Public); again != kid {
			t.Fatalf("%T: thumbprint changed over the round trip", pub)
		}
	}
}

func TestParseSetSkipsAndRefuses(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, _ := FromPublic(&ecKey.PublicKey, "good", "ES256")
	enc := good
	enc.Kid, enc.Use = "enc", "enc"
	oct := JWK{Kty: "oct", Kid: "hmac"}
	data, _ := json.Marshal(Set{Keys: []JWK{good, enc, oct}})
	keys, err := ParseSet(data)
	if err != nil || len(keys) != 1 || keys[0].Kid != "good" {
		t.Fatalf("ParseSet = %+v, %v; want only the signing key", keys, err)
	}

	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	small, _ := FromPublic(&smallRSA.PublicKey, "small", "RS256")
	offCurve := good
	offCurve.Y = good.X
	many := make([]JWK, MaxSetKeys+1)
	for i := range many {
		many[i] = good
	}
	for name, set := range map[string]string{
		"private key published": `{"keys":[{"kty":"EC","crv":"P-256","x":"` + good.X + `","y":"` + good.Y + `","d":"AAAA"}]}`,
		"small RSA":             mustJSON(Set{Keys: []JWK{small}}),
		"point not on curve":    mustJSON(Set{Keys: []JWK{offCurve}}),
		"too many keys":         mustJSON(Set{Keys: many}),
		"oversized":             `{"keys":[],"pad":"` + strings.Repeat("a", MaxSetBytes) + `"}`,
		"not JSON":              `keys`,
		"short Ed25519":         `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`,
	} {
		if keys, err := ParseSet([]byte(set)); err == nil {
			t.Errorf("%s: accepted %+v", name, keys)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
