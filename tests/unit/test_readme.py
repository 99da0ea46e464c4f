"""The README's FastAPI example must run as printed."""

import re
from pathlib import Path

from zerotrust.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]


def readme_python_block() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README lost its FastAPI example"
    return blocks[0]


def test_readme_fastapi_example(tmp_path, monkeypatch, capsys):
    from starlette.testclient import TestClient

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("ZT_API_KEY_DB", str(tmp_path / "keys.db"))
    monkeypatch.setenv("ZT_AUDIT", "none")
    assert cli(["apikey", "create", "--config", "examples/quickstart.yaml", "--name", "reader", "--scope", "api:read"]) == 0
    reader = capsys.readouterr().out.strip().splitlines()[-1]
    assert cli(["apikey", "create", "--config", "examples/quickstart.yaml", "--name", "writer", "--scope", "api:write"]) == 0
    writer = capsys.readouterr().out.strip().splitlines()[-1]

    namespace: dict = {}
    exec(compile(readme_python_block(), "README.md", "exec"), namespace)
    with TestClient(namespace["app"]) as client:
        ok = client.get("/items", headers={"X-API-Key": reader})
        assert ok.status_code == 200 and ok.json() == ["a", "b"]
        anon = client.get("/items")
        assert anon.status_code == 401 and anon.headers["www-authenticate"] == 'Bearer realm="zerotrust"'
        wrong = client.get("/items", headers={"X-API-Key": writer})
        assert wrong.status_code == 403 and 'scope="api:read"' in wrong.headers["www-authenticate"]
