# Unit tests for data.verdict.engine.plan (list plans, see the README "List
# plans"): a plan must never keep an object that data.verdict.engine.decision
# denies. Inputs are built in the shape the Go engine gathers, as in
# engine_test.rego, with their own small fixtures. Run with `go test ./rego/`.
package verdict.plan_test

import data.verdict.engine

# --- fixtures --------------------------------------------------------------------

a_list := "finmars:Portfolio:list"

portfolio(code) := concat("", ["frn:finmars:portfolios:portfolio:", code])

# member is memberFacts: principals are "*", "member:<name>" and
# "group:<code>" for each of its groups.
member(name) := {
	"name": name,
	"is_admin": false,
	"groups": set(),
	"principals": {"*", concat(":", ["member", name])},
}

stmt(policy, effect, resources) := {
	"policy": policy,
	"statement": 0,
	"effect": effect,
	"actions": ["finmars:portfolio:list"],
	"resources": resources,
	"principals": ["*"],
	"conditions": [],
}

# A statement resource as loader/acl ParseResourcePattern makes it: a
# pattern holding "*" is in glob.match form, every glob meta character but
# "*" (\ ? [ ] { }) escaped with a backslash. The escaped forms below are
# written out by hand.
res_object(pattern, literal) := {"kind": "object", "pattern": pattern, "literal": literal}

res_group(pattern, literal) := {"kind": "group", "pattern": pattern, "literal": literal}

# list_as: member name lists portfolios of tenant bank (IAM checked) with
# the given candidate statements, and the model named.
list_as(name, statements) := {
	"tenant": "bank",
	"member": name,
	"action": a_list,
	"facts": {
		"tenant": {"code": "bank", "name": "Bank", "checks": {"iam"}},
		"member": member(name),
		"action": lower(a_list),
		"statements": statements,
	},
	"plan": {"model_prefix": "frn:finmars:portfolios:portfolio:"},
}

# owned: the same request for one object that the member owns.
owned(inp, code) := object.union(inp, {
	"resource": {"frn": portfolio(code), "owner": inp.member},
	"facts": {"resource": {"frn": portfolio(code), "groups": set()}},
})

ip_blocked := {{"code": "ext.ip_blocked", "message": "Requests from 203.0.113.66 are blocked."}}

codes(reasons) := [r.code | some r in reasons]

# --- the owner filter and the layers after IAM -----------------------------------

test_owner_filter_without_statements if {
	# intern: no policy at all; only the objects intern owns pass.
	p := engine.plan with input as list_as("intern", [])
	p.kind == "some"
	p.filter == {"owner": "intern"}
	p.reasons == []
}

test_owner_filter_not_offered_when_ext_denies if {
	# The demo's ip_blocked rule reads input.context only: decide denies
	# intern's own objects too, so the plan keeps nothing.
	p := engine.plan with input as list_as("intern", [])
		with data.verdict.ext.deny as ip_blocked
	p.kind == "none"
	codes(p.reasons) == ["ext.ip_blocked"]
	not p.filter
}

test_owner_filter_ext_deny_agrees_with_decide if {
	inp := list_as("intern", [])
	p := engine.plan with input as inp with data.verdict.ext.deny as ip_blocked
	d := engine.decision with input as owned(inp, "intern-pf") with data.verdict.ext.deny as ip_blocked
	d.allow == false
	codes(d.reasons) == ["resource.owner", "ext.ip_blocked"]
	p.kind == "none"
	p.reasons == [r | some r in d.reasons; r.effect == "deny"]
}

test_owner_filter_not_offered_when_ext_deny_is_scalar if {
	# Bundle data such as `deny: true` denies every request.
	p := engine.plan with input as list_as("intern", []) with data.verdict.ext.deny as true
	p.kind == "none"
	codes(p.reasons) == ["ext.deny"]
}

test_owner_filter_offered_when_ext_deny_is_false if {
	p := engine.plan with input as list_as("intern", []) with data.verdict.ext.deny as false
	p.kind == "some"
	p.filter == {"owner": "intern"}
}

test_owner_filter_not_offered_when_ext_denies_with_statements if {
	# Statements apply but none allows (iam.no_allow through the
	# applicable-allows branch): owned objects pass but for the ext rule.
	inp := list_as("intern", [stmt("deny-secret", "deny", [res_object(portfolio("secret"), true)])])
	p0 := engine.plan with input as inp
	p0.kind == "some"
	p0.filter == {"owner": "intern"}
	p0.exclude == {"user_codes": ["secret"]}
	p := engine.plan with input as inp with data.verdict.ext.deny as ip_blocked
	p.kind == "none"
	codes(p.reasons) == ["ext.ip_blocked"]
}

test_owner_filter_delegation_deny_wins_over_ext if {
	# As in the decision, the delegation layer (5) decides before the
	# extension rules (6).
	inp := object.union(list_as("intern", []), {"application": "rhythm", "facts": {"delegation": {"groups": set(), "entries": {}}}})
	p := engine.plan with input as inp with data.verdict.ext.deny as ip_blocked
	p.kind == "none"
	codes(p.reasons) == ["delegation.not_requested"]
	d := engine.decision with input as owned(inp, "intern-pf") with data.verdict.ext.deny as ip_blocked
	codes(d.reasons) == ["resource.owner", "delegation.not_requested"]
}

test_allowed_list_with_ext_deny_is_none if {
	# The path that was already right: an Allow, then the ext rule denies.
	inp := list_as("user_a", [stmt("read-all", "allow", [{"kind": "any", "pattern": "*", "literal": false}])])
	p := engine.plan with input as inp with data.verdict.ext.deny as ip_blocked
	p.kind == "none"
	codes(p.reasons) == ["ext.ip_blocked"]
}

# --- criteria carry the statement's text, not its glob.match escapes ----------------

test_prefix_is_unescaped if {
	# Deny on frn:finmars:portfolios:portfolio:secret[1]*: decide denies
	# secret[1]-x, so the plan must exclude the prefix "secret[1]".
	inp := list_as("user_a", [
		stmt("read-all", "allow", [{"kind": "any", "pattern": "*", "literal": false}]),
		stmt("deny-secret", "deny", [res_object(`frn:finmars:portfolios:portfolio:secret\[1\]*`, false)]),
	])
	p := engine.plan with input as inp
	p.kind == "some"
	p.exclude == {"user_code_prefixes": ["secret[1]"]}
	d := engine.decision with input as owned(inp, "secret[1]-x")
	d.allow == false
	startswith("secret[1]-x", p.exclude.user_code_prefixes[0])
}

test_every_escaped_character_is_unescaped if {
	inp := list_as("user_a", [stmt("read", "allow", [
		# a?b{c}\d* and x[2]*y, escaped
		res_object(`frn:finmars:portfolios:portfolio:a\?b\{c\}\\d*`, false),
		res_object(`frn:finmars:portfolios:portfolio:x\[2\]*y`, false),
		# resource groups grp[x]* and team{1}?*
		res_group(`grp\[x\]*`, false),
		res_group(`team\{1\}\?*`, false),
	])])
	p := engine.plan with input as inp
	p.kind == "some"
	p.filter == {
		"owner": "user_a",
		"user_code_prefixes": [`a?b{c}\d`],
		"user_code_patterns": ["x[2]*y"],
		"resource_group_patterns": ["grp[x]*", "team{1}?*"],
	}
}

test_escaped_backslashes_are_kept if {
	# The user codes \[* (a backslash, then "["), \\?* (two backslashes,
	# then "?") and p\*q\ escape to \\\[*, \\\\\?* and p\\*q\\: an escaped
	# backslash stays, one backslash for two, and does not escape what
	# follows it.
	inp := list_as("user_a", [stmt("read", "allow", [
		res_object(`frn:finmars:portfolios:portfolio:\\\[*`, false),
		res_object(`frn:finmars:portfolios:portfolio:\\\\\?*`, false),
		res_object(`frn:finmars:portfolios:portfolio:p\\*q\\`, false),
	])])
	p := engine.plan with input as inp
	p.filter.user_code_prefixes == [`\[`, `\\?`]
	p.filter.user_code_patterns == [`p\*q\`]
}

test_literal_codes_are_left_as_written if {
	# Without "*" the loader does not escape: a literal keeps its backslash.
	inp := list_as("user_a", [stmt("read", "allow", [
		res_object(`frn:finmars:portfolios:portfolio:a\[b]`, true),
		res_group(`g\[1]`, true),
	])])
	p := engine.plan with input as inp
	p.filter.user_codes == [`a\[b]`]
	p.filter.resource_groups == [`g\[1]`]
}

test_listed_model_is_matched_on_the_unescaped_frn if {
	# Another model's FRN stays out; the listed model's does not.
	inp := list_as("user_a", [stmt("read", "allow", [
		res_object(`frn:finmars:portfolios:portfolio:k\[1\]*`, false),
		res_object(`frn:finmars:portfolios:portfoliotype:k\[2\]*`, false),
	])])
	p := engine.plan with input as inp
	p.filter.user_code_prefixes == ["k[1]"]
}
