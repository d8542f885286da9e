"""The default model: the preferred architecture with weights, with the tag its manifest lists first."""
import ast
import json
import os
import subprocess
import sys

SCRIPT = "import vader_hub.models as m; print(m.pretrained_names()); print(m.default_model_name())"


def entry(tag: str, sha: str) -> dict:
    return {"architecture": "vader_r50_fpn", "tag": tag, "filename": f"vader_r50_fpn.{tag}.safetensors",
            "sha256": sha * 64, "size": 1, "sources": [{"type": "file", "path": f"{tag}.safetensors"}],
            "provenance": {"config": None, "data": None, "steps": None, "code_version": None}, "license": "other"}


def test_the_paper_network_wins_once_it_has_weights_and_manifest_order_picks_its_tag(tmp_path):
    manifest = tmp_path / "mine.json"
    # listed "zz" before "aa": the default is the first listed, not the first in alphabetical order
    manifest.write_text(json.dumps({"schema_version": 1, "entries": [entry("zz", "a"), entry("aa", "b")]}))
    env = dict(os.environ, VADER_HUB_MANIFEST=str(manifest))
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    names, default = done.stdout.splitlines()
    assert ast.literal_eval(names)[:2] == ["vader_r50_fpn.zz", "vader_r50_fpn.aa"]
    assert default == "vader_r50_fpn.zz"
