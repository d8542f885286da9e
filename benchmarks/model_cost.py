"""Parameters and FLOPs of the VADeR networks at 224x224, for the README's model table.

    python benchmarks/model_cost.py

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matmuls; a
multiply-accumulate counts as 2 FLOPs); GMACs are half of that.
"""
import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

from vader_hub.models import TRUNKS


def model_cost(name: str, size: int = 224) -> dict:
    """Parameter counts and forward FLOPs of ``name`` on one ``size`` x ``size`` image."""
    model = timm.create_model(name).eval()
    trunk = sum(p.numel() for p in model.trunk.parameters())
    decoder = sum(p.numel() for p in model.decoder.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(1, 3, size, size))
    return dict(model=name, trunk=trunk, decoder=decoder, total=trunk + decoder, gflops=counter.get_total_flops() / 1e9)


def main() -> None:
    print("| model | trunk params | decoder params | total params | GFLOPs at 224 (GMACs) |")
    print("|---|---|---|---|---|")
    for name in TRUNKS:
        c = model_cost(name)
        print(
            f"| {c['model']} | {c['trunk'] / 1e6:.2f} M | {c['decoder'] / 1e6:.2f} M | {c['total'] / 1e6:.2f} M "
            f"| {c['gflops']:.2f} ({c['gflops'] / 2:.2f}) |"
        )


if __name__ == "__main__":
    main()
