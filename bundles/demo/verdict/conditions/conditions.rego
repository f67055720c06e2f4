# Conditions that access-policy statements name in their Condition field.
# Each is a rule data.verdict.conditions.<name>; it holds when it is true.
package verdict.conditions

# office_hours holds when the caller says the request is made between 09:00
# and 17:59 (input.context.hour, 0-23).
office_hours if {
	input.context.hour >= 9
	input.context.hour < 18
}
