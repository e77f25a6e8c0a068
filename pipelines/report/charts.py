"""The report's figures: matplotlib figures turned into inline PNG data URIs (nothing is loaded
from anywhere), and the data of the tiny per-feature histograms the statistics template draws."""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

from pipelines import slices

PALETTE = {"train": "#4f7cac", "validation": "#e07b39"}


def inline_png(fig) -> str:
    """A matplotlib figure as a data:image/png;base64 URI."""
    return slices.png_data_uri(slices.figure_png(fig))


def slice_chart(table: slices.SliceTable, metric: str) -> str:
    """The per-slice bar chart of `metric` (thresholds as dashed lines) as an inline PNG."""
    return inline_png(slices.slice_figure(table, metric))


def sparkline(counts: Sequence[float], width: int = 90, height: int = 20) -> Optional[Dict]:
    """Bars of a histogram scaled into a width x height box (the template draws them as SVG);
    None when there is nothing to draw."""
    counts = [max(0.0, float(c)) for c in counts]
    if not counts or max(counts) <= 0:
        return None
    bar = width / len(counts)
    top = max(counts)
    bars = [{"x": i * bar, "y": height - c / top * height, "width": max(bar - 1, 1), "height": c / top * height}
            for i, c in enumerate(counts)]
    return {"width": width, "height": height, "bars": bars}


def _constant_single(series: Dict[str, List[tuple]]) -> bool:
    """One series whose value never changes (e.g. a fixed learning rate): not worth a panel."""
    return len(series) == 1 and len({round(v, 12) for _, v in next(iter(series.values()))}) <= 1


def training_figure(scalars: Dict[str, Dict[str, List[tuple]]]):
    """One panel per per-epoch metric, a line per series (train vs validation).

    Returns (figure, tags drawn), (None, []) when no scalar is worth drawing.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    tags = [t for t in scalars if t.startswith("epoch_")] or list(scalars)
    tags = [t for t in tags if not _constant_single(scalars[t])]
    if not tags:
        return None, []
    tags.sort(key=lambda t: (not t.endswith("loss"), "learning_rate" in t, t))
    columns = min(3, len(tags))
    rows = math.ceil(len(tags) / columns)
    fig = Figure(figsize=(4.1 * columns, 3.0 * rows), dpi=100)
    for i, tag in enumerate(tags):
        ax = fig.add_subplot(rows, columns, i + 1)
        epoch_based = tag.startswith("epoch_")
        x = (lambda step: step + 1) if epoch_based else (lambda step: step)
        for name, points in sorted(scalars[tag].items()):
            ax.plot([x(step) for step, _ in points], [v for _, v in points], marker="o", markersize=3,
                    linewidth=1.6, label=name, color=PALETTE.get(name))
        validation = scalars[tag].get("validation")
        if tag.endswith("loss") and validation and len(validation) > 1:
            step, value = min(validation, key=lambda p: p[1])
            ax.axvline(x(step), color="#888888", linestyle=":", linewidth=1)
            ax.annotate("lowest validation loss", xy=(x(step), value), xytext=(4, 10),
                        textcoords="offset points", fontsize=7, color="#555555")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(tag[len("epoch_"):] if epoch_based else tag, fontsize=10)
        ax.set_xlabel("epoch" if epoch_based else "step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(color="#e5e5e5")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig, tags
