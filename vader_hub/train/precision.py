"""Mixed precision, one code path: the run's autocast dtype, its autocast context and its GradScaler.

`amp="auto"` is bf16 on CUDA and full precision on CPU; `fp16` also turns the GradScaler on (bf16
has float32's range and needs none). With full precision the autocast context is `nullcontext()`
and the scaler is disabled, so the step runs the same lines either way (nanoGPT's one AMP path).
"""

from contextlib import nullcontext
from dataclasses import dataclass

import torch

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


@dataclass(frozen=True)
class Precision:
    """The autocast settings of a run.

    Attributes:
        device_type: "cpu" or "cuda", the autocast device.
        dtype: the autocast dtype, or None for full precision.
    """

    device_type: str
    dtype: torch.dtype | None

    def autocast(self):
        """The one autocast context of the run (a no-op for full precision)."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler, enabled only for fp16 (whose range is too small for unscaled gradients)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.dtype == torch.float16)


def resolve_precision(amp: str, device: torch.device) -> Precision:
    """The precision `amp` means on `device` ("auto": bf16 on CUDA, full precision on CPU).

    Args:
        amp: one of `config.AMP_MODES`.
        device: the device the networks run on.

    Returns:
        The run's `Precision`.
    """
    if amp == "auto":
        return Precision(device.type, torch.bfloat16 if device.type == "cuda" else None)
    return Precision(device.type, AUTOCAST_DTYPES[amp])


def enable_fast_cuda_math() -> None:
    """cuDNN autotuning (fixed input sizes) and TF32 for the float32 loss matmuls."""
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")
