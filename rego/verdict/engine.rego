# METADATA
# title: verdict decision engine
# description: |
#   Decides one request from the facts the Go engine gathered (input.facts)
#   and the request itself. Layers run in order; the first that denies
#   decides, and the reasons show every layer that granted before it.
#   See the README, "How a decision is made".
package verdict.engine

facts := input.facts

# --- outcome -----------------------------------------------------------------

outcome := {"denies": tenant_denies, "grants": []} if {
	count(tenant_denies) > 0
} else := {"denies": route_denies, "grants": []} if {
	count(route_denies) > 0
} else := {"denies": pkg.denies, "grants": []} if {
	count(pkg.denies) > 0
} else := {"denies": iam.denies, "grants": pkg.grants} if {
	count(iam.denies) > 0
} else := {"denies": ext_denies, "grants": array.concat(pkg.grants, iam.grants)} if {
	count(ext_denies) > 0
} else := {"denies": [], "grants": array.concat(pkg.grants, iam.grants)}

allow := count(outcome.denies) == 0

# status is what the calling service should answer.
status := 200 if {
	allow
} else := 401 if {
	outcome.denies[0].soajs_code in soajs_unauthenticated
} else := status_by_code[outcome.denies[0].code] if {
	status_by_code[outcome.denies[0].code]
} else := 403

status_by_code := {
	"tenant.unknown": 404,
	"route.unknown": 404,
	"iam.anonymous": 401,
}

soajs_unauthenticated := {154, 157, 158, 159, 160, 161}

visibility := "none" if {
	not allow
} else := "public" if {
	iam.public
} else := "full"

fields := ["id", "user_code", "public_name"] if {
	allow
	iam.public
} else := []

decision := {
	"allow": allow,
	"status": status,
	"visibility": visibility,
	"fields": fields,
	"reasons": array.concat(outcome.grants, outcome.denies),
}

# --- layer 1: tenant (and SOAJS key) -------------------------------------------

tenant_denies := [key_invalid] if {
	facts.key
	not key_valid
} else := [{
	"layer": "tenant",
	"code": "tenant.unknown",
	"effect": "deny",
	"message": sprintf("Unknown tenant %q.", [input.tenant]),
}] if {
	not facts.tenant
} else := [key_invalid] if {
	"package" in facts.tenant.checks
	not facts.key
} else := []

key_invalid := {
	"layer": "tenant",
	"code": "key.invalid",
	"effect": "deny",
	"soajs_code": 132,
	"message": soajs_messages[132],
}

# A key is valid when the store knows it, it has not expired and it belongs
# to the request's tenant.
key_valid if {
	facts.key.known
	not key_expired
	facts.key.tenant == input.tenant
}

key_expired if time.now_ns() >= facts.key.expires_ns

# --- layer 2: route ------------------------------------------------------------

route_denies := [{
	"layer": "route",
	"code": "route.unknown",
	"effect": "deny",
	"soajs_code": 130,
	"message": soajs_messages[130],
}] if {
	input.request
	not facts.route
} else := []

# --- layer 3: package (SOAJS) ------------------------------------------------------

pkg := {"denies": [], "grants": []} if {
	not "package" in facts.tenant.checks
} else := {"denies": [soajs_deny(154)], "grants": []} if {
	not service_acl
} else := {"denies": [package_check], "grants": []} if {
	package_check.effect == "deny"
} else := {"denies": [], "grants": [{
	"layer": "package",
	"code": "package.allow",
	"effect": "allow",
	"message": sprintf("The %s ACL of package %s allows %s %s on service %s.", [acl_source, facts.key.package, facts.route.method, facts.route.template, facts.route.service]),
}]}

soajs_messages := {
	130: "Unknown service.",
	132: "A valid key is needed to access any API.",
	154: "Access denied: The service is not available in your current package.",
	157: "You do not belong to a group with access to this System.",
	158: "You need to be logged in to access this System.",
	159: "System api access is restricted. api is not in provision.",
	160: "You do not belong to a group with access to this system API.",
	161: "You need to be logged in to access this API.",
}

soajs_reason_codes := {
	154: "package.service_denied",
	157: "package.group_denied",
	158: "package.login_required",
	159: "package.api_restricted",
	160: "package.api_group_denied",
	161: "package.api_login_required",
}

soajs_deny(code) := {
	"layer": "package",
	"code": soajs_reason_codes[code],
	"effect": "deny",
	"soajs_code": code,
	"message": soajs_messages[code],
}

# The ACL for the route's service is the first present of: the member's ACL
# for the key, the member's ACL for the package, the application's, the
# package's.
service_acl := facts.acl.member_key if {
	facts.acl.member_key
} else := facts.acl.member_package if {
	facts.acl.member_package
} else := facts.acl.application if {
	facts.acl.application
} else := facts.acl.package if {
	facts.acl.package
}

acl_source := "member key" if {
	facts.acl.member_key
} else := "member package" if {
	facts.acl.member_package
} else := "application" if {
	facts.acl.application
} else := "package"

# A per-method section, when present, supplies apis and apisPermission;
# whatever it leaves out comes from the service's entry.
method_section := service_acl.methods[lower(facts.route.method)]

acl_apis := method_section.apis if {
	method_section.apis
} else := service_acl.apis

acl_restricted := method_section.restricted if {
	is_boolean(method_section.restricted)
} else := service_acl.restricted

api := acl_apis[facts.route.api]

api_defined if api

logged_in if input.member

truthy(access) if access == true

truthy(access) if is_array(access)

# groups_missed: the access is a group list and the member is in none of them.
groups_missed(access) if {
	is_array(access)
	not member_in_any(access)
}

member_in_any(groups) if {
	some g in groups
	facts.member.groups[g]
}

package_check := soajs_deny(157) if {
	truthy(service_acl.access)
	logged_in
	groups_missed(service_acl.access)
} else := soajs_deny(158) if {
	truthy(service_acl.access)
	not logged_in
	api_missing_or_protected
} else := api_check if {
	truthy(service_acl.access)
} else := api_check if {
	api_defined
} else := api_check if {
	acl_restricted
} else := {"effect": "allow"}

api_missing_or_protected if not api_defined

api_missing_or_protected if truthy(api.access)

api_check := soajs_deny(159) if {
	acl_restricted
	not api_defined
} else := {"effect": "allow"} if {
	not api_defined
} else := {"effect": "allow"} if {
	not truthy(api.access)
} else := soajs_deny(161) if {
	not logged_in
} else := soajs_deny(160) if {
	groups_missed(api.access)
} else := {"effect": "allow"}

# --- layer 4: IAM (Finmars) ------------------------------------------------------

iam := {"denies": [], "grants": []} if {
	not "iam" in facts.tenant.checks
} else := {"denies": [iam_deny("iam.anonymous", "Authentication is required: the request names no member.")], "grants": []} if {
	not input.member
} else := {"denies": [iam_deny("iam.unknown_member", sprintf("Member %q is not a member of tenant %q.", [input.member, input.tenant]))], "grants": []} if {
	not facts.member
} else := {"denies": [], "grants": [{
	"layer": "iam",
	"code": "iam.admin",
	"effect": "allow",
	"message": sprintf("Member %q is an admin: access policies are not evaluated.", [input.member]),
}]} if {
	facts.member.is_admin
} else := {"denies": explicit_denies, "grants": []} if {
	count(explicit_denies) > 0
} else := {"denies": [], "grants": [{
	"layer": "iam",
	"code": "resource.owner",
	"effect": "allow",
	"message": sprintf("Member %q owns the object.", [input.member]),
}]} if {
	input.resource.owner == input.member
} else := {"denies": [], "grants": allow_grants} if {
	count(allow_grants) > 0
} else := {"denies": [], "grants": [public_grant], "public": true} if {
	count(applicable_allows) > 0
	input.resource.reference == true
	read_action
} else := {"denies": [iam_deny("resource.not_covered", sprintf(
	"%s is not authorized to perform: %s on resource: %s because no access policy that allows the '%s' action covers this object.",
	[user_frn, action_name, input.resource.frn, action_name],
))], "grants": []} if {
	count(applicable_allows) > 0
} else := {"denies": [iam_deny("iam.no_allow", sprintf(
	"%s is not authorized to perform: %s on resource: %s because no access policy allows the '%s' action.",
	[user_frn, action_name, action_resource, action_name],
))], "grants": []}

iam_deny(code, message) := {"layer": "iam", "code": code, "effect": "deny", "message": message}

user_frn := sprintf("User: frn:finmars:users:member:%s", [input.member])

action_parts := split(input.action, ":")

action_name := action_parts[count(action_parts) - 1]

action_resource := concat(":", array.slice(action_parts, 0, count(action_parts) - 1)) if {
	count(action_parts) > 1
} else := input.action

action_lower := lower(input.action)

# read_action: list, retrieve, or an action that a GET route maps to.
read_action if lower(action_name) in {"list", "retrieve"}

read_action if facts.get_route_action

# A statement applies when its Principal names the member, one of its
# actions matches and every Condition holds.
applies(s) if {
	some p in s.principals
	facts.member.principals[p]
	some a in s.actions
	glob.match(a, [":"], action_lower)
	every c in s.conditions {
		data.verdict.conditions[c] == true
	}
}

applicable_allows := [s | some s in facts.statements; s.effect == "allow"; applies(s)]

applicable_denies := [s | some s in facts.statements; s.effect == "deny"; applies(s)]

explicit_denies := [r |
	some s in applicable_denies
	deny_covers(s)
	r := {
		"layer": "iam",
		"code": "iam.explicit_deny",
		"effect": "deny",
		"policy": s.policy,
		"statement": s.statement,
		"message": sprintf(
			"%s is not authorized to perform: %s on resource: %s with an explicit deny in access policy %q, statement %d.",
			[user_frn, action_name, requested_resource, s.policy, s.statement],
		),
	}
]

requested_resource := input.resource.frn if input.resource.frn
else := action_resource

# A Deny covers a request for an object when one of its resources covers the
# object, and a request with no object only when it lists "*".
deny_covers(s) if {
	input.resource.frn
	some r in s.resources
	resource_rule(r)
}

deny_covers(s) if {
	not input.resource.frn
	some r in s.resources
	r.kind == "any"
}

# The first Allow that covers the request grants it.
allow_grants := [
	{
		"layer": "iam",
		"code": "iam.allow",
		"effect": "allow",
		"policy": s.policy,
		"statement": s.statement,
		"message": sprintf("Access policy %q, statement %d, allows %s.", [s.policy, s.statement, input.action]),
	},
	object.union({"layer": "iam", "effect": "allow", "policy": s.policy, "statement": s.statement}, rule),
] if {
	covering := [[s, rule] |
		some s in applicable_allows
		rule := allow_rule(s)
	]
	[s, rule] := covering[0]
}

# allow_rule names the resource rule by which an Allow covers the request.
allow_rule(s) := {"code": "resource.any", "message": "The request names no object; the statement covers the action."} if {
	not input.resource.frn
} else := rule if {
	rules := [rule | some r in s.resources; rule := resource_rule(r)]
	rule := rules[0]
}

resource_rule(r) := {"code": "resource.any", "message": "The statement covers every object."} if {
	r.kind == "any"
} else := {"code": "resource.object", "message": sprintf("The statement names the object %s.", [input.resource.frn])} if {
	r.kind == "object"
	r.literal
	r.pattern == facts.resource.frn
} else := {"code": "resource.object", "message": sprintf("The statement names the object %s.", [input.resource.frn])} if {
	r.kind == "object"
	not r.literal
	glob.match(r.pattern, null, facts.resource.frn)
} else := {"code": "resource.group", "resource_group": r.pattern, "message": sprintf("The object is in resource group %q.", [r.pattern])} if {
	r.kind == "group"
	r.literal
	facts.resource.groups[r.pattern]
} else := {"code": "resource.group", "resource_group": g, "message": sprintf("The object is in resource group %q.", [g])} if {
	r.kind == "group"
	not r.literal
	matching := sort([g | some g in facts.resource.groups; glob.match(r.pattern, null, g)])
	g := matching[0]
}

public_grant := {
	"layer": "iam",
	"code": "resource.public",
	"effect": "allow",
	"message": sprintf("%s is a reference to an object the member may not read: only its public fields (id, user_code, public_name) are visible.", [input.resource.frn]),
}

# --- layer 6: extensions -----------------------------------------------------------

ext_denies := [r |
	some d in data.verdict.ext.deny
	r := {
		"layer": "ext",
		"code": object.get(d, "code", "ext.deny"),
		"effect": "deny",
		"message": object.get(d, "message", "Denied by a bundle extension rule."),
	}
]
