"""Field encryption against a real OpenBao: both modes, binding, tampering, rotation and rewrap
with least-privilege tokens, and the CLI as a subprocess with only three variables set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.openbao import OpenBao
from zerotrust.config import parse_config
from zerotrust.crypto import FieldEncryptor, FieldSpec
from zerotrust.crypto.ciphertext import parse
from zerotrust.crypto.jsonpath import parse as parse_path
from zerotrust.errors import CryptoError, DependencyError

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vault.yaml"
DOC = {"ssn": "123-45-6789", "email": "ada@example.com", "cards": [{"number": "4111"}, {"number": 5500}],
       "profile": {"dob": "1815-12-10", "tags": [1, 2.5, None]}, "name": "Ada"}
SPECS = [FieldSpec(parse_path("$.ssn")), FieldSpec(parse_path("$.email"), True),
         FieldSpec(parse_path("$.cards[*].number")), FieldSpec(parse_path("$.profile"))]

# The policy docs/encryption.md recommends for an application key (no 'create': no upsert of new keys).
APP_POLICY = """
path "transit/keys/{k}" {{ capabilities = ["read"] }}
path "transit/datakey/plaintext/{k}" {{ capabilities = ["update"] }}
path "transit/encrypt/{k}" {{ capabilities = ["update"] }}
path "transit/decrypt/{k}" {{ capabilities = ["update"] }}
path "transit/hmac/{k}/*" {{ capabilities = ["update"] }}
"""
# ... and for the rotation job: it can re-wrap but cannot decrypt anything.
REWRAP_POLICY = """
path "transit/keys/{k}" {{ capabilities = ["read"] }}
path "transit/rewrap/{k}" {{ capabilities = ["update"] }}
"""


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    server = OpenBao.dev(tmp_path_factory.mktemp("bao-fields"))
    server.enable_transit()
    for name in ("fields", "rot-envelope", "rot-transit", "cli-key"):
        server.create_key(name)
    server.create_key("tenants", derived=True)
    yield server
    server.stop()


def encryptor(bao: OpenBao, key: str, mode: str = "envelope", token: str | None = None,
              context: str | None = None) -> FieldEncryptor:
    fields = {"mode": mode, "key": key, **({"context": context} if context else {})}
    config = parse_config(f"""
vault: {{addr: "{bao.addr}", token: "{token or bao.root_token}", retries: 0, timeout: 2}}
fields: {json.dumps(fields)}
api_keys: {{pepper: "0123456789abcdef0123456789abcdef"}}
policy: {{rules: [{{id: r, paths: ["/**"]}}]}}
""", env={})
    return FieldEncryptor.from_config(config)


@pytest.mark.parametrize("mode", ["envelope", "transit"])
def test_round_trip_keeps_types_and_random_ciphertexts_differ(bao, mode):
    enc = encryptor(bao, "fields", mode)
    try:
        a, b = enc.encrypt_document(DOC, SPECS), enc.encrypt_document(DOC, SPECS)
        assert a["name"] == "Ada" and a["ssn"].startswith(f"ztf1.{mode[0]}.fields.1.")
        assert a["ssn"] != b["ssn"] and a["profile"] != b["profile"]  # random nonces
        assert a["email"] == b["email"] and a["email"].startswith("ztf1.d.fields.1.")  # deterministic path
        assert enc.decrypt_document(a, SPECS) == DOC == enc.decrypt_document(b, SPECS)
        assert "1815" not in json.dumps(a) and "4111" not in json.dumps(a)
    finally:
        enc.close()


async def test_async_round_trip(bao):
    enc = encryptor(bao, "fields", "transit")
    try:
        out = await enc.aencrypt_document(DOC, SPECS)
        assert await enc.adecrypt_document(out, SPECS) == DOC
    finally:
        enc.close()


@pytest.mark.parametrize("mode", ["envelope", "transit"])
def test_every_tampered_character_and_moved_fields_fail(bao, mode):
    enc = encryptor(bao, "fields", mode)
    try:
        out = enc.encrypt_document({"ssn": "123-45-6789", "name": "Ada"}, ["$.ssn", "$.name"])
        good = out["ssn"]
        for i, ch in enumerate(good):
            bad = good[:i] + ("A" if ch != "A" else "B") + good[i + 1:]
            with pytest.raises(CryptoError):
                enc.decrypt_document({"ssn": bad}, ["$.ssn"])
        with pytest.raises(CryptoError):
            enc.decrypt_document({"ssn": out["name"], "name": out["ssn"]}, ["$.ssn", "$.name"])
        with pytest.raises(CryptoError):
            enc.decrypt_document({"other": good}, ["$.other"])
    finally:
        enc.close()


@pytest.mark.parametrize("mode", ["envelope", "transit"])
def test_derived_key_per_tenant(bao, mode):
    a = encryptor(bao, "tenants", mode, context="tenant-a")
    try:
        out = a.encrypt_document(DOC, SPECS)
        assert a.decrypt_document(out, SPECS) == DOC
        with pytest.raises(CryptoError):
            a.decrypt_document(out, SPECS, context="tenant-b")
        other = a.encrypt_document(DOC, SPECS, context="tenant-b")
        assert other["email"] != out["email"]  # deterministic terms differ per tenant
    finally:
        a.close()


@pytest.mark.parametrize("mode,key", [("envelope", "rot-envelope"), ("transit", "rot-transit")])
def test_rotation_rewrap_without_plaintext_then_min_decryption_version(bao, mode, key):
    bao.write_policy(f"app-{key}", APP_POLICY.format(k=key))
    bao.write_policy(f"rewrap-{key}", REWRAP_POLICY.format(k=key))
    app = encryptor(bao, key, mode, token=bao.create_token(policies=[f"app-{key}"]))
    job = encryptor(bao, key, mode, token=bao.create_token(policies=[f"rewrap-{key}"]))
    random_specs = [s for s in SPECS if not s.deterministic]
    try:
        old = app.encrypt_document(DOC, random_specs)
        with pytest.raises(DependencyError):  # the rotation job really cannot decrypt
            job.decrypt_document(old, random_specs)

        bao.rotate_key(key)
        app.clear_cache()
        assert app.decrypt_document(old, random_specs) == DOC  # old ciphertexts keep decrypting

        new = job.rewrap_document(old, random_specs)  # a token without decrypt: no plaintext anywhere
        versions = {parse(new[f]).version for f in ("ssn", "profile")}
        assert versions == {2} and {parse(old["ssn"]).version} == {1}
        if mode == "envelope":
            assert parse(new["ssn"]).parts[2] == parse(old["ssn"]).parts[2]  # payload kept, key re-wrapped
        assert job.rewrap_document(new, random_specs) == new
        assert app.decrypt_document(new, random_specs) == DOC

        bao.request("POST", f"transit/keys/{key}/config", {"min_decryption_version": 2})
        app.clear_cache()
        assert app.decrypt_document(new, random_specs) == DOC
        with pytest.raises(CryptoError):
            app.decrypt_document(old, random_specs)  # retired: the old version is gone for good
    finally:
        app.close()
        job.close()


def test_deterministic_rewrap_moves_search_terms_to_the_new_version(bao):
    bao.create_key("rot-det")
    enc = encryptor(bao, "rot-det")
    spec = [FieldSpec(parse_path("$.email"), True)]
    try:
        old = enc.encrypt_document({"email": "a@x"}, spec)
        bao.rotate_key("rot-det")
        new = enc.rewrap_document(old, spec)
        assert parse(new["email"]).version == 2 and new["email"] != old["email"]
        enc.clear_cache()
        assert enc.encrypt_value("a@x", "$.email", deterministic=True) == new["email"]
        assert enc.decrypt_document(old, spec) == enc.decrypt_document(new, spec) == {"email": "a@x"}
    finally:
        enc.close()


def cli(bao: OpenBao, tmp_path: Path, op: str, stdin: str, key: str = "cli-key", token: str | None = None,
        *extra: str) -> subprocess.CompletedProcess[str]:
    env = {"VAULT_ADDR": bao.addr, "VAULT_TOKEN": token or bao.root_token, "ZT_TRANSIT_KEY": key}
    return subprocess.run([sys.executable, "-m", "zerotrust", "fields", op, "--config", str(EXAMPLE), *extra],
                          input=stdin, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)


def test_cli_with_only_three_variables(bao, tmp_path):
    bao.write_policy("app-cli-key", APP_POLICY.format(k="cli-key"))
    token = bao.create_token(policies=["app-cli-key"])
    doc = json.dumps(DOC)
    enc = cli(bao, tmp_path, "encrypt", doc, token=token)
    assert enc.returncode == 0, enc.stderr
    stored = json.loads(enc.stdout)
    assert stored["ssn"].startswith("ztf1.e.cli-key.1.") and stored["email"].startswith("ztf1.d.cli-key.1.")
    assert stored["cards"][0]["number"].startswith("ztf1.e.") and stored["profile"] == DOC["profile"]
    dec = cli(bao, tmp_path, "decrypt", enc.stdout, token=token)
    assert dec.returncode == 0 and json.loads(dec.stdout) == DOC
    only = cli(bao, tmp_path, "encrypt", doc, "cli-key", token, "--path", "$.name")
    assert json.loads(only.stdout)["ssn"] == DOC["ssn"] and json.loads(only.stdout)["name"].startswith("ztf1.")
    assert not any(p.name.endswith(".db") for p in tmp_path.iterdir())  # the CLI touched nothing else


def test_cli_missing_key_is_not_created(bao, tmp_path):
    r = cli(bao, tmp_path, "encrypt", json.dumps(DOC), key="no-such-key")
    assert r.returncode == 3 and r.stdout == ""
    assert "does not exist" in r.stderr and "bao write -f transit/keys/no-such-key" in r.stderr
    with pytest.raises(RuntimeError, match="404"):
        bao.request("GET", "transit/keys/no-such-key")


def test_cli_refusals_leave_stdout_empty(bao, tmp_path):
    for stdin, code, message in (("{nope", 1, "not valid JSON"),
                                 (json.dumps({"ssn": "plain"}), 1, "not a ztf1 ciphertext")):
        r = cli(bao, tmp_path, "decrypt", stdin)
        assert (r.returncode, r.stdout) == (code, "") and message in r.stderr
    r = cli(bao, tmp_path, "encrypt", json.dumps(DOC), token="not-a-token")
    assert r.returncode == 3 and r.stdout == "" and "key store" in r.stderr


def test_retired_or_made_up_deterministic_version_is_a_crypto_error_and_cli_exit_1(bao, tmp_path):
    bao.create_key("retire-det")
    enc = encryptor(bao, "retire-det")
    spec = [FieldSpec(parse_path("$.email"), True)]
    try:
        old = enc.encrypt_document({"email": "a@x"}, spec)
        bao.rotate_key("retire-det")
        new = enc.rewrap_document(old, spec)
        forged = {"email": new["email"].replace(".retire-det.2.", ".retire-det.3.")}
        with pytest.raises(CryptoError):  # no version 3: refused before Transit is asked
            enc.decrypt_document(forged, spec)
        bao.request("POST", "transit/keys/retire-det/config", {"min_decryption_version": 2})
        enc.clear_cache()
        assert enc.decrypt_document(new, spec) == {"email": "a@x"}
        with pytest.raises(CryptoError):  # Transit HMAC answers 400 for the retired version
            enc.decrypt_document(old, spec)
    finally:
        enc.close()
    for stored in (old, forged):
        r = cli(bao, tmp_path, "decrypt", json.dumps(stored), "retire-det", None, "--deterministic", "$.email")
        assert (r.returncode, r.stdout) == (1, ""), r.stderr
        assert "invalid ciphertext" in r.stderr
