"""The VADeR network: a timm ResNet trunk, an FPN decoder and a per-pixel embedding.

``VaderFPN`` maps a (B, 3, H, W) image, H and W >= 32, to a (B, 128, ceil(H/4), ceil(W/4)) map of
unnormalised embeddings whose cell (i, j) is centred on pixel (4i, 4j) (see :mod:`.cells`). The
decoder is described exactly in :mod:`.fpn`.

timm's model API, read for a dense model:

- ``num_features`` (128) is the embedding width; ``forward_features`` returns the embedding map.
- ``num_classes`` > 0 adds a **per-pixel linear classifier** (a 1x1 conv, ``head``) applied by
  ``forward_head``: ``model(x)`` is then (B, num_classes, ceil(H/4), ceil(W/4)) logits, e.g. for a
  linear segmentation probe. ``num_classes=0`` (the default) returns the embeddings. There is no
  global pooling, so ``reset_classifier``'s ``global_pool`` is accepted and ignored.
- ``forward_intermediates`` and ``features_only=True`` give the **FPN outputs P2..P5** (256 channels,
  strides 4, 8, 16, 32) after the top-down sum, not the raw trunk stages: they are the pretrained
  pyramid a detection or segmentation head wants. The trunk is ``model.trunk``, a plain timm
  ``ResNet``, for anyone who wants C2..C5.
"""
from typing import List, Optional, Tuple, Type, Union

import torch
from timm.models import checkpoint_seq
from timm.models._features import feature_take_indices
from timm.models.resnet import BasicBlock, Bottleneck, ResNet
from torch import nn

from .fpn import FPNDecoder

MIN_INPUT_SIZE = 32


class VaderFPN(nn.Module):
    """ResNet + FPN dense encoder of VADeR (Pinheiro et al., NeurIPS 2020).

    Args:
        block: ResNet block type (timm ``BasicBlock`` or ``Bottleneck``).
        layers: Blocks per stage.
        num_classes: Classes of the optional per-pixel linear head; 0 for embeddings.
        in_chans: Input channels.
        fpn_dim: Width of the FPN pyramid.
        head_dim: Width of the semantic-FPN head.
        embed_dim: Width of the output embedding.
        drop_path_rate: Stochastic depth rate of the trunk.
        device: Device to create parameters on.
        dtype: Dtype of the parameters.
    """

    def __init__(
        self,
        block: Type[Union[BasicBlock, Bottleneck]],
        layers: Tuple[int, ...],
        num_classes: int = 0,
        in_chans: int = 3,
        fpn_dim: int = 256,
        head_dim: int = 128,
        embed_dim: int = 128,
        drop_path_rate: float = 0.0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.in_chans = in_chans
        # zero_init_last=False is torchvision's default, the initialisation MoCo and VADeR trained from.
        self.trunk = ResNet(
            block=block, layers=layers, num_classes=0, in_chans=in_chans, global_pool="",
            drop_path_rate=drop_path_rate, zero_init_last=False, **dd,
        )
        trunk_channels = [info["num_chs"] for info in self.trunk.feature_info[1:]]  # C2..C5
        self.decoder = FPNDecoder(trunk_channels, fpn_dim, head_dim, embed_dim, **dd)
        self.num_features = self.head_hidden_size = embed_dim
        self.num_classes = num_classes
        self.head = self._make_head(num_classes, **dd)
        self.feature_info = [
            dict(num_chs=fpn_dim, reduction=2 ** (level + 2), module=f"decoder.lateral.{level}") for level in range(4)
        ]
        self.grad_checkpointing = False

    def _make_head(self, num_classes: int, device=None, dtype=None) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        return nn.Conv2d(self.num_features, num_classes, 1, device=device, dtype=dtype)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        block = r"^trunk\.layer(\d+)" if coarse else r"^trunk\.layer(\d+)\.(\d+)"
        return dict(stem=r"^trunk\.conv1|^trunk\.bn1", blocks=[(block, None), (r"^decoder|^head", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return set()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """Replace the per-pixel head; ``global_pool`` is ignored (a dense model does not pool)."""
        reference = self.decoder.proj.weight
        self.num_classes = num_classes
        self.head = self._make_head(num_classes, device=reference.device, dtype=reference.dtype)
        self.head.train(self.training)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"expected a (B, {self.in_chans}, H, W) batch, got a tensor of shape {tuple(x.shape)}")
        if x.shape[1] != self.in_chans:
            raise ValueError(
                f"expected {self.in_chans} input channels, got {x.shape[1]} (input shape {tuple(x.shape)}); "
                "convert greyscale or RGBA images to RGB first"
            )
        if x.shape[-2] < MIN_INPUT_SIZE or x.shape[-1] < MIN_INPUT_SIZE:
            raise ValueError(
                f"input is {x.shape[-2]}x{x.shape[-1]} pixels; VADeR models need at least "
                f"{MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} (the stride-32 stage must have a cell): upsample or pad it"
            )

    def forward_trunk(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Trunk stages C2..C5 of a (B, 3, H, W) batch, strides 4, 8, 16, 32."""
        self._check_input(x)
        trunk = self.trunk
        x = trunk.maxpool(trunk.act1(trunk.bn1(trunk.conv1(x))))  # (B, 64, ceil(H/4), ceil(W/4))
        stages = []
        for layer in (trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint_seq(layer, x)
            else:
                x = layer(x)
            stages.append(x)
        return stages

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Optional[Union[int, List[int]]] = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """FPN levels P2..P5 and, unless ``intermediates_only``, the embedding map.

        Args:
            x: Input batch (B, 3, H, W).
            indices: Levels to return (0 = P2 ... 3 = P5): last n if an int, all if None.
            norm: Unused (the FPN levels have no final norm); kept for timm's API.
            stop_early: Unused: every level depends on C5 through the top-down path.
            output_fmt: Only 'NCHW'.
            intermediates_only: Return only the selected levels.

        Returns:
            The selected levels, each (B, 256, ceil(H/s), ceil(W/s)), after the embedding map
            (B, 128, ceil(H/4), ceil(W/4)) unless ``intermediates_only``.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        take_indices, _ = feature_take_indices(len(self.feature_info), indices)
        pyramid = self.decoder.top_down(self.forward_trunk(x))
        intermediates = [pyramid[i] for i in take_indices]
        if intermediates_only:
            return intermediates
        return self.decoder.proj(self.decoder.fuse(pyramid)), intermediates

    def prune_intermediate_layers(
        self,
        indices: Union[int, List[int]] = 1,
        prune_norm: bool = False,
        prune_head: bool = True,
    ) -> List[int]:
        """Drop what ``forward_intermediates(intermediates_only=True)`` does not use.

        Every level needs the whole trunk (the top-down path starts at C5), so only the semantic
        head, the projection and the classifier can go.
        """
        take_indices, _ = feature_take_indices(len(self.feature_info), indices)
        if prune_head:
            self.reset_classifier(0)
            self.decoder.scale_heads = nn.ModuleList()
            self.decoder.proj = nn.Identity()
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding map (B, 128, ceil(H/4), ceil(W/4)) of a (B, 3, H, W) batch, not normalised."""
        return self.decoder(self.forward_trunk(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Per-pixel logits (B, num_classes, h, w), or the embeddings if ``pre_logits`` or no head."""
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
