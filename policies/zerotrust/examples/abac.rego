# ABAC example: attributes of the principal, the request and the context decide.
#
#   /departments/<d>/...  only for principals whose "department" claim is <d>
#   writes                need a strong authentication (acr) within 10 minutes, else step-up (RFC 9470)
#   risk score >= 0.8     deny everything
# Query data.zerotrust.examples.abac.decision.
package zerotrust.examples.abac

strong_acr := "urn:zerotrust:acr:mfa"

step_up_max_age := 600

read_method if input.request.method in {"GET", "HEAD"}

segments := split(trim_prefix(input.request.path, "/"), "/")

department_ok if segments[0] != "departments"

department_ok if {
	segments[0] == "departments"
	segments[1] == input.principal.claims.department
}

# auth_time is checked against the token's own iat, so the decision does not depend on
# the clock and stays cacheable; tokens are short-lived.
recent_strong_auth if {
	input.principal.acr == strong_acr
	is_number(input.principal.auth_time)
	is_number(input.principal.claims.iat)
	input.principal.claims.iat - input.principal.auth_time <= step_up_max_age
}

# is_number first: comparisons across types differ between OPA (null < 0.8) and rego-cpp.
too_risky if {
	is_number(input.context.risk.score)
	input.context.risk.score >= 0.8
}

default decision := {"allow": false, "reason": "abac:deny"}

decision := {"allow": false, "reason": "abac:unauthenticated"} if not is_object(input.principal)

decision := d if {
	is_object(input.principal)
	d := verdict
}

verdict := {"allow": false, "reason": "abac:risk"} if {
	too_risky
} else := {"allow": false, "reason": "abac:department"} if {
	not department_ok
} else := {"allow": true, "reason": "abac:read"} if {
	read_method
} else := {"allow": true, "reason": "abac:write"} if {
	recent_strong_auth
} else := {
	"allow": false,
	"reason": "abac:step_up",
	"obligations": {"step_up": {"acr_values": strong_acr, "max_age": step_up_max_age}},
}
