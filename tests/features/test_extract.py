"""extract_dense_features: shapes, every input kind against the float-tensor path, the network itself,
the cell convention of upsampled features, batching, model handling and clear errors; dense_transform
against timm's classification transform and the feature API's own network input."""
import copy
import math
import pickle

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from vader_hub.features import extract
from vader_hub.features.extract import dense_transform, extract_dense_features
from vader_hub.models import default_model_name

from .conftest import random_photo


def unit_float(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255  # (3, H, W)


def network_reference(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """Reference: the bare network on a mean/std-normalised (3, H, W) image, L2-normalised by hand."""
    mean = torch.tensor(model.pretrained_cfg["mean"]).view(3, 1, 1)
    std = torch.tensor(model.pretrained_cfg["std"]).view(3, 1, 1)
    with torch.no_grad():
        raw = model.forward_features(((image - mean) / std)[None])[0]  # (C, h, w)
    return raw / raw.norm(dim=0, keepdim=True)


def test_single_image_equals_the_bare_network(r18, rng):
    image = unit_float(random_photo(rng, 45, 38))
    features = extract_dense_features(image, r18)
    assert features.shape == (128, 12, 10) and features.dtype == torch.float32
    torch.testing.assert_close(features, network_reference(r18, image), rtol=0, atol=1e-5)
    torch.testing.assert_close(features.norm(dim=0), torch.ones(12, 10))
    raw = extract_dense_features(image, r18, normalize=False)
    torch.testing.assert_close(raw / raw.norm(dim=0), features, rtol=0, atol=1e-5)
    assert not torch.allclose(raw.norm(dim=0), torch.ones(12, 10))


def test_every_input_kind_equals_the_float_tensor_path(r18, rng, tmp_path):
    array = random_photo(rng, 37, 50)
    expected = extract_dense_features(unit_float(array), r18)
    path = tmp_path / "photo.png"
    Image.fromarray(array).save(path)
    kinds = {
        "PIL": Image.fromarray(array),
        "path": path,
        "str path": str(path),
        "numpy uint8": array,
        "numpy float": array / 255,
        "torch uint8": torch.from_numpy(array).permute(2, 0, 1),
        "numpy uint16": array.astype(np.uint16) * 257,
    }
    for kind, image in kinds.items():
        torch.testing.assert_close(extract_dense_features(image, r18), expected, rtol=0, atol=1e-6, msg=kind)
    batch = extract_dense_features(torch.from_numpy(array).permute(2, 0, 1)[None].repeat(2, 1, 1, 1), r18)
    assert batch.shape == (2, 128, 10, 13)
    torch.testing.assert_close(batch[1], expected, rtol=0, atol=1e-5)


def test_lists_batch_same_sizes_and_keep_mixed_sizes_apart(r18, rng):
    images = [unit_float(random_photo(rng, *size)) for size in [(40, 33), (64, 48), (40, 33), (35, 36)]]
    singles = [extract_dense_features(image, r18) for image in images]
    mixed = extract_dense_features(images, r18, batch_size=2)
    assert isinstance(mixed, list) and [tuple(m.shape) for m in mixed] == [tuple(s.shape) for s in singles]
    for got, want in zip(mixed, singles, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    same = extract_dense_features([images[0], images[2], images[0]], r18, batch_size=2)  # two batches
    assert same.shape == (3, 128, 10, 9)
    torch.testing.assert_close(same[1], singles[2], rtol=0, atol=1e-5)


def test_upsampled_features_follow_the_cell_convention(r18, rng):
    image = unit_float(random_photo(rng, 42, 35))
    cells = extract_dense_features(image, r18, normalize=False)  # (C, 11, 9)
    pixels = extract_dense_features(image, r18, upsample=True, normalize=False)
    assert pixels.shape == (128, 42, 35)
    torch.testing.assert_close(pixels[:, ::4, ::4], cells, rtol=0, atol=1e-5)  # pixel (4i, 4j) is cell (i, j)
    for y, x in [(0, 0), (5, 7), (41, 34), (22, 33), (40, 2)]:
        expected = bilinear_at(cells, y / 4, x / 4)
        torch.testing.assert_close(pixels[:, y, x], expected, rtol=0, atol=1e-5)
    normalised = extract_dense_features(image, r18, upsample=True)
    torch.testing.assert_close(normalised, F.normalize(pixels, dim=0), rtol=0, atol=1e-5)


def bilinear_at(cells: torch.Tensor, row: float, column: float) -> torch.Tensor:
    """Reference bilinear sample of a (C, h, w) map at fractional cell (row, column), edges repeated."""
    height, width = cells.shape[1:]
    row, column = min(row, height - 1), min(column, width - 1)
    top, left = math.floor(row), math.floor(column)
    bottom, right = min(top + 1, height - 1), min(left + 1, width - 1)
    dy, dx = row - top, column - left
    upper = (1 - dx) * cells[:, top, left] + dx * cells[:, top, right]
    lower = (1 - dx) * cells[:, bottom, left] + dx * cells[:, bottom, right]
    return (1 - dy) * upper + dy * lower


def test_resizing_options(r18, rng):
    image = unit_float(random_photo(rng, 60, 90))
    assert extract_dense_features(image, r18, short_side=40).shape == (128, 10, 15)
    assert extract_dense_features(image, r18, size=(33, 47)).shape == (128, 9, 12)
    assert extract_dense_features(image, r18, size=(33, 47), upsample=True).shape == (128, 33, 47)
    pil_resized = np.stack([  # reference resize: PIL's antialiased bilinear filter, channel by channel
        np.asarray(Image.fromarray(channel.numpy(), "F").resize((47, 33), Image.BILINEAR)) for channel in image
    ])
    torch.testing.assert_close(
        extract_dense_features(image, r18, size=(33, 47)),
        extract_dense_features(torch.from_numpy(pil_resized), r18), rtol=0, atol=1e-4,
    )
    with pytest.raises(ValueError, match="not both"):
        extract_dense_features(image, r18, size=(40, 40), short_side=40)


def test_images_below_the_network_minimum_are_edge_padded(r18, rng):
    small = random_photo(rng, 13, 6)
    features = extract_dense_features(small, r18)
    assert features.shape == (128, 4, 2)
    padded = np.pad(small, ((0, 32 - 13), (0, 32 - 6), (0, 0)), mode="edge")
    torch.testing.assert_close(features, extract_dense_features(padded, r18)[:, :4, :2], rtol=0, atol=1e-5)
    assert extract_dense_features(np.zeros((1, 1), np.uint8), r18, upsample=True).shape == (128, 1, 1)


@settings(max_examples=12, deadline=None, database=None)
@given(
    height=st.integers(1, 70), width=st.integers(1, 70), kind=st.sampled_from(["pil", "numpy", "torch", "float"]),
    seed=st.integers(0, 2**16),
)
def test_property_shapes_and_float_path(r18, height, width, kind, seed):
    array = random_photo(np.random.default_rng(seed), height, width)
    image = {
        "pil": Image.fromarray(array), "numpy": array, "torch": torch.from_numpy(array).permute(2, 0, 1),
        "float": array.astype(np.float64) / 255,
    }[kind]
    features = extract_dense_features(image, r18)
    assert features.shape == (128, math.ceil(height / 4), math.ceil(width / 4))
    torch.testing.assert_close(features, extract_dense_features(unit_float(array), r18), rtol=0, atol=1e-6)


def test_bad_inputs_fail_before_the_network(r18):
    cases = [
        (torch.zeros(5, 40, 40), ValueError, "channels"),
        (torch.full((3, 40, 40), float("nan")), ValueError, "NaN"),
        (torch.zeros(1, 2, 3, 40, 40), ValueError, "dims"),
        (np.zeros((40, 0, 3), np.uint8), ValueError, "empty"),
        (torch.full((3, 40, 40), 255.0), ValueError, r"divide 0..255 images by 255"),
        ("not/here.jpg", FileNotFoundError, "not found"),
        (b"\x89PNG", TypeError, "unsupported image type"),
    ]
    for image, error, fragment in cases:
        with pytest.raises(error, match=fragment):
            extract_dense_features(image, r18)


def test_pixel_limit_and_options(r18):
    image = torch.rand(3, 40, 50)
    with pytest.raises(ValueError, match="max_pixels=1999"):
        extract_dense_features(image, r18, max_pixels=1999)
    assert extract_dense_features(image, r18, max_pixels=2000).shape == (128, 10, 13)
    assert extract_dense_features(image, r18, short_side=20, max_pixels=500).shape == (128, 5, 7)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="batch_size"):
            extract_dense_features(image, r18, batch_size=bad)


def test_train_mode_model_is_run_in_eval_mode_and_restored(r18):
    image = torch.rand(3, 36, 36)
    expected = extract_dense_features(image, r18)
    r18.train()
    r18.trunk.bn1.eval()  # a user's own mixed setting must survive the call
    try:
        torch.testing.assert_close(extract_dense_features(image, r18), expected, rtol=0, atol=1e-6)
        assert r18.training and r18.decoder.training and not r18.trunk.bn1.training
    finally:
        r18.eval()


def test_results_are_ordinary_tensors_that_feed_a_probe(r18):
    for normalize in (True, False):
        features = extract_dense_features(torch.rand(2, 3, 32, 32), r18, normalize=normalize)
        assert not features.is_inference() and not features.requires_grad
        probe = nn.Conv2d(128, 3, 1)
        probe(features).sum().backward()
        assert probe.weight.grad is not None and probe.weight.grad.abs().sum() > 0


def test_autocast_gives_close_float32_features(r18):
    image = torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(0))
    exact = extract_dense_features(image, r18)
    approximate = extract_dense_features(image, r18, autocast=True)
    assert approximate.dtype == torch.float32
    assert (exact * approximate).sum(dim=0).mean() > 0.98  # mean cosine similarity of bf16 vs fp32


def test_model_arguments(r18):
    image = torch.rand(3, 32, 32)
    with pytest.raises(TypeError, match="nn.Module"):
        extract_dense_features(image, 3)
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        extract_dense_features(image, "resnet50")
    with pytest.raises(ValueError, match="unknown pretrained tag"):
        extract_dense_features(image, "vader_r18_fpn.no_such_tag")
    with pytest.raises(ValueError, match="unknown device"):
        extract_dense_features(image, r18, device="warp-drive")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            extract_dense_features(image, r18, device="cuda")
    with pytest.raises(ValueError, match="not a .* stride-4 map"):
        extract_dense_features(image, nn.Conv2d(3, 8, 3, stride=2, padding=1))


def test_named_models_are_pretrained_and_built_once(monkeypatch, r18):
    built = []

    def create_model(name, pretrained=False, **kwargs):
        built.append((name, pretrained))
        return timm.models.create_model(name.split(".")[0], pretrained=False, **kwargs)

    monkeypatch.setattr(extract.timm, "create_model", create_model)
    extract._named_model.cache_clear()
    try:
        first = extract_dense_features(torch.rand(3, 32, 32), "vader_r18_fpn")
        second = extract_dense_features(torch.rand(3, 40, 32), "vader_r18_fpn")
    finally:
        extract._named_model.cache_clear()
    assert built == [("vader_r18_fpn", True)]
    assert first.shape == (128, 8, 8) and second.shape == (128, 10, 8)


@pytest.mark.skipif(bool(timm.list_pretrained("vader_r50_fpn*")), reason="weights for vader_r50_fpn are published")
def test_the_default_model_is_the_best_one_with_weights_and_a_model_without_fails_clearly():
    image = torch.rand(3, 32, 40, generator=torch.Generator().manual_seed(0))
    reference = timm.create_model(default_model_name(), pretrained=True).eval()
    torch.testing.assert_close(extract_dense_features(image), extract_dense_features(image, reference))
    if not timm.list_pretrained("vader_r50_fpn*"):
        with pytest.raises(FileNotFoundError, match="no pretrained weights for vader_r50_fpn"):
            extract_dense_features(image, "vader_r50_fpn")


@pytest.mark.gpu
def test_cuda_features_match_cpu(r18):
    image = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(0))
    expected = extract_dense_features(image, r18)
    model = copy.deepcopy(r18).cuda()
    on_gpu = extract_dense_features(image, model)
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
    torch.testing.assert_close(on_gpu.cpu(), expected, rtol=0, atol=1e-3)
    approximate = extract_dense_features(image.cuda(), model, autocast=True, upsample=True)
    assert approximate.shape == (2, 128, 64, 48) and approximate.dtype == torch.float32
    assert (approximate[:, :, ::4, ::4].cpu() * expected).sum(dim=1).mean() > 0.98


def network_input(model: nn.Module, img, **options) -> torch.Tensor:
    """The (B, 3, H, W) batch that extract_dense_features feeds the network, caught at its first layer."""
    seen = []
    handle = model.trunk.conv1.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    try:
        extract_dense_features(img, model, **options)
    finally:
        handle.remove()
    return seen[0]


def test_dense_transform_keeps_every_pixel_where_timms_classification_transform_crops(r18, rng):
    photo = Image.fromarray(random_photo(rng, 224, 336))
    classification = timm.data.create_transform(**timm.data.resolve_data_config(model=r18))
    cropped, dense = classification(photo), dense_transform(r18)(photo)
    assert cropped.shape == (3, 224, 224) and dense.shape == (3, 224, 336)
    # timm normalises the same way but keeps only the centre: 56 columns are lost on either side.
    torch.testing.assert_close(cropped, dense[:, :, 56:280], rtol=0, atol=1e-5)
    assert dense_transform(r18, short_side=112)(photo).shape == (3, 112, 168)


@pytest.mark.parametrize("options, shape", [({}, (60, 90)), ({"short_side": 40}, (40, 60)),
                                            ({"size": (33, 47)}, (33, 47))])
def test_dense_transform_gives_the_network_input_of_extract_dense_features(r18, rng, tmp_path, options, shape):
    array = random_photo(rng, 60, 90)
    path = tmp_path / "photo.png"
    Image.fromarray(array).save(path)
    transform = dense_transform(r18, **options)
    fed = network_input(r18, path, **options)
    assert fed.shape == (1, 3, *shape)
    for image in (path, Image.fromarray(array), torch.from_numpy(array).permute(2, 0, 1)):
        torch.testing.assert_close(transform(image), fed[0], rtol=0, atol=1e-6)
    resized = np.stack([  # reference: PIL's antialiased bilinear filter, then (x - mean) / std by hand
        np.asarray(Image.fromarray(channel, "F").resize(shape[::-1], Image.BILINEAR))
        for channel in array.transpose(2, 0, 1).astype(np.float32) / 255
    ])
    mean = np.array(r18.pretrained_cfg["mean"], np.float32).reshape(3, 1, 1)
    std = np.array(r18.pretrained_cfg["std"], np.float32).reshape(3, 1, 1)
    torch.testing.assert_close(transform(path), torch.from_numpy((resized - mean) / std), rtol=0, atol=5e-4)


def test_dense_transform_and_the_feature_api_use_the_models_own_mean_and_std(rng):
    mean, std = (0.5, 0.25, 0.75), (0.5, 0.125, 0.25)
    model = timm.create_model("vader_r18_fpn", pretrained_cfg_overlay=dict(mean=mean, std=std)).eval()
    image = unit_float(random_photo(rng, 36, 44))
    expected = (image - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    torch.testing.assert_close(dense_transform(model)(image), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(dense_transform(dict(mean=mean, std=std))(image), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(network_input(model, image)[0], expected, rtol=0, atol=1e-6)
    imagenet_mean, imagenet_std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    imagenet = (image - imagenet_mean.view(3, 1, 1)) / imagenet_std.view(3, 1, 1)
    torch.testing.assert_close(dense_transform(nn.Identity())(image), imagenet, rtol=0, atol=1e-6)


def test_dense_transform_refuses_bad_arguments_when_made_and_survives_pickling(r18):
    with pytest.raises(TypeError, match="pretrained_cfg"):
        dense_transform("vader_r18_fpn")
    with pytest.raises(ValueError, match="not both"):
        dense_transform(r18, size=(8, 8), short_side=8)
    with pytest.raises(TypeError, match=r"\(height, width\) pair"):
        dense_transform(r18, size=224)
    with pytest.raises(ValueError, match="positive integer"):
        dense_transform(r18, short_side=0)
    transform = dense_transform(r18, short_side=32)  # DataLoader workers receive it pickled
    image = torch.rand(3, 40, 50)
    torch.testing.assert_close(pickle.loads(pickle.dumps(transform))(image), transform(image), rtol=0, atol=0)
