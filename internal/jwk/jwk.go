// Package jwk converts public keys to and from JSON Web Keys (RFC 7517, 7518,
// 8037) and computes RFC 7638 thumbprints: the Claims Provider serves its keys
// with it and every verifier reads key sets with it.
package jwk

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// JWK is the JSON form of one public key.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	// RSA
	N string `json:"n,omitempty"`
	E string `json:"e,omitempty"`
	// EC and OKP
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// Set is a JWK Set document.
type Set struct {
	Keys []JWK `json:"keys"`
}

// Key is a parsed public key with its metadata.
type Key struct {
	Kid    string
	Alg    string // may be empty: the key does not say
	Use    string
	Public crypto.PublicKey
}

// Bounds of what ParseSet reads.
const (
	MaxSetBytes   = 64 << 10
	MaxSetKeys    = 64
	MinRSABits    = 2048
	MaxRSABits    = 8192
	maxRSAExpBits = 32
)

var b64 = base64.RawURLEncoding

// FromPublic gives the JWK of a public key (RSA, P-256/P-384/P-521 ECDSA or
// Ed25519) with kid, alg and use "sig".
func FromPublic(pub crypto.PublicKey, kid, alg string) (JWK, error) {
	j := JWK{Kid: kid, Alg: alg, Use: "sig"}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		j.Kty, j.N, j.E = "RSA", b64.EncodeToString(k.N.Bytes()), b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		crv, size, err := curveName(k.Curve)
		if err != nil {
			return JWK{}, err
		}
		raw, err := k.Bytes() // uncompressed point: 0x04 || X || Y
		if err != nil {
			return JWK{}, fmt.Errorf("jwk: %w", err)
		}
		j.Kty, j.Crv = "EC", crv
		j.X, j.Y = b64.EncodeToString(raw[1:1+size]), b64.EncodeToString(raw[1+size:])
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64.EncodeToString(k)
	default:
		return JWK{}, fmt.Errorf("jwk: unsupported key type %T", pub)
	}
	return j, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a public key, BASE64URL.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	j, err := FromPublic(pub, "", "")
	if err != nil {
		return "", err
	}
	// The required members only, in lexicographic order, no white space.
	var canon string
	switch j.Kty {
	case "RSA":
		canon = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, j.E, j.N)
	case "EC":
		canon = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, j.Crv, j.X, j.Y)
	case "OKP":
		canon = fmt.Sprintf(`{"crv":%q,"kty":"OKP","x":%q}`, j.Crv, j.X)
	}
	sum := sha256.Sum256([]byte(canon))
	return b64.EncodeToString(sum[:]), nil
}

// ErrUnsupported marks a key ParseSet skips (unknown type or curve, a private
// or encryption key).
var ErrUnsupported = errors.New("jwk: unsupported key")

// Parse reads one JWK's public key. Private members are refused: a key set
// that carries them is a misconfiguration worth failing on.
func Parse(j JWK) (Key, error) {
	k := Key{Kid: j.Kid, Alg: j.Alg, Use: j.Use}
	switch j.Kty {
	case "RSA":
		n, err := decodeInt(j.N, MaxRSABits/8)
		if err != nil {
			return Key{}, fmt.Errorf("jwk %q: n: %w", j.Kid, err)
		}
		e, err := decodeInt(j.E, maxRSAExpBits/8)
		if err != nil {
			return Key{}, fmt.Errorf("jwk %q: e: %w", j.Kid, err)
		}
		if n.BitLen() < MinRSABits {
			return Key{}, fmt.Errorf("jwk %q: RSA key of %d bits, at least %d", j.Kid, n.BitLen(), MinRSABits)
		}
		if e.Int64() < 3 || e.Int64()%2 == 0 {
			return Key{}, fmt.Errorf("jwk %q: bad RSA exponent", j.Kid)
		}
		k.Public = &rsa.PublicKey{N: n, E: int(e.Int64())}
	case "EC":
		curve, size, err := curveByName(j.Crv)
		if err != nil {
			return Key{}, fmt.Errorf("jwk %q: %w", j.Kid, err)
		}
		x, errX := b64.DecodeString(j.X)
		y, errY := b64.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return Key{}, fmt.Errorf("jwk %q: bad EC coordinates", j.Kid)
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return Key{}, fmt.Errorf("jwk %q: EC point: %w", j.Kid, err)
		}
		k.Public = pub
	case "OKP":
		if j.Crv != "Ed25519" {
			return Key{}, fmt.Errorf("jwk %q: curve %q: %w", j.Kid, j.Crv, ErrUnsupported)
		}
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return Key{}, fmt.Errorf("jwk %q: bad Ed25519 key", j.Kid)
		}
		k.Public = ed25519.PublicKey(x)
	default:
		return Key{}, fmt.Errorf("jwk %q: kty %q: %w", j.Kid, j.Kty, ErrUnsupported)
	}
	return k, nil
}

// ParseSet reads a JWK Set, bounded in size and count. Keys for encryption and
// keys of unsupported types are skipped; a malformed supported key fails the
// whole set.
func ParseSet(data []byte) ([]Key, error) {
	if len(data) > MaxSetBytes {
		return nil, fmt.Errorf("jwk: set of %d bytes, at most %d", len(data), MaxSetBytes)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("jwk: set: %w", err)
	}
	if len(raw.Keys) > MaxSetKeys {
		return nil, fmt.Errorf("jwk: set of %d keys, at most %d", len(raw.Keys), MaxSetKeys)
	}
	var keys []Key
	for _, r := range raw.Keys {
		var j JWK
		var private struct {
			D string `json:"d"`
		}
		if err := json.Unmarshal(r, &j); err != nil {
			return nil, fmt.Errorf("jwk: key: %w", err)
		}
		if json.Unmarshal(r, &private) == nil && private.D != "" {
			return nil, fmt.Errorf("jwk %q: the set publishes a private key", j.Kid)
		}
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k, err := Parse(j)
		if errors.Is(err, ErrUnsupported) {
			continue
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func decodeInt(s string, maxBytes int) (*big.Int, error) {
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 || len(b) > maxBytes {
		return nil, fmt.Errorf("%d bytes", len(b))
	}
	return new(big.Int).SetBytes(b), nil
}

func curveName(c elliptic.Curve) (string, int, error) {
	switch c {
	case elliptic.P256():
		return "P-256", 32, nil
	case elliptic.P384():
		return "P-384", 48, nil
	case elliptic.P521():
		return "P-521", 66, nil
	}
	return "", 0, fmt.Errorf("jwk: unsupported curve %v", c.Params().Name)
}

func curveByName(name string) (elliptic.Curve, int, error) {
	switch name {
	case "P-256":
		return elliptic.P256(), 32, nil
	case "P-384":
		return elliptic.P384(), 48, nil
	case "P-521":
		return elliptic.P521(), 66, nil
	}
	return nil, 0, fmt.Errorf("curve %q: %w", name, ErrUnsupported)
}
