"""The `metrics` of a manifest entry from a `vader-hub eval` report (how the shipped entry's were made).

    python tools/metrics_from_eval.py evals/shipped/eval.json metrics.json model.safetensors

The third argument is the report's row of the weights being exported; the random-init, dense SIFT and
patch rows are recorded beside it, PCK@2/4/8 in %, rounded to one decimal as in the README's table.
"""
import json
import sys
from pathlib import Path


def metrics_from_report(report: dict, weights_row: str) -> dict:
    """The synthetic-warp PCK of ``weights_row`` and of the baselines, as a manifest ``metrics`` object."""
    names = report["methods"]

    def row(text: str) -> str:
        return next(name for name in names if text in name)

    rows = {"weights": weights_row, "random_init_3_seeds": row("random init"), "dense_sift": row("dense SIFT"),
            "patches_9x9": row("patches")}
    settings = report["settings"]
    pck = {key: {f"pck@{t}": round(report["summary"][name]["synthetic"][str(t)], 1) for t in report["thresholds"]}
           for key, name in rows.items()}
    return {"synthetic_warps": {
        "benchmark": f"vader-hub eval (docs/eval.md): held-out photos, long side {settings['long_side']}, "
                     f"seed {settings['seed']}, PCK in %",
        "photos": settings["photos"], **pck}}


if __name__ == "__main__":
    source, target, weights_row = sys.argv[1:4]
    metrics = metrics_from_report(json.loads(Path(source).read_text()), weights_row)
    Path(target).write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
