// Package testjwt signs bearer tokens for tests of verdict's JWT checks: a
// fresh ES256 key whose public half is published as a JWKS.
package testjwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Signer holds a signing key whose public half is in JWKS (key id "test").
type Signer struct {
	priv jwk.Key
	// JWKS is the set verdict verifies tokens with.
	JWKS jwk.Set
}

// NewSigner makes a signer with a new key.
func NewSigner(tb testing.TB) *Signer {
	tb.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		tb.Fatal(err)
	}
	if err := priv.Set(jwk.KeyIDKey, "test"); err != nil {
		tb.Fatal(err)
	}
	if err := priv.Set(jwk.AlgorithmKey, jwa.ES256()); err != nil {
		tb.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		tb.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		tb.Fatal(err)
	}
	return &Signer{priv: priv, JWKS: set}
}

// Sign makes a token for sub expiring at exp (zero: a token without exp);
// claims adds registered and private claims (a nil value leaves the claim
// out).
func (s *Signer) Sign(tb testing.TB, sub string, exp time.Time, claims map[string]any) string {
	tb.Helper()
	b := jwt.NewBuilder().Subject(sub)
	if !exp.IsZero() {
		b = b.Expiration(exp)
	}
	tok, err := b.Build()
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range claims {
		if v == nil {
			continue
		}
		if err := tok.Set(k, v); err != nil {
			tb.Fatal(err)
		}
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), s.priv))
	if err != nil {
		tb.Fatal(err)
	}
	return string(signed)
}
