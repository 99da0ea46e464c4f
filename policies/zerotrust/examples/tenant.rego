# Tenant isolation example: /tenants/<t>/... only for principals of tenant <t>.
#
# The tenant comes from the credential (principal.tenant), never from the request;
# an X-Tenant-Id header, when sent (policy.input_headers allow-lists it), must agree.
# The upstream gets the verified tenant in X-Tenant-Id.
# Query data.zerotrust.examples.tenant.decision.
package zerotrust.examples.tenant

path_tenant := t if {
	parts := split(input.request.path, "/")
	parts[1] == "tenants"
	t := parts[2]
	t != ""
}

header_ok if not "x-tenant-id" in object.keys(object.get(input.request, "headers", {}))

header_ok if input.request.headers["x-tenant-id"] == input.principal.tenant

default decision := {"allow": false, "reason": "tenant:not_tenant_path"}

decision := {"allow": false, "reason": "tenant:unauthenticated"} if {
	path_tenant
	not is_object(input.principal)
}

decision := {"allow": false, "reason": "tenant:mismatch"} if {
	is_object(input.principal)
	not path_tenant == input.principal.tenant
	path_tenant
}

decision := {"allow": false, "reason": "tenant:header_mismatch"} if {
	path_tenant == input.principal.tenant
	not header_ok
}

decision := {
	"allow": true,
	"reason": "tenant:allow",
	"obligations": {"headers": {"X-Tenant-Id": input.principal.tenant}},
} if {
	is_string(input.principal.tenant)
	path_tenant == input.principal.tenant
	header_ok
}
