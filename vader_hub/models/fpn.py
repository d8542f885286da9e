"""The FPN decoder of VADeR: four trunk stages in, one stride-4 embedding map out.

Exactly, for trunk stages C2..C5 (strides 4, 8, 16, 32; channels ``in_channels``):

1. **Lateral 1x1 convs** (with bias) take every Ci to ``fpn_dim`` (256) channels: ``decoder.lateral.{0..3}``.
2. **Top-down sum** (FPN, Lin et al. 2017): P5 = L5, then Pi = Li + up2(P(i+1)) for i = 4, 3, 2.
   There is no 3x3 output conv after the sum: the first 3x3 conv of each scale head below plays
   that role, as in Panoptic FPN's semantic branch.
3. **Semantic-FPN head** (Panoptic FPN, Kirillov et al. 2019): level Pi goes through max(1, i - 2)
   blocks of conv 3x3 (no bias) -> GroupNorm(32) -> ReLU with ``head_dim`` (128) channels, each
   block but P2's followed by a 2x bilinear upsampling, so every level arrives at stride 4;
   the four stride-4 maps are summed: ``decoder.scale_heads.{0..3}.{k}``.
4. **Projection**: a 1x1 conv (with bias) to ``embed_dim`` (128): ``decoder.proj``.

Every upsampling is :func:`~vader_hub.models.cells.upsample_aligned`, which keeps the cell convention
(a stride-s cell k is centred on pixel s*k) for inputs of any size, not only multiples of 32.

Sizes (parameters, and forward FLOPs at 224x224) are in the README's model table, printed by
``python benchmarks/model_cost.py`` and checked against the networks by ``tests/test_readme.py``.
"""
from typing import Optional, Sequence

import torch
from torch import nn

from .cells import upsample_aligned


class ConvGNReLU(nn.Module):
    """Conv 3x3 (no bias) -> GroupNorm(32) -> ReLU, the block of Panoptic FPN's semantic head."""

    def __init__(self, in_channels: int, out_channels: int, device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False, **dd)
        self.norm = nn.GroupNorm(32, out_channels, **dd)
        self.act = nn.ReLU(inplace=True)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class FPNDecoder(nn.Module):
    """FPN top-down pathway plus the semantic-FPN head, merging C2..C5 into one stride-4 map.

    Args:
        in_channels: Channels of the trunk stages C2..C5.
        fpn_dim: Width of the FPN pyramid P2..P5.
        head_dim: Width of the semantic head.
        embed_dim: Channels of the output embedding.
        device: Device to create parameters on.
        dtype: Dtype of the parameters.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        fpn_dim: int = 256,
        head_dim: int = 128,
        embed_dim: int = 128,
        device=None,
        dtype=None,
    ):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.lateral = nn.ModuleList(nn.Conv2d(c, fpn_dim, 1, **dd) for c in in_channels)
        self.scale_heads = nn.ModuleList(
            nn.Sequential(*(ConvGNReLU(fpn_dim if k == 0 else head_dim, head_dim, **dd) for k in range(max(1, level))))
            for level in range(len(in_channels))
        )
        self.proj = nn.Conv2d(head_dim, embed_dim, 1, **dd)
        for conv in self.lateral:
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)

    def top_down(self, stages: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """FPN pyramid P2..P5 (each (B, fpn_dim, h_i, w_i)) from trunk stages C2..C5."""
        laterals = [conv(c) for conv, c in zip(self.lateral, stages, strict=True)]
        pyramid = [laterals[-1]]
        for lateral in reversed(laterals[:-1]):
            coarser = upsample_aligned(pyramid[0], tuple(lateral.shape[-2:]), 2)  # (B, fpn_dim, h_i, w_i)
            pyramid.insert(0, lateral + coarser)
        return pyramid

    def fuse(self, pyramid: Sequence[torch.Tensor]) -> torch.Tensor:
        """Semantic-FPN head: every level brought to stride 4 and summed, (B, head_dim, h_2, w_2)."""
        sizes = [tuple(p.shape[-2:]) for p in pyramid]
        fused: Optional[torch.Tensor] = None
        for level, (head, x) in enumerate(zip(self.scale_heads, pyramid, strict=True)):
            for k, block in enumerate(head):
                x = block(x)
                if level - k > 0:
                    x = upsample_aligned(x, sizes[level - k - 1], 2)  # (B, head_dim, 2h, 2w) cropped
            fused = x if fused is None else fused + x
        return fused

    def forward(self, stages: Sequence[torch.Tensor]) -> torch.Tensor:
        """Embedding map (B, embed_dim, h_2, w_2) from trunk stages C2..C5."""
        return self.proj(self.fuse(self.top_down(stages)))
