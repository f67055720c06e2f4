// Package store keeps verdict's loaded ACL facts in go-memdb: tenants, their
// members with their statements indexed by action, object-to-resource-group assignments,
// services and route tables.
//
// Writers change the database inside one write transaction; readers take a
// Snapshot, an immutable view with typed accessors (a reader never sees
// memdb's interface{} values). The layout follows HashiCorp Nomad's
// nomad/state: one schema function per table, each index commented with what
// it looks up.
package store

import memdb "github.com/hashicorp/go-memdb"

const (
	tableTenants      = "tenants"
	tableMembers      = "members"
	tableObjectGroups = "object_groups"
	tableServices     = "services"
	tableRouteTables  = "route_tables"
	tableKeys         = "keys"
	tablePackages     = "packages"
	// Run-time changes (see runtime.go).
	tableRegistrations      = "registrations"
	tableDelegationRequests = "delegation_requests"
	tableConsents           = "delegation_consents"
	tableDelegations        = "delegations"

	indexID       = "id"
	indexIDPrefix = "id_prefix"
	indexTenant   = "tenant"
	indexBundle   = "bundle"
)

func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableTenants:      tenantsTable(),
		tableMembers:      membersTable(),
		tableObjectGroups: objectGroupsTable(),
		tableServices:     servicesTable(),
		tableRouteTables:  routeTablesTable(),
		tableKeys:         keysTable(),
		tablePackages:     packagesTable(),

		tableRegistrations:      registrationsTable(),
		tableDelegationRequests: delegationRequestsTable(),
		tableConsents:           consentsTable(),
		tableDelegations:        delegationsTable(),
	}}
}

// tenantsTable holds one TenantRecord per tenant code.
func tenantsTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableTenants,
		Indexes: map[string]*memdb.IndexSchema{
			// id looks a tenant up by its code.
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Code"}},
			// bundle finds the tenants a bundle supplied, to replace them on reload.
			indexBundle: {Name: indexBundle, Indexer: &memdb.StringFieldIndex{Field: "Bundle"}},
		},
	}
}

// membersTable holds one MembersRecord per tenant: the tenant's members in
// a table sorted by name, replaced as a whole with the tenant (a radix tree
// entry per member cost ~0.8 KiB and an insert each at load).
func membersTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableMembers,
		Indexes: map[string]*memdb.IndexSchema{
			// id looks a tenant's members up by tenant code.
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Tenant"}},
		},
	}
}

// objectGroupsTable holds one ObjectGroupsRecord per tenant: the resource
// groups its bundle assigns each object (lower-cased FRN) to, in a table
// sorted by FRN, replaced as a whole with the tenant.
func objectGroupsTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableObjectGroups,
		Indexes: map[string]*memdb.IndexSchema{
			// id looks a tenant's assignments up by tenant code.
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Tenant"}},
		},
	}
}

// servicesTable holds one ServiceRecord per catalog service.
func servicesTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableServices,
		Indexes: map[string]*memdb.IndexSchema{
			// id looks a service up by name.
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			// bundle finds the services a bundle supplied.
			indexBundle: {Name: indexBundle, Indexer: &memdb.StringFieldIndex{Field: "Bundle"}},
		},
	}
}

// routeTablesTable holds the compiled route table of each service, and the
// table over all services under the scope "*" (used when a request names no
// service).
func routeTablesTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableRouteTables,
		Indexes: map[string]*memdb.IndexSchema{
			// id looks a route table up by service name, or "*" for all services.
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Scope"}},
		},
	}
}

// keysTable holds one KeyRecord per application key (SOAJS external key).
func keysTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableKeys,
		Indexes: map[string]*memdb.IndexSchema{
			// id looks a key up by its value: a request's key names its tenant.
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
			// tenant finds every key of a tenant.
			indexTenant: {Name: indexTenant, Indexer: &memdb.StringFieldIndex{Field: "Tenant"}},
		},
	}
}

// packagesTable holds one PackageRecord per SOAJS product package.
func packagesTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tablePackages,
		Indexes: map[string]*memdb.IndexSchema{
			// id looks a package up by its code.
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Code"}},
			// bundle finds the packages a bundle supplied.
			indexBundle: {Name: indexBundle, Indexer: &memdb.StringFieldIndex{Field: "Bundle"}},
		},
	}
}

// registrationsTable holds one RegistrationRecord per service registered at
// run time (PUT /v1/services/{name}). A registration overrides the bundles'
// service of the same name; bundle reloads do not touch this table.
func registrationsTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableRegistrations,
		Indexes: map[string]*memdb.IndexSchema{
			// id looks a registration up by service name.
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
		},
	}
}

// delegationIndexer indexes tenant, application and group.
func delegationIndexer() memdb.Indexer {
	return &memdb.CompoundIndex{Indexes: []memdb.Indexer{
		&memdb.StringFieldIndex{Field: "Tenant"},
		&memdb.StringFieldIndex{Field: "Application"},
		&memdb.StringFieldIndex{Field: "Group"},
	}}
}

// delegationRequestsTable holds the requests applications made at run time
// (POST /v1/tenants/{t}/applications/{app}/permissions). Bundle reloads do
// not touch this table.
func delegationRequestsTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableDelegationRequests,
		Indexes: map[string]*memdb.IndexSchema{
			// id looks a request up by tenant, application and group; a
			// prefix of it lists an application's requests.
			indexID: {Name: indexID, Unique: true, Indexer: delegationIndexer()},
			// tenant finds every request made in a tenant.
			indexTenant: {Name: indexTenant, Indexer: &memdb.StringFieldIndex{Field: "Tenant"}},
		},
	}
}

// consentsTable holds the members' run-time consents and withdrawals
// (PUT …/permissions/{group}/users/{member}/enabled). Bundle reloads do not
// touch this table.
func consentsTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableConsents,
		Indexes: map[string]*memdb.IndexSchema{
			// id looks a consent up by tenant, application, group and member.
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.StringFieldIndex{Field: "Tenant"},
				&memdb.StringFieldIndex{Field: "Application"},
				&memdb.StringFieldIndex{Field: "Group"},
				&memdb.StringFieldIndex{Field: "Member"},
			}}},
			// tenant finds every consent given in a tenant.
			indexTenant: {Name: indexTenant, Indexer: &memdb.StringFieldIndex{Field: "Tenant"}},
		},
	}
}

// delegationsTable holds the effective delegation entries: the tenant
// bundle's delegations with the run-time requests and consents layered on
// top, rebuilt for a tenant whenever either changes. Decisions read it.
func delegationsTable() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableDelegations,
		Indexes: map[string]*memdb.IndexSchema{
			// id looks an entry up by tenant, application and group; a prefix
			// of it lists an application's entries.
			indexID: {Name: indexID, Unique: true, Indexer: delegationIndexer()},
			// tenant finds every entry of a tenant, to rebuild them.
			indexTenant: {Name: indexTenant, Indexer: &memdb.StringFieldIndex{Field: "Tenant"}},
		},
	}
}
