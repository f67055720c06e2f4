# Rego unit tests of the demo's conditions; `verdict test` runs them.
package verdict.conditions_test

import data.verdict.conditions

test_office_hours_morning if conditions.office_hours with input as {"context": {"hour": 9}}

test_office_hours_last_hour if conditions.office_hours with input as {"context": {"hour": 17}}

test_not_office_hours_evening if not conditions.office_hours with input as {"context": {"hour": 18}}

test_not_office_hours_without_hour if not conditions.office_hours with input as {"context": {}}
