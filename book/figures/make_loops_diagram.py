"""Draw the diagram of the three self-consuming loop families: ``book/figures/loops.svg``.

Each row is one loop family, each column one generation. A box ``G^t`` is the model of
generation ``t``, trained from scratch on what flows into it: real data (solid blue arrows) and
synthetic samples of the previous model, drawn with sampling bias lambda (dashed vermillion
arrows). The SVG is self-contained: text is stored as paths, so no font is needed to view it,
and the output is byte-for-byte reproducible (fixed hash salt, no date in the metadata).

Run from anywhere::

    python book/figures/make_loops_diagram.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).with_name("loops.svg")
TITLE = "The three self-consuming loop families"

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
REAL = "#0072B2"
SYNTHETIC = "#D55E00"
MODEL_FACE = "#F2F2F2"
INK = "#222222"

MODEL_X = (2.6, 5.0, 7.4)  # centres of G^1, G^2, G^3
MODEL_W, MODEL_H = 1.0, 0.62
DATA_W, DATA_H = 1.5, 0.5
ROW_Y = (6.75, 4.0, 1.25)  # model-box centres of the three rows
DATA_DY = 1.05  # real-data boxes sit this far above the models

FAMILIES = (
    ("Fully synthetic", "real data only in generation 1"),
    ("Synthetic augmentation", "the same real set in every generation"),
    ("Fresh data", "new real samples in every generation"),
)


def box(ax, x, y, w, h, text, *, face, edge, color=INK, size=11, style="round,pad=0.04"):
    """A rounded box centred at (x, y) with centred text."""
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle=style,
            facecolor=face,
            edgecolor=edge,
            linewidth=1.3,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=size, color=color)


def arrow(ax, start, end, *, color, dashed=False, width=1.6):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=13,
            color=color,
            linewidth=width,
            linestyle=(0, (4, 2.5)) if dashed else "-",
            shrinkA=0,
            shrinkB=0,
        )
    )


def model_boxes(ax, y):
    for t, x in enumerate(MODEL_X, start=1):
        box(ax, x, y, MODEL_W, MODEL_H, f"$G^{{{t}}}$", face=MODEL_FACE, edge=INK, size=14)
    ax.text(MODEL_X[-1] + 1.55, y, r"$\cdots$", ha="center", va="center", fontsize=16, color=INK)


def synthetic_arrows(ax, y):
    """G^{t-1} -> G^t, and G^3 -> the next generations."""
    targets = [*MODEL_X[1:], MODEL_X[-1] + 1.25 + MODEL_W / 2]
    for x_from, x_to in zip(MODEL_X, targets, strict=True):
        start = (x_from + MODEL_W / 2 + 0.06, y)
        end = (x_to - MODEL_W / 2 - 0.06, y)
        arrow(ax, start, end, color=SYNTHETIC, dashed=True)
        ax.text(
            (start[0] + end[0]) / 2,
            y - 0.2,
            r"$n_s$, $\lambda$",
            ha="center",
            va="top",
            fontsize=10,
            color=SYNTHETIC,
        )


def real_arrow(ax, x, y_model, y_data):
    arrow(
        ax,
        (x, y_data - DATA_H / 2 - 0.04),
        (x, y_model + MODEL_H / 2 + 0.08),
        color=REAL,
    )


def row_title(ax, y, title, subtitle):
    ax.text(0.2, y, title, ha="left", va="baseline", fontsize=12.5, fontweight="bold")
    ax.text(3.9, y, subtitle, ha="left", va="baseline", fontsize=10, color="#555555")


def fully_synthetic(ax, y):
    model_boxes(ax, y)
    synthetic_arrows(ax, y)
    y_data = y + DATA_DY
    box(
        ax,
        MODEL_X[0],
        y_data,
        DATA_W,
        DATA_H,
        r"real, $n_{\mathrm{ini}}$",
        face="white",
        edge=REAL,
        color=REAL,
    )
    real_arrow(ax, MODEL_X[0], y, y_data)


def synthetic_augmentation(ax, y):
    model_boxes(ax, y)
    synthetic_arrows(ax, y)
    y_data = y + DATA_DY
    left = MODEL_X[0] - DATA_W / 2
    right = MODEL_X[-1] + DATA_W / 2
    box(
        ax,
        (left + right) / 2,
        y_data,
        right - left,
        DATA_H,
        r"one fixed real set of $n_{\mathrm{ini}}$ samples, reused",
        face="white",
        edge=REAL,
        color=REAL,
    )
    for x in MODEL_X:
        real_arrow(ax, x, y, y_data)


def fresh_data(ax, y):
    model_boxes(ax, y)
    synthetic_arrows(ax, y)
    y_data = y + DATA_DY
    labels = (r"real, $n_{\mathrm{ini}}$", r"fresh real, $n_r$", r"fresh real, $n_r$")
    for x, label in zip(MODEL_X, labels, strict=True):
        box(ax, x, y_data, DATA_W, DATA_H, label, face="white", edge=REAL, color=REAL)
        real_arrow(ax, x, y, y_data)


def legend(ax):
    handles = [
        Line2D([], [], color=REAL, linewidth=1.8, label=r"real samples from $P_r$"),
        Line2D(
            [],
            [],
            color=SYNTHETIC,
            linewidth=1.8,
            linestyle=(0, (4, 2.5)),
            label=r"synthetic samples of the previous model, drawn with bias $\lambda$",
        ),
    ]
    ax.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, -0.005),
        ncol=2,
        frameon=False,
        fontsize=10,
        handlelength=2.6,
    )
    ax.text(
        4.7,
        0.22,
        r"$G^t$: the model of generation $t$, trained from scratch on the data flowing into it",
        ha="center",
        va="center",
        fontsize=10.5,
        color=INK,
    )


def main() -> None:
    plt.rcParams.update(
        {
            "svg.fonttype": "path",  # glyphs as paths: no font needed to display the SVG
            "svg.hashsalt": "madutils-loops",  # stable element ids
            "font.family": "sans-serif",
            "mathtext.fontset": "dejavusans",
        }
    )
    fig, ax = plt.subplots(figsize=(9.4, 8.9))
    ax.set_xlim(0, 9.4)
    ax.set_ylim(-0.45, 8.65)
    ax.set_axis_off()
    for y, (title, subtitle), draw in zip(
        ROW_Y, FAMILIES, (fully_synthetic, synthetic_augmentation, fresh_data), strict=True
    ):
        row_title(ax, y + DATA_DY + 0.55, title, subtitle)
        draw(ax, y)
    legend(ax)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01)
    fig.savefig(OUT, format="svg", metadata={"Date": None, "Creator": None, "Title": TITLE})
    plt.close(fig)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
