package store

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/verdict-authz/verdict/loader/acl"
	"github.com/verdict-authz/verdict/loader/route"
)

// Store is the in-memory database of loaded facts.
type Store struct {
	db *memdb.MemDB
}

// New creates an empty store.
func New() (*Store, error) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("create store: %w", err)
	}
	return &Store{db: db}, nil
}

// Snapshot returns an immutable view of the store as it is now.
func (s *Store) Snapshot() *Snapshot {
	return &Snapshot{db: s.db.Snapshot()}
}

// Update runs fn inside one write transaction. When fn returns an error
// nothing it did is kept; otherwise the change is committed and a snapshot
// taken right after the commit is returned.
func (s *Store) Update(fn func(*WriteTxn) error) (*Snapshot, error) {
	txn := s.db.Txn(true)
	defer txn.Abort()
	w := &WriteTxn{txn: txn}
	if err := fn(w); err != nil {
		return nil, err
	}
	if w.servicesChanged {
		if err := w.rebuildRouteTables(); err != nil {
			return nil, err
		}
	}
	if err := w.rebuildDirtyDelegations(); err != nil {
		return nil, err
	}
	txn.Commit()
	snap := s.Snapshot()
	// The keyed tables every decision reads, built now rather than by the
	// first decision on the new state.
	snap.keyedTables()
	return snap, nil
}

// WriteTxn changes the store; see Store.Update.
type WriteTxn struct {
	txn             *memdb.Txn
	servicesChanged bool
	// dirtyTenants are the tenants whose effective delegations must be
	// rebuilt before the commit.
	dirtyTenants map[string]bool
}

// PutTenant replaces everything stored for the tenant with t, supplied by
// the named bundle.
func (w *WriteTxn) PutTenant(bundle string, t *acl.Tenant) error {
	if err := w.DeleteTenant(t.Code); err != nil {
		return err
	}
	objects, resourceGroups := objectAssignments(t)
	kept := compactTenant(t, resourceGroups)
	rec := &TenantRecord{Code: t.Code, Bundle: bundle, Tenant: kept, Facts: tenantFacts(t), ApplicationACLs: map[string]ACLTerms{}}
	for name, app := range t.Applications {
		if app.ACL != nil {
			rec.ApplicationACLs[name] = aclTerms(app.ACL)
		}
		for _, k := range app.Keys {
			key := &KeyRecord{Key: k.Key, Tenant: t.Code, Application: name, Package: app.Package, Expires: k.Expires, Facts: keyFacts(t.Code, app, k)}
			if existing, _ := w.txn.First(tableKeys, indexID, k.Key); existing != nil {
				return fmt.Errorf("key %s of tenant %s is already the key of tenant %s", acl.ShortKey(k.Key), t.Code, existing.(*KeyRecord).Tenant)
			}
			if err := w.txn.Insert(tableKeys, key); err != nil {
				return fmt.Errorf("insert key of %s/%s: %w", t.Code, name, err)
			}
		}
	}
	if err := w.txn.Insert(tableTenants, rec); err != nil {
		return fmt.Errorf("insert tenant %s: %w", t.Code, err)
	}
	ix := newTenantIndexer(kept) // its statement facts point at the kept statements
	names := packStrings(slices.Sorted(maps.Keys(t.Members)))
	members := &MembersRecord{Tenant: t.Code, members: make([]MemberRecord, len(names))}
	for i, name := range names {
		m := t.Members[name] // name is a copy of the key
		grants, err := ix.memberGrants(m)
		if err != nil {
			return fmt.Errorf("index members of %s: %w", t.Code, err)
		}
		groupList, err := ix.groups.list(m.Groups)
		if err != nil {
			return fmt.Errorf("index members of %s: %w", t.Code, err)
		}
		members.members[i] = MemberRecord{Name: name, groups: groupList, grants: grants, isAdmin: m.IsAdmin,
			PackageACLs: aclTermsByName(m.PackageACLs), KeyACLs: aclTermsByName(m.KeyACLs)}
	}
	table := ix.finish()
	for i := range members.members {
		members.members[i].table = table
	}
	if err := w.txn.Insert(tableMembers, members); err != nil {
		return fmt.Errorf("insert members of %s: %w", t.Code, err)
	}
	if err := w.txn.Insert(tableObjectGroups, objects); err != nil {
		return fmt.Errorf("insert assignments of %s: %w", t.Code, err)
	}
	return nil
}

// DeleteTenant removes a tenant and everything stored for it (its
// run-time delegation requests and consents stay, in their own tables).
func (w *WriteTxn) DeleteTenant(code string) error {
	w.markTenant(code)
	if _, err := w.txn.DeleteAll(tableTenants, indexID, code); err != nil {
		return fmt.Errorf("delete tenant %s: %w", code, err)
	}
	if _, err := w.txn.DeleteAll(tableMembers, indexID, code); err != nil {
		return fmt.Errorf("delete members of %s: %w", code, err)
	}
	if _, err := w.txn.DeleteAll(tableObjectGroups, indexID, code); err != nil {
		return fmt.Errorf("delete assignments of %s: %w", code, err)
	}
	if _, err := w.txn.DeleteAll(tableKeys, indexTenant, code); err != nil {
		return fmt.Errorf("delete keys of %s: %w", code, err)
	}
	return nil
}

// PutPackage replaces a SOAJS product package.
func (w *WriteTxn) PutPackage(bundle string, p *acl.Package) error {
	if err := w.txn.Insert(tablePackages, &PackageRecord{Code: p.Code, Product: p.Product, Bundle: bundle, ACL: aclTerms(p.ACL)}); err != nil {
		return fmt.Errorf("insert package %s: %w", p.Code, err)
	}
	return nil
}

// PutService replaces a catalog service.
func (w *WriteTxn) PutService(bundle string, s *acl.Service) error {
	if err := w.txn.Insert(tableServices, &ServiceRecord{Name: s.Name, Bundle: bundle, Service: s}); err != nil {
		return fmt.Errorf("insert service %s: %w", s.Name, err)
	}
	w.servicesChanged = true
	return nil
}

// DeleteService removes a catalog service.
func (w *WriteTxn) DeleteService(name string) error {
	if _, err := w.txn.DeleteAll(tableServices, indexID, name); err != nil {
		return fmt.Errorf("delete service %s: %w", name, err)
	}
	w.servicesChanged = true
	return nil
}

// DeleteBundle removes every tenant and service the bundle supplied.
func (w *WriteTxn) DeleteBundle(bundle string) error {
	it, err := w.txn.Get(tableTenants, indexBundle, bundle)
	if err != nil {
		return fmt.Errorf("list tenants of bundle %s: %w", bundle, err)
	}
	var codes []string
	for obj := it.Next(); obj != nil; obj = it.Next() {
		codes = append(codes, obj.(*TenantRecord).Code)
	}
	for _, c := range codes {
		if err := w.DeleteTenant(c); err != nil {
			return err
		}
	}
	if _, err := w.txn.DeleteAll(tablePackages, indexBundle, bundle); err != nil {
		return fmt.Errorf("delete packages of bundle %s: %w", bundle, err)
	}
	n, err := w.txn.DeleteAll(tableServices, indexBundle, bundle)
	if err != nil {
		return fmt.Errorf("delete services of bundle %s: %w", bundle, err)
	}
	if n > 0 {
		w.servicesChanged = true
	}
	return nil
}

// rebuildRouteTables compiles the route table of every service and the one
// over all services.
func (w *WriteTxn) rebuildRouteTables() error {
	if _, err := w.txn.DeleteAll(tableRouteTables, indexID); err != nil {
		return fmt.Errorf("clear route tables: %w", err)
	}
	registered, err := w.Reader().Registrations()
	if err != nil {
		return err
	}
	it, err := w.txn.Get(tableServices, indexID)
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	byName := map[string]*acl.Service{}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		svc := obj.(*ServiceRecord).Service
		byName[svc.Name] = svc
	}
	// A registration overrides the bundles' service of the same name.
	for _, reg := range registered {
		byName[reg.Name] = reg.Service
	}
	all := make([]*acl.Service, 0, len(byName))
	for _, svc := range byName {
		all = append(all, svc)
		if err := w.txn.Insert(tableRouteTables, &RouteTableRecord{Scope: svc.Name, Table: route.NewTable(svc)}); err != nil {
			return fmt.Errorf("insert route table %s: %w", svc.Name, err)
		}
	}
	if err := w.txn.Insert(tableRouteTables, &RouteTableRecord{Scope: AllServices, Table: route.NewTable(all...)}); err != nil {
		return fmt.Errorf("insert route table: %w", err)
	}
	return nil
}

// Snapshot is an immutable view of the store. It is safe for concurrent use:
// every Reader reads the same frozen data, through its own read
// transaction or the snapshot's keyed tables.
type Snapshot struct {
	db *memdb.MemDB
	// keyed holds the records every decision looks up, read out of db
	// the first time a reader needs them (see keyedTables).
	keyedOnce sync.Once
	keyed     *keyedTables
}

// keyedTables are the tables a decision reads on every request - tenants,
// member lists, object groups and route tables, one record per tenant or
// route scope, and the application keys and packages of SOAJS requests - as
// plain maps by id. A memdb lookup allocates four times
// (its argument, the index key, the index path and a radix transaction),
// a map lookup not at all. They are read once per snapshot, which is
// frozen, so they always hold what memdb would answer.
type keyedTables struct {
	tenants      keyedTable[*TenantRecord]
	members      keyedTable[*MembersRecord]
	objectGroups keyedTable[*ObjectGroupsRecord]
	routeTables  keyedTable[*RouteTableRecord]
	keys         keyedTable[*KeyRecord]
	packages     keyedTable[*PackageRecord]
}

// keyedTable is one table by id; err (listing the table failed) is the
// answer to every lookup in it.
type keyedTable[T any] struct {
	byID map[string]T
	err  error
}

// readKeyed lists a table by its id index.
func readKeyed[T any](txn *memdb.Txn, table string, id func(T) string) keyedTable[T] {
	it, err := txn.Get(table, indexID)
	if err != nil {
		return keyedTable[T]{err: err}
	}
	t := keyedTable[T]{byID: map[string]T{}}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		rec := obj.(T)
		t.byID[id(rec)] = rec
	}
	return t
}

// keyedTables returns the snapshot's keyed tables, reading them the first
// time (Update reads them for the snapshot it returns, before any decision
// does).
func (s *Snapshot) keyedTables() *keyedTables {
	s.keyedOnce.Do(func() {
		txn := s.db.Txn(false)
		s.keyed = &keyedTables{
			tenants:      readKeyed(txn, tableTenants, func(r *TenantRecord) string { return r.Code }),
			members:      readKeyed(txn, tableMembers, func(r *MembersRecord) string { return r.Tenant }),
			objectGroups: readKeyed(txn, tableObjectGroups, func(r *ObjectGroupsRecord) string { return r.Tenant }),
			routeTables:  readKeyed(txn, tableRouteTables, func(r *RouteTableRecord) string { return r.Scope }),
			keys:         readKeyed(txn, tableKeys, func(r *KeyRecord) string { return r.Key }),
			packages:     readKeyed(txn, tablePackages, func(r *PackageRecord) string { return r.Code }),
		}
	})
	return s.keyed
}

// Read opens a reader for one decision. It costs nothing until it reads a
// table that is not keyed (see keyedTables): only then does it open its
// read transaction.
func (s *Snapshot) Read() *Reader {
	return &Reader{snap: s}
}

// Reader answers typed lookups on one frozen state: a snapshot's, or a
// write transaction's (WriteTxn.Reader), its own writes included.
type Reader struct {
	// snap is the snapshot read; nil inside a write transaction.
	snap *Snapshot
	// txn is the transaction read, opened on first use for a snapshot.
	txn *memdb.Txn
}

// tx is the reader's transaction.
func (r *Reader) tx() *memdb.Txn {
	if r.txn == nil {
		r.txn = r.snap.db.Txn(false)
	}
	return r.txn
}

// lookup finds the record with the id in a table keyed by id: in the
// snapshot's keyed tables, or in the write transaction (nil: none).
func lookup[T any](r *Reader, table, id string, keyed func(*keyedTables) *keyedTable[T]) (T, error) {
	if r.snap != nil {
		t := keyed(r.snap.keyedTables())
		return t.byID[id], t.err
	}
	var none T
	obj, err := r.txn.First(table, indexID, id)
	if err != nil || obj == nil {
		return none, err
	}
	return obj.(T), nil
}

// Tenant returns the tenant with the code, or nil.
func (r *Reader) Tenant(code string) (*TenantRecord, error) {
	rec, err := lookup(r, tableTenants, code, func(k *keyedTables) *keyedTable[*TenantRecord] { return &k.tenants })
	return rec, wrap(err, "tenant", code)
}

// Member returns the tenant's member, or nil.
func (r *Reader) Member(tenant, name string) (*MemberRecord, error) {
	rec, err := r.members(tenant)
	if err != nil || rec == nil {
		return nil, wrap(err, "member", name)
	}
	return rec.member(name), nil
}

// MemberNames lists the tenant's members by name, sorted (none for an
// unknown tenant).
func (r *Reader) MemberNames(tenant string) ([]string, error) {
	rec, err := r.members(tenant)
	if err != nil {
		return nil, fmt.Errorf("list members of %s: %w", tenant, err)
	}
	if rec == nil {
		return nil, nil
	}
	members := rec.members
	names := make([]string, len(members))
	for i := range members {
		names[i] = members[i].Name
	}
	return names, nil
}

// ObjectGroups returns the resource groups (lower case) the tenant's bundle
// assigns the object (lower-cased FRN) to.
func (r *Reader) ObjectGroups(tenant, frnLower string) ([]string, error) {
	rec, err := lookup(r, tableObjectGroups, tenant, func(k *keyedTables) *keyedTable[*ObjectGroupsRecord] { return &k.objectGroups })
	if err != nil || rec == nil {
		return nil, wrap(err, "object", frnLower)
	}
	return rec.Groups(frnLower), nil
}

// Key returns the application key, or nil.
func (r *Reader) Key(key string) (*KeyRecord, error) {
	rec, err := lookup(r, tableKeys, key, func(k *keyedTables) *keyedTable[*KeyRecord] { return &k.keys })
	return rec, wrap(err, "key", acl.ShortKey(key))
}

// Package returns the product package, or nil.
func (r *Reader) Package(code string) (*PackageRecord, error) {
	rec, err := lookup(r, tablePackages, code, func(k *keyedTables) *keyedTable[*PackageRecord] { return &k.packages })
	return rec, wrap(err, "package", code)
}

// RouteTable returns the route table of a service, or of all services for
// AllServices; nil when there is none.
func (r *Reader) RouteTable(scope string) (*route.Table, error) {
	rec, err := lookup(r, tableRouteTables, scope, func(k *keyedTables) *keyedTable[*RouteTableRecord] { return &k.routeTables })
	if err != nil || rec == nil {
		return nil, wrap(err, "route table", scope)
	}
	return rec.Table, nil
}

// Tenants lists every tenant, by code.
func (r *Reader) Tenants() ([]*TenantRecord, error) {
	it, err := r.tx().Get(tableTenants, indexID)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	var out []*TenantRecord
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*TenantRecord))
	}
	return out, nil
}

// Services lists every catalog service, by name.
func (r *Reader) Services() ([]*ServiceRecord, error) {
	it, err := r.tx().Get(tableServices, indexID)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var out []*ServiceRecord
	for obj := it.Next(); obj != nil; obj = it.Next() {
		out = append(out, obj.(*ServiceRecord))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Members counts the tenant's members.
func (r *Reader) Members(tenant string) (int, error) {
	rec, err := r.members(tenant)
	if err != nil {
		return 0, fmt.Errorf("list members of %s: %w", tenant, err)
	}
	if rec == nil {
		return 0, nil
	}
	return len(rec.members), nil
}

// members returns the tenant's members record, or nil.
func (r *Reader) members(tenant string) (*MembersRecord, error) {
	return lookup(r, tableMembers, tenant, func(k *keyedTables) *keyedTable[*MembersRecord] { return &k.members })
}

func wrap(err error, what, key string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("look up %s %q: %w", what, key, err)
}
