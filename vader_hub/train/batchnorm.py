"""Split batch norm: statistics over fixed-size groups of samples, so one process emulates N exactly.

Why. MoCo showed that batch norm leaks information between a query and its positive key when
both are normalised with statistics of the same samples: the network can lower the loss by
reading the batch statistics instead of learning features. MoCo's remedy is shuffle-BN: per-GPU
statistics, with the key encoder's samples shuffled across GPUs. SyncBatchNorm is no help (it
pools everything, and gloo/CPU processes cannot run it), and plain shuffle-BN makes the result
depend on how many processes share the batch.

What. Every BatchNorm2d of the trunk becomes a `SplitBatchNorm2d`: in training, the batch is cut
into groups of `group_size` samples, sample s going to group s mod G (G = batch / group_size), and
each group is normalised with its own mean and variance. The trainer lays the global batch out
so that the samples of one process form whole groups of the global batch (DistributedSampler's
interleaving: global position p lives on rank p mod W, and group b of rank r is global group
W*b + r), and shuffles the key encoder's input over the whole global batch. One process with the
global batch therefore computes exactly what W processes compute, for any W that divides the
number of groups. Running statistics average the groups' statistics (exactly what one process
with the whole batch would track); across processes they are averaged by `sync_running_stats`
before they are saved. Parameter and buffer names are BatchNorm2d's, so state dicts are unchanged.
"""

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from .distributed import is_distributed, world_size


class SplitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are per group of `group_size` samples (s mod G).

    Args:
        num_features: channels (C).
        group_size: samples per statistics group; the batch must be a multiple of it.
        **kwargs: passed to `nn.BatchNorm2d` (eps, momentum, affine, device, dtype).

    Raises:
        ValueError: in `forward`, for a training batch that is not a multiple of `group_size`.
    """

    def __init__(self, num_features: int, group_size: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.group_size = group_size

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, group_size={self.group_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] == self.group_size:
            return super().forward(x)
        if x.shape[0] % self.group_size:
            raise ValueError(f"SplitBatchNorm2d: a batch of {x.shape[0]} samples does not split into groups "
                             f"of {self.group_size}; make the per-process batch a multiple of bn_group_size")
        if x.is_contiguous():
            return self._forward_folded(x)
        return self._forward_grouped(x)

    def _average_factor(self) -> float:
        self.num_batches_tracked.add_(1)
        return 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum

    def _forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """Contiguous NCHW: fold group into channels, a free view, and use the native kernel."""
        batch, channels, height, width = x.shape
        groups = batch // self.group_size
        folded = x.view(self.group_size, groups * channels, height, width)  # (g, G*C, H, W): s = a*G + b
        running_mean, running_var = self.running_mean.repeat(groups), self.running_var.repeat(groups)  # (G*C,)
        weight = self.weight.repeat(groups) if self.weight is not None else None  # (G*C,)
        bias = self.bias.repeat(groups) if self.bias is not None else None  # (G*C,)
        out = F.batch_norm(folded, running_mean, running_var, weight, bias, True, self._average_factor(), self.eps)
        with torch.no_grad():
            self.running_mean.copy_(running_mean.view(groups, channels).mean(0))  # (C,)
            self.running_var.copy_(running_var.view(groups, channels).mean(0))  # (C,)
        return out.view(batch, channels, height, width)  # (B, C, H, W)

    def _forward_grouped(self, x: torch.Tensor) -> torch.Tensor:
        """Other layouts (channels_last): explicit statistics on a view that keeps the layout."""
        batch, channels, height, width = x.shape
        groups = batch // self.group_size
        grouped = x.view(self.group_size, groups, channels, height, width)  # (g, G, C, H, W)
        var, mean = torch.var_mean(grouped, dim=(0, 3, 4), unbiased=False, keepdim=True)  # (1, G, C, 1, 1)
        scale = torch.rsqrt(var + self.eps)  # (1, G, C, 1, 1)
        if self.weight is not None:
            scale = scale * self.weight.view(1, 1, channels, 1, 1)
        shift = -mean * scale if self.bias is None else self.bias.view(1, 1, channels, 1, 1) - mean * scale
        out = grouped * scale + shift  # (g, G, C, H, W)
        with torch.no_grad():
            factor = self._average_factor()
            count = self.group_size * height * width
            unbiased = var.view(groups, channels) * count / max(count - 1, 1)  # (G, C)
            self.running_mean.lerp_(mean.view(groups, channels).mean(0), factor)
            self.running_var.lerp_(unbiased.mean(0), factor)
        return out.view(batch, channels, height, width)  # (B, C, H, W)


def convert_split_batchnorm(module: nn.Module, group_size: int) -> nn.Module:
    """Replace every `nn.BatchNorm2d` in `module` (in place) by a `SplitBatchNorm2d`, keeping its state.

    Args:
        module: a network, e.g. a `vader_*` model.
        group_size: samples per statistics group.

    Returns:
        `module`, or the replacement if `module` itself is a BatchNorm2d.

    Raises:
        TypeError: for batch-norm subclasses this cannot convert faithfully (e.g. with a fused activation).
    """
    if type(module) is nn.BatchNorm2d:
        split = SplitBatchNorm2d(module.num_features, group_size, eps=module.eps, momentum=module.momentum,
                                 affine=module.affine, track_running_stats=module.track_running_stats,
                                 device=module.running_mean.device if module.running_mean is not None else None)
        split.load_state_dict(module.state_dict())
        split.train(module.training)
        return split
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, SplitBatchNorm2d):
        raise TypeError(f"cannot convert {type(module).__name__} to split batch norm; only nn.BatchNorm2d is supported")
    for name, child in module.named_children():
        setattr(module, name, convert_split_batchnorm(child, group_size))
    return module


@torch.no_grad()
def sync_running_stats(module: nn.Module) -> None:
    """Average every batch norm's running mean and variance over all processes (no-op in one process).

    Each process tracks running statistics over its own groups; their average is what one process
    with the global batch would track, since the running update is linear in the group statistics.
    Call it on every process at the same step (it is a collective), before saving.
    """
    if not is_distributed():
        return
    buffers = [b for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
               for b in (m.running_mean, m.running_var) if b is not None]
    if not buffers:
        return
    flat = torch.cat([b.flatten() for b in buffers])  # (sum of channels,)
    dist.all_reduce(flat)
    flat /= world_size()
    for buffer, values in zip(buffers, flat.split([b.numel() for b in buffers]), strict=True):
        buffer.copy_(values.view_as(buffer))
