"""Interop: ResNet trunks in from MoCo, DenseCL, PixPro, torchvision and timm; out to torchvision, timm,
detectron2; whole networks out to ONNX and ``torch.export``. See docs/interop.md.

    trunk = load_trunk("moco_v2_800ep_pretrain.pth.tar", "vader_r50_fpn")   # layout detected, checked
    save_trunk(trunk, "trunk.safetensors")                                   # vader-hub train --init ...
    torchvision_state = export_trunk(model.state_dict(), to="torchvision")   # strict into resnet50, fc=Identity
"""
from .deploy import DeploymentCheck, check_onnx, export_onnx, export_program, save_program
from .files import Checkpoint, read_checkpoint
from .frameworks import EXPORT_TARGETS, detectron2_name, export_decoder, export_trunk, save_decoder, save_export
from .layouts import LAYOUTS, Layout, find_layout
from .structure import ResNetStructure, resnet_structure
from .trunk import TrunkImport, import_trunk, load_trunk, load_trunk_into, save_trunk, trunk_shapes

__all__ = [
    "EXPORT_TARGETS", "LAYOUTS", "Checkpoint", "DeploymentCheck", "Layout", "ResNetStructure", "TrunkImport",
    "check_onnx", "detectron2_name", "export_decoder", "export_onnx", "export_program", "export_trunk",
    "find_layout", "import_trunk", "load_trunk", "load_trunk_into", "read_checkpoint", "resnet_structure",
    "save_decoder", "save_export", "save_program", "save_trunk", "trunk_shapes",
]
