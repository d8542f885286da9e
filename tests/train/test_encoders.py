"""The two networks: registry construction with split BN, the EMA update, starting from a ResNet trunk."""

import dataclasses

import pytest
import timm
import torch

from vader_hub.train.batchnorm import SplitBatchNorm2d
from vader_hub.train.config import preset
from vader_hub.train.encoders import build_encoder, build_momentum_encoder, momentum_update
from vader_hub.train.state import build_state


def test_encoder_comes_from_the_registry_with_split_batch_norm():
    config = dataclasses.replace(preset("smoke"), bn_group_size=2)
    encoder = build_encoder(config, torch.device("cpu"))
    assert encoder.training and encoder.num_features == 128
    splits = [m for m in encoder.modules() if isinstance(m, SplitBatchNorm2d)]
    assert splits and all(m.group_size == 2 for m in splits)
    assert encoder(torch.randn(4, 3, 64, 64)).shape == (4, 128, 16, 16)
    with pytest.raises(ValueError, match="unknown model 'vader_r7_fpn'"):
        build_encoder(dataclasses.replace(config, model="vader_r7_fpn"), torch.device("cpu"))


def test_momentum_update_follows_its_formula_and_leaves_buffers_alone():
    encoder = build_encoder(preset("smoke"), torch.device("cpu"))
    momentum_encoder = build_momentum_encoder(encoder)
    assert not any(p.requires_grad for p in momentum_encoder.parameters())
    with torch.no_grad():
        for key_parameter in momentum_encoder.parameters():
            key_parameter.add_(torch.randn_like(key_parameter))
        momentum_encoder.trunk.bn1.running_mean.fill_(3.0)
    before = {k: v.clone() for k, v in momentum_encoder.state_dict().items()}
    query = dict(encoder.named_parameters())
    momentum_update(momentum_encoder, encoder, momentum=0.9)
    for name, parameter in momentum_encoder.named_parameters():
        expected = 0.9 * before[name].double() + 0.1 * query[name].detach().double()
        assert torch.allclose(parameter.double(), expected, rtol=1e-6, atol=1e-7), name
    assert torch.equal(momentum_encoder.trunk.bn1.running_mean, before["trunk.bn1.running_mean"])


def test_init_starts_the_trunk_from_a_resnet_checkpoint(tmp_path):
    resnet = timm.create_model("resnet18", num_classes=1000)
    torch.save(resnet.state_dict(), tmp_path / "resnet18.pth")
    torch.manual_seed(0)
    fresh = build_encoder(preset("smoke"), torch.device("cpu"))
    torch.manual_seed(0)
    state = build_state(dataclasses.replace(preset("smoke"), init=str(tmp_path / "resnet18.pth")),
                        torch.device("cpu"))
    assert "layout: torchvision/timm" in state.trunk_init and "dropped 2 non-trunk tensors: fc." in state.trunk_init
    trunk = state.encoder.state_dict()
    for name, tensor in resnet.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(trunk[f"trunk.{name}"], tensor), name
    decoder = {k: v for k, v in fresh.state_dict().items() if k.startswith("decoder.")}
    assert all(torch.equal(trunk[k], v) for k, v in decoder.items())
