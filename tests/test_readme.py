"""The README's model table follows from the registry: one row per backbone, with its real size."""
import re
from pathlib import Path

import pytest
import timm
import torch

from vader_hub.models import TRUNKS

README = Path(__file__).resolve().parents[1] / "README.md"
ROW = re.compile(r"^\| `(vader_\w+)`[^|]*\|[^|]*\| ([\d.]+) M \| ([\d.]+) M \| ([\d.]+) M \|", re.MULTILINE)


def _table() -> dict:
    return {name: tuple(float(v) for v in values) for name, *values in ROW.findall(README.read_text())}


def test_the_model_table_has_one_row_per_registered_backbone():
    assert sorted(_table()) == sorted(TRUNKS)


@pytest.mark.parametrize("name", list(TRUNKS))
def test_each_row_gives_the_parameter_counts_of_its_network(name):
    with torch.device("meta"):
        model = timm.create_model(name)
    counts = [sum(p.numel() for p in part.parameters()) / 1e6 for part in (model.trunk, model.decoder, model)]
    assert _table()[name] == pytest.approx(counts, abs=0.005), "rerun python benchmarks/model_cost.py"
