"""``vader-hub extract`` and ``vader-hub match`` end to end, with a weights file exported from a random model."""
import argparse
import json

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors import safe_open

from vader_hub.cli import features as cli
from vader_hub.features.extract import extract_dense_features
from vader_hub.models import default_model_name
from vader_hub.weights import export_weights

from .conftest import random_photo


def run(argv) -> int:
    parser = argparse.ArgumentParser(prog="vader-hub")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(arg) for arg in argv])
    return args.func(args)


@pytest.fixture(scope="module")
def weights_file(r18, tmp_path_factory):
    return export_weights(r18.state_dict(), "vader_r18_fpn", tmp_path_factory.mktemp("export")).weights


@pytest.fixture
def photos(tmp_path, rng):
    paths = [tmp_path / "wide.png", tmp_path / "tall.jpg"]
    Image.fromarray(random_photo(rng, 40, 70)).save(paths[0])
    Image.fromarray(random_photo(rng, 66, 36)).save(paths[1], quality=95)
    return paths


def read_features(path):
    with safe_open(str(path), framework="pt") as handle:
        return handle.get_tensor("features"), handle.metadata()


def test_extract_writes_features_metadata_and_pca(r18, weights_file, photos, tmp_path):
    out = tmp_path / "feats"
    assert run(["extract", *photos, "--weights", weights_file, "--out", out]) == 0
    for path, size in zip(photos, [(40, 70), (66, 36)], strict=True):
        features, metadata = read_features(out / f"{path.stem}.safetensors")
        expected = extract_dense_features(path, r18)
        torch.testing.assert_close(features, expected, rtol=0, atol=1e-5)
        assert metadata["model"] == "vader_r18_fpn" and metadata["stride"] == "4"
        assert metadata["weights"] == weights_file.name and metadata["source"] == path.name
        assert json.loads(metadata["input_size"]) == list(size) == json.loads(metadata["image_size"])
        with Image.open(out / f"{path.stem}_pca.png") as picture:
            assert picture.size == (size[1], size[0]) and picture.mode == "RGB"
    assert not list(out.glob("*.tmp"))


def test_extract_resizes_and_skips_unreadable_images(r18, weights_file, photos, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "feats"
    code = run(["extract", photos[0], broken, "--weights", weights_file, "--short-side", "20", "--out", out])
    assert code == 1
    assert "skipped" in capsys.readouterr().err and not (out / "broken.safetensors").exists()
    features, metadata = read_features(out / "wide.safetensors")
    assert json.loads(metadata["input_size"]) == [20, 35] and json.loads(metadata["image_size"]) == [40, 70]
    assert features.shape == (128, 5, 9)
    torch.testing.assert_close(features, extract_dense_features(photos[0], r18, short_side=20), rtol=0, atol=1e-5)


def test_extract_refuses_bad_requests_before_working(weights_file, photos, tmp_path, capsys):
    out = tmp_path / "feats"
    clash = tmp_path / "other"
    clash.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(clash / "wide.png")
    assert run(["extract", photos[0], clash / "wide.png", "--weights", weights_file, "--out", out]) == 2
    assert "share the file stem" in capsys.readouterr().err
    source_pca = tmp_path / "wide_pca.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(source_pca)
    assert run(["extract", photos[0], source_pca, "--weights", weights_file, "--out", tmp_path]) == 2
    assert "would overwrite input images" in capsys.readouterr().err
    with Image.open(source_pca) as untouched:
        assert untouched.size == (40, 40) and np.asarray(untouched).max() == 0
    assert run(["extract", photos[0], "--model", "resnet50", "--out", out]) == 2
    assert "unknown model 'resnet50'" in capsys.readouterr().err
    if not timm.list_pretrained("vader_r50_fpn*"):  # no weights are published for the paper's network yet
        assert run(["extract", photos[0], "--model", "vader_r50_fpn", "--out", out]) == 2
        error = capsys.readouterr().err
        assert "no pretrained weights for vader_r50_fpn" in error
        assert "--weights FILE" in error and "--model NAME[.TAG]" in error
    not_weights = tmp_path / "notes.safetensors"
    not_weights.write_text("hello")
    assert run(["extract", photos[0], "--weights", not_weights, "--out", out]) == 2
    assert "not a safetensors file" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit):
        run(["extract", photos[0], "--short-side", "0", "--out", out])


def test_match_draws_the_correspondence_picture(weights_file, photos, tmp_path, capsys):
    out = tmp_path / "pictures" / "match.png"
    assert run(["match", *photos, "--weights", weights_file, "--out", out, "--max-lines", "5"]) == 0
    assert "mutual matches" in capsys.readouterr().out
    with Image.open(out) as picture:
        assert picture.size == (70 + 36, 66)
        drawn = np.asarray(picture)
    left = np.asarray(Image.open(photos[0]).convert("RGB"))
    assert (drawn[:40, :70] != left).any(axis=2).sum() > 0  # lines were drawn over image A
    assert run(["match", photos[0], tmp_path / "missing.png", "--weights", weights_file, "--out", out]) == 2
    assert "not found" in capsys.readouterr().err


def test_match_mode_picks_the_matching_function(weights_file, photos, tmp_path, capsys):
    out = tmp_path / "dense.png"
    assert run(["match", *photos, "--weights", weights_file, "--out", out, "--mode", "dense"]) == 0
    assert capsys.readouterr().out.startswith(f"{10 * 18} dense matches")  # every cell of the 40x70 image A
    with pytest.raises(SystemExit):
        run(["match", *photos, "--weights", weights_file, "--out", out, "--mode", "sparse"])
    assert "invalid choice: 'sparse'" in capsys.readouterr().err


def test_extract_and_match_with_no_model_options_use_the_default_model(photos, tmp_path, monkeypatch, capsys):
    default = default_model_name()
    monkeypatch.chdir(tmp_path)
    assert run(["extract", photos[0]]) == 0
    assert f"using {default}" in capsys.readouterr().err
    features, metadata = read_features(tmp_path / "extract-out" / "wide.safetensors")
    assert f"{metadata['model']}.{metadata['tag']}" == default and metadata["weights"] == ""
    reference = timm.create_model(default, pretrained=True).eval()
    torch.testing.assert_close(features, extract_dense_features(photos[0], reference), rtol=0, atol=1e-5)
    assert run(["match", *photos]) == 0
    with Image.open(tmp_path / "match.png") as picture:
        assert picture.size == (70 + 36, 66)


def test_match_never_overwrites_an_input_image(weights_file, photos, capsys):
    before = photos[0].read_bytes()
    assert run(["match", *photos, "--weights", weights_file, "--out", photos[0]]) == 2
    assert "would overwrite an input image" in capsys.readouterr().err
    assert photos[0].read_bytes() == before
