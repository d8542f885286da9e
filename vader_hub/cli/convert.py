"""The ``vader-hub convert`` command: ResNet trunks in and out, and deployment exports.

    vader-hub convert import moco_v2_800ep_pretrain.pth.tar --model vader_r50_fpn --out moco_trunk.safetensors
    vader-hub convert export vader_r50_fpn.safetensors --to torchvision --out r50_torchvision.pth
    vader-hub convert export vader_r50_fpn.safetensors --to detectron2 --out r50_d2.pkl --decoder-out fpn.safetensors
    vader-hub convert onnx                                             # the default model -> vader.onnx
    vader-hub convert onnx --weights my_run.safetensors --out mine.onnx
    vader-hub convert torch-export --model vader_r18_fpn --out vader_r18_fpn.pt2

See docs/interop.md for the layouts recognised and the detectron2 config to fine-tune with.
"""
import argparse
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from ..convert.deploy import check_onnx, export_onnx, export_program, save_program
from ..convert.frameworks import EXPORT_TARGETS, export_decoder, export_trunk, save_decoder, save_export
from ..convert.trunk import TRUNK_PREFIX, load_trunk, save_trunk
from .inputs import read_weights_input
from .options import (
    add_architecture_argument,
    add_model_arguments,
    add_output_argument,
    load_model,
    required_architecture,
)
from .status import DONE, DONE_IN_PART, reporting_errors_of

reporting_errors = reporting_errors_of("vader-hub convert")



def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``convert`` with its sub-commands ``import``, ``export``, ``onnx``, ``torch-export``."""
    parser = subparsers.add_parser(
        "convert", help="import ResNet trunks from MoCo/DenseCL/PixPro/torchvision/timm; export to other frameworks",
        description="Move ResNet trunks between vader-hub and other projects, and export whole networks for serving.",
    )
    commands = parser.add_subparsers(dest="convert_command", metavar="COMMAND", required=True)
    _register_import(commands)
    _register_export(commands)
    _register_deploy(commands)


def _register_import(commands: "argparse._SubParsersAction") -> None:
    parser = commands.add_parser(
        "import", help="take the ResNet trunk out of a checkpoint (layout detected) into a safetensors file",
        description="Detect a checkpoint's layout (MoCo v1/v2/v3, DenseCL, PixPro, torchvision, timm, vader-hub), "
        "check its trunk against --model and write it as trunk.* safetensors (a trainer --init file).",
    )
    parser.add_argument("checkpoint", type=Path, metavar="IN", help="checkpoint file (.pth, .pth.tar, .safetensors)")
    add_architecture_argument(parser, required=True, help="the VADeR architecture the trunk is for, e.g. vader_r50_fpn")
    add_output_argument(parser, "output .safetensors file")
    parser.add_argument("--container", help="top-level key holding the state dict (overrides detection)")
    parser.add_argument("--prefix", help="name prefix before the ResNet names, e.g. 'module.encoder_q.'")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.set_defaults(func=run_import)


def _register_export(commands: "argparse._SubParsersAction") -> None:
    parser = commands.add_parser(
        "export", help="export a vader-hub trunk to torchvision, timm or detectron2 (and the decoder separately)",
        description="Write the trunk of a vader-hub weights file, trunk file or trainer checkpoint in another "
        "framework's names: torchvision/timm (.pth or .safetensors), detectron2 (.pkl).",
    )
    parser.add_argument("weights", type=Path, metavar="IN",
                        help="vader-hub weights or trunk .safetensors, or a trainer checkpoint.pt")
    parser.add_argument("--to", required=True, choices=EXPORT_TARGETS, help="target framework")
    add_output_argument(parser, "output file (.pth/.safetensors; .pkl for detectron2)")
    parser.add_argument("--decoder-out", type=Path, help="also write the FPN decoder (decoder.*) to this .safetensors")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run_export)


def _register_deploy(commands: "argparse._SubParsersAction") -> None:
    for name, help_text, suffix in (
        ("onnx", "export the whole network to ONNX (dynamic batch, H, W) and check it with onnxruntime", ".onnx"),
        ("torch-export", "export the whole network with torch.export (dynamic batch, H, W)", ".pt2"),
    ):
        parser = commands.add_parser(name, help=help_text, description=help_text + ".")
        add_model_arguments(parser)
        add_output_argument(parser, f"output {suffix} file", default=Path(f"vader{suffix}"))
        parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
        if name == "onnx":
            parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
        parser.set_defaults(func=run_onnx if name == "onnx" else run_torch_export)



@reporting_errors
def run_import(args: argparse.Namespace) -> int:
    """Import a trunk and write it; prints what was detected. Returns the exit status."""
    trunk = load_trunk(args.checkpoint, required_architecture(args), container=args.container, prefix=args.prefix)
    save_trunk(trunk, args.out, overwrite=args.overwrite)
    print(trunk.summary())
    print(f"wrote {args.out} ({len(trunk.state_dict)} tensors)")
    return DONE


def _vader_state_dict(state_dict: Mapping[str, Any], source: Path) -> Mapping[str, Any]:
    """``state_dict`` if it has vader-named trunk tensors, else a clear error."""
    if any(str(name).startswith(TRUNK_PREFIX) for name in state_dict):
        return state_dict
    raise ValueError(
        f"{source} is not a vader-hub weights, trunk or trainer file (no 'trunk.*' tensors; keys "
        f"{list(state_dict)[:10]}); import other checkpoints first with 'vader-hub convert import'"
    )


@reporting_errors
def run_export(args: argparse.Namespace) -> int:
    """Export a trunk (and optionally the decoder); returns the exit status."""
    exported = read_weights_input(args.weights)
    state_dict = _vader_state_dict(exported.state_dict, args.weights)
    save_export(export_trunk(state_dict, to=args.to), args.to, args.out, overwrite=args.overwrite)
    if args.decoder_out is not None:
        architecture = exported.architecture or "unknown"
        save_decoder(export_decoder(state_dict), args.decoder_out, architecture, overwrite=args.overwrite)
    print(f"wrote the trunk in {args.to} layout to {args.out}")
    if args.to == "detectron2":
        print("detectron2 config: MODEL.RESNETS.STRIDE_IN_1X1 False, INPUT.FORMAT RGB, "
              "PIXEL_MEAN [123.675, 116.280, 103.530], PIXEL_STD [58.395, 57.120, 57.375] (docs/interop.md)")
    if args.decoder_out is not None:
        print(f"wrote the FPN decoder to {args.decoder_out}")
    return DONE


def _build_model(args: argparse.Namespace) -> nn.Module:
    """The network of ``--model`` / ``--weights``, announced."""
    chosen = load_model(args)
    print(f"exporting {chosen.describe()}")
    return chosen.model


@reporting_errors
def run_onnx(args: argparse.Namespace) -> int:
    """Export to ONNX and, unless ``--no-check``, compare with PyTorch; returns the exit status."""
    model = _build_model(args)
    export_onnx(model, args.out, overwrite=args.overwrite)
    checks = [] if args.no_check else check_onnx(model, args.out)
    print(f"wrote {args.out} (input 'images' (B, 3, H, W), H, W >= 33; output 'features')")
    for check in checks:
        verdict = "ok" if check.passed else f"FAILED {check.error}".strip()
        print(f"  onnxruntime vs PyTorch at {check.height}x{check.width}: "
              f"max abs {check.max_abs:.2e}, max rel {check.max_rel:.2e}  {verdict}")
    return DONE if all(check.passed for check in checks) else DONE_IN_PART


@reporting_errors
def run_torch_export(args: argparse.Namespace) -> int:
    """Export with ``torch.export`` and save the ``.pt2``; returns the exit status."""
    model = _build_model(args)
    save_program(export_program(model), args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}: torch.export.load('{args.out}').module()(images)")
    return DONE
