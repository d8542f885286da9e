"""The training recipe as one dataclass, its presets, and overrides from strings.

`TrainConfig()` is the VADeR paper's recipe (ResNet-50 FPN, 224 px, batch 256, SGD lr 0.03 x
batch/256, cosine schedule, temperature 0.07, a 65,536-key queue, momentum 0.999). Where the paper
does not state a value, MoCo v2 is followed and the field's comment says so. `PRESETS` holds the
named variants (`paper`, `smoke`); `apply_overrides` turns `{"steps": "500"}` into typed fields, which
is how the CLI's one-flag-per-field options reach the config.

    config = apply_overrides(preset("smoke"), {"data": "photos/", "steps": "100"})
"""

import dataclasses
import math
import typing
from dataclasses import dataclass

from ..checks import is_positive_int, parse_bool
from ..weights.schema import TAG_PATTERN

AMP_MODES = ("auto", "bf16", "fp16", "fp32")
IMAGENET_STEPS_PER_EPOCH = 5004  # ceil(1,281,167 / 256): ImageNet-1k at the paper's batch


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; the defaults are the paper's recipe.

    Raises:
        ValueError: from `__post_init__`, naming the field, when a value is out of range or two
            fields disagree (e.g. a batch that does not split into BN groups).
    """

    # --- data and outputs
    data: str | None = None  # a folder tree of images, or a text file with one path per line
    out_dir: str = "runs/vader"
    # --- network
    model: str = "vader_r50_fpn"  # any registered vader_* architecture
    init: str | None = None  # a ResNet checkpoint to start the trunk from (any layout convert knows)
    # --- views (MoCo v2 augmentations; geometry is exact, see views.py)
    image_size: int = 224
    # Images are resized (antialiased) to this short side when read, so that crops are never shrunk
    # much by the bilinear rendering; None: image_size * 8 / 7 (256 for 224, ImageNet's usual resize).
    source_short_side: int | None = None
    crop_scale_min: float = 0.2
    crop_scale_max: float = 1.0
    crop_ratio_min: float = 3 / 4
    crop_ratio_max: float = 4 / 3
    flip_prob: float = 0.5
    max_rotation_degrees: float = 0.0  # affine views are optional and off in the paper recipe
    max_shear_degrees: float = 0.0
    homography_strength: float = 0.0  # max corner shift, as a fraction of the crop's side
    jitter_prob: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    greyscale_prob: float = 0.2
    blur_prob: float = 0.5
    blur_sigma_min: float = 0.1
    blur_sigma_max: float = 2.0
    noise_prob: float = 0.2  # not in MoCo v2: mild pixel noise the project's spec adds
    noise_std_max: float = 0.03  # in units of the [0, 1] intensity range
    min_overlap_cells: int = 32
    pairs_per_image: int = 32
    max_view_attempts: int = 10  # resampling bound before the guaranteed-overlap fallback
    # --- method
    temperature: float = 0.07
    queue_size: int = 65536
    # Not in the paper: the other matched keys of the query's own view pair, at least
    # in_image_min_distance key cells away, as extra negatives (see loss.py).
    in_image_negatives: bool = False
    in_image_min_distance: float = 2.0
    # Not stated in the paper: 8 keys per image keeps, at batch 256, the last 32 steps in the queue.
    queue_keys_per_image: int = 8
    momentum: float = 0.999
    # MoCo starts from random vectors; filling the queue with real keys before step 0 (queue_size /
    # (batch_size * queue_keys_per_image) key forwards) makes the loss meaningful from the first step.
    prefill_queue: bool = True
    bn_group_size: int = 32  # MoCo's 256 images over 8 GPUs: BN statistics over 32 samples
    # --- optimisation (schedule and warm-up follow MoCo v2: cosine, no warm-up, 200 epochs)
    steps: int = 200 * IMAGENET_STEPS_PER_EPOCH
    batch_size: int = 256  # global: summed over all processes
    base_lr: float = 0.03  # the learning rate is base_lr * batch_size / 256
    sgd_momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 0
    grad_clip: float | None = None  # max gradient norm, applied after unscaling
    # --- runtime
    device: str | None = None  # None: CUDA when available, else CPU
    amp: str = "auto"  # auto: bf16 on CUDA, fp32 on CPU; fp16 adds a GradScaler
    channels_last: bool | None = None  # None: on CUDA only
    compile: bool = False
    num_workers: int | None = None  # None: from the CPU count, see data.default_num_workers
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 1000
    export: bool = True  # export the query encoder through the weights layer at the end
    weights_tag: str = ""
    weights_license: str = "other"  # set it from the training data's licences before publishing

    @property
    def source_side(self) -> int:
        """The short side images are resized to when read (`source_short_side`, or its default)."""
        return self.source_short_side or round(self.image_size * 8 / 7)

    @property
    def learning_rate(self) -> float:
        """Peak learning rate after the linear batch-size scaling rule."""
        return self.base_lr * self.batch_size / 256

    def __post_init__(self) -> None:
        for problem in _problems(self):
            raise ValueError(f"TrainConfig: {problem}")


def _problems(config: TrainConfig) -> list[str]:
    """All range and consistency problems of a config, as readable sentences."""
    positive = ("image_size", "pairs_per_image", "min_overlap_cells", "queue_size", "steps",
                "batch_size", "bn_group_size", "queue_keys_per_image", "max_view_attempts",
                "log_every", "checkpoint_every")
    problems = [f"{name} must be a positive integer, got {getattr(config, name)!r}"
                for name in positive if not is_positive_int(getattr(config, name))]
    probabilities = ("flip_prob", "jitter_prob", "greyscale_prob", "blur_prob", "noise_prob")
    problems += [f"{name} must be in [0, 1], got {getattr(config, name)!r}"
                 for name in probabilities if not 0.0 <= getattr(config, name) <= 1.0]
    if problems:
        return problems
    if config.image_size < 32:
        problems.append(f"image_size must be at least 32 (the network's minimum), got {config.image_size}")
    if not 0.0 < config.crop_scale_min <= config.crop_scale_max <= 1.0:
        problems.append("crop scales must satisfy 0 < crop_scale_min <= crop_scale_max <= 1")
    if not 0.0 < config.crop_ratio_min <= config.crop_ratio_max:
        problems.append("crop ratios must satisfy 0 < crop_ratio_min <= crop_ratio_max")
    cells = math.ceil(config.image_size / 4) ** 2
    if config.min_overlap_cells > cells:
        problems.append(f"min_overlap_cells ({config.min_overlap_cells}) exceeds the {cells} cells of a "
                        f"{config.image_size}-px view")
    if config.pairs_per_image > config.min_overlap_cells:
        problems.append(f"pairs_per_image ({config.pairs_per_image}) cannot exceed "
                        f"min_overlap_cells ({config.min_overlap_cells}): pairs are drawn from the overlap")
    if config.queue_keys_per_image > config.pairs_per_image:
        problems.append(f"queue_keys_per_image ({config.queue_keys_per_image}) cannot exceed "
                        f"pairs_per_image ({config.pairs_per_image}): queued keys are a subset of the pairs")
    if config.batch_size % config.bn_group_size:
        problems.append(f"batch_size ({config.batch_size}) must be a multiple of bn_group_size "
                        f"({config.bn_group_size}): batch norm runs over groups of that size")
    if not config.in_image_min_distance > 0.0:
        problems.append(f"in_image_min_distance must be positive (in cells), got {config.in_image_min_distance}")
    if not 0.0 < config.temperature < math.inf:
        problems.append(f"temperature must be positive and finite, got {config.temperature}")
    problems += [f"{name} must be a finite number >= 0, got {getattr(config, name)!r}"
                 for name in ("brightness", "contrast", "saturation", "noise_std_max")
                 if not 0.0 <= getattr(config, name) < math.inf]
    if not 0.0 <= config.hue <= 0.5:
        problems.append(f"hue must be in [0, 0.5] (a fraction of the colour wheel each way), got {config.hue}")
    if not 0.0 < config.blur_sigma_min <= config.blur_sigma_max < math.inf:
        problems.append(f"blur sigmas must satisfy 0 < blur_sigma_min <= blur_sigma_max, got "
                        f"{config.blur_sigma_min} and {config.blur_sigma_max}")
    if not TAG_PATTERN.fullmatch(config.weights_tag):
        problems.append(f"weights_tag {config.weights_tag!r} is not a valid tag: letters, digits, '_' and '-', "
                        "starting with a letter or digit (or empty)")
    if not 0.0 <= config.momentum < 1.0:
        problems.append(f"momentum must be in [0, 1), got {config.momentum}")
    if config.amp not in AMP_MODES:
        problems.append(f"amp must be one of {AMP_MODES}, got {config.amp!r}")
    if config.warmup_steps < 0 or config.warmup_steps > config.steps:
        problems.append(f"warmup_steps must be in [0, steps={config.steps}], got {config.warmup_steps}")
    if config.grad_clip is not None and config.grad_clip <= 0:
        problems.append(f"grad_clip must be positive or None, got {config.grad_clip}")
    if config.source_short_side is not None and config.source_short_side < 1:
        problems.append(f"source_short_side must be positive or None, got {config.source_short_side}")
    if config.num_workers is not None and config.num_workers < 0:
        problems.append(f"num_workers must be >= 0 or None, got {config.num_workers}")
    return problems


# Seconds on a 2-core CPU with vader_r18_fpn: tiny views, a short queue, a fast-moving key encoder.
# Batches of 4 in two BN groups (one group would defeat the key shuffle), so that a folder of a few
# photos, such as six, holds a batch; base_lr 2.0 keeps the peak learning rate 2.0 * 4 / 256 = 0.03.
SMOKE = dict(model="vader_r18_fpn", image_size=64, source_short_side=80, batch_size=4,
             bn_group_size=2, steps=30, base_lr=2.0, momentum=0.99, queue_size=256,
             queue_keys_per_image=4, checkpoint_every=10, log_every=1, num_workers=1)
PRESETS: dict[str, dict[str, object]] = {"paper": {}, "smoke": SMOKE}


def preset(name: str) -> TrainConfig:
    """The named preset as a config.

    Args:
        name: one of `PRESETS` (`paper`, `smoke`).

    Returns:
        The preset's `TrainConfig`.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return TrainConfig(**PRESETS[name])


def field_types() -> dict[str, object]:
    """Each config field's resolved type annotation, by name."""
    return typing.get_type_hints(TrainConfig)


def parse_field(name: str, text: str) -> object:
    """Convert a string to the type of config field `name` ("none" means None where allowed).

    Raises:
        ValueError: for an unknown field or a string that is not a value of the field's type.
    """
    types = field_types()
    if name not in types:
        raise ValueError(f"unknown config field {name!r}; known fields: {', '.join(types)}")
    annotation = types[name]
    allowed = [t for t in typing.get_args(annotation) if t is not type(None)] or [annotation]
    optional = type(None) in typing.get_args(annotation)
    if optional and text.strip().lower() in ("none", "null", ""):
        return None
    base = allowed[0]
    try:
        if base is bool:
            return parse_bool(text)
        return base(text)
    except ValueError:
        raise ValueError(f"config field {name!r} expects {base.__name__}"
                         f"{' or none' if optional else ''}, got {text!r}") from None


def apply_overrides(config: TrainConfig, overrides: dict[str, object]) -> TrainConfig:
    """A copy of `config` with fields replaced; string values are parsed to the field's type.

    Args:
        config: the config to start from; it is not changed (configs are frozen).
        overrides: field name -> value; strings go through `parse_field` ("none" gives None where
            allowed), other values are used as they are.

    Returns:
        The new `TrainConfig`, validated again by its `__post_init__`.

    Raises:
        ValueError: for unknown fields, unparsable strings, or a resulting invalid config.
    """
    parsed = {name: parse_field(name, value) if isinstance(value, str) else value
              for name, value in overrides.items()}
    unknown = sorted(set(parsed) - set(field_types()))
    if unknown:
        raise ValueError(f"unknown config fields {unknown}; known fields: {', '.join(field_types())}")
    return dataclasses.replace(config, **parsed)


def config_from_dict(values: dict[str, object]) -> TrainConfig:
    """Rebuild a config written by `dataclasses.asdict` (e.g. from a checkpoint or config.json).

    Raises:
        ValueError: for fields this version does not know.
    """
    unknown = sorted(set(values) - set(field_types()))
    if unknown:
        raise ValueError(f"config has fields this version does not know: {unknown}")
    return TrainConfig(**values)
