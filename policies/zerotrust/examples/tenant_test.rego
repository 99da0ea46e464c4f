package zerotrust.examples.tenant_test

import data.zerotrust.examples.tenant

req(path, tenant_of, headers) := {
	"version": 1,
	"request": {"method": "GET", "path": path, "host": "", "headers": headers, "peer": null},
	"principal": {"subject": "dave", "scopes": [], "tenant": tenant_of},
	"context": {},
}

test_own_tenant if {
	d := tenant.decision with input as req("/tenants/acme/orders", "acme", {})
	d.allow
	d.obligations.headers["X-Tenant-Id"] == "acme"
}

test_other_tenant if {
	d := tenant.decision with input as req("/tenants/globex/orders", "acme", {})
	d.reason == "tenant:mismatch"
}

test_principal_without_tenant if not tenant.decision.allow with input as req("/tenants/acme/x", null, {})

test_header_must_agree if {
	d := tenant.decision with input as req("/tenants/acme/x", "acme", {"x-tenant-id": "globex"})
	d.reason == "tenant:header_mismatch"
}

test_duplicated_header_is_a_mismatch if {
	# Repeated headers reach the policy joined: "acme, acme" is not "acme".
	not tenant.decision.allow with input as req("/tenants/acme/x", "acme", {"x-tenant-id": "acme, acme"})
}

test_matching_header if tenant.decision.allow with input as req("/tenants/acme/x", "acme", {"x-tenant-id": "acme"})

test_empty_tenant_segment if not tenant.decision.allow with input as req("/tenants//x", "", {})

test_not_a_tenant_path if {
	d := tenant.decision with input as req("/health", "acme", {})
	d.reason == "tenant:not_tenant_path"
}

test_anonymous if {
	d := tenant.decision with input as {"request": {"method": "GET", "path": "/tenants/acme/x"}, "principal": null}
	d.reason == "tenant:unauthenticated"
}
