# METADATA
# title: verdict decision engine
# description: |
#   Decides one request from the facts the Go engine gathered (input.facts)
#   and the request itself. Layers run in order; the first that denies
#   decides, and the reasons show every layer that granted before it.
#   See the README, "How a decision is made".
#
#   The rules are written for evaluation speed as well as for reading: every
#   rule reference costs the evaluator a few microseconds, so each layer is
#   one rule (an else-chain), statements are examined in comprehensions, and
#   facts are read as input.facts directly rather than through a helper rule.
#   For the same reason the reasons of the tenant, route, package and IAM
#   layers carry no message: Go renders it from the code and the arguments
#   here (decision/messages.go; README "The engine's documents").
package verdict.engine

import future.keywords.or

# --- outcome -----------------------------------------------------------------

# decision is the answer of the first layer that denies, with the grants of
# the layers that passed before it; or, when every layer positively passed,
# an allow with every layer's grants; otherwise a deny.
#
# Default deny, whatever the input: in an else-chain a branch whose body
# holds but whose value is undefined (a message built from a missing fact,
# say) falls through to the next branch, so "no layer denied" must never be
# taken from the chain having reached its end. An allow needs layers_pass:
# every layer's outcome defined and without a deny. Anything else - a layer
# undefined because a fact it needs is missing or malformed - ends in the
# last branch, a deny.
#
# The branches before the last are fast paths, layered_decision (the
# chain after them) the definition. Each fast branch is guarded by tests
# that read input only - equalities with literals first
# (input.facts.tenant["package"] == false, input.resource.reference ==
# true), which OPA's rule index reads, so that a request they exclude
# skips the branch without evaluating it - and its guards imply what every
# layer of the chain answers for such a request, so it gives the same
# decision with far fewer rule evaluations:
#   - a request only the package layer judges that it allows;
#   - then, for a request with a fact that brings in a layer besides IAM -
#     the package layer (checks["package"]), a key, a consistency
#     requirement, an application - the chain itself. These branches
#     unify the fact with a wildcard ("_ = ref"), which the rule index
#     reads as a reference that must be defined: a request without those
#     facts (most of them) skips them unevaluated, and the branches after
#     them need not test the facts' absence (by negations, each an
#     evaluation of its own);
#   - the most common answer (about half of all requests: none of the
#     member's statements matches the action) as a literal object: state,
#     tenant, route and package layers pass and IAM denies with
#     iam.no_allow; the literal is what deny_decision builds from
#     no_allow_deny;
#   - a request only IAM judges, for a known member: IAM's denies, or its
#     grants, read from iam_member, which is what iam is then without its
#     tests for a tenant without IAM, an anonymous request and an unknown
#     member.
# The facts the IAM branches need present are tested by their types
# (calls, which the evaluator answers without the variable a bare
# reference costs it: three allocations each); a fact of another type only
# sends the request down the chain.
# Changing a layer means changing these branches with it;
# TestGoldenDecisions (decision/golden_test.go) holds every answer to a
# recorded set.

# METADATA
# entrypoint: true
decision := {
	"allow": true,
	"status": 200,
	"visibility": "full",
	"fields": [],
	"reasons": [{
		"layer": "package",
		"code": "package.allow",
		"effect": "allow",
		"acl_source": "package",
	}],
} if {
	# A request only the package layer judges: no IAM layer, application or
	# consistency, so the IAM, delegation and state layers pass without a
	# grant; when the tenant, route, package and extension layers deny
	# nothing, the package's grant allows. This branch is the next one
	# for the commonest grant, the package's own ACL's, with the value a
	# literal, which the evaluator does not copy.
	input.facts.tenant["package"] == true
	not input.facts.tenant.checks.iam
	not input.application
	not input.consistency
	tenant_denies == []
	route_denies == []
	pkg == {"denies": [], "grants": [{
		"layer": "package",
		"code": "package.allow",
		"effect": "allow",
		"acl_source": "package",
	}]}
	ext_denies == []
} else := {
	"allow": true,
	"status": 200,
	"visibility": "full",
	"fields": [],
	"reasons": pkg.grants,
} if {
	input.facts.tenant["package"] == true
	not input.facts.tenant.checks.iam
	not input.application
	not input.consistency
	tenant_denies == []
	route_denies == []
	pkg.denies == []
	ext_denies == []
} else := layered_decision if {
	_ = input.facts.tenant.checks["package"]
} else := layered_decision if {
	_ = input.facts.key
} else := layered_decision if {
	_ = input.consistency
} else := layered_decision if {
	_ = input.application
} else := {
	"allow": false,
	"status": 403,
	"visibility": "none",
	"fields": [],
	"reasons": [{
		"layer": "iam",
		"code": "iam.no_allow",
		"effect": "deny",
	}],
} if {
	input.facts.statements == [] # no statement matches the member and action
	input.facts.tenant["package"] == false # the package layer does not apply,
	input.facts.member.is_admin == false # a known member who is no admin
	input.facts.tenant.checks.iam == "iam" # the IAM layer does
	is_object(input.facts.route) # a known route
	is_string(input.member)
	not input.resource.owner == input.member # and does not own the object
} else := {
	"allow": false,
	"status": 403,
	"visibility": "none",
	"fields": [],
	"reasons": denies,
} if {
	# The next three branches are the layered chain for a request only
	# IAM judges: the state, tenant, route, package and delegation layers
	# pass without a grant, so IAM's denies decide, or, when no extension
	# denies either, IAM's grants allow. This one is what deny_decision
	# builds from IAM's denies for a known member (none of them is
	# iam.anonymous, the one IAM deny answered with 401).
	input.facts.tenant["package"] == false
	input.facts.tenant.checks.iam == "iam"
	is_object(input.facts.route)
	is_string(input.member)
	is_object(input.facts.member)
	denies := iam_member.denies
	denies != []
} else := {
	"allow": true,
	"status": 200,
	"visibility": "public",
	"fields": ["id", "user_code", "public_name"],
	"reasons": member_iam.grants,
} if {
	input.facts.tenant["package"] == false
	input.resource.reference == true # only a reference can be public
	input.facts.tenant.checks.iam == "iam"
	is_object(input.facts.route)
	is_string(input.member)
	is_object(input.facts.member)
	member_iam := iam_member
	member_iam.denies == []
	ext_denies == []
	member_iam.public
} else := {
	"allow": true,
	"status": 200,
	"visibility": "full",
	"fields": [],
	"reasons": member_iam.grants,
} if {
	input.facts.tenant["package"] == false
	input.facts.tenant.checks.iam == "iam"
	is_object(input.facts.route)
	is_string(input.member)
	is_object(input.facts.member)
	member_iam := iam_member
	member_iam.denies == []
	ext_denies == []
} else := layered_decision

# layered_decision is the definition of decision: the first layer that
# denies decides; when none does, an allow with every layer's grants. The
# fast branches of decision above are cases of it. It is a rule of its own
# so that the rule index, which returns every candidate branch of a rule on
# each reference, hands a request on a fast path only the fast branches.
layered_decision := deny_decision(state_denies, []) if {
	state_denies != []
} else := deny_decision(tenant_denies, []) if {
	tenant_denies != []
} else := deny_decision(route_denies, []) if {
	route_denies != []
} else := deny_decision(pkg.denies, []) if {
	pkg.denies != []
} else := deny_decision(iam.denies, pkg.grants) if {
	iam.denies != []
} else := deny_decision(delegation.denies, array.concat(pkg.grants, iam.grants)) if {
	delegation.denies != []
} else := deny_decision(ext_denies, grants) if {
	ext_denies != []
} else := {
	"allow": true,
	"status": 200,
	"visibility": "public",
	"fields": ["id", "user_code", "public_name"],
	"reasons": grants,
} if {
	iam.public
	layers_pass
} else := {
	"allow": true,
	"status": 200,
	"visibility": "full",
	"fields": [],
	"reasons": grants,
} if {
	layers_pass
} else := deny_decision([incomplete_deny], [])

# layers_pass: every layer's outcome is defined and none denies.
layers_pass if {
	state_denies == []
	tenant_denies == []
	route_denies == []
	pkg.denies == []
	iam.denies == []
	delegation.denies == []
	ext_denies == []
}

# incomplete_deny: some layer could not reach an outcome (a fact it needs is
# missing or malformed). The engine always gathers every fact, so this is an
# internal error, answered as Go answers its own (error.internal, 403).
incomplete_deny := {
	"layer": "engine",
	"code": "error.internal",
	"effect": "deny",
}

deny_decision(denies, granted) := {
	"allow": false,
	# What the calling service should answer: 401 for the SOAJS "log in"
	# and "not in your package" codes, 404 for an unknown tenant or route,
	# 401 for an anonymous request, otherwise 403.
	"status": object.get(
		{154: 401, 157: 401, 158: 401, 159: 401, 160: 401, 161: 401},
		object.get(denies[0], "soajs_code", null),
		object.get({"tenant.unknown": 404, "route.unknown": 404, "iam.anonymous": 401}, denies[0].code, 403),
	),
	"visibility": "none",
	"fields": [],
	"reasons": array.concat(granted, denies),
}

# grants are the reasons of every layer that grants, in layer order.
grants := array.concat(array.concat(pkg.grants, iam.grants), delegation.grants)

# verdict splits the decision's reasons into the deciding layer's denies and
# the grants before it (used by the list plan).
verdict := {
	"denies": [r | some r in decision.reasons; r.effect == "deny"],
	"grants": [r | some r in decision.reasons; r.effect != "deny"],
}

# --- layer 1: tenant (and SOAJS key) -------------------------------------------

tenant_denies := [] if {
	# The common case first: a key the store knows, without an expiry,
	# of the request's tenant (known == true is an equality OPA's rule
	# index reads, so a request without a key skips the branch). It is
	# what the branches below answer then, without key_valid's rules and
	# the clock.
	input.facts.key.known == true
	not input.facts.key.expires_ns
	input.facts.key.tenant == input.tenant
	is_object(input.facts.tenant)
} else := [key_invalid] if {
	input.facts.key
	not key_valid
} else := [{
	"layer": "tenant",
	"code": "tenant.unknown",
	"effect": "deny",
}] if {
	not input.facts.tenant
} else := [key_invalid] if {
	input.facts.tenant.checks["package"]
	not input.facts.key
} else := [] if {
	is_object(input.facts.tenant)
}

key_invalid := {
	"layer": "tenant",
	"code": "key.invalid",
	"effect": "deny",
	"soajs_code": 132,
}

# A key is valid when the store knows it, it has not expired and it belongs
# to the request's tenant.
key_valid if {
	input.facts.key.known
	not key_expired
	input.facts.key.tenant == input.tenant
}

key_expired if time.now_ns() >= input.facts.key.expires_ns

# --- layer 2: route ------------------------------------------------------------

route_denies := [] if {
	# The common case first: a route matched, so nothing below denies.
	is_object(input.facts.route)
} else := [{
	"layer": "route",
	"code": "route.unknown",
	"effect": "deny",
	"soajs_code": 130,
}] if {
	input.request
	not input.facts.route
} else := []

# --- layer 3: package (SOAJS) ------------------------------------------------------

pkg := {"denies": [], "grants": [{
	"layer": "package",
	"code": "package.allow",
	"effect": "allow",
	"acl_source": "package",
}]} if {
	# The common case first: the layer applies, the package's ACL
	# governs, the route has an API, and the checks allow. It is what the
	# branches below answer then. (The next branch is the same for any
	# ACL; this one's value is a literal, which the evaluator does not
	# copy.)
	input.facts.tenant["package"] == true
	acl_source == "package"
	is_object(service_acl)
	is_string(input.facts.package_route.api)
	package_check.effect == "allow"
} else := {"denies": [], "grants": [{
	"layer": "package",
	"code": "package.allow",
	"effect": "allow",
	"acl_source": acl_source,
}]} if {
	input.facts.tenant["package"] == true
	is_object(service_acl)
	is_string(input.facts.package_route.api)
	package_check.effect == "allow"
} else := {"denies": [], "grants": []} if {
	not input.facts.tenant.checks["package"]
} else := {"denies": [soajs_deny(154)], "grants": []} if {
	not service_acl
} else := {"denies": [incomplete_deny], "grants": []} if {
	# The ACL is judged on the route of the action (see package_route in
	# decision/engine.go); without it no API could be checked. (A reference,
	# not "not is_object(...)": OPA moves a call's reference operands out of
	# the negation, so that would be undefined, not true, when the fact is
	# missing; open-policy-agent/opa#1877, TestNoNegatedCallOnARef.)
	not input.facts.package_route.api
} else := {"denies": [package_check], "grants": []} if {
	package_check.effect == "deny"
} else := {"denies": [], "grants": [{
	"layer": "package",
	"code": "package.allow",
	"effect": "allow",
	"acl_source": acl_source,
}]}

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
}

# The ACL for the route's service is the first present of: the member's ACL
# for the key, the member's ACL for the package, the application's, the
# package's.
service_acl := input.facts.acl.member_key if {
	input.facts.acl.member_key
} else := input.facts.acl.member_package if {
	input.facts.acl.member_package
} else := input.facts.acl.application if {
	input.facts.acl.application
} else := input.facts.acl.package if {
	input.facts.acl.package
}

acl_source := "member key" if {
	input.facts.acl.member_key
} else := "member package" if {
	input.facts.acl.member_package
} else := "application" if {
	input.facts.acl.application
} else := "package"

# A per-method section, when present, supplies apis and apisPermission;
# whatever it leaves out comes from the service's entry.
method_section := service_acl.methods[lower(input.facts.package_route.method)]

acl_restricted := method_section.restricted if {
	is_boolean(method_section.restricted)
} else := service_acl.restricted

# api: the route's API in the method section's apis when it has any,
# otherwise in the service's. (One rule rather than a rule for the apis and
# one for the API in them: when the section has apis without the route's,
# the first branch's value is undefined and the second's body fails, so api
# is undefined, as the section's apis leave it. The second branch tests
# method_section, which is undefined without a method, where the first
# branch's call in a negation would be; see pkg.)
api := section.apis[input.facts.package_route.api] if {
	section := service_acl.methods[lower(input.facts.package_route.method)]
	section.apis
} else := service_acl.apis[input.facts.package_route.api] if {
	not method_section.apis
}

api_defined if api

truthy(access) if access == true

truthy(access) if is_array(access)

# groups_missed: the access is a group list and the member is in none of them.
groups_missed(access) if {
	is_array(access)
	not member_in_any(access)
}

member_in_any(groups) if {
	some g in groups
	input.facts.member.groups[g]
}

# package_check: the SOAJS checks of the service's ACL and the route's API,
# in SOAJS's order (README "How a decision is made", layer 3).
package_check := {"effect": "allow"} if {
	# The common allow first: a logged-in member in one of the groups the
	# service's access lists and in one of those the route's API lists.
	# It implies what the chain below answers then, an allow (157 and 160
	# need a group list the member is in none of, 158 and 161 no member,
	# 159 no API), with fewer rules evaluated.
	is_string(input.member)
	some service_group in service_acl.access
	input.facts.member.groups[service_group] == service_group
	some api_group in api.access
	input.facts.member.groups[api_group] == api_group
} else := soajs_deny(157) if {
	# A logged-in member outside the service's groups (a group list is
	# truthy access).
	input.member
	groups_missed(service_acl.access)
} else := soajs_deny(158) if {
	truthy(service_acl.access)
	not input.member
	api_missing_or_protected
} else := soajs_deny(159) if {
	# Then the API: with the service's access truthy, an API listed or the
	# service restricted (otherwise nothing below can deny: no API, not
	# restricted, allows).
	acl_restricted
	not api_defined
} else := {"effect": "allow"} if {
	not api_defined
} else := {"effect": "allow"} if {
	not api_protected
} else := soajs_deny(161) if {
	not input.member
} else := soajs_deny(160) if {
	groups_missed(api.access)
} else := {"effect": "allow"}

api_missing_or_protected if not api_defined

api_missing_or_protected if api_protected

# api_protected: the API's access asks for a login (true or a group list).
# An API without access is open: "not api_protected" holds then, where
# "not truthy(api.access)" would be undefined (see pkg).
api_protected if truthy(api.access)

# --- layer 4: IAM (Finmars) ------------------------------------------------------

# iam: the IAM layer's outcome. For a tenant with the IAM layer, a named
# member it knows - the common case, tested first with bare references the
# rule index reads - it is iam_member's.
iam := iam_member if {
	input.facts.tenant.checks.iam
	input.member
	input.facts.member
} else := {"denies": [], "grants": []} if {
	not input.facts.tenant.checks.iam
} else := {"denies": [iam_deny("iam.anonymous")], "grants": []} if {
	not input.member
} else := {"denies": [iam_deny("iam.unknown_member")], "grants": []} if {
	not input.facts.member
}

# iam_member: the IAM layer's outcome for a known member of a tenant with
# the IAM layer.
iam_member := {"denies": [], "grants": [{
	"layer": "iam",
	"code": "iam.admin",
	"effect": "allow",
}]} if {
	# Equalities with literals, which OPA's rule index reads: a member
	# who is no admin, or who has matching statements, skips the branch
	# unevaluated (is_admin is a boolean, statements an array).
	input.facts.member.is_admin == true
} else := {"denies": [{"layer": "iam", "code": "iam.no_allow", "effect": "deny"}], "grants": []} if {
	# No matching statement: nothing can deny or allow explicitly, and
	# the member does not own the object.
	input.facts.statements == []
	not input.resource.owner == input.member
} else := {"denies": explicit_denies, "grants": []} if {
	# Only a statement that denies can deny: without one among the
	# statements (most requests), explicit_denies is not built.
	some s in input.facts.statements
	s.effect == "deny"
	explicit_denies != []
} else := {"denies": [], "grants": [{
	"layer": "iam",
	"code": "resource.owner",
	"effect": "allow",
}]} if {
	_ = input.resource.owner # read by the rule index: most requests name no owner
	input.resource.owner == input.member
} else := {"denies": [], "grants": [
	{
		"layer": "iam",
		"code": "iam.allow",
		"effect": "allow",
		"policy": s.policy,
		"statement": s.statement,
	},
	resource_grant(s, r),
]} if {
	# The branches that need an object require input.facts.resource.frn,
	# which OPA's rule index reads (a reference unified with a variable,
	# "_ = ref", must be defined, as a bare reference must; evaluated, it
	# costs less than a bare reference, which the evaluator tests through
	# a generated variable): a request without an object skips them
	# unevaluated, and one with an object never reaches the last branch,
	# the allow without an object.
	# The order is otherwise the definition's: an Allow that covers the
	# object allows (there is an applicable Allow then), else no Allow
	# denies with iam.no_allow, else a reference shows public fields,
	# else resource.not_covered denies.
	[s, r] := covering_allows[0]
	_ = input.facts.resource.frn
} else := {"denies": [{"layer": "iam", "code": "iam.no_allow", "effect": "deny"}], "grants": []} if {
	applicable_allows == []
} else := {
	"denies": [], "grants": [{
		"layer": "iam",
		"code": "resource.public",
		"effect": "allow",
	}],
	"public": true,
} if {
	input.resource.reference == true
	_ = input.facts.resource.frn
	read_action
	_ = input.resource.frn # the message names it
} else := {
	"denies": [{"layer": "iam", "code": "resource.not_covered", "effect": "deny"}],
	"grants": [],
} if {
	_ = input.facts.resource.frn
	_ = input.resource.frn # the message names it
} else := {"denies": [], "grants": [
	{
		"layer": "iam",
		"code": "iam.allow",
		"effect": "allow",
		"policy": s.policy,
		"statement": s.statement,
	},
	{
		"layer": "iam",
		"code": "resource.any",
		"effect": "allow",
		"policy": s.policy,
		"statement": s.statement,
	},
]} if {
	# A request without an object is covered by any Allow: the first.
	not input.facts.resource.frn
	s := applicable_allows[0]
}

iam_deny(code) := {"layer": "iam", "code": code, "effect": "deny"}

# no_allow_deny is IAM's iam.no_allow deny (the Data API answers its
# message). The rules above write it out as a literal: a reference to a
# rule, or a call of iam_deny, costs the evaluator a rule lookup and a
# copy of the value on every decision, a literal nothing.
no_allow_deny := {
	"layer": "iam",
	"code": "iam.no_allow",
	"effect": "deny",
}

action_lower := lower(input.action)

# action splits the action for messages: finmars:Portfolio:list has the
# name list and the resource finmars:Portfolio. The Go side provides it as
# input.facts.action; the rest is for inputs built by hand (tests).
action := input.facts.action if {
	input.facts.action.name
	input.facts.action.resource
} else := {
	"name": action_parts[count(action_parts) - 1],
	"resource": concat(":", array.slice(action_parts, 0, count(action_parts) - 1)),
} if {
	count(action_parts) > 1
} else := {"name": input.action, "resource": input.action}

action_parts := split(input.action, ":")

# read_action: list, retrieve, or an action that a GET route maps to.
read_action if lower(action.name) in {"list", "retrieve"}

read_action if input.facts.get_route_action

# matching(s): the statement's Principal names the member and one of its
# actions matches the request's (glob patterns, ":" delimits parts).
matching(s) if {
	count([p | some p in s.principals; input.facts.member.principals[p]]) > 0
	count([a | some a in s.actions; glob.match(a, [":"], action_lower)]) > 0
}

# applicable: the matching statements whose Conditions all hold
# (data.verdict.conditions.<name>; undefined counts as false). A statement
# without Conditions, most of them, is taken on a comparison with [], which
# costs a fraction of an "every" over none.
#
# verdict's Go side matches the statements itself and hands Rego only those
# that match, saying so with input.facts.statements_matched: the same match
# with OPA's glob library and options (store.MemberRecord.MatchingStatements),
# which TestGoMatchingAgreesWithRego (decision) holds equal to matching on
# generated worlds. Without that fact (an input built by hand), matching
# decides here.
applicable := [s |
	some s in input.facts.statements
	s.conditions == [] or { every c in s.conditions {
		data.verdict.conditions[c] == true
	} }
] if {
	input.facts.statements_matched == true
} else := [s |
	some s in input.facts.statements
	matching(s)
	s.conditions == [] or { every c in s.conditions {
		data.verdict.conditions[c] == true
	} }
]

# applicable_allows: the applicable Allow statements. With none, the request
# is denied with iam.no_allow; with some, it is allowed by the first that
# covers the object (any, for a request without an object), shown public
# fields of a referenced object, or denied with resource.not_covered.
#
# For statements Go matched, it and covering_allows test the Conditions
# themselves, as applicable does, rather than read applicable: a rule read
# costs the evaluator a lookup, a body and an array built, and these are on
# every request with statements. (The three tests are one expression,
# written three times; test_conditions_of_matched_statements and
# test_condition_of_a_matched_deny hold each to the definition.)
applicable_allows := [s |
	some s in input.facts.statements
	s.effect == "allow"
	s.conditions == [] or { every c in s.conditions {
		data.verdict.conditions[c] == true
	} }
] if {
	input.facts.statements_matched == true
} else := [s | some s in applicable; s.effect == "allow"]

# A Deny covers a request for an object when one of its resources covers the
# object; a request with no object only when it lists "*".
#
# For a request that names an object, verdict's Go side hands Rego each
# matching statement with only the resources that cover the object, saying
# so with input.facts.resources_matched: the same cover as "covers", with
# OPA's glob library and options (store.MemberRecord.MatchingStatements),
# which TestGoMatchingAgreesWithRego holds equal to covers. Without that
# fact (a request without an object, or an input built by hand), covers
# decides here.
explicit_denies := [{
	"layer": "iam",
	"code": "iam.explicit_deny",
	"effect": "deny",
	"policy": s.policy,
	"statement": s.statement,
} |
	some s in applicable
	s.effect == "deny"
	s.resources != []
] if {
	input.facts.resources_matched == true
} else := [{
	"layer": "iam",
	"code": "iam.explicit_deny",
	"effect": "deny",
	"policy": s.policy,
	"statement": s.statement,
} |
	some s in applicable
	s.effect == "deny"
	count([r | some r in s.resources; covers(r)]) > 0
]

# covering_allows: [statement, resource] for each applicable Allow whose
# resource covers the requested object, in policy order (iam reads it only
# for a request with an object).
covering_allows := [[s, r] |
	some s in input.facts.statements
	s.effect == "allow"
	s.conditions == [] or { every c in s.conditions {
		data.verdict.conditions[c] == true
	} }
	some r in s.resources
] if {
	input.facts.resources_matched == true
	input.facts.statements_matched == true
} else := [[s, r] |
	some s in applicable
	s.effect == "allow"
	some r in s.resources
] if {
	input.facts.resources_matched == true
} else := [[s, r] |
	some s in applicable
	s.effect == "allow"
	some r in s.resources
	covers(r)
]

# covers: the resource names the requested object, directly or through one of
# its resource groups. A resource's literal is a boolean (the store's
# statement terms, loader/store/records.go): "r.literal == false" costs less
# than "not r.literal", a negation evaluated on every call.
covers(r) if r.kind == "any"

covers(r) if {
	r.kind == "object"
	r.literal
	r.pattern == input.facts.resource.frn
}

covers(r) if {
	r.kind == "object"
	r.literal == false
	glob.match(r.pattern, null, input.facts.resource.frn)
}

covers(r) if {
	r.kind == "group"
	r.literal
	input.facts.resource.groups[r.pattern]
}

covers(r) if {
	r.kind == "group"
	r.literal == false
	some g in input.facts.resource.groups
	glob.match(r.pattern, null, g)
}

# resource_grant: the grant of the Allow statement s for its resource r
# that covers the object: "*" (resource.any), the object's FRN
# (resource.object, which names the request's FRN), a literal group, then
# the first of the object's groups a group pattern matches (resource.group).
resource_grant(s, r) := {"layer": "iam", "code": "resource.any", "effect": "allow", "policy": s.policy, "statement": s.statement} if {
	r.kind == "any"
} else := {"layer": "iam", "code": "resource.object", "effect": "allow", "policy": s.policy, "statement": s.statement} if {
	r.kind == "object"
	_ = input.resource.frn # the message names it
} else := {"layer": "iam", "code": "resource.group", "effect": "allow", "policy": s.policy, "statement": s.statement, "resource_group": r.pattern} if {
	r.literal == true
} else := {"layer": "iam", "code": "resource.group", "effect": "allow", "policy": s.policy, "statement": s.statement, "resource_group": g} if {
	g := sort([g | some g in input.facts.resource.groups; glob.match(r.pattern, null, g)])[0]
}

# --- consistency (fleet mode) ----------------------------------------------------
# A request may insist on run-time state at least as new as the revision a
# write answered (input.consistency.at_least). input.facts.state.revision is
# the revision of the fleet's shared state the facts include; without a
# state database there is none, and no revision is met.

state_denies := [{
	"layer": "state",
	"code": "state.stale",
	"effect": "deny",
	"message": state_behind_message,
}] if {
	input.consistency.at_least > object.get(input.facts, ["state", "revision"], 0)
} else := []

state_behind_message := sprintf("The decision must see run-time state revision %d; this sidecar has applied revision %d and could not catch up in time.", [input.consistency.at_least, input.facts.state.revision]) if {
	input.facts.state
} else := sprintf("The decision must see run-time state revision %d; this sidecar shares no run-time state (it runs without --state-db).", [input.consistency.at_least])

# --- layer 5: delegation (Fineract CN) ----------------------------------------------
# A request that names an application is the application acting for the
# member. input.facts.delegation = {groups, entries}: groups are the permittable
# groups that list the route; entries are the tenant's delegation entries of
# the application for those groups, {group: {operations, enabled_by}}
# (bundle and run-time entries combined by the Go side). The route must
# belong to a group the application requested with an operation covering the
# method, and the member must have enabled it.

delegation := {"denies": [], "grants": []} if {
	not input.application
} else := {"denies": [delegation_deny("delegation.not_requested", delegation_not_requested_message)], "grants": []} if {
	count(delegation_requested) == 0
} else := {"denies": [delegation_deny("state.stale", delegation_stale_message)], "grants": []} if {
	# A consent may have been withdrawn on another sidecar: while this
	# sidecar cannot confirm its run-time state is current, an application
	# does not act for a member.
	count(delegation_enabled) > 0
	input.facts.state.stale
} else := {"denies": [], "grants": [{
	"layer": "delegation",
	"code": "delegation.allow",
	"effect": "allow",
	"message": sprintf("Member %q enabled application %q to act for them: %s on permittable group %s.", [input.member, input.application, delegation_operation, g]),
}]} if {
	g := delegation_enabled[0]
} else := {"denies": [delegation_deny("delegation.not_enabled", delegation_not_enabled_message)], "grants": []}

delegation_stale_message := sprintf("Application %q may not act for member %q now: this sidecar could not confirm that its run-time state (consents and withdrawals, revision %d) is current within the allowed staleness.", [input.application, input.member, input.facts.state.revision])

delegation_deny(code, message) := {"layer": "delegation", "code": code, "effect": "deny", "message": message}

# delegation_method: the request's method, or the method of the route an
# action-only request resolved to.
delegation_method := input.request.method if {
	input.request.method
} else := input.facts.route.method

# delegation_operation: GET/HEAD/OPTIONS read, POST/PUT/PATCH change,
# DELETE deletes.
delegation_operation := "READ" if {
	delegation_method in {"GET", "HEAD", "OPTIONS"}
} else := "CHANGE" if {
	delegation_method in {"POST", "PUT", "PATCH"}
} else := "DELETE" if {
	delegation_method == "DELETE"
}

# delegation_requested: the route's groups the application requested with
# an operation covering the method, sorted.
delegation_requested := sort([g |
	some g in input.facts.delegation.groups
	input.facts.delegation.entries[g].operations[delegation_operation]
])

# delegation_enabled: those the member enabled.
delegation_enabled := [g |
	some g in delegation_requested
	input.facts.delegation.entries[g].enabled_by[input.member]
]

delegation_route := sprintf("%s %s", [delegation_method, input.facts.route.template]) if {
	input.facts.route.template
} else := sprintf("action %s", [input.action]) if {
	input.action
} else := "this request"

delegation_not_requested_message := sprintf("Application %q may not act for members on %s: the route belongs to no permittable group.", [input.application, delegation_route]) if {
	count(object.get(input.facts, ["delegation", "groups"], set())) == 0
} else := sprintf("Application %q has not requested %s on permittable group %s of tenant %q.", [
	input.application,
	delegation_operation_name,
	concat(", ", sort(input.facts.delegation.groups)),
	input.tenant,
])

delegation_operation_name := delegation_operation if delegation_operation

else := sprintf("an operation for method %s", [delegation_method])

delegation_not_enabled_message := sprintf("The request names no member for application %q to act for.", [input.application]) if {
	not input.member
} else := sprintf("Member %q has not enabled application %q to act for them on permittable group %s.", [
	input.member,
	input.application,
	concat(", ", delegation_requested),
])

# --- layer 6: extensions -----------------------------------------------------------

ext_denies := [] if {
	# The common cases first: extension rules that deny nothing (a set
	# rule with no element), then no extension rule at all (or bundle
	# data deny: false). Bound to a local, the document is a reference
	# OPA's rule index must find defined when it is a base document (no
	# extension rule): without extension rules or deny data, this branch
	# is skipped unevaluated.
	extension_denies := data.verdict.ext.deny
	extension_denies == set()
} else := [] if {
	not data.verdict.ext.deny
} else := [ext_reason(d) | some d in data.verdict.ext.deny] if {
	not ext_deny_scalar
} else := [ext_reason(data.verdict.ext.deny)]

# ext_deny_scalar: data.verdict.ext.deny is one value rather than a set of
# denies - bundle data such as `deny: true` or `deny: "closed"` (the type
# checker rejects such rules, but not data). It denies, like any element
# would; only false (or no deny at all) lets the request through.
ext_deny_scalar if {
	d := data.verdict.ext.deny
	not is_set(d)
	not is_array(d)
	not is_object(d)
	d != false
}

# Every element denies, whatever its shape: a malformed element must not
# let a request through.
ext_reason(d) := {
	"layer": "ext",
	"code": object.get(d, "code", "ext.deny"),
	"effect": "deny",
	"message": object.get(d, "message", "Denied by a bundle extension rule."),
} if {
	is_object(d)
} else := {
	"layer": "ext",
	"code": "ext.deny",
	"effect": "deny",
	"message": d,
} if {
	is_string(d)
} else := {
	"layer": "ext",
	"code": "ext.deny",
	"effect": "deny",
	"message": sprintf("Denied by a bundle extension rule: %v", [d]),
}
