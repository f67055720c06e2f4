# Policy-as-code checks on ACL changes. A reload runs data.verdict.lint.deny
# on every new bundle version (input: {bundle, revision, operation, catalog,
# tenants, previous}); each element rejects the version with its message,
# and the last good version keeps serving.
package verdict.lint

# No statement may allow every action: make the member an admin instead.
deny contains {"file": sprintf("verdict/tenants/%s/data.yaml", [code]), "entry": sprintf("access_policies.%s.Statement[%d].Action", [name, i]), "message": sprintf("Allow on %q is too broad; give is_admin to the members who need everything", [a])} if {
	some code, tenant in input.tenants
	some name, policy in tenant.access_policies
	some i, s in policy.Statement
	lower(s.Effect) == "allow"
	some a in as_list(s.Action)
	lower(a) in {"*", "finmars:*"}
}

as_list(x) := [x] if is_string(x)

as_list(x) := x if is_array(x)
