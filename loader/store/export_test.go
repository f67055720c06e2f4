package store

import (
	"fmt"
	"slices"

	memdb "github.com/hashicorp/go-memdb"
)

// Test seams for the fail-closed tests of store_test. The decision engine
// reads a concrete *Reader, so faults are injected by building snapshots
// that fail or hold corrupt records, as a broken database would.

// SnapshotWithout copies s into a database whose schema lacks the named
// table: every lookup in that table then fails with memdb's "invalid table"
// error.
func SnapshotWithout(s *Store, table string) (*Snapshot, error) {
	full := schema()
	if full.Tables[table] == nil {
		return nil, fmt.Errorf("no table %q", table)
	}
	partial := &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{}}
	for name, ts := range full.Tables {
		if name != table {
			partial.Tables[name] = ts
		}
	}
	db, err := memdb.NewMemDB(partial)
	if err != nil {
		return nil, err
	}
	src := s.db.Txn(false)
	dst := db.Txn(true)
	for name := range partial.Tables {
		it, err := src.Get(name, indexID)
		if err != nil {
			return nil, err
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			if err := dst.Insert(name, obj); err != nil {
				return nil, err
			}
		}
	}
	dst.Commit()
	return &Snapshot{db: db}, nil
}

// SnapshotWithCorruptMember is a snapshot of s in which the member's record
// has lost its tenant's shared table (its groups and statements); s itself
// is left unchanged.
func SnapshotWithCorruptMember(s *Store, tenant, name string) (*Snapshot, error) {
	db := s.db.Snapshot()
	txn := db.Txn(true)
	obj, err := txn.First(tableMembers, indexID, tenant)
	if err != nil || obj == nil || obj.(*MembersRecord).member(name) == nil {
		txn.Abort()
		return nil, fmt.Errorf("member %s/%s: %v", tenant, name, err)
	}
	members := &MembersRecord{Tenant: tenant, members: slices.Clone(obj.(*MembersRecord).members)}
	rec := members.member(name)
	rec.table = nil
	if err := txn.Insert(tableMembers, members); err != nil {
		txn.Abort()
		return nil, err
	}
	txn.Commit()
	return &Snapshot{db: db}, nil
}
