package zerotrust.examples.abac_test

import data.zerotrust.examples.abac

req(method, path, principal, risk) := {
	"version": 1,
	"request": {"method": method, "path": path, "host": "", "headers": {}, "peer": null},
	"principal": principal,
	"context": {"route": null, "source": null, "risk": {"score": risk, "level": null}},
}

sales := {"subject": "carol", "scopes": [], "claims": {"department": "sales", "iat": 1000}, "acr": null, "auth_time": 900}

sales_mfa := object.union(sales, {"acr": "urn:zerotrust:acr:mfa"})

test_own_department if abac.decision.allow with input as req("GET", "/departments/sales/q3", sales, null)

test_other_department if {
	d := abac.decision with input as req("GET", "/departments/hr/salaries", sales, null)
	d.reason == "abac:department"
}

test_write_needs_step_up if {
	d := abac.decision with input as req("POST", "/departments/sales/q3", sales, null)
	not d.allow
	d.obligations.step_up.acr_values == "urn:zerotrust:acr:mfa"
	d.obligations.step_up.max_age == 600
}

test_write_after_mfa if abac.decision.allow with input as req("POST", "/departments/sales/q3", sales_mfa, 0.1)

test_stale_mfa_needs_step_up_again if {
	old := object.union(sales_mfa, {"auth_time": 1})
	d := abac.decision with input as req("POST", "/notes", old, null)
	d.reason == "abac:step_up"
}

test_risk_denies_even_reads if {
	d := abac.decision with input as req("GET", "/departments/sales/q3", sales_mfa, 0.9)
	d.reason == "abac:risk"
}

test_anonymous if {
	d := abac.decision with input as req("GET", "/", null, null)
	d.reason == "abac:unauthenticated"
}
