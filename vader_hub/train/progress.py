"""What rank 0 shows and records while training: a tqdm bar and a JSONL log.

Each log line averages the steps since the previous one: loss, mean positive and negative cosine
similarity, the learning rate of the last step, images per second (global batch) and the share of
wall time spent waiting for data.
"""

import json
import time
from pathlib import Path

from tqdm import tqdm


class ProgressLog:
    """A progress bar plus `log.jsonl` in the run folder; silent on other ranks.

    Args:
        path: the JSONL file (appended to, so a resumed run continues it).
        total_steps: the run's step count.
        start_step: steps already done (resume).
        global_batch: images per step over all processes.
        enabled: False on ranks other than 0.
        show_bar: whether to draw the tqdm bar.
    """

    def __init__(self, path: Path, total_steps: int, start_step: int, global_batch: int, enabled: bool,
                 show_bar: bool = True) -> None:
        self.enabled, self.global_batch = enabled, global_batch
        self.file = open(path, "a", encoding="utf-8") if enabled else None
        self.bar = tqdm(total=total_steps, initial=start_step, desc="train", unit="step",
                        disable=not (enabled and show_bar), dynamic_ncols=True)
        self._reset(time.perf_counter())

    def _reset(self, now: float) -> None:
        self.sums = {"loss": 0.0, "positive_similarity": 0.0, "negative_similarity": 0.0, "data_wait_s": 0.0}
        self.count, self.load_failures, self.since = 0, 0, now

    def record(self, step: int, values: dict[str, float], learning_rate: float, data_wait_s: float,
               load_failures: int, write: bool) -> None:
        """Add step `step`'s values; write a log line (and refresh the bar) when `write`."""
        if not self.enabled:
            return
        for name in ("loss", "positive_similarity", "negative_similarity"):
            self.sums[name] += values[name]
        self.sums["data_wait_s"] += data_wait_s
        self.count += 1
        self.load_failures += load_failures
        self.bar.update(1)
        if write:
            self._write(step, learning_rate)

    def _write(self, step: int, learning_rate: float) -> None:
        now = time.perf_counter()
        elapsed = max(now - self.since, 1e-9)
        means = {name: self.sums[name] / self.count for name in ("loss", "positive_similarity", "negative_similarity")}
        line = {"step": step, "lr": learning_rate, **means,
                "images_per_second": self.count * self.global_batch / elapsed,
                "data_wait_fraction": self.sums["data_wait_s"] / elapsed,
                "seconds_per_step": elapsed / self.count, "load_failures": self.load_failures}
        self.file.write(json.dumps(line) + "\n")
        self.file.flush()
        self.bar.set_postfix(loss=f"{line['loss']:.3f}", pos=f"{line['positive_similarity']:.2f}",
                             img_s=f"{line['images_per_second']:.1f}")
        self._reset(now)

    def message(self, text: str) -> None:
        """Print a line without breaking the bar (rank 0 only)."""
        if self.enabled:
            self.bar.write(text)

    def close(self) -> None:
        """Close the bar and the log file."""
        self.bar.close()
        if self.file is not None:
            self.file.close()
