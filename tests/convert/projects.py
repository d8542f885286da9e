"""Checkpoints written the way each project's own save code writes them, from real torchvision/timm ResNets.

Each builder reproduces the module tree of the project's model class (so ``state_dict()`` names are
the project's), lets the online and the momentum encoder diverge (as training does, so a converter
that picks the wrong one is caught), and wraps the result exactly as the project's save function does:

- MoCo v1/v2: facebookresearch/moco ``moco/builder.py`` ``MoCo`` + ``main_moco.py`` ``save_checkpoint``.
- MoCo v3: facebookresearch/moco-v3 ``moco/builder.py`` ``MoCo_ResNet`` + ``main_moco.py``.
- PixPro: zdaxie/PixPro ``contrast/models/PixPro.py`` + ``main_pretrain.py`` ``save_checkpoint``.
- DenseCL: WXinlong/DenseCL ``openselfsup/models/densecl.py`` (mmcv ``save_checkpoint``) and
  ``tools/extract_backbone_weights.py``.
- timm: ``train.py``'s ``CheckpointSaver``.

``nn.DataParallel`` stands in for ``DistributedDataParallel``: both keep the model at ``.module``,
so the saved names get the same ``module.`` prefix, and DataParallel needs no process group.
"""
import argparse
import copy
from dataclasses import dataclass, field
from typing import Dict, FrozenSet

import timm
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

SEED = 0


@dataclass
class ProjectCheckpoint:
    """A checkpoint as a project saves it, and the network whose trunk it holds.

    Attributes:
        content: What ``torch.save`` receives.
        encoder: The network whose ResNet trunk a converter must return (torchvision/timm names).
        layout: The layout name vader-hub should detect.
        dropped: Names behind the layout's prefix that are not trunk tensors (the encoder's head).
    """

    content: dict
    encoder: nn.Module
    layout: str
    dropped: FrozenSet[str] = field(default_factory=frozenset)


def randomize_(module: nn.Module, seed: int) -> nn.Module:
    """Give every parameter and buffer distinct random values (BN variances positive), in place."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                values = torch.randn(tensor.shape, generator=generator)
                tensor.copy_(values.abs() + 0.5 if name.endswith("running_var") else values * 0.1)
            elif name.endswith("num_batches_tracked"):
                tensor.fill_(int(torch.randint(1, 10_000, (), generator=generator)))
    return module


def torchvision_resnet(arch: str, **kwargs) -> nn.Module:
    """A torchvision ResNet with uninitialised memory (the builders randomize every tensor anyway)."""
    with torch.device("meta"):
        network = torchvision.models.__dict__[arch](**kwargs)
    return network.to_empty(device="cpu")


def _sgd_state(model: nn.Module) -> dict:
    """An SGD ``optimizer.state_dict()``, as training checkpoints store it (before any step, to stay small)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(parameters, lr=0.03, momentum=0.9, weight_decay=1e-4).state_dict()


class MoCo(nn.Module):
    """Module tree of MoCo v1/v2's ``MoCo`` (``mlp=True`` is v2's projection head)."""

    def __init__(self, arch: str, dim: int = 128, queue_size: int = 64, mlp: bool = False):
        super().__init__()
        self.encoder_q = torchvision_resnet(arch, num_classes=dim)
        self.encoder_k = torchvision_resnet(arch, num_classes=dim)
        if mlp:
            dim_mlp = self.encoder_q.fc.weight.shape[1]
            self.encoder_q.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), self.encoder_q.fc)
            self.encoder_k.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), self.encoder_k.fc)
        for param_k in self.encoder_k.parameters():
            param_k.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(dim, queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))


def moco_v1_v2(arch: str = "resnet18", mlp: bool = False) -> ProjectCheckpoint:
    model = randomize_(MoCo(arch, mlp=mlp), SEED)
    randomize_(model.encoder_k, SEED + 1)
    content = {
        "epoch": 200, "arch": arch, "state_dict": nn.DataParallel(model).state_dict(), "optimizer": _sgd_state(model),
    }
    head = {"fc.0.weight", "fc.0.bias", "fc.2.weight", "fc.2.bias"} if mlp else {"fc.weight", "fc.bias"}
    return ProjectCheckpoint(content, model.encoder_q, "moco-v1/v2", frozenset(head))


def _build_mlp(num_layers: int, input_dim: int, mlp_dim: int, output_dim: int) -> nn.Sequential:
    """MoCo v3's ``MoCo._build_mlp``."""
    mlp = []
    for layer in range(num_layers):
        dim1 = input_dim if layer == 0 else mlp_dim
        dim2 = output_dim if layer == num_layers - 1 else mlp_dim
        mlp.append(nn.Linear(dim1, dim2, bias=False))
        if layer < num_layers - 1:
            mlp.append(nn.BatchNorm1d(dim2))
            mlp.append(nn.ReLU(inplace=True))
        else:
            mlp.append(nn.BatchNorm1d(dim2, affine=False))
    return nn.Sequential(*mlp)


class MoCoV3ResNet(nn.Module):
    """Module tree of MoCo v3's ``MoCo_ResNet`` (mlp_dim reduced from 4096 to keep the test small)."""

    def __init__(self, arch: str, dim: int = 256, mlp_dim: int = 64):
        super().__init__()
        self.base_encoder = torchvision_resnet(arch, num_classes=mlp_dim, zero_init_residual=True)
        self.momentum_encoder = torchvision_resnet(arch, num_classes=mlp_dim, zero_init_residual=True)
        hidden_dim = self.base_encoder.fc.weight.shape[1]
        del self.base_encoder.fc, self.momentum_encoder.fc
        self.base_encoder.fc = _build_mlp(2, hidden_dim, mlp_dim, dim)
        self.momentum_encoder.fc = _build_mlp(2, hidden_dim, mlp_dim, dim)
        self.predictor = _build_mlp(2, dim, mlp_dim, dim)


def moco_v3(arch: str = "resnet18") -> ProjectCheckpoint:
    model = randomize_(nn.SyncBatchNorm.convert_sync_batchnorm(MoCoV3ResNet(arch)), SEED)
    randomize_(model.momentum_encoder, SEED + 1)
    content = {
        "epoch": 300, "arch": arch, "state_dict": nn.DataParallel(model).state_dict(),
        "optimizer": _sgd_state(model), "scaler": torch.amp.GradScaler("cpu").state_dict(),
    }
    head = {name for name in model.base_encoder.state_dict() if name.startswith("fc.")}
    return ProjectCheckpoint(content, model.base_encoder, "moco-v3", frozenset(head))


class MLP2d(nn.Module):
    """PixPro's ``MLP2d`` projector (inner width reduced from 4096)."""

    def __init__(self, in_dim: int, inner_dim: int = 64, out_dim: int = 256):
        super().__init__()
        self.linear1 = nn.Conv2d(in_dim, inner_dim, 1)
        self.bn1 = nn.BatchNorm2d(inner_dim)
        self.relu1 = nn.ReLU(inplace=True)
        self.linear2 = nn.Conv2d(inner_dim, out_dim, 1)


class PixPro(nn.Module):
    """Module tree of PixPro's ``PixPro`` (``pixpro_transform_layer=1``, no instance branch)."""

    def __init__(self, arch: str):
        super().__init__()
        # contrast/resnet.py with head_type='early_return': torchvision's names, no classifier.
        self.encoder = torchvision_resnet(arch)
        self.encoder.fc = nn.Identity()
        channels = 512 * (4 if arch not in ("resnet18", "resnet34") else 1)
        self.projector = MLP2d(channels)
        self.encoder_k = copy.deepcopy(self.encoder)
        self.projector_k = MLP2d(channels)
        self.value_transform = nn.Conv2d(256, 256, 1)
        for module in (self.encoder, self.encoder_k, self.projector, self.projector_k):
            nn.SyncBatchNorm.convert_sync_batchnorm(module)


def pixpro(arch: str = "resnet18") -> ProjectCheckpoint:
    model = randomize_(PixPro(arch), SEED)
    randomize_(model.encoder_k, SEED + 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=100)
    opt = argparse.Namespace(arch=arch, model="PixPro", pixpro_p=2.0, pixpro_momentum=0.99, amp_opt_level="O0",
                             output_dir="./output/pixpro", lr_decay_epochs=[120, 160])
    content = {
        "opt": opt, "model": nn.DataParallel(model).state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "epoch": 100,
    }
    return ProjectCheckpoint(content, model.encoder, "pixpro")


class DenseCLNeck(nn.Module):
    """DenseCL's ``DenseCLNeck`` (hid_channels reduced from 2048)."""

    def __init__(self, in_channels: int, hid_channels: int = 64, out_channels: int = 128):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_channels, hid_channels), nn.ReLU(inplace=True),
                                 nn.Linear(hid_channels, out_channels))
        self.mlp2 = nn.Sequential(nn.Conv2d(in_channels, hid_channels, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hid_channels, out_channels, 1))


class DenseCL(nn.Module):
    """Module tree of DenseCL's ``DenseCL``: ``encoder_q = Sequential(backbone, neck)``, ``backbone = encoder_q[0]``."""

    def __init__(self, arch: str, queue_size: int = 64):
        super().__init__()
        channels = 512 * (4 if arch not in ("resnet18", "resnet34") else 1)

        def backbone() -> nn.Module:  # OpenSelfSup's ResNet: torchvision's names, no classifier
            network = torchvision_resnet(arch)
            network.fc = nn.Identity()
            return network

        self.encoder_q = nn.Sequential(backbone(), DenseCLNeck(channels))
        self.encoder_k = nn.Sequential(backbone(), DenseCLNeck(channels))
        self.backbone = self.encoder_q[0]
        for name in ("queue", "queue2"):
            self.register_buffer(name, F.normalize(torch.randn(128, queue_size), dim=0))
            self.register_buffer(name + "_ptr", torch.zeros(1, dtype=torch.long))


def densecl_training(arch: str = "resnet18") -> ProjectCheckpoint:
    model = randomize_(DenseCL(arch), SEED)
    randomize_(model.encoder_k, SEED + 1)
    meta = {"mmcv_version": "0.3.0", "time": "Thu Jan  1 00:00:00 2021", "epoch": 200, "iter": 250200}
    content = {"meta": meta, "state_dict": model.state_dict(), "optimizer": _sgd_state(model)}
    return ProjectCheckpoint(content, model.backbone, "densecl-train")


def densecl_release(arch: str = "resnet18") -> ProjectCheckpoint:
    """What ``tools/extract_backbone_weights.py`` writes from a training checkpoint."""
    training = densecl_training(arch)
    output_dict: Dict[str, object] = dict(state_dict=dict(), author="DenseCL")
    for key, value in training.content["state_dict"].items():
        if key.startswith("backbone"):
            output_dict["state_dict"][key[9:]] = value
    return ProjectCheckpoint(output_dict, training.encoder, "densecl")


def _timm_resnet(arch: str) -> nn.Module:
    with torch.device("meta"):
        network = timm.create_model(arch)
    return randomize_(network.to_empty(device="cpu"), SEED)


def timm_state_dict(arch: str = "resnet18") -> ProjectCheckpoint:
    model = _timm_resnet(arch)
    return ProjectCheckpoint(model.state_dict(), model, "torchvision/timm", frozenset({"fc.weight", "fc.bias"}))


def timm_training(arch: str = "resnet18") -> ProjectCheckpoint:
    """timm ``train.py``'s ``CheckpointSaver`` output: ``args`` is the argparse Namespace."""
    model = _timm_resnet(arch)
    args = argparse.Namespace(model=arch, lr=0.1, epochs=300, data_dir="/data/imagenet", amp=True)
    content = {
        "epoch": 12, "arch": arch, "state_dict": model.state_dict(), "optimizer": _sgd_state(model),
        "version": 2, "args": args, "metric": 71.3,
    }
    return ProjectCheckpoint(content, model, "state_dict-wrapped", frozenset({"fc.weight", "fc.bias"}))
