package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A key file whose text holds a run of more than 255 characters without a
// "/" (common in PEM base64, and any long HMAC secret) must be accepted:
// OPA's keys.NewKeyConfig would stat that text as a path and fail.
func TestVerificationKeyWithALongRunWithoutSlash(t *testing.T) {
	secret := strings.Repeat("k", 300)
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	vc, err := verificationConfig(liveOptions{verificationKey: path, verificationKeyID: "k1", verificationAlg: "HS256"})
	if err != nil {
		t.Fatalf("verificationConfig: %v", err)
	}
	kc := vc.PublicKeys["k1"]
	if kc == nil || kc.Key != secret || kc.Algorithm != "HS256" {
		t.Fatalf("key config = %+v", kc)
	}
	if _, err := verificationConfig(liveOptions{verificationKey: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing key file was accepted")
	}
}
