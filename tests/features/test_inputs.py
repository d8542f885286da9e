"""Every accepted image kind becomes the float RGB tensor that an independent reference gives, and
every bad input fails with a clear TypeError or ValueError (examples plus hypothesis properties)."""
import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vader_hub.features.inputs import FLOAT_SLACK, load_image, load_images, resize, target_size

from .conftest import random_photo


def as_chw(hwc: np.ndarray) -> torch.Tensor:
    """Reference float (3, H, W) from an HxWx3 float array."""
    return torch.from_numpy(np.ascontiguousarray(hwc, dtype=np.float32)).permute(2, 0, 1)


def composite_over_white(rgba: np.ndarray) -> np.ndarray:
    """Reference alpha compositing of an HxWx4 float array in [0, 1] onto white."""
    return rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])


def assert_image(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-6) -> None:
    assert actual.dtype == torch.float32 and actual.shape == expected.shape
    torch.testing.assert_close(actual, expected.float(), rtol=0, atol=atol)


# ----------------------------------------------------------------------------------------- PIL images


def test_pil_modes_match_closed_forms(rng):
    rgb = random_photo(rng, 10, 13)
    grey = rgb[..., 0]
    alpha = rng.integers(0, 256, (10, 13), dtype=np.uint8)
    cmyk = rng.integers(0, 256, (10, 13, 4), dtype=np.uint8)
    references = {
        "RGB": (Image.fromarray(rgb), rgb / 255),
        "L": (Image.fromarray(grey), np.repeat(grey[..., None] / 255, 3, axis=2)),
        "RGBA": (Image.fromarray(np.dstack([rgb, alpha])), composite_over_white(np.dstack([rgb, alpha]) / 255)),
        "LA": (
            Image.fromarray(np.dstack([grey, alpha]), "LA"),
            composite_over_white(np.dstack([grey, grey, grey, alpha]) / 255),
        ),
        # PIL's CMYK -> RGB is the naive (255 - C) (255 - K) / 255 per channel
        "CMYK": (
            Image.fromarray(cmyk, "CMYK"),
            np.round((255.0 - cmyk[..., :3]) * (255.0 - cmyk[..., 3:]) / 255) / 255,
        ),
        "1": (Image.fromarray(grey > 127), np.repeat((grey[..., None] > 127).astype(float), 3, axis=2)),
        "F": (Image.fromarray(grey.astype(np.float32) / 255, "F"), np.repeat(grey[..., None] / 255, 3, axis=2)),
    }
    for mode, (image, expected) in references.items():
        assert image.mode == mode
        assert_image(load_image(image), as_chw(expected), atol=1e-6), mode


def test_palette_image_is_looked_up(rng):
    indices = rng.integers(0, 16, (9, 7), dtype=np.uint8)
    palette = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette(palette.flatten().tolist())
    assert_image(load_image(image), as_chw(palette[indices] / 255))


def test_palette_transparency_is_composited_over_white(rng):
    indices = rng.integers(0, 4, (6, 5), dtype=np.uint8)
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], dtype=np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette(palette.flatten().tolist())
    image.info["transparency"] = 3  # palette entry 3 is fully transparent
    expected = palette[indices] / 255
    expected[indices == 3] = 1.0
    assert_image(load_image(image), as_chw(expected))


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_sixteen_bit_grey_uses_the_full_range(mode):
    values = np.array([[0, 1000, 40000], [65535, 257, 12345]], dtype=np.uint16)
    image = Image.fromarray(values) if mode == "I;16" else Image.fromarray(values.astype(np.int32), "I")
    assert image.mode == mode
    assert_image(load_image(image), as_chw(np.repeat(values[..., None] / 65535, 3, axis=2)))


def exif_png(array: np.ndarray, orientation: int) -> bytes:
    image = Image.fromarray(array)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "orientation, reference",
    [(1, lambda a: a), (3, lambda a: np.rot90(a, 2)), (6, lambda a: np.rot90(a, -1)), (8, lambda a: np.rot90(a, 1))],
)
def test_exif_orientation_is_applied_to_paths_and_images(tmp_path, rng, orientation, reference):
    array = random_photo(rng, 8, 12)
    path = tmp_path / "oriented.png"
    path.write_bytes(exif_png(array, orientation))
    expected = as_chw(reference(array) / 255)
    assert_image(load_image(path), expected)
    assert_image(load_image(str(path)), expected)
    with Image.open(path) as opened:
        assert_image(load_image(opened), expected)


def test_sixteen_bit_png_file(tmp_path):
    values = (np.arange(24).reshape(4, 6) * 2700).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert_image(load_image(path), as_chw(np.repeat(values[..., None] / 65535, 3, axis=2)))


# ----------------------------------------------------------------------------------------- arrays, tensors


def test_numpy_layouts_and_dtypes(rng):
    rgb = random_photo(rng, 7, 9)
    rgba = random_photo(rng, 7, 9, channels=4)
    cases = [
        (rgb, rgb / 255),
        (rgb[..., 0], np.repeat(rgb[..., :1] / 255, 3, axis=2)),
        (rgb[..., :1], np.repeat(rgb[..., :1] / 255, 3, axis=2)),
        (rgb.astype(np.uint16) * 257, rgb / 255),
        (rgb.astype(np.uint16).astype(">u2") * 257, rgb / 255),
        (rgb / 255, rgb / 255),
        ((rgb / 255).astype(np.float16), (rgb / 255).astype(np.float16)),
        (rgb[:, ::-1], rgb[:, ::-1] / 255),
        (rgba, composite_over_white(rgba / 255)),
    ]
    for array, expected in cases:
        assert_image(load_image(array), as_chw(expected), atol=1e-6)
    read_only = rgb.copy()
    read_only.flags.writeable = False
    assert_image(load_image(read_only), as_chw(rgb / 255))


def test_tensor_layouts_and_dtypes(rng):
    rgb = torch.from_numpy(random_photo(rng, 6, 11)).permute(2, 0, 1)  # (3, H, W) uint8
    unit = rgb / 255
    cases = [
        (rgb, unit),
        (unit, unit),
        (unit.double(), unit),
        (unit.half(), unit.half().float()),
        (unit.bfloat16(), unit.bfloat16().float()),
        (rgb[:1], unit[:1].expand(3, -1, -1)),
        (rgb[0], unit[:1].expand(3, -1, -1)),
        (unit.transpose(1, 2).contiguous().transpose(1, 2), unit),
    ]
    for tensor, expected in cases:
        assert_image(load_image(tensor), expected)


def test_batches_and_lists_keep_order_and_sizes(rng):
    batch = torch.rand(4, 3, 5, 6)
    loaded = load_images(batch)
    assert not loaded.single and len(loaded.images) == 4
    for image, expected in zip(loaded.images, batch, strict=True):
        assert_image(image, expected)
    nhwc = random_photo(rng, 5, 6)[None].repeat(2, axis=0)
    assert [tuple(image.shape) for image in load_images(nhwc).images] == [(3, 5, 6)] * 2
    mixed = [Image.fromarray(random_photo(rng, 8, 9)), torch.rand(3, 4, 5), random_photo(rng, 3, 2)]
    assert [tuple(image.shape) for image in load_images(mixed).images] == [(3, 8, 9), (3, 4, 5), (3, 3, 2)]
    assert load_images(torch.rand(3, 4, 5)).single
    assert not load_images((torch.rand(3, 4, 5),)).single


def test_float_overshoot_within_slack_is_clipped():
    image = torch.tensor([[-FLOAT_SLACK / 2, 0.5], [1.0, 1 + FLOAT_SLACK / 2]])
    assert_image(load_image(image), torch.tensor([[0.0, 0.5], [1.0, 1.0]]).expand(3, -1, -1))


def test_input_is_never_modified():
    image = torch.tensor([[1.02, 0.5]])
    load_image(image)
    assert image[0, 0] == pytest.approx(1.02)


# ----------------------------------------------------------------------------------------- properties

DTYPES = {"uint8": 255, "uint16": 65535, "float32": None, "float64": None}


def encode(values: np.ndarray, dtype: str, layout: str):
    """Put HxWxC values in [0, 1] into a container; returns (input, quantised values)."""
    scale = DTYPES[dtype]
    stored = np.round(values * scale).astype(dtype) if scale else values.astype(dtype)
    quantised = stored / scale if scale else stored.astype(np.float64)
    if layout == "numpy":
        return (stored[..., 0] if stored.shape[2] == 1 else stored), quantised
    tensor = torch.from_numpy(stored.astype(np.int32) if dtype == "uint16" else stored).permute(2, 0, 1)
    if dtype == "uint16":
        tensor = tensor.to(torch.uint16)
    return (tensor[None] if layout == "torch_batch" else tensor), quantised


@settings(max_examples=60, deadline=None, database=None)
@given(
    height=st.integers(1, 20), width=st.integers(1, 20), channels=st.sampled_from([1, 3, 4]),
    dtype=st.sampled_from(sorted(DTYPES)), layout=st.sampled_from(["numpy", "torch", "torch_batch"]),
    seed=st.integers(0, 2**16),
)
def test_property_every_kind_gives_the_reference_rgb(height, width, channels, dtype, layout, seed):
    values = np.random.default_rng(seed).random((height, width, channels))
    image, quantised = encode(values, dtype, layout)
    rgb = composite_over_white(quantised) if channels == 4 else np.broadcast_to(quantised, (height, width, 3))
    loaded = load_images(image)
    assert len(loaded.images) == 1 and loaded.single == (layout != "torch_batch")
    assert_image(loaded.images[0], as_chw(rgb), atol=2e-7 if dtype != "float64" else 1e-6)


def bad_input(kind: str, height: int, width: int, draw_float: float):
    """One bad input of a kind, with the exception type and message fragment it must raise."""
    good = np.full((height, width, 3), 0.5, dtype=np.float32)
    if kind == "zero_size":
        return np.zeros((0, width, 3), np.uint8), ValueError, "empty"
    if kind == "nan":
        good[height // 2, width // 2, 1] = np.nan
        return torch.from_numpy(good).permute(2, 0, 1), ValueError, "NaN"
    if kind == "inf":
        good[0, width - 1, 0] = -np.inf if draw_float < 0 else np.inf
        return good, ValueError, "infinite"
    if kind == "out_of_range":
        beyond = FLOAT_SLACK + 1e-3 + abs(draw_float)
        good[0, 0, 0] = 1 + beyond if draw_float >= 0 else -beyond
        return good, ValueError, r"not \[0, 1\]"
    if kind == "channels":
        return torch.zeros(2 if draw_float < 0 else 5, height, width), ValueError, "channels"
    if kind == "too_many_dims":
        return torch.zeros(1, 1, 3, height, width), ValueError, "dims"
    if kind == "too_few_dims":
        return np.zeros(width, np.uint8), ValueError, "dims"
    if kind == "int_dtype":
        return np.zeros((height, width), np.int64), TypeError, "dtype"
    if kind == "bool_dtype":
        return torch.zeros(3, height, width, dtype=torch.bool), TypeError, "dtype"
    if kind == "channels_first_numpy":
        return np.zeros((3, height + 4, width + 4), np.uint8), ValueError, "channels-first"
    if kind == "unsupported_type":
        return {"pixels": good}, TypeError, "unsupported image type"
    if kind == "empty_list":
        return [], ValueError, "empty list"
    if kind == "nested_list":
        return [good, [good]], TypeError, "nested"
    raise AssertionError(kind)


BAD_KINDS = [
    "zero_size", "nan", "inf", "out_of_range", "channels", "too_many_dims", "too_few_dims", "int_dtype",
    "bool_dtype", "channels_first_numpy", "unsupported_type", "empty_list", "nested_list",
]


@settings(max_examples=60, deadline=None, database=None)
@given(
    kind=st.sampled_from(BAD_KINDS), height=st.integers(1, 12), width=st.integers(1, 12),
    draw_float=st.floats(-100, 100), in_list=st.booleans(),
)
def test_property_bad_inputs_raise_clear_errors(kind, height, width, draw_float, in_list):
    image, error, fragment = bad_input(kind, height, width, draw_float)
    if in_list and kind not in ("empty_list", "nested_list", "too_many_dims"):
        image, fragment = [np.zeros((4, 4), np.uint8), image], "image 1 of the list: .*" + fragment
    with pytest.raises(error, match=fragment):
        load_images(image)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="directory"):
        load_image(tmp_path)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="could not read image file .*notes.png"):
        load_image(text)
    truncated = tmp_path / "truncated.png"
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8) + 7).save(buffer, format="PNG")
    truncated.write_bytes(buffer.getvalue()[:60])
    with pytest.raises(ValueError, match="could not read image file"):
        load_image(truncated)
    with pytest.raises(ValueError, match="URL"):
        load_image("https://example.com/cat.jpg")
    with pytest.raises(ValueError, match="empty"):
        load_image(Image.new("RGB", (0, 5)))


# ----------------------------------------------------------------------------------------- resizing


def test_target_size():
    assert target_size(480, 640) == (480, 640)
    assert target_size(480, 640, short_side=240) == (240, 320)
    assert target_size(641, 480, short_side=100) == (134, 100)
    assert target_size(10, 3000, short_side=1) == (1, 300)
    assert target_size(480, 640, size=(32, 48)) == (32, 48)
    with pytest.raises(ValueError, match="not both"):
        target_size(4, 4, size=(2, 2), short_side=2)
    with pytest.raises(TypeError, match=r"\(height, width\) pair"):
        target_size(4, 4, size=224)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            target_size(4, 4, short_side=bad)


@pytest.mark.parametrize("size", [(23, 17), (100, 81), (64, 31)])
def test_resize_matches_pil_bilinear(rng, size):
    grey = rng.random((64, 50)).astype(np.float32)
    expected = np.asarray(Image.fromarray(grey, "F").resize((size[1], size[0]), Image.BILINEAR))
    resized = resize(torch.from_numpy(grey).expand(3, -1, -1), size)
    assert resized.shape == (3, *size)
    torch.testing.assert_close(resized, torch.from_numpy(expected.copy()).expand(3, -1, -1), rtol=0, atol=1e-5)
