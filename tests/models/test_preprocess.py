"""The model's own normalisation: which cfg is read, its mean and std, and the maths against a by-hand reference."""
import pytest
import timm
import torch
from torch import nn

import vader_hub  # noqa: F401  (registers the VADeR models with timm)
from vader_hub.models.preprocess import mean_and_std, normalize_images, pretrained_cfg_of

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_the_cfg_comes_from_the_model_a_mapping_or_falls_back_to_imagenet():
    with torch.device("meta"):
        model = timm.create_model("vader_r18_fpn", pretrained_cfg_overlay=dict(mean=(0.5, 0.5, 0.5)))
    assert pretrained_cfg_of(model) is model.pretrained_cfg
    assert mean_and_std(pretrained_cfg_of(model)) == ((0.5, 0.5, 0.5), IMAGENET[1])
    assert mean_and_std(pretrained_cfg_of({"mean": [0, 0, 0], "std": [1, 1, 1]})) == ((0.0,) * 3, (1.0,) * 3)
    for plain in (None, nn.Conv2d(3, 3, 1)):
        assert pretrained_cfg_of(plain) == {} and mean_and_std(pretrained_cfg_of(plain)) == IMAGENET
    with pytest.raises(TypeError, match="nn.Module.*pretrained_cfg"):
        pretrained_cfg_of("vader_r18_fpn")


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float64])
def test_normalize_images_subtracts_the_cfg_mean_and_divides_by_its_std(dtype):
    pixels = torch.randint(0, 256, (2, 3, 5, 7), generator=torch.Generator().manual_seed(0))
    images = pixels.to(torch.uint8) if dtype == torch.uint8 else pixels.to(dtype) / 255
    before = images.clone()
    config = {"mean": (0.1, 0.2, 0.3), "std": (0.5, 0.25, 2.0)}
    for cfg, (mean, std) in ((config, (config["mean"], config["std"])), (None, IMAGENET)):
        expected = torch.empty(2, 3, 5, 7, dtype=torch.float64)
        for channel in range(3):  # by hand, one channel at a time
            expected[:, channel] = (pixels[:, channel] / 255 - mean[channel]) / std[channel]
        normalized = normalize_images(images, cfg)
        assert normalized.dtype == torch.float32
        torch.testing.assert_close(normalized.double(), expected, rtol=0, atol=1e-5)
    assert torch.equal(images, before)
