"""``zerotrust fields``: all or nothing on stdout, a precise cause and exit status on stderr."""

import io
import json
import sys

import pytest

from zerotrust.cli import main

CONFIG = """
version: 1
api_keys: {{pepper: "0123456789abcdef0123456789abcdef"}}
policy: {{rules: [{{id: r, paths: ["/**"]}}]}}
local_keys: {{path: "{keys}"}}
fields:
  mode: local
  key: cli-test
  paths: [{{path: "$.ssn"}}, {{path: "$.email", deterministic: true}}]
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "zt.yaml"
    path.write_text(CONFIG.format(keys=tmp_path / "keys.json"))
    return str(path)


def run(capsys, monkeypatch, argv, stdin: bytes):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main(["fields", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_round_trip_with_config_paths(capsys, monkeypatch, config):
    doc = {"ssn": "123-45-6789", "email": "a@x", "n": 1}
    code, out, err = run(capsys, monkeypatch, ["encrypt", "--config", config], json.dumps(doc).encode())
    assert code == 0, err
    enc = json.loads(out)
    assert enc["n"] == 1 and enc["ssn"].startswith("ztf1.e.cli-test.1.") and enc["email"].startswith("ztf1.d.")
    code, out2, _ = run(capsys, monkeypatch, ["encrypt", "--config", config], json.dumps(doc).encode())
    assert json.loads(out2)["email"] == enc["email"]  # deterministic per config
    code, out, err = run(capsys, monkeypatch, ["decrypt", "--config", config], out.encode())
    assert code == 0 and json.loads(out) == doc


def test_explicit_paths_override_config(capsys, monkeypatch, config):
    doc = {"ssn": "1", "other": {"x": [1, 2]}}
    code, out, _ = run(capsys, monkeypatch, ["encrypt", "--config", config, "--path", "$.other.x[*]"],
                       json.dumps(doc).encode())
    enc = json.loads(out)
    assert code == 0 and enc["ssn"] == "1" and all(v.startswith("ztf1.") for v in enc["other"]["x"])
    code, out, _ = run(capsys, monkeypatch, ["rewrap", "--config", config, "--path", "$.other.x[*]"], out.encode())
    assert code == 0 and json.loads(out) == enc  # nothing to upgrade


@pytest.mark.parametrize("argv,stdin,code,message", [
    (["encrypt"], b"", 1, "stdin is empty"),
    (["encrypt"], b'{"ssn": 1,}', 1, "stdin is not valid JSON: Expecting property name enclosed in double quotes "
                                     "at line 1 column 11"),
    (["encrypt"], b"\xff\xfe\xfd", 1, "stdin is not valid JSON"),
    (["encrypt", "--path", "ssn"], b"{}", 1, "must start with '$'"),
    (["encrypt", "--path", "$.a", "--path", "$.a.b"], b'{"a": {"b": 1}}', 1, "paths overlap"),
    (["decrypt"], b'{"ssn": "plain"}', 1, "$[\"ssn\"]: not a ztf1 ciphertext"),
    (["decrypt"], b'{"ssn": "ztf1.e.cli-test.1.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"}', 1, "invalid ciphertext: "),
    (["decrypt"], b'{"ssn": "ztf1.e.other.1.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"}', 1, "not the configured"),
])
def test_errors_write_nothing_to_stdout(capsys, monkeypatch, config, argv, stdin, code, message):
    got, out, err = run(capsys, monkeypatch, [argv[0], "--config", config, *argv[1:]], stdin)
    assert got == code and out == ""
    assert message in err, err


def test_config_errors(capsys, monkeypatch, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.format(keys=tmp_path / "k.json").replace("$.ssn", "ssn"))
    code, out, err = run(capsys, monkeypatch, ["encrypt", "--config", str(bad)], b"{}")
    assert code == 2 and out == "" and "fields.paths[0].path" in err and "must start with '$'" in err
    code, out, err = run(capsys, monkeypatch, ["encrypt", "--config", str(tmp_path / "missing.yaml")], b"{}")
    assert code == 2 and out == "" and "cannot read" in err
    novault = tmp_path / "novault.yaml"
    novault.write_text(CONFIG.format(keys=tmp_path / "k.json").replace("mode: local", "mode: envelope"))
    code, out, err = run(capsys, monkeypatch, ["encrypt", "--config", str(novault)], b"{}")
    assert code == 2 and out == "" and "needs a 'vault' section" in err
