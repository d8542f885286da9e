"""The results of the correspondence benchmark and how they are written: Markdown, JSON, a picture.

Means are over images (each image weighs the same, however many of its queries stay in view), kept
apart for the synthetic warps and the real pairs.
"""
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import fmean
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from PIL import Image, ImageDraw

from ..features.pictures import to_pil_image
from .cases import Case
from .pixel_search import pck

GROUPS = ("synthetic", "real")
_CORRECT, _WRONG = (40, 200, 60), (230, 40, 40)


@dataclass(frozen=True)
class CaseResult:
    """One method on one image.

    Attributes:
        case: Photo file name or pair name.
        kind: The case's kind (:attr:`.cases.Case.kind`).
        method: Method name.
        pck: ``{threshold: PCK in %}``, the mean over the method's variants.
        variant_pck: The PCK of each variant (e.g. each random-init seed).
        queries: Query points on the grid.
        valid: Query points that count (true position known and in view).
        seconds: Wall time of the method on this image (features and matching, all variants).
    """

    case: str
    kind: str
    method: str
    pck: Dict[float, float]
    variant_pck: List[Dict[float, float]]
    queries: int
    valid: int
    seconds: float


@dataclass(frozen=True)
class MatchExample:
    """One case and each method's matches on it (its first variant's), for the picture.

    Attributes:
        case: The case.
        predictions: ``{method: (N, 2) predicted (x, y) positions in image B}``.
    """

    case: Case
    predictions: Dict[str, torch.Tensor]


@dataclass(frozen=True)
class EvalReport:
    """Everything one benchmark run measured.

    Attributes:
        methods: Method names, in table order.
        thresholds: PCK thresholds in pixels.
        settings: Seed, resolution, query grid, warp ranges, photos and pairs of the run.
        results: One :class:`CaseResult` per method and image.
        example: The first image's matches, for :func:`match_picture`.
    """

    methods: List[str]
    thresholds: Tuple[float, ...]
    settings: Dict[str, Any]
    results: List[CaseResult]
    example: Optional[MatchExample] = None

    def mean(self, method: str, group: str = "synthetic") -> Optional[Dict[float, float]]:
        """Mean PCK of ``method`` over the images of ``group`` (``"synthetic"`` or ``"real"``), None if none."""
        rows = [r for r in self.results if r.method == method and _group(r.kind) == group]
        return {t: fmean(r.pck[t] for r in rows) for t in self.thresholds} if rows else None

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict: settings, mean PCK per method and group, and every per-image result."""
        means = {method: {group: self.mean(method, group) for group in GROUPS} for method in self.methods}
        summary = {method: {g: _keyed(m) for g, m in groups.items() if m} for method, groups in means.items()}
        results = [
            dict(asdict(r), pck=_keyed(r.pck), variant_pck=[_keyed(v) for v in r.variant_pck]) for r in self.results
        ]
        return dict(settings=self.settings, methods=self.methods, thresholds=list(self.thresholds),
                    summary=summary, results=results)


def to_markdown(report: EvalReport) -> str:
    """The summary table (mean PCK per method) and the per-image table, as Markdown.

    Args:
        report: The benchmark results; a group (synthetic or real) without results gets no columns.

    Returns:
        The Markdown text, ending in a newline.
    """
    groups = [g for g in GROUPS if any(report.mean(m, g) for m in report.methods)]
    labels = [f"{group} PCK@{t:g}" for group in groups for t in report.thresholds]
    lines = ["| method | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for method in report.methods:
        values = [report.mean(method, group)[t] for group in groups for t in report.thresholds]
        lines.append(f"| {method} | " + " | ".join(f"{v:.1f}" for v in values) + " |")
    settings = report.settings
    lines += [
        "",
        f"PCK in % of the query points that stay in view (every {settings['grid_step']} px of the first image), "
        f"at long side {settings['long_side']} px; synthetic warps with seed {settings['seed']}; "
        "mean over images.",
        "",
        "Per image, PCK@" + " / @".join(f"{t:g}" for t in report.thresholds) + ":",
        "",
        "| image | kind | queries in view | " + " | ".join(report.methods) + " |",
        "|---" * (len(report.methods) + 3) + "|",
    ]
    for case in dict.fromkeys(r.case for r in report.results):
        rows = {r.method: r for r in report.results if r.case == case}
        first = next(iter(rows.values()))
        cells = [" / ".join(f"{rows[m].pck[t]:.1f}" for t in report.thresholds) for m in report.methods]
        lines.append(f"| {case} | {first.kind} | {first.valid}/{first.queries} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def match_picture(example: MatchExample, threshold: float = 8.0, max_lines: int = 80) -> Image.Image:
    """Both images side by side, one row per method, queries joined to their matches.

    A line is green when the match is within ``threshold`` px of the true position, red otherwise;
    up to ``max_lines`` evenly spread queries that count are drawn. Each row's caption gives the PCK at
    ``threshold`` of the drawn run (a method's first variant, e.g. its first random-init seed).

    Args:
        example: The case and each method's predictions.
        threshold: Distance in pixels under which a match is drawn as correct.
        max_lines: Most lines per row.

    Returns:
        An RGB image, ``W_a + W_b`` wide and one row (plus a caption) per method high.
    """
    case = example.case
    shown = torch.nonzero(case.valid).flatten()  # (M,)
    shown = shown[torch.linspace(0, len(shown) - 1, min(max_lines, len(shown))).round().long()]  # (L,)
    pictures = [to_pil_image(case.image_a), to_pil_image(case.image_b)]
    row_height = max(p.height for p in pictures) + 16
    canvas = Image.new("RGB", (pictures[0].width + pictures[1].width, row_height * len(example.predictions)), "white")
    draw = ImageDraw.Draw(canvas)
    for row, (method, predicted) in enumerate(example.predictions.items()):
        top = row * row_height + 16
        canvas.paste(pictures[0], (0, top))
        canvas.paste(pictures[1], (pictures[0].width, top))
        errors = (predicted[shown] - case.truth[shown]).norm(dim=1)  # (L,)
        score = pck(predicted, case.truth, case.valid, [threshold])[threshold]
        draw.text((4, top - 14), f"{case.name} | {method} | PCK@{threshold:g} {score:.1f}%", fill="black")
        for index, error in zip(shown.tolist(), errors.tolist(), strict=True):
            (x_a, y_a), (x_b, y_b) = case.queries[index].tolist(), predicted[index].tolist()
            colour = _CORRECT if error <= threshold else _WRONG
            draw.line([(x_a, y_a + top), (x_b + pictures[0].width, y_b + top)], fill=colour, width=1)
            draw.ellipse([x_a - 2, y_a + top - 2, x_a + 2, y_a + top + 2], fill=colour)
    return canvas


@dataclass(frozen=True)
class ReportFiles:
    """Paths of the written report: ``eval.md``, ``eval.json`` and ``matches.png`` (None without an example)."""

    markdown: Path
    json: Path
    picture: Optional[Path]


def write_report(report: EvalReport, out_dir: Union[str, Path]) -> ReportFiles:
    """Write the Markdown table, the JSON results and the match picture into ``out_dir`` (created).

    Args:
        report: The benchmark results; the picture is drawn only when it has an example, at its largest threshold.
        out_dir: Folder to write into; existing report files there are overwritten.

    Returns:
        The paths written.

    Raises:
        OSError: If ``out_dir`` cannot be created or written, with the folder named.
    """
    out_dir = Path(out_dir)
    files = ReportFiles(out_dir / "eval.md", out_dir / "eval.json",
                        out_dir / "matches.png" if report.example else None)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        files.markdown.write_text(to_markdown(report))
        files.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        if files.picture is not None:
            match_picture(report.example, threshold=max(report.thresholds)).save(files.picture)
    except OSError as error:
        raise OSError(f"cannot write the evaluation report into {out_dir} ({error}); pass a writable folder") from error
    return files


def _group(kind: str) -> str:
    return "synthetic" if kind == "synthetic" else "real"


def _keyed(values: Optional[Dict[float, float]]) -> Optional[Dict[str, float]]:
    """Thresholds as JSON keys ("2", "4", "8")."""
    return None if values is None else {f"{t:g}": round(v, 4) for t, v in values.items()}
