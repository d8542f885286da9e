"""torch.compile: the compiled trainer computes what the eager one does (slow: compiling takes minutes)."""

import dataclasses

import pytest
import torch

from vader_hub.train import train


@pytest.mark.slow
def test_compiled_training_matches_eager(tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, steps=2, checkpoint_every=2, base_lr=0.1)
    eager = train(dataclasses.replace(config, out_dir=str(tmp_path / "eager")), show_progress=False)
    compiled = train(dataclasses.replace(config, out_dir=str(tmp_path / "compiled"), compile=True),
                     show_progress=False)
    assert torch.allclose(torch.tensor(compiled.losses), torch.tensor(eager.losses), rtol=1e-4)
    expected = torch.load(eager.checkpoint, weights_only=True)["encoder"]
    actual = torch.load(compiled.checkpoint, weights_only=True)["encoder"]
    assert list(actual) == list(expected)  # compiling must not change the state-dict names
    for name, tensor in expected.items():
        if tensor.is_floating_point():
            assert (actual[name] - tensor).norm() <= 1e-3 * tensor.norm() + 1e-5, name
