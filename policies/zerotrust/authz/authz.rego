# Default authorization: the same rules as the built-in engine in examples/quickstart.yaml.
#
#   GET/HEAD            -> api:read
#   any other method    -> api:write
#   /admin and /admin/* -> additionally api:admin
#   anonymous           -> deny (the pipeline answers 401)
#
# Input and output follow the versioned contract in docs/policy.md
# (docs/policy-input.schema.json, docs/policy-output.schema.json).
# The engines query data.zerotrust.authz.decision.
package zerotrust.authz

read_methods := {"GET", "HEAD"}

# A request without a method or an absolute path matches no rule: default deny.
well_formed if {
	is_string(input.request.method)
	is_string(input.request.path)
	startswith(input.request.path, "/")
}

admin_path if input.request.path == "/admin"

admin_path if startswith(input.request.path, "/admin/")

read_method if input.request.method in read_methods

# Rule ids and reasons match the built-in engine's, so decisions can be compared 1:1.
rule_id := "admin-read" if {
	well_formed
	admin_path
	read_method
}

rule_id := "admin-write" if {
	well_formed
	admin_path
	not read_method
}

rule_id := "read" if {
	well_formed
	not admin_path
	read_method
}

rule_id := "write" if {
	well_formed
	not admin_path
	not read_method
}

rule_scopes := {
	"admin-read": ["api:read", "api:admin"],
	"admin-write": ["api:write", "api:admin"],
	"read": ["api:read"],
	"write": ["api:write"],
}

required_scopes := rule_scopes[rule_id]

authenticated if is_object(input.principal)

missing_scopes contains s if {
	some s in required_scopes
	not s in input.principal.scopes
}

default decision := {"allow": false, "reason": "no_rule", "required_scopes": []}

decision := verdict if rule_id

verdict := {
	"allow": false,
	"reason": concat(":", [rule_id, "unauthenticated"]),
	"required_scopes": required_scopes,
} if {
	not authenticated
} else := {
	"allow": false,
	"reason": concat(":", [rule_id, "scope"]),
	"required_scopes": required_scopes,
} if {
	count(missing_scopes) > 0
} else := {
	"allow": true,
	"reason": concat(":", [rule_id, "allow"]),
	"required_scopes": required_scopes,
}
