import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_up_to_date():
    fresh = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_config_docs.py")], capture_output=True,
                           text=True, check=True).stdout
    committed = (ROOT / "docs" / "configuration-reference.md").read_text()
    assert fresh == committed, "run: python scripts/gen_config_docs.py > docs/configuration-reference.md"


def test_every_config_key_is_described():
    sys.path.insert(0, str(ROOT / "scripts"))
    from gen_config_docs import rows

    from zerotrust.config import Config

    undocumented = [key for key, _, _, desc in rows(Config) if not desc]
    assert undocumented == []


def test_committed_json_schema_is_up_to_date():
    from zerotrust.config import json_schema

    committed = (ROOT / "docs" / "config.schema.json").read_text()
    assert committed == json_schema() + "\n", "run: zerotrust config schema > docs/config.schema.json"
