package verdict.lint_test

import data.verdict.lint

broad := {"acme": {"access_policies": {"all": {"Statement": [{"Effect": "Allow", "Action": "finmars:*", "Resource": "*"}]}}}}

narrow := {"acme": {"access_policies": {"read": {"Statement": [{"Effect": "Allow", "Action": ["finmars:Portfolio:list"], "Resource": "*"}]}}}}

test_broad_allow_is_rejected if {
	[d] := [d | some d in lint.deny] with input as {"tenants": broad}
	d.entry == "access_policies.all.Statement[0].Action"
}

test_narrow_allow_passes if count(lint.deny) == 0 with input as {"tenants": narrow}

test_broad_deny_passes if {
	count(lint.deny) == 0 with input as {"tenants": {"acme": {"access_policies": {"no": {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}}}}}
}
