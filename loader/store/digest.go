package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// RuntimeDigest is a SHA-256 over every run-time row — registrations,
// delegation requests and consents, with their times — in key order, so
// that two sidecars holding the same run-time state show the same digest
// (GET /v1/status) and any difference shows.
func (r *Reader) RuntimeDigest() (string, error) {
	h := sha256.New()
	enc := json.NewEncoder(h)
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	for _, table := range []string{tableRegistrations, tableDelegationRequests, tableConsents} {
		it, err := r.tx().Get(table, indexID)
		if err != nil {
			return "", fmt.Errorf("digest %s: %w", table, err)
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			var row []any
			switch rec := obj.(type) {
			case *RegistrationRecord:
				row = []any{"service", rec.Name, string(rec.Document), stamp(rec.RegisteredAt)}
			case *DelegationRequestRecord:
				row = []any{"request", rec.Tenant, rec.Application, rec.Group, rec.Operations, stamp(rec.At)}
			case *ConsentRecord:
				row = []any{"consent", rec.Tenant, rec.Application, rec.Group, rec.Member, rec.Enabled, stamp(rec.At)}
			}
			if err := enc.Encode(row); err != nil {
				return "", err
			}
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
