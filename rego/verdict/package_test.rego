# Rego unit tests of layer 3 (SOAJS packages): every branch of README "How a decision is made",
# layer-3 rules, the ACL precedence, per-method sections and the codes,
# messages and statuses.
package verdict.package_test

import data.verdict.engine

# --- builders ---------------------------------------------------------------------

# ask builds the input of a package-only tenant's request with a valid key
# for GET /users/{id} on service svc; acls are the candidate ACLs by source.
# facts.package_route is the route whose API the ACL is checked on (the
# route of the request's action), here the request's own route.
ask(member, groups, acls) := object.union(base, member_part(member, groups)) if {
	base := {
		"tenant": "t1",
		"action": "svc:users:get",
		"request": {"service": "svc", "method": "GET", "path": "/users/7"},
		"facts": {
			"tenant": {"code": "t1", "checks": {"package"}},
			"key": {"known": true, "tenant": "t1", "application": "app", "package": "PCK"},
			"route": users_get,
			"package_route": users_get,
			"acl": acls,
		},
	}
}

users_get := {"service": "svc", "template": "/users/{id}", "api": "/users/{}", "method": "GET", "viewset": "", "action": "svc:users:get"}

users_post := {"service": "svc", "template": "/users", "api": "/users", "method": "POST", "viewset": "", "action": "svc:users:post"}

member_part(member, _) := {} if member == ""

member_part(member, groups) := {"member": member, "facts": {"member": {"name": member, "is_admin": false, "groups": groups, "principals": {"*"}}}} if member != ""

# svc_acl builds one service's ACL entry.
svc_acl(access, restricted, apis) := {"access": access, "restricted": restricted, "apis": apis, "methods": {}}

api(access) := {"/users/{}": {"template": "/users/{id}", "access": access}}

decide(question) := d if {
	d := engine.decision with input as question
}

denied_with(d, code) if {
	d.allow == false
	d.status == 401
	[r] := d.reasons
	r.layer == "package"
	r.soajs_code == code
}

allowed(d) if {
	d.allow == true
	d.status == 200
	some r in d.reasons
	r.code == "package.allow"
}

# --- no ACL for the service: 154 ---------------------------------------------

test_no_acl_for_the_service_is_154 if {
	d := decide(ask("", set(), {}))
	denied_with(d, 154)
	d.reasons[0].code == "package.service_denied"
}

# --- access truthy ---------------------------------------------------------------

test_access_groups_the_member_misses_is_157 if {
	denied_with(decide(ask("bob", {"silver"}, {"package": svc_acl(["gold"], false, {})})), 157)
}

test_access_groups_the_member_has_passes_to_the_api if {
	allowed(decide(ask("bob", {"gold"}, {"package": svc_acl(["gold"], false, {})})))
}

test_access_true_anonymous_without_api_is_158 if {
	denied_with(decide(ask("", set(), {"package": svc_acl(true, false, {})})), 158)
}

test_access_true_anonymous_with_protected_api_is_158 if {
	denied_with(decide(ask("", set(), {"package": svc_acl(true, false, api(true))})), 158)
}

test_access_true_anonymous_with_open_api_is_allowed if {
	allowed(decide(ask("", set(), {"package": svc_acl(true, false, api(false))})))
}

test_access_true_logged_in_member_passes if {
	allowed(decide(ask("bob", set(), {"package": svc_acl(true, false, {})})))
}

test_access_groups_anonymous_is_158 if {
	denied_with(decide(ask("", set(), {"package": svc_acl(["gold"], false, {})})), 158)
}

# --- access falsy ---------------------------------------------------------------------

test_access_false_no_api_not_restricted_allows if {
	allowed(decide(ask("", set(), {"package": svc_acl(false, false, {})})))
}

test_access_false_restricted_without_api_is_159 if {
	denied_with(decide(ask("bob", {"gold"}, {"package": svc_acl(false, true, {})})), 159)
}

# --- check the API -------------------------------------------------------------------------

test_api_access_false_allows_anyone if {
	allowed(decide(ask("", set(), {"package": svc_acl(false, true, api(false))})))
}

test_api_access_true_anonymous_is_161 if {
	denied_with(decide(ask("", set(), {"package": svc_acl(false, false, api(true))})), 161)
}

# An API entry without access asks for no login. (The rules once denied
# this with 161: "not truthy(api.access)" is undefined, not true, when
# access is missing; see TestNoNegatedCallOnARef.)
test_api_without_access_is_open_to_anonymous if {
	allowed(decide(ask("", set(), {"package": svc_acl(false, false, {"/users/{}": {"template": "/users/{id}"}})})))
}

test_api_access_groups_anonymous_is_161 if {
	denied_with(decide(ask("", set(), {"package": svc_acl(false, false, api(["gold"]))})), 161)
}

test_api_access_groups_the_member_misses_is_160 if {
	denied_with(decide(ask("bob", {"silver"}, {"package": svc_acl(false, false, api(["gold"]))})), 160)
}

test_api_access_groups_the_member_has_allows if {
	allowed(decide(ask("bob", {"silver", "gold"}, {"package": svc_acl(false, false, api(["gold"]))})))
}

test_api_access_true_logged_in_allows if {
	allowed(decide(ask("bob", set(), {"package": svc_acl(false, false, api(true))})))
}

test_unknown_member_counts_as_logged_in_without_groups if {
	# facts.member absent: a member named but not in the tenant.
	q := object.union(ask("", set(), {"package": svc_acl(false, false, api(["gold"]))}), {"member": "ghost"})
	denied_with(decide(q), 160)
}

# --- precedence of candidate ACLs ------------------------------------------------

open := svc_acl(false, false, {})

closed := svc_acl(false, true, {})

test_member_key_acl_wins_over_all if {
	d := decide(ask("bob", set(), {"member_key": open, "member_package": closed, "application": closed, "package": closed}))
	allowed(d)
	d.reasons[0].acl_source == "member key"
}

test_member_package_acl_wins_over_application_and_package if {
	d := decide(ask("bob", set(), {"member_package": open, "application": closed, "package": closed}))
	allowed(d)
	d.reasons[0].acl_source == "member package"
}

test_application_acl_wins_over_package if {
	d := decide(ask("bob", set(), {"application": open, "package": closed}))
	allowed(d)
	d.reasons[0].acl_source == "application"
}

test_member_key_acl_can_restrict_what_the_package_allows if {
	denied_with(decide(ask("bob", set(), {"member_key": closed, "package": open})), 159)
}

# --- per-method sections ------------------------------------------------------------

test_method_section_apis_are_used_for_its_method if {
	acl := {"access": false, "restricted": false, "apis": {}, "methods": {"get": {"apis": api(["gold"])}}}
	denied_with(decide(ask("bob", set(), {"package": acl})), 160)
}

test_method_section_of_another_method_is_ignored if {
	acl := {"access": false, "restricted": false, "apis": {}, "methods": {"post": {"apis": api(["gold"]), "restricted": true}}}
	allowed(decide(ask("bob", set(), {"package": acl})))
}

test_method_section_restricted_falls_back_to_the_service if {
	acl := {"access": false, "restricted": true, "apis": {}, "methods": {"get": {"apis": {}}}}
	denied_with(decide(ask("bob", set(), {"package": acl})), 159)
}

test_method_section_may_lift_the_restriction if {
	acl := {"access": false, "restricted": true, "apis": {}, "methods": {"get": {"restricted": false}}}
	allowed(decide(ask("bob", set(), {"package": acl})))
}

test_method_section_apis_fall_back_to_the_service if {
	acl := {"access": false, "restricted": true, "apis": api(false), "methods": {"get": {"restricted": true}}}
	allowed(decide(ask("bob", set(), {"package": acl})))
}

test_method_section_apis_without_the_route_govern_alone if {
	# The section's apis list another API: the route's is not listed there,
	# and the service's apis, which would deny bob, are not consulted.
	other := {"/users": {"template": "/users", "access": ["gold"]}}
	acl := {"access": false, "restricted": false, "apis": api(["gold"]), "methods": {"get": {"apis": other}}}
	allowed(decide(ask("bob", set(), {"package": acl})))
}

test_method_section_apis_without_the_route_deny_when_restricted if {
	other := {"/users": {"template": "/users", "access": false}}
	acl := {"access": false, "restricted": true, "apis": api(false), "methods": {"get": {"apis": other}}}
	denied_with(decide(ask("bob", set(), {"package": acl})), 159)
}

test_method_section_apis_false_fall_back_to_the_service if {
	acl := {"access": false, "restricted": false, "apis": api(["gold"]), "methods": {"get": {"apis": false}}}
	denied_with(decide(ask("bob", set(), {"package": acl})), 160)
}

test_route_without_a_method_checks_the_service_apis if {
	# A hand-built route without its method: no method section applies,
	# so the service's apis are checked, as before any section existed.
	acl := {"access": false, "restricted": false, "apis": api(["gold"]), "methods": {"get": {"apis": {}}}}
	q := ask("bob", set(), {"package": acl})
	no_method := json.remove(q, ["facts/package_route/method"])
	denied_with(decide(no_method), 160)
}

# --- with the other layers --------------------------------------------------------------

test_package_and_iam_both_must_allow if {
	q := object.union(ask("bob", set(), {"package": open}), {"facts": {"tenant": {"code": "t1", "checks": {"package", "iam"}}, "statements": []}})
	d := decide(q)
	d.allow == false
	[grant, deny] := d.reasons
	grant.code == "package.allow"
	deny.code == "iam.no_allow"
	d.status == 403
}

test_package_deny_comes_before_iam if {
	q := object.union(ask("bob", set(), {}), {"facts": {"tenant": {"code": "t1", "checks": {"package", "iam"}}}})
	d := decide(q)
	[r] := d.reasons
	r.soajs_code == 154
}

test_iam_only_tenant_skips_the_package_layer if {
	q := object.union(ask("bob", set(), {}), {"facts": {"tenant": {"code": "t1", "checks": {"iam"}}, "statements": [{
		"policy": "p", "statement": 0, "effect": "allow", "actions": ["**"],
		"resources": [{"kind": "any", "pattern": "*", "literal": true}], "principals": ["*"], "conditions": [],
	}]}})
	d := decide(q)
	d.allow == true
	every r in d.reasons { r.layer == "iam" }
}

# --- the API judged is the action's (issue 14, item 6) ----------------------------
# A request that names an explicit action besides its HTTP request is judged
# on that action's route (facts.package_route), as the IAM layer judges the
# action; the request's own route (facts.route) only has to exist.

test_the_api_judged_is_the_action_route if {
	acls := {"package": svc_acl(true, false, api(["gold"]))}

	# GET /users/{id} needs gold; POST /users is open to a logged-in member.
	denied_with(decide(ask("bob", {"silver"}, acls)), 160)
	as_post := json.patch(ask("bob", {"silver"}, acls), [
		{"op": "replace", "path": "/action", "value": "svc:users:post"},
		{"op": "replace", "path": "/facts/package_route", "value": users_post},
	])
	d := decide(as_post)
	allowed(d)
}

test_without_the_action_route_the_package_layer_denies if {
	inp := json.remove(ask("bob", {"gold"}, {"package": svc_acl(true, false, api(["gold"]))}), ["facts/package_route"])
	d := decide(inp)
	d.allow == false
	d.reasons[0].code == "error.internal"
}
