# Extension rules: every element of deny is a deny, whatever the layers
# before it decided (even for an admin).
package verdict.ext

deny contains {"code": "ext.ip_blocked", "message": sprintf("Requests from %s are blocked.", [input.context.ip])} if {
	input.context.ip in data.verdict.blocked_ips
}
