"""Split batch norm against per-group batch norm computed separately, and 1-vs-N process emulation."""

import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from vader_hub.train.batchnorm import SplitBatchNorm2d, convert_split_batchnorm

CHANNELS, GROUP = 3, 4


def split_bn(momentum=0.1):
    layer = SplitBatchNorm2d(CHANNELS, GROUP, momentum=momentum)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.5, -0.5, 2.0]))
        layer.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
        layer.running_mean.copy_(torch.tensor([0.5, -1.0, 0.0]))
        layer.running_var.copy_(torch.tensor([2.0, 0.5, 1.0]))
    return layer.train()


def reference(layer, x):
    """Each group (samples s with s mod G == b) through F.batch_norm on its own; running stats averaged."""
    groups = x.shape[0] // GROUP
    out = torch.empty_like(x)
    means, variances = [], []
    for b in range(groups):
        running_mean, running_var = layer.running_mean.clone(), layer.running_var.clone()
        out[b::groups] = F.batch_norm(x[b::groups], running_mean, running_var, layer.weight, layer.bias,
                                      training=True, momentum=layer.momentum, eps=layer.eps)
        means.append(running_mean)
        variances.append(running_var)
    return out, torch.stack(means).mean(0), torch.stack(variances).mean(0)


@pytest.mark.parametrize("channels_last", [False, True])
def test_matches_per_group_batch_norm(channels_last):
    x = torch.randn(12, CHANNELS, 5, 6) * 3 + 1
    expected, expected_mean, expected_var = reference(split_bn(), x)
    layer = split_bn()
    inputs = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    out = layer(inputs)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(layer.running_mean, expected_mean, atol=1e-6)
    assert torch.allclose(layer.running_var, expected_var, atol=1e-5)
    assert int(layer.num_batches_tracked) == 1


def test_gradients_match_per_group_batch_norm():
    x = torch.randn(8, CHANNELS, 4, 4, dtype=torch.float64)
    weights = torch.randn(8, CHANNELS, 4, 4, dtype=torch.float64)
    grads = []
    for layout in (torch.contiguous_format, torch.channels_last, None):
        layer = split_bn().double()
        inputs = x.clone().contiguous(memory_format=layout or torch.contiguous_format).requires_grad_(True)
        out = reference(layer, inputs)[0] if layout is None else layer(inputs)
        (out * weights).sum().backward()
        grads.append((inputs.grad, layer.weight.grad))
    for grad_x, grad_w in grads[:2]:
        assert torch.allclose(grad_x, grads[2][0], atol=1e-10) and torch.allclose(grad_w, grads[2][1], atol=1e-10)


def test_one_process_equals_two_processes_holding_interleaved_halves():
    # global batch of 16 in groups of 4 (G = 4); rank r of 2 holds positions r, r + 2, ... (G = 2 each)
    x = torch.randn(16, CHANNELS, 3, 3)
    whole = split_bn()(x)
    for rank in range(2):
        assert torch.allclose(split_bn()(x[rank::2]), whole[rank::2], atol=1e-6)


def test_one_group_is_plain_batch_norm_and_eval_uses_running_stats():
    x = torch.randn(GROUP, CHANNELS, 3, 3)

    def plain():
        layer = nn.BatchNorm2d(CHANNELS)
        layer.load_state_dict(split_bn().state_dict())
        return layer

    assert torch.allclose(split_bn()(x), plain().train()(x), atol=1e-6)
    assert torch.allclose(split_bn().eval()(x[:3]), plain().eval()(x[:3]), atol=1e-6)


def test_a_batch_that_does_not_split_is_refused():
    with pytest.raises(ValueError, match="multiple of bn_group_size"):
        split_bn()(torch.randn(6, CHANNELS, 2, 2))


def test_conversion_keeps_names_values_and_eval_outputs():
    model = timm.create_model("resnet18", num_classes=0).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    converted = convert_split_batchnorm(model, group_size=2).eval()
    assert any(isinstance(m, SplitBatchNorm2d) for m in converted.modules())
    assert not any(type(m) is nn.BatchNorm2d for m in converted.modules())
    after = converted.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
    assert torch.equal(converted(x), expected)


def test_unsupported_batch_norm_kinds_are_refused():
    with pytest.raises(TypeError, match="SyncBatchNorm"):
        convert_split_batchnorm(nn.Sequential(nn.SyncBatchNorm(3)), group_size=2)
