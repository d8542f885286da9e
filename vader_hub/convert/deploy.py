"""Deployment exports of a whole ``vader_*`` network: ONNX and ``torch.export``, dynamic in batch, H and W.

    model = timm.create_model("vader_r50_fpn", pretrained=True).eval()
    export_onnx(model, "vader_r50_fpn.onnx")
    for check in check_onnx(model, "vader_r50_fpn.onnx"):
        print(check)                       # onnxruntime vs PyTorch on sizes that are not multiples of 32
    save_program(export_program(model), "vader_r50_fpn.pt2")   # torch.export.load(...).module()(x)

Both graphs take ``images`` (B, 3, H, W), normalised like the model's ``pretrained_cfg`` (mean, std),
and return ``features`` (B, 128, ceil(H/4), ceil(W/4)), not L2-normalised. They are traced once and
then hold for every batch size and every H, W >= 33 (a 32-pixel side gives the stride-32 stage a
single cell, which the trace cannot cover together with larger sizes). ONNX needs the ``onnx``
extra: ``pip install vader-hub[onnx]``.
"""
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

import torch
from torch import nn

from .files import PathLike, write_atomically

INPUT_NAME = "images"
OUTPUT_NAME = "features"
MIN_EXPORT_SIZE = 33
# Traced at a size that is not a multiple of 32 and differs in parity between H and W.
EXAMPLE_SHAPE = (2, 3, 97, 130)
CHECK_SIZES = ((67, 93), (50, 77), (97, 45))
ONNX_OPSET = 18


@dataclass(frozen=True)
class DeploymentCheck:
    """One comparison of an exported graph with PyTorch.

    Attributes:
        height: Input height.
        width: Input width.
        max_abs: Largest absolute difference.
        max_rel: ``max_abs`` over the largest absolute PyTorch output.
        passed: Both within the tolerances asked for.
        error: onnxruntime's message if the graph failed to run at this size (then passed is False).
    """

    height: int
    width: int
    max_abs: float
    max_rel: float
    passed: bool
    error: str = ""


def _check_eval(model: nn.Module) -> None:
    if model.training:
        raise ValueError(
            "the model is in training mode (BatchNorm would use batch statistics); call model.eval() first"
        )


def _dynamic_shapes() -> Tuple[dict]:
    batch = torch.export.Dim("batch", min=1)
    height = torch.export.Dim("height", min=MIN_EXPORT_SIZE)
    width = torch.export.Dim("width", min=MIN_EXPORT_SIZE)
    return ({0: batch, 2: height, 3: width},)


def _require(*modules: str) -> None:
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"ONNX export needs {', '.join(missing)}: pip install 'vader-hub[onnx]'")


def export_program(model: nn.Module, example_shape: Sequence[int] = EXAMPLE_SHAPE) -> torch.export.ExportedProgram:
    """``torch.export`` the network with dynamic batch, height and width.

    Args:
        model: A ``vader_*`` network in eval mode.
        example_shape: (B, 3, H, W) of the tracing input; B >= 2 and H, W >= 33.

    Returns:
        The exported program; ``program.module()(images)`` runs it.

    Raises:
        ValueError: If the model is in training mode, or its forward branches on the input size.
    """
    _check_eval(model)
    example = torch.randn(*example_shape, device=next(model.parameters()).device)
    try:
        return torch.export.export(model, (example,), dynamic_shapes=_dynamic_shapes())
    except torch._dynamo.exc.UserError as error:
        raise ValueError(
            f"the network cannot be traced once for every H, W >= {MIN_EXPORT_SIZE}: its forward branches on "
            f"the input size. torch.export says:\n{error}"
        ) from error


def save_program(program: torch.export.ExportedProgram, path: PathLike, overwrite: bool = False) -> Path:
    """Write an exported program (``.pt2``, read back with ``torch.export.load``), atomically.

    Args:
        program: The result of :func:`export_program`.
        path: The ``.pt2`` file to write.
        overwrite: Replace an existing file.

    Returns:
        The written path.

    Raises:
        FileNotFoundError: If the output folder does not exist.
        FileExistsError: If ``path`` exists and ``overwrite`` is False.
    """
    return write_atomically(path, lambda target: torch.export.save(program, target), overwrite)


def export_onnx(
    model: nn.Module, path: PathLike, example_shape: Sequence[int] = EXAMPLE_SHAPE, overwrite: bool = False
) -> Path:
    """Export the network to one ONNX file (weights inside), dynamic in batch, height and width.

    Args:
        model: A ``vader_*`` network in eval mode.
        path: The ``.onnx`` file to write.
        example_shape: (B, 3, H, W) of the tracing input; B >= 2 and H, W >= 33.
        overwrite: Replace an existing file.

    Returns:
        The written path.

    Raises:
        ImportError: If ``onnx``/``onnxscript`` are missing (``pip install vader-hub[onnx]``).
        ValueError: If the model is in training mode, or its forward branches on the input size.
        FileNotFoundError: If the output folder does not exist.
        FileExistsError: If ``path`` exists and ``overwrite`` is False.
    """
    _require("onnx", "onnxscript")
    # Trace once with torch.export first: it refuses a forward that branches on the input size,
    # where the ONNX exporter would fall back to a draft export that only holds for the traced size.
    export_program(model, example_shape)
    example = torch.randn(*example_shape, device=next(model.parameters()).device)

    def write(target: Path) -> None:
        torch.onnx.export(
            model, (example,), f=str(target), dynamo=True, external_data=False, opset_version=ONNX_OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_shapes=_dynamic_shapes(),
        )

    return write_atomically(path, write, overwrite)


def check_onnx(
    model: nn.Module,
    path: PathLike,
    sizes: Sequence[Tuple[int, int]] = CHECK_SIZES,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    seed: int = 0,
) -> List[DeploymentCheck]:
    """Run an exported ONNX file with onnxruntime (CPU) and compare it with the PyTorch network.

    Args:
        model: The network that was exported, in eval mode.
        path: The ``.onnx`` file.
        sizes: (H, W) input sizes to compare on; each >= 33.
        atol: Largest absolute difference allowed.
        rtol: Largest difference allowed relative to the largest PyTorch output.
        seed: Seed of the random inputs.

    Returns:
        One :class:`DeploymentCheck` per size.

    Raises:
        ImportError: If ``onnxruntime`` is missing.
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the model is in training mode.
    """
    _require("onnxruntime")
    import onnxruntime

    _check_eval(model)
    if not Path(path).is_file():
        raise FileNotFoundError(f"ONNX file {path} does not exist")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    checks = []
    for height, width in sizes:
        images = torch.randn(1, 3, height, width, generator=generator)
        with torch.no_grad():
            reference = model(images.to(device)).float().cpu()
        try:
            (output,) = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})
        except onnxruntime.capi.onnxruntime_pybind11_state.Fail as error:
            checks.append(DeploymentCheck(height, width, float("inf"), float("inf"), False, str(error)))
            continue
        max_abs = (torch.from_numpy(output) - reference).abs().max().item()
        max_rel = max_abs / max(reference.abs().max().item(), 1e-12)
        checks.append(DeploymentCheck(height, width, max_abs, max_rel, max_abs <= atol and max_rel <= rtol))
    return checks

