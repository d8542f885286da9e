"""The VADeR network: shapes, errors, timm's model API, and the trunk against timm's own ResNet."""
import math

import pytest
import timm
import torch
from timm.models.resnet import Bottleneck

from vader_hub.models import TRUNKS, VaderFPN


@pytest.fixture(scope="module")
def r18():
    torch.manual_seed(0)
    return timm.create_model("vader_r18_fpn").eval()


def test_timm_lists_every_backbone_of_the_table_and_the_papers_network():
    assert set(timm.list_models("vader_*")) == set(TRUNKS) and "vader_r50_fpn" in TRUNKS


@pytest.mark.parametrize("name", [name for name, trunk in TRUNKS.items() if trunk.block is Bottleneck])
def test_deep_models_give_128x56x56_at_224(name):
    model = timm.create_model(name).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 128, 56, 56)


@pytest.mark.parametrize("size", [(224, 224), (33, 47), (250, 333), (511, 64), (32, 32)])
def test_any_size_from_32px_gives_ceil_quarter(r18, size):
    with torch.no_grad():
        out = r18(torch.randn(1, 3, *size))
    assert out.shape == (1, 128, math.ceil(size[0] / 4), math.ceil(size[1] / 4))


@pytest.mark.parametrize(
    "shape, message",
    [((1, 3, 31, 64), "at least 32x32"), ((1, 3, 64, 20), "at least 32x32"), ((1, 1, 64, 64), "3 input channels"),
     ((1, 4, 64, 64), "3 input channels"), ((3, 64, 64), r"\(B, 3, H, W\)")],
)
def test_bad_inputs_raise_a_clear_value_error(r18, shape, message):
    with pytest.raises(ValueError, match=message):
        r18(torch.randn(*shape))


def test_eval_mode_is_deterministic(r18):
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        assert torch.equal(r18(x), r18(x))


@pytest.mark.parametrize("num_classes", [0, 5])
def test_every_parameter_gets_a_gradient_in_train_mode(num_classes):
    model = timm.create_model("vader_r18_fpn", num_classes=num_classes).train()
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, num_classes or 128, 16, 16)
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_trunk_stages_equal_timms_resnet_with_the_same_weights():
    """The trunk is a plain timm ResNet: its state dict loads into timm's resnet18 and gives the same stages."""
    model = timm.create_model("vader_r18_fpn").eval()
    resnet = timm.create_model("resnet18", num_classes=0).eval()
    trunk_state = {k.removeprefix("trunk."): v for k, v in model.state_dict().items() if k.startswith("trunk.")}
    resnet.load_state_dict(trunk_state, strict=True)
    x = torch.randn(1, 3, 96, 72)
    with torch.no_grad():
        ours = model.forward_trunk(x)
        theirs = resnet.forward_intermediates(x, indices=[1, 2, 3, 4], intermediates_only=True)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_features_only_gives_the_fpn_levels(r18):
    features = timm.create_model("vader_r18_fpn", features_only=True).eval()
    loaded = features.model.load_state_dict(r18.state_dict(), strict=False)
    assert not loaded.missing_keys  # the getter keeps the trunk and laterals; the head is pruned
    assert loaded.unexpected_keys and all(k.startswith("decoder.") for k in loaded.unexpected_keys)
    assert features.feature_info.channels() == [256] * 4
    assert features.feature_info.reduction() == [4, 8, 16, 32]
    x = torch.randn(1, 3, 70, 90)
    with torch.no_grad():
        levels = features(x)
        _, reference = r18.forward_intermediates(x)
    assert [tuple(f.shape[-2:]) for f in levels] == [(math.ceil(70 / r), math.ceil(90 / r)) for r in (4, 8, 16, 32)]
    for a, b in zip(levels, reference, strict=True):
        torch.testing.assert_close(a, b)


def test_features_only_refuses_other_wrappers():
    with pytest.raises(ValueError, match="getter"):
        timm.create_model("vader_r18_fpn", features_only=True, feature_cls="hook")


def test_forward_intermediates_final_output_is_forward_features(r18):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final, levels = r18.forward_intermediates(x, indices=2)
        assert len(levels) == 2 and levels[0].shape[-1] == 4
        torch.testing.assert_close(final, r18.forward_features(x))


def test_grad_checkpointing_and_channels_last_keep_the_output():
    model = timm.create_model("vader_r18_fpn").eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        reference = model(x)
        model.set_grad_checkpointing()
        torch.testing.assert_close(model(x), reference)
        model.set_grad_checkpointing(False)
        model = model.to(memory_format=torch.channels_last)
        torch.testing.assert_close(model(x.contiguous(memory_format=torch.channels_last)), reference,
                                   atol=1e-4, rtol=1e-4)


def test_reset_classifier_makes_a_per_pixel_head(r18):
    model = timm.create_model("vader_r18_fpn").eval()
    model.reset_classifier(7)
    assert model.get_classifier().weight.shape == (7, 128, 1, 1)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 7, 16, 16)
        assert model.forward_head(model.forward_features(torch.randn(1, 3, 64, 64)), pre_logits=True).shape[1] == 128
    model.reset_classifier(0)
    assert isinstance(model.head, torch.nn.Identity)


def test_device_and_dtype_at_creation():
    model = timm.create_model("vader_r18_fpn", device="meta", dtype=torch.float64)
    tensors = [*model.parameters(), *model.buffers()]
    assert {t.device.type for t in tensors} == {"meta"}
    assert {t.dtype for t in model.parameters()} == {torch.float64}


def test_group_matcher_and_no_weight_decay_match_parameters(r18):
    from timm.models._manipulate import group_parameters

    groups = group_parameters(r18, r18.group_matcher(coarse=False), reverse=True)
    assert len(set(groups.values())) > 5
    assert r18.no_weight_decay() == set()


def test_pretrained_cfg_is_dense(r18):
    cfg = r18.pretrained_cfg
    assert cfg["num_classes"] == 0 and cfg["crop_pct"] == 1.0 and cfg["input_size"] == (3, 224, 224)
    assert cfg["min_input_size"] == (3, 32, 32) and "2011.05499" in cfg["paper_ids"]
    assert r18.num_features == 128 and isinstance(r18, VaderFPN)


@pytest.mark.slow
def test_torch_compile_matches_eager(r18):
    x = torch.randn(1, 3, 64, 96)
    compiled = torch.compile(r18)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), r18(x), atol=1e-4, rtol=1e-4)
