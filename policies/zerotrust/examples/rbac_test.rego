package zerotrust.examples.rbac_test

import data.zerotrust.examples.rbac

req(method, path, roles) := {
	"version": 1,
	"request": {"method": method, "path": path, "host": "", "headers": {}, "peer": null},
	"principal": {"subject": "bob", "issuer": "i", "kind": "jwt", "scopes": [], "roles": roles},
	"context": {},
}

test_viewer_reads if {
	d := rbac.decision with input as req("GET", "/orders", ["viewer"])
	d.allow
	d.obligations.headers["X-Auth-Role"] == "viewer"
}

test_viewer_cannot_write if {
	d := rbac.decision with input as req("POST", "/orders", ["viewer"])
	not d.allow
	d.reason == "rbac:no_role"
}

test_editor_writes if rbac.decision.allow with input as req("DELETE", "/orders/1", ["editor"])

test_editor_is_not_admin if not rbac.decision.allow with input as req("GET", "/admin/users", ["editor"])

test_admin_role_on_admin_paths if rbac.decision.allow with input as req("PUT", "/admin", ["admin"])

test_admin_role_only_on_admin_paths if not rbac.decision.allow with input as req("GET", "/orders", ["admin"])

test_auditor_prefix_is_exact if {
	rbac.decision.allow with input as req("GET", "/audit/log", ["auditor"])
	not rbac.decision.allow with input as req("GET", "/auditors", ["auditor"])
}

test_unknown_role_denied if not rbac.decision.allow with input as req("GET", "/", ["root"])

test_anonymous_denied if {
	d := rbac.decision with input as {"request": {"method": "GET", "path": "/"}, "principal": null}
	d.reason == "rbac:unauthenticated"
}
