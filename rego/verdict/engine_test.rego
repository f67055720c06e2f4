# Unit tests for data.verdict.engine.decision (README "HTTP API" and "How a decision is made", layers 1
# tenant, 2 route, 4 IAM and 6 extensions). Inputs are built in the shape the
# Go engine gathers (decision/engine.go gather; loader/store/records.go
# tenantFacts, memberFacts, statementTerm). Run with `go test ./rego/`.
package verdict.engine_test

import data.verdict.engine

# --- fixtures --------------------------------------------------------------------

a_list := "finmars:Portfolio:list"

a_retrieve := "finmars:Portfolio:retrieve"

a_update := "finmars:Portfolio:update"

a_list_light := "finmars:Portfolio:list_light"

bonds := "frn:finmars:portfolios:portfolio:bonds-portfolio"

equity := "frn:finmars:portfolios:portfolio:equity-portfolio"

tenant_bank := {"code": "bank", "name": "Bank Department", "checks": {"iam"}}

# member is memberFacts: principals are "*", "member:<name>" and
# "group:<code>" for each of its groups.
member(name, groups) := {
	"name": name,
	"is_admin": false,
	"groups": groups,
	"principals": ({"*", concat(":", ["member", name])} | {concat(":", ["group", g]) | some g in groups}),
}

user_a := member("user_a", {"bank_dept"})

# stmt is statementTerm: lower-case action globs (a final "*" part written
# "**"), resources {kind, pattern, literal}, principals, conditions.
stmt(policy, index, effect, actions, resources) := {
	"policy": policy,
	"statement": index,
	"effect": effect,
	"actions": actions,
	"resources": resources,
	"principals": ["*"],
	"conditions": [],
}

allow(actions, resources) := stmt("portfolio-read", 0, "allow", actions, resources)

deny(actions, resources) := stmt("portfolio-deny", 1, "deny", actions, resources)

with_principals(s, principals) := object.union(s, {"principals": principals})

with_conditions(s, conditions) := object.union(s, {"conditions": conditions})

is_literal(p) := false if {
	contains(p, "*")
} else := true

res_any := {"kind": "any", "pattern": "*", "literal": false}

# res_object: an object FRN (lower-cased, "*" allowed in the user code).
res_object(frn) := {"kind": "object", "pattern": lower(frn), "literal": is_literal(frn)}

# res_group: the code of frn:finmars:iam:resourcegroup:<code>.
res_group(code) := {"kind": "group", "pattern": lower(code), "literal": is_literal(code)}

# ask: user_a of tenant bank asks for action; the member's statements are
# given. facts.action is the action in lower case, as gather sets it.
ask(action, statements) := {
	"tenant": "bank",
	"member": "user_a",
	"action": action,
	"facts": {"tenant": tenant_bank, "member": user_a, "action": lower(action), "statements": statements},
}

# on: the request names the object frn, which the tenant assigns to groups.
on(inp, frn, groups) := object.union(inp, {
	"resource": {"frn": frn, "reference": false},
	"facts": {"resource": {"frn": lower(frn), "groups": groups}},
})

# on_nothing: the request has a resource without an FRN.
on_nothing(inp) := object.union(inp, {
	"resource": {"reference": false},
	"facts": {"resource": {"groups": set()}},
})

as_reference(inp) := object.union(inp, {"resource": {"reference": true}})

owned_by(inp, owner) := object.union(inp, {"resource": {"owner": owner}})

as_admin(inp) := object.union(inp, {"facts": {"member": {"is_admin": true}}})

anonymous(inp) := json.remove(inp, ["member", "facts/member", "facts/statements"])

with_checks(inp, checks) := object.union(inp, {"facts": {"tenant": {"checks": checks}}})

# via_route: the request came as an HTTP request that a route translated.
via_route(inp, method, path, viewset, action) := object.union(inp, {
	"request": {"method": method, "path": path, "service": "portfolios"},
	"facts": {"route": {
		"service": "portfolios",
		"template": path,
		"method": method,
		"viewset": viewset,
		"action": action,
	}},
})

# unknown_route: a request that no route matches (no action, no facts.route).
unknown_route(inp) := object.union(json.remove(inp, ["action", "facts/action"]), {"request": {"method": "GET", "path": "/api/v1/nowhere/"}})

codes(d) := [r.code | some r in d.reasons]

# granted: allowed with full visibility and exactly these reason codes.
granted(d, wanted) if {
	d.allow == true
	d.status == 200
	d.visibility == "full"
	d.fields == []
	codes(d) == wanted
}

# denied: denied with this status and exactly these reason codes.
denied(d, status, wanted) if {
	d.allow == false
	d.status == status
	d.visibility == "none"
	d.fields == []
	codes(d) == wanted
}

reason(d, code) := r if {
	some r in d.reasons
	r.code == code
}

# --- §2.2 response shape -------------------------------------------------------

test_decision_has_exactly_the_response_fields if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
	object.keys(d) == {"allow", "status", "visibility", "fields", "reasons"}
}

# The messages of the engine's own reasons are rendered by Go from the code
# and these fields (decision/messages.go); an extension's reason carries the
# message its rule gives.
test_every_reason_has_layer_code_effect if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as {{"code": "ext.x", "message": "x"}}
	count(d.reasons) == 3
	every r in d.reasons {
		r.layer in {"tenant", "route", "iam", "ext"}
		is_string(r.code)
		r.effect in {"allow", "deny"}
	}
	not reason(d, "iam.allow").message
	reason(d, "ext.x").message == "x"
}

# --- layer 1: tenant -----------------------------------------------------------

test_tenant_unknown if {
	inp := json.remove(object.union(ask(a_retrieve, []), {"tenant": "nowhere"}), ["facts/tenant", "facts/member", "facts/statements"])
	d := engine.decision with input as inp
	d == {
		"allow": false,
		"status": 404,
		"visibility": "none",
		"fields": [],
		"reasons": [{
			"layer": "tenant",
			"code": "tenant.unknown",
			"effect": "deny",
		}],
	}
}

test_tenant_unknown_wins_over_route if {
	inp := json.remove(unknown_route(ask(a_retrieve, [])), ["facts/tenant", "facts/member", "facts/statements"])
	d := engine.decision with input as inp
	denied(d, 404, ["tenant.unknown"])
}

test_tenant_unknown_wins_over_ext if {
	inp := json.remove(ask(a_retrieve, []), ["facts/tenant"])
	d := engine.decision with input as inp
		with data.verdict.ext.deny as {{"code": "ext.x", "message": "x"}}
	denied(d, 404, ["tenant.unknown"])
}

# --- default deny: missing or malformed facts (issue 14, item 1) ----------------
# Inputs that the Go engine never builds, as a Data API caller could: no
# layer may be left out because a fact it needs is missing.

test_no_tenant_denies if {
	d := engine.decision with input as {"member": "intern", "action": "finmars:Portfolio:destroy"}
	d == {
		"allow": false,
		"status": 404,
		"visibility": "none",
		"fields": [],
		"reasons": [{
			"layer": "tenant",
			"code": "tenant.unknown",
			"effect": "deny",
		}],
	}
}

test_any_input_without_facts_denies if {
	every inp in [{}, [], "x", null, 7, true, {"tenant": 7}, {"tenant": "bank", "member": "admin", "action": a_list}] {
		d := engine.decision with input as inp
		denied(d, 404, ["tenant.unknown"])
	}
}

test_any_input_without_facts_plans_none if {
	every inp in [{}, [], "x", null, {"member": "intern", "action": a_list}] {
		p := engine.plan with input as inp
		p.kind == "none"
	}
}

# A layer whose outcome is undefined, or malformed, can never let a request
# through: the decision is an allow only when every layer positively passed.
test_undefined_layer_denies if {
	inp := ask(a_retrieve, [allow(["**"], [res_any])])
	d0 := engine.decision with input as inp
	granted(d0, ["iam.allow", "resource.any"])
	d1 := engine.decision with input as inp with engine.tenant_denies as "malformed"
	denied(d1, 403, ["error.internal"])
	d2 := engine.decision with input as inp with engine.route_denies as "malformed"
	denied(d2, 403, ["error.internal"])
	d3 := engine.decision with input as inp with engine.pkg as {"grants": []}
	denied(d3, 403, ["error.internal"])
	d4 := engine.decision with input as inp with engine.iam as {"grants": []}
	denied(d4, 403, ["error.internal"])
	d5 := engine.decision with input as inp with engine.delegation as {"denies": []}
	denied(d5, 403, ["error.internal"])
	d6 := engine.decision with input as inp with engine.ext_denies as "malformed"
	denied(d6, 403, ["error.internal"])
	d7 := engine.decision with input as inp with engine.state_denies as "malformed"
	denied(d7, 403, ["error.internal"])
}

test_malformed_deny_reason_denies if {
	inp := ask(a_retrieve, [allow(["**"], [res_any])])
	d := engine.decision with input as inp with data.verdict.engine.tenant_denies as [{"no": "code"}]
	d.allow == false
}

# --- layer 1: SOAJS keys -------------------------------------------------------
# facts.key is the key the request named: {known: false} when the store does
# not know it, else {known, tenant, application, package, expires_ns?}.

key_of(tenant, expires_ns) := {
	"known": true,
	"tenant": tenant,
	"application": "app1",
	"package": "PROD1_PCK1",
	"expires_ns": expires_ns,
}

# 2100-01-01 and 1970-01-01T00:00:01Z.
future_ns := 4102444800000000000

past_ns := 1000000000

with_key(inp, key) := object.union(inp, {"facts": {"key": key}})

key_invalid_reason := {
	"layer": "tenant",
	"code": "key.invalid",
	"effect": "deny",
	"soajs_code": 132,
}

test_key_valid_goes_on if {
	d := engine.decision with input as with_key(ask(a_retrieve, [allow(["**"], [res_any])]), key_of("bank", future_ns))
	granted(d, ["iam.allow", "resource.any"])
}

test_key_without_expiry_is_valid if {
	key := object.remove(key_of("bank", 0), ["expires_ns"])
	d := engine.decision with input as with_key(ask(a_retrieve, [allow(["**"], [res_any])]), key)
	granted(d, ["iam.allow", "resource.any"])
}

test_key_unknown if {
	d := engine.decision with input as with_key(ask(a_retrieve, [allow(["**"], [res_any])]), {"known": false})
	denied(d, 403, ["key.invalid"])
	d.reasons == [key_invalid_reason]
}

test_key_unknown_without_tenant if {
	# The request named only a key, and the store does not know it.
	inp := json.remove(object.union(ask(a_retrieve, []), {"tenant": ""}), ["facts/tenant", "facts/member", "facts/statements"])
	d := engine.decision with input as with_key(inp, {"known": false})
	denied(d, 403, ["key.invalid"])
}

test_key_expired if {
	d := engine.decision with input as with_key(ask(a_retrieve, [allow(["**"], [res_any])]), key_of("bank", past_ns))
	denied(d, 403, ["key.invalid"])
	d.reasons == [key_invalid_reason]
}

test_key_expires_at_its_expiry_time if {
	inp := with_key(ask(a_retrieve, [allow(["**"], [res_any])]), key_of("bank", 5000))
	d1 := engine.decision with input as inp with time.now_ns as 4999
	granted(d1, ["iam.allow", "resource.any"])
	d2 := engine.decision with input as inp with time.now_ns as 5000
	denied(d2, 403, ["key.invalid"])
}

test_key_of_another_tenant if {
	d := engine.decision with input as with_key(ask(a_retrieve, [allow(["**"], [res_any])]), key_of("other", future_ns))
	denied(d, 403, ["key.invalid"])
	d.reasons == [key_invalid_reason]
}

test_package_tenant_needs_a_key if {
	d := engine.decision with input as with_checks(ask(a_retrieve, [allow(["**"], [res_any])]), {"package", "iam"})
	denied(d, 403, ["key.invalid"])
	d.reasons == [key_invalid_reason]
}

test_iam_only_tenant_needs_no_key if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
	granted(d, ["iam.allow", "resource.any"])
}

test_key_invalid_wins_over_route if {
	d := engine.decision with input as with_key(unknown_route(ask(a_retrieve, [])), {"known": false})
	denied(d, 403, ["key.invalid"])
}

test_key_invalid_wins_over_iam if {
	d := engine.decision with input as with_key(anonymous(ask(a_retrieve, [])), key_of("bank", past_ns))
	denied(d, 403, ["key.invalid"])
}

test_key_invalid_wins_over_ext if {
	d := engine.decision with input as with_key(ask(a_retrieve, [allow(["**"], [res_any])]), {"known": false})
		with data.verdict.ext.deny as {{"code": "ext.x", "message": "x"}}
	denied(d, 403, ["key.invalid"])
}

# --- layer 2: route ------------------------------------------------------------

test_route_unknown if {
	d := engine.decision with input as unknown_route(ask(a_retrieve, [allow(["**"], [res_any])]))
	d.allow == false
	d.status == 404
	d.visibility == "none"
	d.fields == []
	d.reasons == [{
		"layer": "route",
		"code": "route.unknown",
		"effect": "deny",
		"soajs_code": 130,
	}]
}

test_route_unknown_even_when_the_request_names_an_action if {
	# The caller sent both request and action: the route layer still
	# requires the request to match a route.
	inp := object.union(unknown_route(ask(a_retrieve, [allow(["**"], [res_any])])), {"action": a_retrieve, "facts": {"action": lower(a_retrieve)}})
	d := engine.decision with input as inp
	denied(d, 404, ["route.unknown"])
	reason(d, "route.unknown").soajs_code == 130
}

test_route_unknown_wins_over_iam if {
	d := engine.decision with input as unknown_route(anonymous(ask(a_retrieve, [])))
	denied(d, 404, ["route.unknown"])
}

test_route_unknown_wins_over_ext if {
	d := engine.decision with input as unknown_route(ask(a_retrieve, []))
		with data.verdict.ext.deny as {{"code": "ext.x", "message": "x"}}
	denied(d, 404, ["route.unknown"])
}

test_route_known_goes_on_to_iam_allow if {
	inp := via_route(ask(a_retrieve, [allow(["finmars:portfolio:retrieve"], [res_any])]), "GET", "/api/v1/portfolios/portfolio/{id}/", "Portfolio", a_retrieve)
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.any"])
}

test_route_known_goes_on_to_iam_deny if {
	inp := via_route(ask(a_retrieve, []), "GET", "/api/v1/portfolios/portfolio/{id}/", "Portfolio", a_retrieve)
	d := engine.decision with input as inp
	denied(d, 403, ["iam.no_allow"])
}

test_action_without_request_needs_no_route if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
	granted(d, ["iam.allow", "resource.any"])
}

# --- layer 4: IAM, who asks ----------------------------------------------------

test_iam_anonymous if {
	d := engine.decision with input as anonymous(ask(a_retrieve, []))
	denied(d, 401, ["iam.anonymous"])
	r := reason(d, "iam.anonymous")
	r.layer == "iam"
	r.effect == "deny"
}

test_iam_anonymous_wins_over_ext if {
	d := engine.decision with input as anonymous(ask(a_retrieve, []))
		with data.verdict.ext.deny as {{"code": "ext.x", "message": "x"}}
	denied(d, 401, ["iam.anonymous"])
}

test_iam_unknown_member if {
	inp := json.remove(object.union(ask(a_retrieve, []), {"member": "ghost"}), ["facts/member", "facts/statements"])
	d := engine.decision with input as inp
	denied(d, 403, ["iam.unknown_member"])
	reason(d, "iam.unknown_member").layer == "iam"
}

test_checks_without_iam_skip_iam if {
	d := engine.decision with input as with_checks(anonymous(ask(a_retrieve, [])), set())
	granted(d, [])
}

test_checks_without_iam_skip_iam_for_unknown_member if {
	inp := json.remove(object.union(ask(a_retrieve, []), {"member": "ghost"}), ["facts/member", "facts/statements"])
	d := engine.decision with input as with_checks(inp, set())
	granted(d, [])
}

test_checks_without_iam_skip_explicit_deny if {
	d := engine.decision with input as with_checks(ask(a_retrieve, [deny(["**"], [res_any])]), set())
	granted(d, [])
}

test_checks_without_iam_still_run_ext if {
	d := engine.decision with input as with_checks(anonymous(ask(a_retrieve, [])), set())
		with data.verdict.ext.deny as {{"code": "ext.x", "message": "x"}}
	denied(d, 403, ["ext.x"])
}

# --- layer 4: IAM, admin -------------------------------------------------------

test_admin_allow if {
	d := engine.decision with input as as_admin(ask(a_update, []))
	granted(d, ["iam.admin"])
	r := reason(d, "iam.admin")
	object.keys(r) == {"layer", "code", "effect"}
	r.layer == "iam"
	r.effect == "allow"
}

test_admin_allow_on_object_without_any_policy if {
	d := engine.decision with input as as_admin(on(ask(a_update, []), bonds, set()))
	granted(d, ["iam.admin"])
}

test_admin_not_subject_to_policy_deny if {
	d := engine.decision with input as as_admin(on(ask(a_update, [deny(["**"], [res_any])]), bonds, set()))
	granted(d, ["iam.admin"])
}

test_admin_reference_is_full_not_public if {
	d := engine.decision with input as as_reference(as_admin(on(ask(a_retrieve, []), bonds, set())))
	granted(d, ["iam.admin"])
}

test_admin_still_subject_to_ext_deny if {
	d := engine.decision with input as as_admin(ask(a_update, []))
		with data.verdict.ext.deny as {{"code": "ext.frozen", "message": "The books are closed."}}
	denied(d, 403, ["iam.admin", "ext.frozen"])
}

# --- layer 4: IAM, explicit deny -----------------------------------------------

test_explicit_deny_beats_allow if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_any]), deny(["finmars:portfolio:retrieve"], [res_object(bonds)])]), bonds, set())
	d := engine.decision with input as inp
	denied(d, 403, ["iam.explicit_deny"])
	r := reason(d, "iam.explicit_deny")
	r.layer == "iam"
	r.effect == "deny"
	r.policy == "portfolio-deny"
	r.statement == 1
}

test_explicit_deny_beats_ownership if {
	inp := owned_by(on(ask(a_retrieve, [deny(["**"], [res_object(bonds)])]), bonds, set()), "user_a")
	d := engine.decision with input as inp
	denied(d, 403, ["iam.explicit_deny"])
}

test_explicit_deny_beats_ownership_and_allow if {
	inp := owned_by(on(ask(a_retrieve, [allow(["**"], [res_any]), deny(["**"], [res_any])]), bonds, set()), "user_a")
	d := engine.decision with input as inp
	denied(d, 403, ["iam.explicit_deny"])
}

test_explicit_deny_lists_every_applicable_deny if {
	inp := on(
		ask(a_retrieve, [
			stmt("p-a", 0, "deny", ["**"], [res_any]),
			stmt("p-b", 2, "deny", ["finmars:portfolio:retrieve"], [res_object(bonds)]),
		]),
		bonds, set(),
	)
	d := engine.decision with input as inp
	denied(d, 403, ["iam.explicit_deny", "iam.explicit_deny"])
	{[r.policy, r.statement] | some r in d.reasons} == {["p-a", 0], ["p-b", 2]}
}

test_deny_on_object_does_not_forbid_request_without_frn if {
	d := engine.decision with input as ask(a_list, [allow(["**"], [res_any]), deny(["**"], [res_object(bonds)])])
	granted(d, ["iam.allow", "resource.any"])
}

test_deny_on_object_does_not_forbid_resource_without_frn if {
	d := engine.decision with input as on_nothing(ask(a_list, [allow(["**"], [res_any]), deny(["**"], [res_object(bonds)])]))
	granted(d, ["iam.allow", "resource.any"])
}

test_deny_on_object_wildcard_does_not_forbid_request_without_frn if {
	d := engine.decision with input as ask(a_list, [allow(["**"], [res_any]), deny(["**"], [res_object("frn:finmars:portfolios:portfolio:*")])])
	granted(d, ["iam.allow", "resource.any"])
}

test_deny_on_group_does_not_forbid_request_without_frn if {
	d := engine.decision with input as ask(a_list, [allow(["**"], [res_any]), deny(["**"], [res_group("portfolio_group_a")])])
	granted(d, ["iam.allow", "resource.any"])
}

test_deny_star_forbids_request_without_frn if {
	d := engine.decision with input as ask(a_list, [allow(["**"], [res_any]), deny(["**"], [res_object(bonds), res_any])])
	denied(d, 403, ["iam.explicit_deny"])
}

test_deny_star_forbids_request_without_frn_even_without_allow if {
	d := engine.decision with input as ask(a_list, [deny(["finmars:portfolio:list"], [res_any])])
	denied(d, 403, ["iam.explicit_deny"])
}

test_deny_on_other_object_does_not_apply if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_any]), deny(["**"], [res_object(bonds)])]), equity, set())
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.any"])
}

test_deny_on_object_frn_ignores_case if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_any]), deny(["**"], [res_object("FRN:Finmars:Portfolios:Portfolio:BONDS-Portfolio")])]), "frn:finmars:portfolios:portfolio:Bonds-Portfolio", set())
	d := engine.decision with input as inp
	denied(d, 403, ["iam.explicit_deny"])
}

test_deny_on_object_wildcard_user_code if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_any]), deny(["**"], [res_object("frn:finmars:portfolios:portfolio:bonds-*")])]), bonds, set())
	d := engine.decision with input as inp
	denied(d, 403, ["iam.explicit_deny"])
}

test_deny_on_group_of_the_object if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_any]), deny(["**"], [res_group("portfolio_group_a")])]), bonds, {"portfolio_group_a"})
	d := engine.decision with input as inp
	denied(d, 403, ["iam.explicit_deny"])
}

test_deny_for_other_action_does_not_apply if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_any]), deny(["finmars:portfolio:destroy"], [res_any])]), bonds, set())
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.any"])
}

test_deny_for_other_principal_does_not_apply if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_any]), with_principals(deny(["**"], [res_any]), ["member:user_b", "group:other_dept"])]), bonds, set())
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.any"])
}

test_deny_with_false_condition_does_not_apply if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_any]), with_conditions(deny(["**"], [res_any]), ["after_hours"])]), bonds, set())
	d := engine.decision with input as inp
		with data.verdict.conditions.after_hours as false
	granted(d, ["iam.allow", "resource.any"])
}

test_deny_with_true_condition_applies if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_any]), with_conditions(deny(["**"], [res_any]), ["after_hours"])]), bonds, set())
	d := engine.decision with input as inp
		with data.verdict.conditions.after_hours as true
	denied(d, 403, ["iam.explicit_deny"])
}

# --- layer 4: IAM, ownership ---------------------------------------------------

test_owner_allow_without_any_allow if {
	d := engine.decision with input as owned_by(on(ask(a_update, []), bonds, set()), "user_a")
	granted(d, ["resource.owner"])
	r := reason(d, "resource.owner")
	r.layer == "iam"
	r.effect == "allow"
}

test_owner_allow_before_allow_statements if {
	d := engine.decision with input as owned_by(on(ask(a_update, [allow(["**"], [res_any])]), bonds, set()), "user_a")
	granted(d, ["resource.owner"])
}

test_owner_compares_exactly if {
	d := engine.decision with input as owned_by(on(ask(a_retrieve, []), bonds, set()), "USER_A")
	denied(d, 403, ["iam.no_allow"])
}

test_other_owner_grants_nothing if {
	d := engine.decision with input as owned_by(on(ask(a_retrieve, []), bonds, set()), "user_b")
	denied(d, 403, ["iam.no_allow"])
}

# --- layer 4: IAM, allow and resources -----------------------------------------

test_allow_any_resource if {
	d := engine.decision with input as on(ask(a_retrieve, [allow(["finmars:portfolio:retrieve"], [res_any])]), bonds, set())
	granted(d, ["iam.allow", "resource.any"])
	every r in d.reasons {
		r.layer == "iam"
		r.effect == "allow"
		r.policy == "portfolio-read"
		r.statement == 0
	}
}

test_allow_object_literal if {
	d := engine.decision with input as on(ask(a_retrieve, [allow(["finmars:portfolio:retrieve"], [res_object(bonds)])]), bonds, set())
	granted(d, ["iam.allow", "resource.object"])
	r := reason(d, "resource.object")
	r.policy == "portfolio-read"
	r.statement == 0
	not r.resource_group
}

test_allow_object_frn_ignores_case if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_object("frn:finmars:Portfolios:Portfolio:Bonds-Portfolio")])]), "FRN:FINMARS:portfolios:portfolio:BONDS-PORTFOLIO", set())
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.object"])
}

test_allow_object_wildcard_user_code if {
	d := engine.decision with input as on(ask(a_retrieve, [allow(["**"], [res_object("frn:finmars:portfolios:portfolio:bonds-*")])]), bonds, set())
	granted(d, ["iam.allow", "resource.object"])
}

test_allow_object_user_code_with_colons if {
	# The last part of an FRN may contain ":"; "*" in it matches them too.
	frn := "frn:finmars:portfolios:portfolio:desk:a:bonds"
	d1 := engine.decision with input as on(ask(a_retrieve, [allow(["**"], [res_object(frn)])]), frn, set())
	granted(d1, ["iam.allow", "resource.object"])
	d2 := engine.decision with input as on(ask(a_retrieve, [allow(["**"], [res_object("frn:finmars:portfolios:portfolio:desk:*")])]), frn, set())
	granted(d2, ["iam.allow", "resource.object"])
}

test_allow_object_wildcard_user_code_with_dots if {
	frn := "frn:finmars:portfolios:portfolio:bonds.2024.q1"
	d := engine.decision with input as on(ask(a_retrieve, [allow(["**"], [res_object("frn:finmars:portfolios:portfolio:bonds*")])]), frn, set())
	granted(d, ["iam.allow", "resource.object"])
}

test_allow_object_wildcard_other_glob_characters_are_literal if {
	# The loader escapes glob meta characters other than "*" (a[1]* is
	# written a\[1\]*): they match only themselves.
	pattern := {"kind": "object", "pattern": "frn:finmars:portfolios:portfolio:a\\[1\\]*", "literal": false}
	d1 := engine.decision with input as on(ask(a_retrieve, [allow(["**"], [pattern])]), "frn:finmars:portfolios:portfolio:a[1]-x", set())
	granted(d1, ["iam.allow", "resource.object"])
	d2 := engine.decision with input as on(ask(a_retrieve, [allow(["**"], [pattern])]), "frn:finmars:portfolios:portfolio:a1-x", set())
	denied(d2, 403, ["resource.not_covered"])
}

test_allow_object_wildcard_user_code_only_matches_its_model if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_object("frn:finmars:portfolios:portfolio:*")])]), "frn:finmars:portfolios:portfoliotype:bonds", set())
	d := engine.decision with input as inp
	denied(d, 403, ["resource.not_covered"])
}

test_allow_object_wildcard_user_code_prefix_mismatch if {
	d := engine.decision with input as on(ask(a_retrieve, [allow(["**"], [res_object("frn:finmars:portfolios:portfolio:bonds-*")])]), equity, set())
	denied(d, 403, ["resource.not_covered"])
}

test_allow_object_literal_other_object if {
	d := engine.decision with input as on(ask(a_retrieve, [allow(["**"], [res_object(bonds)])]), equity, set())
	denied(d, 403, ["resource.not_covered"])
}

test_allow_resource_group_literal if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_group("portfolio_group_a")])]), bonds, {"portfolio_group_a", "portfolio_group_b"})
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.group"])
	r := reason(d, "resource.group")
	r.resource_group == "portfolio_group_a"
	r.policy == "portfolio-read"
	r.statement == 0
}

test_allow_resource_group_ignores_case if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_group("Portfolio_Group_A")])]), bonds, {"portfolio_group_a"})
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.group"])
}

test_allow_resource_group_wildcard if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_group("portfolio_group_*")])]), bonds, {"other_group", "portfolio_group_b"})
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.group"])
	reason(d, "resource.group").resource_group == "portfolio_group_b"
}

test_allow_resource_group_wildcard_with_dots if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_group("desk*")])]), bonds, {"desk.bonds.eu"})
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.group"])
	reason(d, "resource.group").resource_group == "desk.bonds.eu"
}

test_allow_resource_group_object_not_in_group if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_group("portfolio_group_a")])]), bonds, {"portfolio_group_b"})
	d := engine.decision with input as inp
	denied(d, 403, ["resource.not_covered"])
}

test_allow_resource_group_wildcard_no_match if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_group("equity_*")])]), bonds, {"portfolio_group_a"})
	d := engine.decision with input as inp
	denied(d, 403, ["resource.not_covered"])
}

test_allow_second_resource_of_statement if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_object(equity), res_group("portfolio_group_a")])]), bonds, {"portfolio_group_a"})
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.group"])
}

test_allow_names_the_covering_statement if {
	inp := on(
		ask(a_retrieve, [
			stmt("p-equity", 0, "allow", ["**"], [res_object(equity)]),
			stmt("p-bonds", 3, "allow", ["**"], [res_object(bonds)]),
		]),
		bonds, set(),
	)
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.object"])
	{[r.policy, r.statement] | some r in d.reasons} == {["p-bonds", 3]}
}

test_allow_names_the_first_covering_statement if {
	# Statements come in policy order; the first that covers is named.
	inp := on(
		ask(a_retrieve, [
			stmt("p-a", 0, "allow", ["finmars:portfolio:list"], [res_any]),
			stmt("p-b", 1, "allow", ["**"], [res_group("portfolio_group_a")]),
			stmt("p-c", 0, "allow", ["**"], [res_any]),
		]),
		bonds, {"portfolio_group_a"},
	)
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.group"])
	{[r.policy, r.statement] | some r in d.reasons} == {["p-b", 1]}
}

test_request_without_frn_covered_by_any_allow if {
	d := engine.decision with input as ask(a_list, [allow(["finmars:portfolio:list"], [res_group("portfolio_group_a")])])
	granted(d, ["iam.allow", "resource.any"])
}

test_resource_without_frn_covered_by_any_allow if {
	d := engine.decision with input as on_nothing(ask(a_list, [allow(["finmars:portfolio:list"], [res_object(bonds)])]))
	granted(d, ["iam.allow", "resource.any"])
}

test_resource_not_covered if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_group("portfolio_group_a")])]), bonds, set())
	d := engine.decision with input as inp
	denied(d, 403, ["resource.not_covered"])
	r := reason(d, "resource.not_covered")
	r.layer == "iam"
	r.effect == "deny"
}

# --- layer 4: IAM, public references -------------------------------------------

public_ok(d) if {
	d.allow == true
	d.status == 200
	d.visibility == "public"
	d.fields == ["id", "user_code", "public_name"]
	codes(d) == ["resource.public"]
}

test_public_reference_retrieve if {
	inp := as_reference(on(ask(a_retrieve, [allow(["**"], [res_group("portfolio_group_a")])]), bonds, set()))
	d := engine.decision with input as inp
	public_ok(d)
	r := reason(d, "resource.public")
	r.layer == "iam"
	r.effect == "allow"
}

test_public_reference_list if {
	inp := as_reference(on(ask(a_list, [allow(["**"], [res_group("portfolio_group_a")])]), bonds, set()))
	d := engine.decision with input as inp
	public_ok(d)
}

test_public_reference_read_action_ignores_case if {
	inp := as_reference(on(ask("FINMARS:PORTFOLIO:RETRIEVE", [allow(["**"], [res_group("portfolio_group_a")])]), bonds, set()))
	d := engine.decision with input as inp
	public_ok(d)
}

test_public_reference_get_route_action if {
	inp := object.union(
		as_reference(on(ask(a_list_light, [allow(["**"], [res_group("portfolio_group_a")])]), bonds, set())),
		{"facts": {"get_route_action": true}},
	)
	d := engine.decision with input as inp
	public_ok(d)
}

test_no_public_reference_for_custom_action_without_get_route if {
	inp := as_reference(on(ask(a_list_light, [allow(["**"], [res_group("portfolio_group_a")])]), bonds, set()))
	d := engine.decision with input as inp
	denied(d, 403, ["resource.not_covered"])
}

test_no_public_reference_for_write if {
	inp := as_reference(on(ask(a_update, [allow(["**"], [res_group("portfolio_group_a")])]), bonds, set()))
	d := engine.decision with input as inp
	denied(d, 403, ["resource.not_covered"])
}

test_no_public_reference_for_destroy if {
	inp := as_reference(on(ask("finmars:Portfolio:destroy", [allow(["**"], [res_group("portfolio_group_a")])]), bonds, set()))
	d := engine.decision with input as inp
	denied(d, 403, ["resource.not_covered"])
}

test_no_public_without_reference_flag if {
	inp := on(ask(a_retrieve, [allow(["**"], [res_group("portfolio_group_a")])]), bonds, set())
	d := engine.decision with input as inp
	denied(d, 403, ["resource.not_covered"])
}

test_no_public_without_applicable_allow if {
	inp := as_reference(on(ask(a_retrieve, [allow(["finmars:portfolio:list"], [res_any])]), bonds, set()))
	d := engine.decision with input as inp
	denied(d, 403, ["iam.no_allow"])
}

test_covered_reference_is_full if {
	inp := as_reference(on(ask(a_retrieve, [allow(["**"], [res_object(bonds)])]), bonds, set()))
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.object"])
}

test_public_reference_then_ext_deny_is_none if {
	inp := as_reference(on(ask(a_retrieve, [allow(["**"], [res_group("portfolio_group_a")])]), bonds, set()))
	d := engine.decision with input as inp
		with data.verdict.ext.deny as {{"code": "ext.x", "message": "x"}}
	denied(d, 403, ["resource.public", "ext.x"])
}

# --- layer 4: IAM, nothing applies ---------------------------------------------

test_no_allow_reason if {
	d := engine.decision with input as ask(a_retrieve, [])
	d == {
		"allow": false,
		"status": 403,
		"visibility": "none",
		"fields": [],
		"reasons": [{
			"layer": "iam",
			"code": "iam.no_allow",
			"effect": "deny",
		}],
	}
}

test_no_allow_on_an_object if {
	d := engine.decision with input as on(ask(a_retrieve, [allow(["finmars:portfolio:list"], [res_any])]), bonds, {"portfolio_group_a"})
	denied(d, 403, ["iam.no_allow"])
	object.keys(reason(d, "iam.no_allow")) == {"layer", "code", "effect"}
}

# --- layer 4: IAM, action matching ---------------------------------------------

action_granted(pattern, action) if {
	d := engine.decision with input as ask(action, [allow([pattern], [res_any])])
	granted(d, ["iam.allow", "resource.any"])
}

action_refused(pattern, action) if {
	d := engine.decision with input as ask(action, [allow([pattern], [res_any])])
	denied(d, 403, ["iam.no_allow"])
}

test_action_exact if {
	action_granted("finmars:portfolio:retrieve", a_retrieve)
}

test_action_ignores_case_of_request if {
	action_granted("finmars:portfolio:retrieve", "FINMARS:PORTFOLIO:Retrieve")
}

test_action_other_action_refused if {
	action_refused("finmars:portfolio:retrieve", a_update)
}

test_action_star_in_middle_part if {
	action_granted("finmars:*:list", a_list)
	action_granted("finmars:*:list", "finmars:Instrument:list")
	action_granted("finmars:*:list", "finmars:portfolio.v2:list")
	action_refused("finmars:*:list", a_retrieve)
}

test_action_star_inside_part if {
	action_granted("finmars:*:list_*", a_list_light)
	action_granted("finmars:portfolio:list_*", a_list_light)
	action_refused("finmars:*:list_*", a_list)
	action_granted("finmars:port*:list", a_list)
	action_granted("finmars:port*:list", "finmars:PortfolioType:list")
}

test_action_star_inside_part_does_not_cross_parts if {
	# "port*" is a middle part: it cannot swallow ":list".
	action_refused("finmars:port*", a_list)
	action_refused("*:list", a_list)
	action_refused("finmars:*", "other:Portfolio:list")
}

test_action_last_part_star_matches_remaining_parts if {
	# finmars:* is written finmars:** by the loader.
	action_granted("finmars:**", a_list)
	action_granted("finmars:**", "finmars:Instrument:destroy")
	action_granted("finmars:**", "finmars:ping")
	action_refused("finmars:**", "other:Portfolio:list")
}

test_action_viewset_star if {
	# finmars:Portfolio:* is written finmars:portfolio:** by the loader.
	action_granted("finmars:portfolio:**", a_list)
	action_granted("finmars:portfolio:**", "finmars:Portfolio:partial_update")
	action_refused("finmars:portfolio:**", "finmars:PortfolioType:list")
}

test_action_star_alone_matches_everything if {
	action_granted("**", a_list)
	action_granted("**", "example03:buildName:get")
	action_granted("**", "ping")
}

test_action_portfoliotype_does_not_grant_portfolio if {
	action_refused("finmars:portfoliotype:list", a_list)
	action_refused("finmars:portfolio:list", "finmars:PortfolioType:list")
}

test_action_part_count_mismatch if {
	action_refused("finmars:portfolio", a_list)
	action_refused("finmars:portfolio:list", "finmars:Portfolio")
	action_refused("finmars:*:*:list", a_list)
}

test_action_any_of_several_patterns if {
	action_refused("finmars:portfolio:create", a_list)
	d := engine.decision with input as ask(a_list, [allow(["finmars:portfolio:create", "finmars:portfolio:list"], [res_any])])
	granted(d, ["iam.allow", "resource.any"])
}

# --- layer 4: IAM, principals --------------------------------------------------

principal_granted(principals) if {
	d := engine.decision with input as ask(a_retrieve, [with_principals(allow(["**"], [res_any]), principals)])
	granted(d, ["iam.allow", "resource.any"])
}

principal_refused(principals) if {
	d := engine.decision with input as ask(a_retrieve, [with_principals(allow(["**"], [res_any]), principals)])
	denied(d, 403, ["iam.no_allow"])
}

test_principal_star if {
	principal_granted(["*"])
}

test_principal_member if {
	principal_granted(["member:user_a"])
}

test_principal_other_member if {
	principal_refused(["member:user_b"])
}

test_principal_member_compares_exactly if {
	principal_refused(["member:User_A"])
}

test_principal_own_group if {
	principal_granted(["group:bank_dept"])
}

test_principal_other_group if {
	principal_refused(["group:other_dept"])
}

test_principal_list_any_names_the_member if {
	principal_granted(["member:user_b", "group:bank_dept"])
	principal_granted(["group:other_dept", "member:user_a"])
}

test_principal_list_none_names_the_member if {
	principal_refused(["member:user_b", "group:other_dept"])
}

test_principal_not_matching_falls_to_next_statement if {
	inp := ask(a_retrieve, [
		with_principals(stmt("p-b", 0, "allow", ["**"], [res_any]), ["member:user_b"]),
		stmt("p-all", 1, "allow", ["**"], [res_object(bonds)]),
	])
	d := engine.decision with input as on(inp, equity, set())
	denied(d, 403, ["resource.not_covered"])
}

# --- layer 4: IAM, conditions --------------------------------------------------

conditional(conditions) := ask(a_retrieve, [with_conditions(allow(["**"], [res_any]), conditions)])

test_condition_true_holds if {
	d := engine.decision with input as conditional(["office_ip"])
		with data.verdict.conditions.office_ip as true
	granted(d, ["iam.allow", "resource.any"])
}

test_condition_false_does_not_apply if {
	d := engine.decision with input as conditional(["office_ip"])
		with data.verdict.conditions.office_ip as false
	denied(d, 403, ["iam.no_allow"])
}

test_condition_undefined_does_not_apply if {
	d := engine.decision with input as conditional(["office_ip"])
	denied(d, 403, ["iam.no_allow"])
}

test_conditions_all_hold if {
	d := engine.decision with input as conditional(["office_ip", "business_hours"])
		with data.verdict.conditions.office_ip as true
		with data.verdict.conditions.business_hours as true
	granted(d, ["iam.allow", "resource.any"])
}

test_conditions_one_false if {
	d := engine.decision with input as conditional(["office_ip", "business_hours"])
		with data.verdict.conditions.office_ip as true
		with data.verdict.conditions.business_hours as false
	denied(d, 403, ["iam.no_allow"])
}

test_conditions_one_undefined if {
	d := engine.decision with input as conditional(["office_ip", "business_hours"])
		with data.verdict.conditions.business_hours as true
	denied(d, 403, ["iam.no_allow"])
}

test_condition_failing_makes_allow_inapplicable_not_uncovering if {
	# A statement whose condition fails does not apply at all, so a reference
	# gets no public view and the answer is iam.no_allow, not not_covered.
	inp := as_reference(on(ask(a_retrieve, [with_conditions(allow(["**"], [res_group("portfolio_group_a")]), ["office_ip"])]), bonds, set()))
	d := engine.decision with input as inp
		with data.verdict.conditions.office_ip as false
	denied(d, 403, ["iam.no_allow"])
}

# The same, on statements as Go hands them: already matched to the member
# and the action (statements_matched) and, for a request with an object,
# each with only the resources that cover it (resources_matched). The
# rules test the conditions of such statements in applicable_allows and
# covering_allows themselves (engine.rego), so these cases are theirs.

matched(inp) := object.union(inp, {"facts": {"statements_matched": true}})

matched_on(inp) := object.union(on(inp, bonds, set()), {"facts": {"statements_matched": true, "resources_matched": true}})

test_conditions_of_matched_statements if {
	every inp in [matched(conditional(["office_ip"])), matched_on(conditional(["office_ip"]))] {
		allowed := engine.decision with input as inp with data.verdict.conditions.office_ip as true
		granted(allowed, ["iam.allow", "resource.any"])
		not_holding := engine.decision with input as inp with data.verdict.conditions.office_ip as false
		denied(not_holding, 403, ["iam.no_allow"])
		undefined := engine.decision with input as inp
		denied(undefined, 403, ["iam.no_allow"])
	}
}

test_condition_of_a_matched_deny if {
	stmts := [allow(["**"], [res_any]), with_conditions(deny(["**"], [res_any]), ["after_hours"])]
	every inp in [matched(ask(a_retrieve, stmts)), matched_on(ask(a_retrieve, stmts))] {
		holding := engine.decision with input as inp with data.verdict.conditions.after_hours as true
		denied(holding, 403, ["iam.explicit_deny"])
		not_holding := engine.decision with input as inp with data.verdict.conditions.after_hours as false
		granted(not_holding, ["iam.allow", "resource.any"])
	}
}

# --- layer 6: extensions -------------------------------------------------------

test_ext_deny_custom_code_and_message if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as {{"code": "ext.office_hours", "message": "Outside office hours."}}
	denied(d, 403, ["iam.allow", "resource.any", "ext.office_hours"])
	reason(d, "ext.office_hours") == {
		"layer": "ext",
		"code": "ext.office_hours",
		"effect": "deny",
		"message": "Outside office hours.",
	}
}

test_ext_deny_defaults if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as {{"reason": "whatever"}}
	denied(d, 403, ["iam.allow", "resource.any", "ext.deny"])
	reason(d, "ext.deny") == {
		"layer": "ext",
		"code": "ext.deny",
		"effect": "deny",
		"message": "Denied by a bundle extension rule.",
	}
}

test_ext_deny_default_message_only if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as {{"code": "ext.mine"}}
	reason(d, "ext.mine").message == "Denied by a bundle extension rule."
	d.allow == false
}

test_ext_deny_default_code_only if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as {{"message": "No."}}
	reason(d, "ext.deny").message == "No."
	d.allow == false
}

test_ext_every_element_is_a_deny if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as {{"code": "ext.a", "message": "a"}, {"code": "ext.b", "message": "b"}}
	d.allow == false
	d.status == 403
	d.visibility == "none"
	array.slice(codes(d), 0, 2) == ["iam.allow", "resource.any"]
	{c | some c in array.slice(codes(d), 2, 4)} == {"ext.a", "ext.b"}
	count(d.reasons) == 4
}

test_ext_deny_element_not_an_object_still_denies if {
	# "Every element of data.verdict.ext.deny is a deny": an element that is
	# not a {code, message} object (e.g. `deny contains msg` with msg a string
	# read from data) must still deny, never be dropped (fail closed).
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as {"Requests from 10.0.0.1 are blocked."}
	d.allow == false
	d.status == 403
	d.visibility == "none"
	some r in d.reasons
	r.layer == "ext"
	r.effect == "deny"
}

test_ext_deny_string_element_is_the_message if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as {"Requests from 10.0.0.1 are blocked."}
	[r] := [r | some r in d.reasons; r.layer == "ext"]
	r.code == "ext.deny"
	r.message == "Requests from 10.0.0.1 are blocked."
}

test_ext_deny_number_element_still_denies if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as {42}
	d.allow == false
	[r] := [r | some r in d.reasons; r.layer == "ext"]
	r.code == "ext.deny"
}

test_ext_deny_scalar_true_denies if {
	# Bundle data `verdict: {ext: {deny: true}}` is not a set, but it must
	# not be read as "no element, no deny" (fail closed).
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as true
	d.allow == false
	d.status == 403
	[r] := [r | some r in d.reasons; r.layer == "ext"]
	r.code == "ext.deny"
}

test_ext_deny_scalar_string_denies_with_its_message if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as "The books are closed."
	d.allow == false
	[r] := [r | some r in d.reasons; r.layer == "ext"]
	r.message == "The books are closed."
}

test_ext_deny_scalar_number_denies if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as 0
	d.allow == false
}

test_ext_deny_scalar_null_denies if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as null
	d.allow == false
}

test_ext_deny_false_allows if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as false
	granted(d, ["iam.allow", "resource.any"])
}

test_ext_empty_set_allows if {
	d := engine.decision with input as ask(a_retrieve, [allow(["**"], [res_any])])
		with data.verdict.ext.deny as set()
	granted(d, ["iam.allow", "resource.any"])
}

test_ext_deny_after_owner_allow if {
	d := engine.decision with input as owned_by(on(ask(a_update, []), bonds, set()), "user_a")
		with data.verdict.ext.deny as {{"code": "ext.x", "message": "x"}}
	denied(d, 403, ["resource.owner", "ext.x"])
}

test_iam_deny_wins_over_ext if {
	d := engine.decision with input as ask(a_retrieve, [])
		with data.verdict.ext.deny as {{"code": "ext.x", "message": "x"}}
	denied(d, 403, ["iam.no_allow"])
}

test_iam_explicit_deny_wins_over_ext if {
	d := engine.decision with input as ask(a_retrieve, [deny(["**"], [res_any])])
		with data.verdict.ext.deny as {{"code": "ext.x", "message": "x"}}
	denied(d, 403, ["iam.explicit_deny"])
}

# --- layer 5: delegation (Fineract CN) -------------------------------------------
# A request naming an application is the application acting for the member.
# facts.delegation = {groups: the permittable groups that list the route,
# entries: {group: {operations, enabled_by}}} for that application (see
# decision/delegation.go delegationFacts).

khepri := "portfolio__v1__khepri"

a_create := "finmars:Portfolio:create"

# delegated: app acts for user_a with an Allow on everything, through a
# route in the groups, with the application's entries.
delegated(method, groups, entries) := object.union(
	via_route(ask(a_create, [allow(["**"], [res_any])]), method, "/api/v1/portfolios/khepri/", "Portfolio", a_create),
	{"application": "rhythm", "facts": {"delegation": {"groups": groups, "entries": entries}}},
)

entry(ops, enabled_by) := {"operations": ops, "enabled_by": enabled_by}

khepri_change_by(members) := {khepri: entry({"CHANGE"}, members)}

test_delegation_not_applied_without_application if {
	inp := json.remove(delegated("POST", {khepri}, {}), ["application"])
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.any"])
}

test_delegation_allow_after_iam if {
	d := engine.decision with input as delegated("POST", {khepri}, khepri_change_by({"user_a"}))
	granted(d, ["iam.allow", "resource.any", "delegation.allow"])
	r := reason(d, "delegation.allow")
	r.layer == "delegation"
	r.effect == "allow"
	contains(r.message, khepri)
	contains(r.message, "CHANGE")
}

test_delegation_not_requested_without_entry if {
	d := engine.decision with input as delegated("POST", {khepri}, {})
	denied(d, 403, ["iam.allow", "resource.any", "delegation.not_requested"])
	r := reason(d, "delegation.not_requested")
	r.layer == "delegation"
	r.message == sprintf("Application \"rhythm\" has not requested CHANGE on permittable group %s of tenant \"bank\".", [khepri])
}

test_delegation_not_requested_when_operation_missing if {
	d := engine.decision with input as delegated("POST", {khepri}, {khepri: entry({"READ", "DELETE"}, {"user_a"})})
	denied(d, 403, ["iam.allow", "resource.any", "delegation.not_requested"])
}

test_delegation_not_requested_when_route_has_no_group if {
	d := engine.decision with input as delegated("POST", set(), khepri_change_by({"user_a"}))
	denied(d, 403, ["iam.allow", "resource.any", "delegation.not_requested"])
	contains(reason(d, "delegation.not_requested").message, "the route belongs to no permittable group")
}

test_delegation_not_requested_when_facts_missing if {
	# An action-only request that no route maps to: no groups at all.
	inp := object.union(json.remove(ask(a_create, [allow(["**"], [res_any])]), ["facts/route"]), {"application": "rhythm"})
	d := engine.decision with input as inp
	denied(d, 403, ["iam.allow", "resource.any", "delegation.not_requested"])
	contains(reason(d, "delegation.not_requested").message, "action finmars:Portfolio:create")
}

test_delegation_not_enabled_by_this_member if {
	d := engine.decision with input as delegated("POST", {khepri}, khepri_change_by({"imhotep"}))
	denied(d, 403, ["iam.allow", "resource.any", "delegation.not_enabled"])
	r := reason(d, "delegation.not_enabled")
	r.message == sprintf("Member \"user_a\" has not enabled application \"rhythm\" to act for them on permittable group %s.", [khepri])
}

test_delegation_not_enabled_by_anyone if {
	d := engine.decision with input as delegated("POST", {khepri}, khepri_change_by(set()))
	denied(d, 403, ["iam.allow", "resource.any", "delegation.not_enabled"])
}

test_delegation_not_enabled_for_anonymous_without_iam if {
	# A tenant without the iam layer: an anonymous request reaches layer 5.
	inp := with_checks(anonymous(delegated("POST", {khepri}, khepri_change_by({"user_a"}))), {"package"})
	inp2 := json.remove(inp, ["facts/tenant/checks"])
	d := engine.decision with input as object.union(inp2, {"facts": {"tenant": {"checks": set()}}})
	denied(d, 403, ["delegation.not_enabled"])
	reason(d, "delegation.not_enabled").message == "The request names no member for application \"rhythm\" to act for."
}

test_delegation_read_methods if {
	every m in ["GET", "HEAD", "OPTIONS"] {
		d := engine.decision with input as delegated(m, {khepri}, {khepri: entry({"READ"}, {"user_a"})})
		granted(d, ["iam.allow", "resource.any", "delegation.allow"])
	}
}

test_delegation_change_methods if {
	every m in ["POST", "PUT", "PATCH"] {
		d := engine.decision with input as delegated(m, {khepri}, khepri_change_by({"user_a"}))
		granted(d, ["iam.allow", "resource.any", "delegation.allow"])
	}
}

test_delegation_delete_method if {
	d := engine.decision with input as delegated("DELETE", {khepri}, {khepri: entry({"DELETE"}, {"user_a"})})
	granted(d, ["iam.allow", "resource.any", "delegation.allow"])
}

test_delegation_operations_do_not_cover_each_other if {
	every m in ["GET", "POST", "DELETE"] {
		d := engine.decision with input as delegated(m, {khepri}, {khepri: entry({"READ", "CHANGE", "DELETE"} - {op_of(m)}, {"user_a"})})
		denied(d, 403, ["iam.allow", "resource.any", "delegation.not_requested"])
	}
}

op_of(m) := {"GET": "READ", "POST": "CHANGE", "DELETE": "DELETE"}[m]

test_delegation_action_only_uses_route_method if {
	# No input.request: the method is the one of the route the action maps to.
	inp := json.remove(delegated("GET", {khepri}, {khepri: entry({"READ"}, {"user_a"})}), ["request"])
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.any", "delegation.allow"])
	inp2 := json.remove(delegated("POST", {khepri}, {khepri: entry({"READ"}, {"user_a"})}), ["request"])
	d2 := engine.decision with input as inp2
	denied(d2, 403, ["iam.allow", "resource.any", "delegation.not_requested"])
}

test_delegation_several_groups_requested_one_enabled_other if {
	inp := delegated("POST", {khepri, "portfolio__v1__other"}, {
		khepri: entry({"CHANGE"}, {"imhotep"}),
		"portfolio__v1__other": entry({"READ"}, {"user_a"}),
	})
	d := engine.decision with input as inp
	denied(d, 403, ["iam.allow", "resource.any", "delegation.not_enabled"])
}

test_delegation_several_groups_first_enabled_is_named if {
	inp := delegated("POST", {khepri, "portfolio__v1__a"}, {
		khepri: entry({"CHANGE"}, {"user_a"}),
		"portfolio__v1__a": entry({"CHANGE"}, {"user_a"}),
	})
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.any", "delegation.allow"])
	contains(reason(d, "delegation.allow").message, "portfolio__v1__a")
}

test_delegation_runs_after_iam_deny if {
	# IAM (layer 4) denies first: the delegation layer is not reported.
	inp := object.union(delegated("POST", {khepri}, {}), {"facts": {"statements": []}})
	d := engine.decision with input as inp
	denied(d, 403, ["iam.no_allow"])
}

test_delegation_applies_to_admins if {
	d := engine.decision with input as as_admin(delegated("POST", {khepri}, {}))
	denied(d, 403, ["iam.admin", "delegation.not_requested"])
	d2 := engine.decision with input as as_admin(delegated("POST", {khepri}, khepri_change_by({"user_a"})))
	granted(d2, ["iam.admin", "delegation.allow"])
}

test_delegation_deny_wins_over_ext if {
	d := engine.decision with input as delegated("POST", {khepri}, {})
		with data.verdict.ext.deny as {{"code": "ext.x", "message": "x"}}
	denied(d, 403, ["iam.allow", "resource.any", "delegation.not_requested"])
}

test_delegation_allow_then_ext_deny if {
	d := engine.decision with input as delegated("POST", {khepri}, khepri_change_by({"user_a"}))
		with data.verdict.ext.deny as {{"code": "ext.x", "message": "x"}}
	denied(d, 403, ["iam.allow", "resource.any", "delegation.allow", "ext.x"])
}

test_delegation_plan_none_when_not_enabled if {
	p := engine.plan with input as delegated("GET", {khepri}, {khepri: entry({"READ"}, set())})
	p.kind == "none"
	[r.code | some r in p.reasons] == ["delegation.not_enabled"]
}

test_delegation_plan_keeps_grant if {
	p := engine.plan with input as delegated("GET", {khepri}, {khepri: entry({"READ"}, {"user_a"})})
	p.kind == "all"
	[r.code | some r in p.reasons] == ["iam.allow", "resource.any", "delegation.allow"]
}

test_delegation_plan_owner_filter_not_offered_when_delegation_denies if {
	# IAM finds no Allow (owned objects could still pass) but the
	# application may not act for the member at all: nothing passes.
	inp := object.union(delegated("GET", {khepri}, {}), {"facts": {"statements": []}})
	p := engine.plan with input as inp
	p.kind == "none"
}

# --- decision's fast branches agree with the chain -----------------------------

# decision's fast branches are cases of layered_decision, the definition
# (engine.rego, "The branches before the last are fast paths"). Each input
# below is in the shape gather gives (tenant.package, a route's facts),
# near the guards of the IAM branches, and breaks one guard at a time; the
# two documents must give the same decision for every one.

gathered(inp) := object.union(inp, {"facts": {
	"tenant": {"package": false},
	"route": {"service": "portfolios", "template": "/api/v1/portfolio/", "method": "GET", "viewset": "portfolio", "action": "list"},
}})

fast_bases := [
	gathered(ask(a_list, [])),
	gathered(ask(a_list, [allow(["**"], [res_any])])),
	gathered(ask(a_list, [deny(["**"], [res_any])])),
	gathered(on(ask(a_retrieve, []), bonds, set())),
	gathered(on(ask(a_retrieve, [allow(["**"], [res_object(equity)])]), bonds, set())),
	gathered(as_reference(on(ask(a_retrieve, [allow(["**"], [res_object(equity)])]), bonds, set()))),
]

fast_variants(b) := [
	b,
	with_checks(b, set()),
	with_checks(b, {"iam", "package"}),
	object.union(b, {"consistency": {"at_least": 1}}),
	object.union(b, {"application": "reports"}),
	object.union(b, {"facts": {"key": {"known": false}}}),
	json.remove(b, ["member"]),
	object.union(b, {"member": 7}),
	object.union(b, {"facts": {"route": "portfolios"}}),
	json.remove(unknown_route(b), ["facts/route"]),
	object.union(b, {"facts": {"member": {"is_admin": true}}}),
	object.union(b, {"facts": {"member": "user_a"}}),
	owned_by(b, "user_a"),
]

test_fast_branches_agree_with_the_chain if {
	every b in fast_bases {
		every inp in fast_variants(b) {
			d := engine.decision with input as inp
			d == engine.layered_decision with input as inp
		}
	}
}

test_fast_branches_are_taken if {
	# The bases themselves reach the fast branches (and are decided as
	# the chain decides them, above).
	no_allow := engine.decision with input as fast_bases[0]
	denied(no_allow, 403, ["iam.no_allow"])
	allowed := engine.decision with input as fast_bases[1]
	granted(allowed, ["iam.allow", "resource.any"])
	not_covered := engine.decision with input as fast_bases[4]
	denied(not_covered, 403, ["resource.not_covered"])
}
