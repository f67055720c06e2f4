# Unit tests for the fleet's shared run-time state (README "Running a fleet"): a request
# carrying consistency.at_least is denied while the facts are older, and
# while the state is stale an application does not act for a member by
# consent. input.facts.state is gathered by decision/engine.go gather.
package verdict.engine_test

import data.verdict.engine

at_state(inp, revision, stale) := object.union(inp, {"facts": {"state": {"revision": revision, "stale": stale}}})

test_consistency_met_decides_as_usual if {
	inp := object.union(at_state(delegated("POST", {khepri}, khepri_change_by({"user_a"})), 7, false), {"consistency": {"at_least": 7}})
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.any", "delegation.allow"])
}

test_consistency_not_met_denies_state_stale if {
	inp := object.union(at_state(delegated("POST", {khepri}, khepri_change_by({"user_a"})), 6, false), {"consistency": {"at_least": 7}})
	d := engine.decision with input as inp
	denied(d, 403, ["state.stale"])
	r := reason(d, "state.stale")
	r.layer == "state"
	contains(r.message, "revision 7")
	contains(r.message, "revision 6")
}

test_consistency_without_shared_state_denies if {
	inp := object.union(ask(a_list, [allow(["**"], [res_any])]), {"consistency": {"at_least": 1}})
	d := engine.decision with input as inp
	denied(d, 403, ["state.stale"])
	contains(reason(d, "state.stale").message, "without --state-db")
}

test_stale_state_denies_consent_based_allow if {
	d := engine.decision with input as at_state(delegated("POST", {khepri}, khepri_change_by({"user_a"})), 3, true)
	denied(d, 403, ["iam.allow", "resource.any", "state.stale"])
	r := reason(d, "state.stale")
	r.layer == "delegation"
	contains(r.message, "revision 3")
}

test_stale_state_keeps_other_decisions if {
	inp := at_state(ask(a_list, [allow(["**"], [res_any])]), 3, true)
	d := engine.decision with input as inp
	granted(d, ["iam.allow", "resource.any"])
}

test_stale_state_keeps_denying_without_consent if {
	d := engine.decision with input as at_state(delegated("POST", {khepri}, khepri_change_by({"user_b"})), 3, true)
	denied(d, 403, ["iam.allow", "resource.any", "delegation.not_enabled"])
}
