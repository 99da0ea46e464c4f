import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zerotrust.cli import main
from zerotrust.cli.apikey import parse_expiry
from zerotrust.config import parse_config
from zerotrust.credentials.api_key_format import SCANNER_REGEX
from zerotrust.factory import build_pipeline
from zerotrust.types import Headers, RequestContext

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart.yaml"
PEPPER = "cli-test-pepper-cli-test-pepper-0123"


@pytest.fixture
def config(tmp_path) -> str:
    """examples/quickstart.yaml itself, pointed at a temporary database through its own ${VARS}."""
    text = QUICKSTART.read_text()
    for var, value in {"ZT_API_KEY_DB": str(tmp_path / "keys.db"), "ZT_API_KEY_PEPPER": PEPPER,
                       "ZT_AUDIT": "none"}.items():
        text = re.sub(rf"\$\{{{var}:-[^}}]*\}}", value, text)
    path = tmp_path / "zerotrust.yaml"
    path.write_text(text)
    return str(path)


def create(capsys, config, name, *scopes, expires=None) -> str:
    argv = ["apikey", "create", "--config", config, "--name", name]
    for s in scopes:
        argv += ["--scope", s]
    if expires:
        argv += ["--expires", expires]
    assert main(argv) == 0
    out = capsys.readouterr().out
    return out.rstrip("\n").splitlines()[-1]


def test_create_prints_the_key_alone_on_the_last_line(capsys, config):
    key = create(capsys, config, "demo", "api:read", "api:write")
    assert re.fullmatch(SCANNER_REGEX.replace(r"\b", ""), key) and key.startswith("zt_")


def test_list_and_json_never_show_the_key(capsys, config, caplog):
    caplog.set_level(logging.DEBUG)
    key = create(capsys, config, "demo", "api:read", expires="30d")
    assert main(["apikey", "list", "--config", config]) == 0
    table = capsys.readouterr().out
    assert " demo " in table and "api:read" in table and "active" in table and key not in table
    assert main(["apikey", "list", "--config", config, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "demo" and row["scopes"] == ["api:read"] and row["status"] == "active"
    assert row["id"].startswith("key_") and row["expires"].endswith("Z") and row["last_used"] is None
    assert key not in json.dumps(row) and key not in caplog.text


def test_duplicate_name_fails(capsys, config):
    create(capsys, config, "demo")
    assert main(["apikey", "create", "--config", config, "--name", "demo"]) == 1
    captured = capsys.readouterr()
    assert "already exists" in captured.err and "zt_" not in captured.out


def test_revoke_by_name_and_id_and_unknown(capsys, config):
    create(capsys, config, "a")
    create(capsys, config, "b")
    assert main(["apikey", "revoke", "--config", config, "a"]) == 0
    assert "revoked" in capsys.readouterr().out
    main(["apikey", "list", "--config", config, "--json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["a"]["status"] == "revoked" and rows["b"]["status"] == "active"
    assert main(["apikey", "revoke", "--config", config, rows["b"]["id"]]) == 0
    assert main(["apikey", "revoke", "--config", config, "nope"]) == 1
    assert "no API key with id or name 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("argv,msg", [
    (["--name", "bad name"], "name must be"),
    (["--name", "x", "--scope", "a b"], "invalid scope"),
    (["--name", "x", "--expires", "tomorrow"], "use a duration"),
    (["--name", "x", "--expires", "2001-01-01T00:00:00Z"], "in the past"),
])
def test_bad_arguments(capsys, config, argv, msg):
    assert main(["apikey", "create", "--config", config, *argv]) == 2
    assert msg in capsys.readouterr().err


def test_config_problems_are_reported_by_the_cli_frame(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("api_keys: {pepper: short}\npolicy: {rules: [{id: a, paths: ['/**']}]}\n")
    assert main(["apikey", "list", "--config", str(bad)]) == 2
    assert "at least 32 characters" in capsys.readouterr().err


def test_parse_expiry():
    now = 1_000_000.0
    assert parse_expiry("30d", now) == now + 30 * 86400
    assert parse_expiry("12h", now) == now + 12 * 3600
    assert parse_expiry("2027-01-01T00:00:00Z", now) == 1798761600
    assert parse_expiry("2027-01-01T01:00:00+01:00", now) == 1798761600
    assert parse_expiry("2027-01-01T00:00:00", now) == 1798761600  # no zone: UTC
    for bad in ("0d", "-1d", "1y", "", "1.5h"):
        with pytest.raises(ValueError):
            parse_expiry(bad, now)


def test_real_process_prints_the_key_last(config):
    exe = shutil.which("zerotrust")
    argv = [exe] if exe else [sys.executable, "-m", "zerotrust"]
    # A one-shot command, not a service: subprocess.run with a timeout cannot outlive the test.
    done = subprocess.run([*argv, "apikey", "create", "--config", config, "--name", "proc", "--scope", "api:read"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"zt_[0-9A-Za-z]{38}", lines[-1])
    assert all(lines[-1] not in line for line in lines[:-1]) and lines[-1] not in done.stderr


async def test_end_to_end_through_the_pipeline(capsys, config):
    reader = create(capsys, config, "reader", "api:read")
    writer = create(capsys, config, "writer", "api:read", "api:write")
    pipeline = build_pipeline(parse_config(Path(config).read_text(), env={}))

    async def call(method, path, **headers):
        hs = Headers([(k.replace("_", "-"), v) for k, v in headers.items()])
        return await pipeline.evaluate(RequestContext(method=method, path=path, headers=hs, peer="192.0.2.7"))

    ok = await call("GET", "/items", x_api_key=reader)
    assert ok.status == 200 and ("X-Auth-Subject", "apikey:reader") in ok.upstream_headers
    assert ("X-Auth-Issuer", "zerotrust:api-key") in ok.upstream_headers
    assert (await call("POST", "/items", authorization=f"Bearer {writer}")).status == 200
    forbidden = await call("POST", "/items", x_api_key=reader)
    assert (forbidden.status, forbidden.error_code) == (403, "insufficient_scope")
    assert (await call("GET", "/admin/x", x_api_key=reader)).status == 403  # needs api:admin as well
    assert (await call("GET", "/items")).status == 401
    typo = reader[:-1] + ("A" if reader[-1] != "A" else "B")
    bad = await call("GET", "/items", x_api_key=typo)
    assert (bad.status, bad.reason, bad.error_code) == (401, "deny.api_key.malformed", "invalid_token")
    assert 'error="invalid_token"' in bad.challenge
    assert (await call("GET", "/items", authorization="Bearer zz_" + reader[3:])).reason == "deny.unknown_credential"
    assert (await call("GET", "/items", x_api_key=reader, authorization=f"Bearer {writer}")).status == 400

    assert main(["apikey", "revoke", "--config", config, "reader"]) == 0  # same process, another connection
    revoked = await call("GET", "/items", x_api_key=reader)
    assert (revoked.status, revoked.reason) == (401, "deny.api_key.revoked")
    await pipeline.aclose()


def test_scanner_regex_matches_cli_keys(capsys, config):
    keys = [create(capsys, config, f"k{i}") for i in range(3)]
    blob = "\n".join(f"export TOKEN_{i}={k}" for i, k in enumerate(keys))
    assert re.findall(SCANNER_REGEX, blob) == keys
