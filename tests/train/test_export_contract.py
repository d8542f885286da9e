"""A real trainer checkpoint goes out through both export commands and names its architecture."""
import dataclasses

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from vader_hub import cli
from vader_hub.train import train


def test_trainer_checkpoint_exports_through_weights_and_convert(tiny_config, tmp_path):
    result = train(dataclasses.replace(tiny_config, steps=2), show_progress=False)
    encoder = torch.load(result.checkpoint, weights_only=True)["encoder"]

    assert cli.main(["weights", "export", str(result.checkpoint), "--out", str(tmp_path / "weights"),
                     "--tag", "tiny", "--license", "cc0-1.0"]) == 0
    with safe_open(tmp_path / "weights" / "model.safetensors", "pt") as weights:
        assert weights.metadata()["architecture"] == "vader_r18_fpn"
        assert all(torch.equal(weights.get_tensor(name), tensor) for name, tensor in encoder.items())

    assert cli.main(["convert", "export", str(result.checkpoint), "--to", "timm", "--out",
                     str(tmp_path / "trunk.safetensors"), "--decoder-out", str(tmp_path / "decoder.safetensors")]) == 0
    trunk = load_file(tmp_path / "trunk.safetensors")
    assert all(torch.equal(trunk[name.removeprefix("trunk.")], tensor)
               for name, tensor in encoder.items() if name.startswith("trunk."))
    with safe_open(tmp_path / "decoder.safetensors", "pt") as decoder:
        assert decoder.metadata()["architecture"] == "vader_r18_fpn"
