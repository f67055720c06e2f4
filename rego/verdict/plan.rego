# verdict list plans: for a list request (no object), what a service must
# filter its query by so that it returns exactly the objects /v1/decide
# would allow. Uses the same facts and rules as the decision (this file
# extends package verdict.engine).
package verdict.engine

# plan: {kind: all | none | some, filter, exclude?, reasons}. An object
# passes when it matches the filter (any of its criteria) and does not
# match the exclusion (any of its criteria). As for the decision, a plan
# that lets objects through needs plan_open, a positive outcome of every
# layer; anything else ends in the last branch, "none".

# METADATA
# entrypoint: true
plan := {"kind": "none", "reasons": verdict.denies} if {
	count(verdict.denies) > 0
	not object_plannable_deny
} else := {"kind": "none", "reasons": owner_denies} if {
	object_plannable_deny
	count(owner_denies) > 0
} else := {"kind": "all", "reasons": verdict.grants} if {
	plan_open
	count(plan_exclusions) == 0
	unconditional_access
} else := {
	"kind": "some",
	"filter": plan_filter,
	"exclude": plan_exclusions,
	"reasons": plan_reasons,
} if {
	plan_open
} else := {"kind": "none", "reasons": [incomplete_deny]}

# plan_open: the decision without an object allows, or denies only because
# no Allow applies (object_plannable_deny) and nothing after IAM denies the
# objects the member owns.
plan_open if count(verdict.denies) == 0

plan_open if {
	object_plannable_deny
	count(owner_denies) == 0
}

# object_plannable_deny: the request without an object is denied only
# because no Allow applies; objects the member owns may still pass, unless
# a layer after IAM denies them (owner_denies).
object_plannable_deny if {
	count(verdict.denies) == 1
	verdict.denies[0].code == "iam.no_allow"
}

# owner_denies: what /v1/decide answers for an object the member owns when
# the request without an object is denied only by iam.no_allow. IAM grants
# it (resource.owner), so the layers after IAM decide, in the decision's
# order: the delegation layer, then the extension rules. Neither was
# evaluated for the object-less decision (IAM denied first), and neither
# looks at an object (extension rules that read input.resource are not
# reflected in plans, see the README), so a deny here denies every object.
owner_denies := delegation.denies if {
	count(delegation.denies) > 0
} else := ext_denies

# unconditional_access: every object passes once the layers before IAM
# allowed (IAM not checked, an admin, or an Allow on "*").
unconditional_access if not input.facts.tenant.checks.iam

unconditional_access if input.facts.member.is_admin

unconditional_access if {
	some s in applicable
	s.effect == "allow"
	some r in s.resources
	r.kind == "any"
}

plan_allows := [s | some s in applicable; s.effect == "allow"]

plan_denies := [s | some s in applicable; s.effect == "deny"]

plan_filter := object.union(
	{"owner": input.member},
	object.union(
		criteria(plan_allows),
		{k: true | k := "all"; unconditional_access},
	),
)

plan_exclusions := criteria(plan_denies) if {
	not input.facts.member.is_admin
	input.facts.tenant.checks.iam
} else := {}

# criteria turns statements' resources into filter criteria on the
# objects' user codes (lower case) and resource groups. When the request
# names the listed model (input.plan.model_prefix), FRNs of other models
# are left out. Patterns and prefixes are the text of the statement (see
# unescaped), so "*" is their only wildcard.
criteria(statements) := {k: v |
	some k, v in {
		"user_codes": sort({lower(u) |
			some s in statements
			some r in s.resources
			r.kind == "object"
			r.literal
			of_listed_model(r.pattern)
			u := frn_user_code(r.pattern)
		}),
		"user_code_prefixes": sort({p |
			some s in statements
			some r in s.resources
			r.kind == "object"
			not r.literal
			frn := unescaped(r.pattern)
			of_listed_model(frn)
			u := frn_user_code(frn)
			endswith(u, "*")
			p := trim_suffix(u, "*")
			not contains(p, "*")
		}),
		"user_code_patterns": sort({u |
			some s in statements
			some r in s.resources
			r.kind == "object"
			not r.literal
			frn := unescaped(r.pattern)
			of_listed_model(frn)
			u := frn_user_code(frn)
			not prefix_pattern(u)
		}),
		"resource_groups": sort({r.pattern |
			some s in statements
			some r in s.resources
			r.kind == "group"
			r.literal
		}),
		"resource_group_patterns": sort({unescaped(r.pattern) |
			some s in statements
			some r in s.resources
			r.kind == "group"
			not r.literal
		}),
	}
	count(v) > 0
}

# unescaped: a statement resource's pattern as written (lower-cased). The
# loader puts a backslash before every glob meta character but "*" (\ ? [ ]
# { }, loader/acl/pattern.go globEscaper) of a pattern that holds a "*", for
# glob.match; a plan's criteria carry the statement's own text instead, in
# which "*" is the only wildcard and every other character stands for
# itself. The escaping is undone in one left-to-right pass, as it was made:
# each backslash escapes the character after it.
unescaped(pattern) := strings.replace_n(glob_unescapes, pattern) if {
	contains(pattern, `\`)
} else := pattern

glob_unescapes := {`\\`: `\`, `\?`: `?`, `\[`: `[`, `\]`: `]`, `\{`: `{`, `\}`: `}`}

of_listed_model(_) if not input.plan.model_prefix

of_listed_model(pattern) if startswith(pattern, input.plan.model_prefix)

prefix_pattern(u) if {
	endswith(u, "*")
	not contains(trim_suffix(u, "*"), "*")
}

# frn_user_code: the part after frn:finmars:<app>:<model>:.
frn_user_code(frn) := concat(":", array.slice(parts, 4, count(parts))) if {
	parts := split(frn, ":")
}

plan_reasons := array.concat(
	verdict.grants,
	[{
		"layer": "iam",
		"code": sprintf("iam.%s", [s.effect]),
		"effect": s.effect,
		"policy": s.policy,
		"statement": s.statement,
		"message": sprintf("Access policy %q, statement %d, shapes the filter.", [s.policy, s.statement]),
	} |
		some s in applicable
	],
)
