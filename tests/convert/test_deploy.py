"""ONNX (through onnxruntime) and torch.export graphs against PyTorch, on sizes that are not multiples of 32."""
import copy
import math
from pathlib import Path

import pytest
import timm
import torch
from torch import nn

from vader_hub.convert import check_onnx, export_onnx, export_program, save_program

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

SIZES = ((67, 93), (50, 77), (97, 45))
ABSOLUTE, RELATIVE = 1e-4, 1e-3


def _assert_onnx_matches(model: nn.Module, path: Path) -> None:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(1)
    for height, width in SIZES:
        images = torch.randn(2, 3, height, width, generator=generator)
        (output,) = session.run(["features"], {"images": images.numpy()})
        with torch.no_grad():
            reference = model(images)
        assert output.shape == (2, 128, math.ceil(height / 4), math.ceil(width / 4))
        max_abs = (torch.from_numpy(output) - reference).abs().max().item()
        assert max_abs <= ABSOLUTE, (height, width, max_abs)
        assert max_abs / reference.abs().max().item() <= RELATIVE, (height, width)


@pytest.fixture(scope="module")
def r18_onnx(vader_r18: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(vader_r18, tmp_path_factory.mktemp("onnx") / "vader_r18_fpn.onnx")


def test_onnx_matches_pytorch_at_sizes_not_multiples_of_32(vader_r18: nn.Module, r18_onnx: Path) -> None:
    _assert_onnx_matches(vader_r18, r18_onnx)


def test_onnx_graph_is_dynamic_in_batch_height_and_width(r18_onnx: Path) -> None:
    graph = onnx.load(str(r18_onnx)).graph
    assert [i.name for i in graph.input] == ["images"] and [o.name for o in graph.output] == ["features"]
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert not (r18_onnx.parent / (r18_onnx.name + ".data")).exists()  # one self-contained file


def test_check_onnx_passes_the_exported_model_and_fails_another(vader_r18: nn.Module, r18_onnx: Path) -> None:
    checks = check_onnx(vader_r18, r18_onnx, sizes=SIZES[:2])
    assert [(c.height, c.width) for c in checks] == list(SIZES[:2])
    assert all(c.passed and c.max_abs <= ABSOLUTE for c in checks)
    other = copy.deepcopy(vader_r18)
    with torch.no_grad():
        other.decoder.proj.bias[0] += 1e-3  # one channel shifted: the check must notice
    (check,) = check_onnx(other, r18_onnx, sizes=SIZES[:1])
    assert not check.passed and check.max_abs == pytest.approx(1e-3, rel=1e-2)


def test_torch_export_program_round_trips_through_a_file(vader_r18: nn.Module, tmp_path: Path) -> None:
    path = save_program(export_program(vader_r18), tmp_path / "vader_r18_fpn.pt2")
    program = torch.export.load(str(path)).module()
    generator = torch.Generator().manual_seed(2)
    for height, width in SIZES:
        images = torch.randn(1, 3, height, width, generator=generator)
        with torch.no_grad():
            torch.testing.assert_close(program(images), vader_r18(images), rtol=1e-5, atol=1e-5)


def test_training_mode_is_refused(tmp_path: Path) -> None:
    model = timm.create_model("vader_r18_fpn")
    with pytest.raises(ValueError, match="model.eval"):
        export_program(model)
    with pytest.raises(ValueError, match="model.eval"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
def test_onnx_vader_r50_matches_pytorch(vader_r50: nn.Module, tmp_path: Path) -> None:
    _assert_onnx_matches(vader_r50, export_onnx(vader_r50, tmp_path / "vader_r50_fpn.onnx"))
