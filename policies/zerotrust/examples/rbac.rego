# RBAC example: roles from input.principal.roles grant (methods, path prefix) permissions.
# Query data.zerotrust.examples.rbac.decision (policy.rego.package: zerotrust.examples.rbac).
package zerotrust.examples.rbac

# In production this table would come from a data document in the bundle (data.json).
role_grants := {
	"viewer": [{"methods": {"GET", "HEAD"}, "prefix": "/"}],
	"editor": [{"methods": {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}, "prefix": "/"}],
	"auditor": [{"methods": {"GET", "HEAD"}, "prefix": "/audit/"}],
	"admin": [{"methods": {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}, "prefix": "/admin/"}],
}

# Admin paths are granted by the admin role only, whatever else a role allows.
admin_path if input.request.path == "/admin"

admin_path if startswith(input.request.path, "/admin/")

granting_roles contains role if {
	some role in input.principal.roles
	some grant in role_grants[role]
	input.request.method in grant.methods
	path_granted(grant.prefix)
}

path_granted(prefix) if {
	prefix == "/admin/"
	admin_path
}

path_granted(prefix) if {
	prefix != "/admin/"
	not admin_path
	startswith(input.request.path, prefix)
}

default decision := {"allow": false, "reason": "rbac:no_role"}

decision := {"allow": false, "reason": "rbac:unauthenticated"} if not is_object(input.principal)

decision := {
	"allow": true,
	"reason": concat(":", ["rbac", min(granting_roles)]),
	"obligations": {"headers": {"X-Auth-Role": min(granting_roles)}},
} if count(granting_roles) > 0
