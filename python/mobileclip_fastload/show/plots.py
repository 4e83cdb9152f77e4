"""The header's plots (matplotlib, Agg), as inline SVG text."""

from __future__ import annotations

import io

import numpy as np

from mobileclip_fastload.show.summary import StoreSummary


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg")  # the constrained layout fits it: one draw, not two
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG is inlined in HTML


def _figure(title: str):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: small files, the page's font
    fig, ax = plt.subplots(figsize=(4.2, 2.8), dpi=100, layout="constrained")
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    return fig, ax


def caption_lengths(summary: StoreSummary) -> str:
    fig, ax = _figure("caption length (tokens, with start/end)")
    bins = np.arange(0, 79, 2)
    ax.hist(summary.real_lengths, bins=bins, alpha=0.6, label="real", density=True)
    if len(summary.syn_lengths):
        ax.hist(summary.syn_lengths, bins=bins, alpha=0.6, label="synthetic", density=True)
    ax.set_ylabel("density", fontsize=8)
    ax.legend(fontsize=8)
    return _svg(fig)


def teacher_cosines(summary: StoreSummary, teacher: int, name: str) -> str:
    fig, ax = _figure(f"caption vs image cosine: {name}")
    values = [summary.real_cosines[:, teacher], summary.syn_cosines[:, teacher]]
    lo = min(float(v.min()) for v in values if len(v))
    hi = max(float(v.max()) for v in values if len(v))
    bins = np.linspace(lo, hi if hi > lo else lo + 1e-3, 31)
    ax.hist(values[0], bins=bins, alpha=0.6, label="real", density=True)
    if len(values[1]):
        ax.hist(values[1], bins=bins, alpha=0.6, label="synthetic", density=True)
    ax.set_xlabel("cosine with the mean of the J image rows", fontsize=8)
    ax.legend(fontsize=8)
    return _svg(fig)


def image_sizes(summary: StoreSummary) -> str:
    fig, ax = _figure("stored image size (pixels)")
    w, h = summary.image_sizes[:, 0], summary.image_sizes[:, 1]
    ax.scatter(w, h, s=6, alpha=0.5)
    ax.set_xlabel("width", fontsize=8)
    ax.set_ylabel("height", fontsize=8)
    return _svg(fig)


def all_plots(summary: StoreSummary, teachers: list[str]) -> list[str]:
    return (
        [caption_lengths(summary)]
        + [teacher_cosines(summary, k, t) for k, t in enumerate(teachers)]
        + [image_sizes(summary)]
    )
