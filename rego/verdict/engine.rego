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
} else := {"denies": iam.denies, "grants": []} if {
	count(iam.denies) > 0
} else := {"denies": ext_denies, "grants": iam.grants} if {
	count(ext_denies) > 0
} else := {"denies": [], "grants": iam.grants}

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

# --- layer 1: tenant -----------------------------------------------------------

tenant_denies := [{
	"layer": "tenant",
	"code": "tenant.unknown",
	"effect": "deny",
	"message": sprintf("Unknown tenant %q.", [input.tenant]),
}] if {
	not facts.tenant
} else := []

# --- layer 2: route ------------------------------------------------------------

route_denies := [{
	"layer": "route",
	"code": "route.unknown",
	"effect": "deny",
	"soajs_code": 130,
	"message": "Unknown service.",
}] if {
	input.request
	not facts.route
} else := []

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
