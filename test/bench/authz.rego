# METADATA
# title: verdict's IAM layer for plain OPA (the benchmark's comparison policy)
# description: |
#   What a capable OPA user would write to make verdict's IAM decisions
#   (README, "How a decision is made", layer 4) straight from the bundle
#   data, data.verdict.tenants.<tenant>: lookups by key wherever the data
#   allows one (tenant, member, role, group, policy, resource group), sets
#   so that each policy is weighed once, one else-chain for the outcome
#   (first match wins, no conflicts), statements filtered by action first
#   (the cheapest test that rejects most of them), and glob.match with ":"
#   as the delimiter only for patterns that hold a "*".
#
#   The answer is reasons-lite: allow plus the code of the reason that
#   decided (the same code verdict puts first among its deny reasons, or
#   first among its grants), and the policy and statement when one decided.
#
#   Covered: unknown tenant, anonymous, unknown member, admin, explicit
#   deny, owner, Allow via "*", object FRN (with "*" in the user code),
#   resource group, Principal, Condition, no_allow, not_covered, public
#   references for list/retrieve. Not covered (the generated worlds do not
#   use them): SOAJS keys and packages, routes, delegation, extensions,
#   tenants without the iam check, wildcards in resource-group codes and
#   upper-case resource-group codes in the data.
package bench.authz

tenant := data.verdict.tenants[input.tenant]

member := tenant.members[input.member]

action := lower(input.action)

frn := lower(input.resource.frn)

decision := {"allow": false, "code": "tenant.unknown"} if {
	not tenant
} else := {"allow": false, "code": "iam.anonymous"} if {
	not input.member
} else := {"allow": false, "code": "iam.unknown_member"} if {
	not member
} else := {"allow": true, "code": "iam.admin"} if {
	member.is_admin == true
} else := {"allow": false, "code": "iam.explicit_deny", "policy": d[0], "statement": d[1]} if {
	d := min(denied)
} else := {"allow": true, "code": "resource.owner"} if {
	input.resource.owner == input.member
} else := {"allow": true, "code": "iam.allow", "policy": a[0], "statement": a[1], "resource": a[2]} if {
	a := min(allowed)
} else := {"allow": true, "code": "resource.public"} if {
	some [_, _, "allow"] in applicable
	input.resource.reference == true
	read_action
} else := {"allow": false, "code": "resource.not_covered"} if {
	some [_, _, "allow"] in applicable
} else := {"allow": false, "code": "iam.no_allow"}

allow := decision.allow

# The member's policies: its own, its roles', its groups' and its groups'
# roles'. A set: each policy counts once.
member_policies contains p if some p in member.policies

member_policies contains p if {
	some r in member.roles
	some p in tenant.roles[r].policies
}

member_policies contains p if {
	some g in member.groups
	some p in tenant.groups[g].policies
}

member_policies contains p if {
	some g in member.groups
	some r in tenant.groups[g].roles
	some p in tenant.roles[r].policies
}

principals contains "*"

principals contains concat(":", ["member", input.member])

principals contains concat(":", ["group", g]) if some g in member.groups

# applicable: [policy, statement index, effect] for each statement whose
# Principal names the member, one of whose actions matches and whose
# Conditions all hold.
applicable contains [p, i, lower(st.Effect)] if {
	some p in member_policies
	some i, st in tenant.access_policies[p].Statement
	action_matches(st.Action)
	principal_ok(st)
	conditions_hold(st)
}

# action_matches: Action (a list or a string) holds a pattern that matches.
# Most patterns are literal: an equality settles them without glob.match
# (whose cache of compiled patterns holds only 100 entries).
action_matches(patterns) if {
	some p in patterns
	lower(p) == action
}

action_matches(patterns) if {
	some p in patterns
	contains(p, "*")
	glob.match(action_glob(p), [":"], action)
}

action_matches(pattern) if lower(pattern) == action

action_matches(pattern) if {
	is_string(pattern)
	contains(pattern, "*")
	glob.match(action_glob(pattern), [":"], action)
}

as_list(x) := x if is_array(x)
else := [x]

# A last part of exactly "*" matches any remaining parts ("finmars:*").
action_glob(p) := "**" if {
	p == "*"
} else := concat("", [lower(p), "*"]) if {
	endswith(p, ":*")
} else := lower(p)

principal_ok(st) if not st.Principal

principal_ok(st) if {
	some x in as_list(st.Principal)
	principals[x]
}

conditions_hold(st) if {
	every c in as_list(object.get(st, "Condition", [])) {
		data.verdict.conditions[c] == true
	}
}

# A Deny covers a request for an object when one of its resources covers
# the object; a request with no object only when it lists "*".
denied contains [p, i] if {
	some [p, i, "deny"] in applicable
	some r in as_list(tenant.access_policies[p].Statement[i].Resource)
	deny_covers(r)
}

deny_covers("*")

deny_covers(r) if {
	input.resource.frn
	covers(r)
}

# allowed: [policy, statement index, resource kind] for each covering Allow.
allowed contains [p, i, "none"] if {
	not input.resource.frn
	some [p, i, "allow"] in applicable
}

allowed contains [p, i, kind] if {
	input.resource.frn
	some [p, i, "allow"] in applicable
	some r in as_list(tenant.access_policies[p].Statement[i].Resource)
	kind := covers(r)
}

rg_prefix := "frn:finmars:iam:resourcegroup:"

covers("*") := "any"

covers(r) := "object" if {
	not startswith(lower(r), rg_prefix)
	not contains(r, "*")
	lower(r) == frn
}

covers(r) := "object" if {
	r != "*"
	not startswith(lower(r), rg_prefix)
	contains(r, "*")
	glob.match(lower(r), [], frn)
}

covers(r) := "group" if {
	startswith(lower(r), rg_prefix)
	some a in tenant.resource_groups[substring(r, count(rg_prefix), -1)].assignments
	lower(a) == frn
}

read_action if {
	parts := split(action, ":")
	parts[count(parts) - 1] in {"list", "retrieve"}
}
