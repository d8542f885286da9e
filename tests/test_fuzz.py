"""Property-based fuzzing of the readers of untrusted files: images, safetensors headers, checkpoints, manifests.

The property: any input gives a result or one of the package's documented errors (ValueError, TypeError,
OSError and their subclasses, including every ``vader_hub.weights.WeightsError``), never another
exception. Each default test runs a few seconds; the ``slow`` variants run many more examples:

    python -m pytest tests/test_fuzz.py              # bounded
    python -m pytest tests/test_fuzz.py -m slow      # long
"""
import io
import json
import struct
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save

from vader_hub.convert.files import read_checkpoint
from vader_hub.features.inputs import load_image
from vader_hub.weights import ManifestError, WeightsError
from vader_hub.weights.manifest import read_manifest_file
from vader_hub.weights.verify import read_metadata, read_tensor_shapes, recorded_architecture, starts_like_safetensors

DOCUMENTED_ERRORS = (ValueError, TypeError, OSError, WeightsError)
FAST_EXAMPLES, SLOW_EXAMPLES = 300, 5000
FUZZ_PIXELS = 1 << 20  # a decode limit small enough that no example costs more than a few megabytes
# PIL warns about the damaged TIFF tags it skips; the examples are damaged on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")


def fuzz_tests(strategy: st.SearchStrategy, check: Callable[[object], None], fast: int = FAST_EXAMPLES):
    """A default test of ``check`` on ``strategy`` (``fast`` examples) and a slow-marked one (many more)."""
    def make(examples: int):
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(strategy)
        def test(value):
            check(value)
        return test
    return make(fast), pytest.mark.slow(make(SLOW_EXAMPLES))


def result_or_documented_error(read: Callable[[], object]) -> object:
    """``read()``'s result, or None if it raised a documented error; any other exception fails the test."""
    try:
        return read()
    except DOCUMENTED_ERRORS:
        return None


def mutated(seeds: list[bytes]) -> st.SearchStrategy:
    """Real files with bytes overwritten, inserted or cut off, as a damaged download or disk would leave them."""
    @st.composite
    def mutate(draw) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(data)))
            action = draw(st.sampled_from(("overwrite", "insert", "cut")))
            if action == "overwrite" and position < len(data):
                data[position] = draw(st.integers(0, 255))
            elif action == "insert":
                data[position:position] = draw(st.binary(min_size=1, max_size=8))
            else:
                del data[position:]
        return bytes(data)
    return mutate()


_FILES = {}


def written(data: bytes, name: str) -> Path:
    """``data`` in a file of this name in a folder of the test session (overwritten for each example)."""
    path = _FILES["folder"] / name
    path.write_bytes(data)
    return path


@pytest.fixture(autouse=True, scope="module")
def scratch_folder(tmp_path_factory):
    _FILES["folder"] = tmp_path_factory.mktemp("fuzz")


# --- images


def image_bytes(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def image_seeds() -> list[bytes]:
    """Small real images in the formats and modes photos come in (orientation, palette, alpha, 16-bit)."""
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    return [image_bytes(rgb, "PNG"), image_bytes(rgb, "JPEG", quality=80), image_bytes(rgb, "JPEG", exif=exif),
            image_bytes(rgb.convert("P"), "PNG", transparency=0), image_bytes(rgb.convert("RGBA"), "PNG"),
            image_bytes(rgb.convert("I;16"), "PNG"), image_bytes(rgb.convert("L"), "GIF"),
            image_bytes(rgb, "BMP"), image_bytes(rgb.convert("CMYK"), "TIFF"), image_bytes(rgb, "WEBP")]


def check_image(data: bytes) -> None:
    image = result_or_documented_error(lambda: load_image(written(data, "image"), max_pixels=FUZZ_PIXELS))
    if image is not None:
        assert image.dtype == torch.float32 and image.ndim == 3 and image.shape[0] == 3
        assert 0 < image.shape[1] * image.shape[2] <= FUZZ_PIXELS
        assert torch.isfinite(image).all() and image.min() >= 0 and image.max() <= 1


test_image_decoder_on_arbitrary_bytes, test_image_decoder_on_arbitrary_bytes_long = fuzz_tests(
    st.binary(max_size=2048), check_image)
test_image_decoder_on_damaged_images, test_image_decoder_on_damaged_images_long = fuzz_tests(
    mutated(image_seeds()), check_image)


# --- safetensors headers and checkpoint files


def safetensors_seeds() -> list[bytes]:
    tensors = {"trunk.conv1.weight": torch.zeros(2, 3), "decoder.bias": torch.arange(4, dtype=torch.float16)}
    return [save(tensors, metadata={"architecture": "vader_r18_fpn", "format": "vader-hub"}),
            save(tensors), save({"x": torch.ones(1, dtype=torch.int64)}, metadata={"architecture": "resnet50"})]


def header_file(header: object, tail: bytes) -> bytes:
    """A safetensors-like file around any JSON value as its header."""
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + tail


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(("__metadata__", "architecture", "format", "dtype", "shape", "data_offsets", "x"))
        | st.text(max_size=6), children, max_size=4),
    max_leaves=12)
SAFETENSORS_INPUTS = (st.binary(max_size=512) | mutated(safetensors_seeds())
                      | st.builds(header_file, JSON_VALUES, st.binary(max_size=64)))


def check_safetensors(data: bytes) -> None:
    assert isinstance(starts_like_safetensors(data[:9]), bool)
    metadata = result_or_documented_error(lambda: read_metadata(data, "fuzz"))
    assert metadata is None or isinstance(metadata, dict)
    shapes = result_or_documented_error(lambda: read_tensor_shapes(data, "fuzz"))
    assert shapes is None or all(isinstance(shape, tuple) for shape in shapes.values())
    path = written(data, "weights.safetensors")
    architecture = result_or_documented_error(lambda: recorded_architecture(path))
    assert architecture is None or architecture.startswith("vader_")
    checkpoint = result_or_documented_error(lambda: read_checkpoint(path))
    assert checkpoint is None or checkpoint.file_format in ("safetensors", "torch")


def torch_seeds() -> list[bytes]:
    buffers = []
    for legacy in (False, True):
        buffer = io.BytesIO()
        torch.save({"state_dict": {"conv1.weight": torch.ones(2, 2)}, "epoch": 3, "names": ["a", "b"]}, buffer,
                   _use_new_zipfile_serialization=not legacy)
        buffers.append(buffer.getvalue())
    return buffers


def check_torch_file(data: bytes) -> None:
    checkpoint = result_or_documented_error(lambda: read_checkpoint(written(data, "checkpoint.pth")))
    assert checkpoint is None or isinstance(checkpoint.content, dict)


test_safetensors_header_readers, test_safetensors_header_readers_long = fuzz_tests(
    SAFETENSORS_INPUTS, check_safetensors)
test_checkpoint_reader_on_damaged_torch_files, test_checkpoint_reader_on_damaged_torch_files_long = fuzz_tests(
    mutated(torch_seeds()), check_torch_file, fast=150)


# --- manifests

VALID_ENTRY = {"architecture": "vader_r18_fpn", "tag": "t1", "filename": "vader_r18_fpn.t1.safetensors",
               "sha256": "0" * 64, "size": 10,
               "sources": [{"type": "file", "path": "w.safetensors"}, {"type": "url", "url": "https://a.example/w"},
                           {"type": "hf", "repo_id": "org/name", "revision": "a" * 40, "filename": "w"}],
               "provenance": {"config": {}, "data": "photos", "steps": 1, "code_version": "0.1"},
               "license": "mit", "metrics": {}}


@st.composite
def manifests(draw) -> str:
    """Manifest text: a valid one with a field replaced, removed or its text damaged, or any JSON at all."""
    entry = json.loads(json.dumps(VALID_ENTRY))
    kind = draw(st.sampled_from(("entry field", "source field", "anything", "text")))
    if kind == "entry field":
        key = draw(st.sampled_from(sorted(VALID_ENTRY) + ["description", "extra"]))
        if draw(st.booleans()):
            entry.pop(key, None)
        else:
            entry[key] = draw(JSON_VALUES)
    elif kind == "source field":
        source = draw(st.sampled_from(entry["sources"]))
        source[draw(st.sampled_from(("type", "path", "url", "repo_id", "revision", "endpoint")))] = draw(
            JSON_VALUES | st.text(alphabet="~/.:@ab%", max_size=12))
    manifest = {"schema_version": 1, "entries": [entry, draw(JSON_VALUES)][:draw(st.integers(1, 2))]}
    if kind == "anything":
        return json.dumps(draw(JSON_VALUES | st.just(manifest)))
    text = json.dumps(manifest)
    if kind == "text":
        return draw(mutated([text.encode()])).decode("utf-8", errors="replace")
    return text


def check_manifest(text: str) -> None:
    path = written(text.encode("utf-8", errors="surrogatepass"), "manifest.json")
    entries = result_or_documented_error(lambda: read_manifest_file(path))
    assert entries is None or isinstance(entries, list)


test_manifest_parser, test_manifest_parser_long = fuzz_tests(manifests(), check_manifest)


# --- inputs the fuzzers found, checked on every run

@pytest.mark.parametrize("source, message", [
    ({"type": "file", "path": "~:"}, "names no home folder"),
    ({"type": {"hf": 1}, "path": "x"}, "field 'type' must be one of"),
])
def test_manifest_sources_the_fuzzer_found_are_manifest_errors(source, message):
    text = json.dumps({"schema_version": 1, "entries": [{**VALID_ENTRY, "sources": [source]}]})
    with pytest.raises(ManifestError, match=message):
        read_manifest_file(written(text.encode(), "manifest.json"))


def test_a_manifest_that_is_not_utf8_is_a_manifest_error():
    with pytest.raises(ManifestError, match="not valid JSON in UTF-8"):
        read_manifest_file(written(b'{"schema_version": 1, "entries": []}\xff', "manifest.json"))
