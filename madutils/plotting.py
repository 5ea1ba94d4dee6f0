"""Every figure of the book, drawn with seaborn from tidy tables.

One style for the whole book, set by :func:`set_style`: colour = lambda, line style = loop family
(or another setting), one column per metric, x = generation. Plot functions take long-form
tables as :func:`madutils.loops.batched.run_loop` returns them (or arrays of samples) and return the
matplotlib figure; they never compute metrics. Error bands are explicit: the 50% interval
across seeds (``errorbar=("pi", 50)``) of the many replicates of the exact experiments, the
whole range (:data:`REPLICATE_BAND`) of the few of a deep model, never seaborn's slow default
bootstrap.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from madutils.metrics import METRIC_LABELS  # axis labels (registry view)
from madutils.results import atomic_write

__all__ = [
    "density_grid",
    "embedding_scatter",
    "image_panels",
    "lam_palette",
    "limit_curves",
    "mean_paths",
    "memory_curve",
    "metric_curves",
    "phase_diagram",
    "figure_record",
    "sample_grid",
    "save_figure",
    "set_style",
    "trace_distribution",
    "trace_vs_theory",
]

FAMILY_LABELS = {
    "fully_synthetic": "fully synthetic",
    "synthetic_augmentation": "synthetic augmentation",
    "fresh_data": "fresh data",
}
ERRORBAR = ("pi", 50)
#: The band of the deep-model figures: the whole range across replicates, the spread their
#: verdicts are judged against (:mod:`madutils.analysis.replicates`).
REPLICATE_BAND = ("pi", 100)


def set_style() -> None:
    """The book's figure style (call once per notebook)."""
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.95)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 130, "savefig.bbox": "tight"})


def lam_palette(lams) -> dict:
    """Colour per lambda: darkest for 1 (unbiased), lighter as the bias grows."""
    values = sorted(set(float(v) for v in lams), reverse=True)
    colours = sns.color_palette("viridis", n_colors=max(len(values), 2))
    return dict(zip(values, colours, strict=False))


def metric_curves(
    table: pd.DataFrame,
    metrics=None,
    *,
    hue: str = "lam",
    style: str | None = "family",
    log_metrics=(),
    height: float = 3.0,
    errorbar=ERRORBAR,
    floor: bool = False,
    sharex: bool = True,
):
    """Metric against generation, one panel per metric, median and 50% band across seeds.

    Parameters
    ----------
    table : DataFrame
        Long-form results (columns ``generation, metric, value`` and ``hue``/``style``).
    metrics : list of str, optional
        Panels, in order (default: every metric in the table).
    hue, style : str
        Columns mapped to colour and line style.
    log_metrics : iterable of str
        Metrics drawn on a log y-axis.
    floor : bool
        Draw the real-versus-real floor of the image loops as a grey band across each panel:
        from the lowest to the highest generation-0 value (each a set of real images measured
        like a generation; see :data:`madutils.loops.images.FLOOR_SETS`).
    sharex : bool
        One generation axis for all panels; False when the panels' runs have different
        lengths (the metrics of two models side by side).
    """
    metrics = list(metrics or dict.fromkeys(table["metric"]))
    data = table[table["metric"].isin(metrics)].copy()
    data["metric"] = pd.Categorical(data["metric"], metrics)
    if style == "family" and "family" in data:
        data["family"] = data["family"].map(FAMILY_LABELS).fillna(data["family"])
    palette = lam_palette(data["lam"]) if hue == "lam" else None
    if style is not None and data[style].nunique() <= 1:
        style = None
    grid = sns.relplot(
        data=data,
        x="generation",
        y="value",
        col="metric",
        hue=hue,
        style=style,
        kind="line",
        estimator="median",
        errorbar=errorbar,
        palette=palette,
        height=height,
        aspect=1.25,
        facet_kws={"sharey": False, "sharex": sharex},
    )
    for ax, name in zip(grid.axes.flat, metrics, strict=False):
        ax.set_title(METRIC_LABELS.get(name, name))
        ax.set_ylabel("")
        if name in log_metrics:
            ax.set_yscale("log")
        if floor:
            real = table.loc[(table["metric"] == name) & (table["generation"] == 0), "value"]
            if len(real):
                ax.axhspan(real.min(), real.max(), color="0.55", alpha=0.3, lw=0, zorder=0)
    if grid.legend is not None:
        # seaborn titles the legend sections with the column names; show readable ones
        readable = {"lam": r"$\lambda$", "family": "loop family", "n_ini": r"$n_{\mathrm{ini}}$"}
        for text in grid.legend.texts:
            text.set_text(readable.get(text.get_text(), text.get_text()))
        if style is None and hue == "lam":
            grid.legend.set_title(r"$\lambda$")
        else:
            grid.legend.set_title("")
    return grid.figure


def trace_vs_theory(table: pd.DataFrame, theory: pd.DataFrame, metric: str, *, log: bool = False):
    """Simulated mean and median of ``metric`` per lambda, with the closed form drawn over it.

    Parameters
    ----------
    table : DataFrame
        Long-form results with ``lam``.
    theory : DataFrame
        Columns ``lam, generation, value``: the closed-form expectation.
    """
    data = table[table["metric"] == metric]
    summary = data.groupby(["lam", "generation"])["value"].agg(["mean", "median"]).reset_index()
    palette = lam_palette(summary["lam"])
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for lam, group in summary.groupby("lam"):
        colour = palette[float(lam)]
        ax.plot(group["generation"], group["mean"], color=colour, lw=1.8, label=f"mean, λ={lam:g}")
        ax.plot(
            group["generation"],
            group["median"],
            color=colour,
            lw=1.2,
            ls=":",
            label=f"median, λ={lam:g}",
        )
        exact = theory[theory["lam"] == lam]
        ax.plot(exact["generation"], exact["value"], color="black", lw=0.9, ls="--")
    ax.plot([], [], color="black", lw=0.9, ls="--", label="closed form (expectation)")
    ax.set_xlabel("generation")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8, ncols=2)
    return fig


def trace_distribution(table: pd.DataFrame, generations, *, lam: float = 1.0):
    """Histograms of log10 tr(Sigma_t) across seeds at a few generations (one lambda)."""
    data = table[(table["metric"] == "cov_trace") & (table["lam"] == lam)]
    data = data[data["generation"].isin(list(generations))].copy()
    data["log10 trace"] = np.log10(data["value"].clip(lower=1e-300))
    fig, ax = plt.subplots(figsize=(6, 3.4))
    sns.histplot(
        data=data,
        x="log10 trace",
        hue="generation",
        element="step",
        fill=False,
        stat="density",
        common_norm=False,
        bins=60,
        palette="rocket_r",
        ax=ax,
    )
    ax.set_xlabel(r"$\log_{10}$ tr $\Sigma_t$")
    return fig


def mean_paths(means: np.ndarray, *, n_paths: int = 8, lam: float | None = None):
    """2-D random walks of the fitted mean across generations, one line per seed.

    Parameters
    ----------
    means : ndarray, shape (generations, seeds, 2)
    """
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    colours = sns.color_palette("tab10", n_colors=n_paths)
    for s in range(min(n_paths, means.shape[1])):
        ax.plot(means[:, s, 0], means[:, s, 1], lw=0.9, color=colours[s])
        ax.plot(*means[-1, s], "o", ms=3, color=colours[s])
    ax.plot(0, 0, "k+", ms=12, mew=2, label=r"real mean $\mu_r$")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel(r"$\mu_{t,1}$")
    ax.set_ylabel(r"$\mu_{t,2}$")
    ax.legend(loc="upper right", fontsize=8)
    if lam is not None:
        ax.set_title(rf"fitted means, $\lambda$ = {lam:g}")
    return fig


def sample_grid(real: np.ndarray, snapshots: dict, *, title: str = "", lim: float | None = None):
    """Scatter of real (grey) and synthetic samples, one panel per generation.

    Parameters
    ----------
    real : ndarray, shape (n, 2)
    snapshots : dict
        Generation to synthetic samples of shape ``(m, 2)``.
    """
    generations = sorted(snapshots)
    fig, axes = plt.subplots(
        1,
        len(generations),
        figsize=(2.7 * len(generations), 2.9),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    for ax, generation in zip(axes[0], generations, strict=True):
        ax.scatter(real[:, 0], real[:, 1], s=2, color="0.75", label="real", rasterized=True)
        synth = snapshots[generation]
        ax.scatter(synth[:, 0], synth[:, 1], s=2, color="C3", label="synthetic", rasterized=True)
        ax.set_title(f"generation {generation}")
        if lim is not None:
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
    axes[0, 0].legend(loc="lower left", fontsize=7, markerscale=3)
    if title:
        fig.suptitle(title)
    return fig


def phase_diagram(
    cells: pd.DataFrame,
    *,
    x: str,
    y: str,
    value: str = "ratio",
    col: str | None = None,
    log_x: bool = True,
    log_y: bool = True,
    moves=(),
):
    """Heatmap of ``value`` (n_e / n_r) over two settings, admissible region outlined.

    The colour scale is logarithmic and centred on 1; cells with ``value >= 1`` (synthetic data
    helped) are marked with a dot. ``moves`` holds ``((x0, y0), (x1, y1))`` pairs drawn as
    arrows on every panel: where a loop is and where a change (a detector) moves it.
    """
    from matplotlib.colors import LogNorm

    panels = [None] if col is None else sorted(cells[col].unique())
    fig, axes = plt.subplots(1, len(panels), figsize=(3.9 * len(panels), 3.5), squeeze=False)
    spread = float(np.nanmax(np.abs(np.log10(cells[value].clip(lower=1e-6)))))
    norm = LogNorm(vmin=10 ** -max(spread, 0.1), vmax=10 ** max(spread, 0.1))
    mesh = None
    for ax, panel in zip(axes[0], panels, strict=True):
        data = cells if panel is None else cells[cells[col] == panel]
        pivot = data.pivot_table(index=y, columns=x, values=value)
        xs, ys = pivot.columns.to_numpy(float), pivot.index.to_numpy(float)
        mesh = ax.pcolormesh(
            _edges(xs, log_x),
            _edges(ys, log_y),
            pivot.to_numpy(),
            cmap="RdBu",
            norm=norm,
            shading="flat",
        )
        good = pivot.to_numpy() >= 1
        gx, gy = np.meshgrid(xs, ys)
        ax.scatter(gx[good], gy[good], s=8, color="black", label=r"$n_e/n_r \geq 1$")
        for start, end in moves:
            ax.annotate(
                "",
                xy=end,
                xytext=start,
                arrowprops={"arrowstyle": "->", "color": "black", "lw": 1.5},
            )
            ax.plot(*start, marker="o", color="black", ms=5)
        if log_x:
            ax.set_xscale("log")
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel(y.replace("_", " "))
        if panel is not None:
            ax.set_title(f"{col.replace('lam', 'λ').replace('_', ' ')} = {panel:g}")
    axes[0, 0].legend(loc="lower left", fontsize=7)
    fig.colorbar(mesh, ax=axes[0].tolist(), label=r"$n_e / n_r$")
    return fig


def memory_curve(summary: pd.DataFrame):
    """Effective sample size ``ratio`` against the memory ``K`` (columns ``K, ratio``)."""
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    ax.plot(summary["K"], summary["ratio"], "o-", color="C0")
    ax.axhline(1.0, color="0.5", lw=0.8, ls="--", label="$n_e = n_r$")
    ax.set_xscale("log", base=2)
    ax.set_xticks(summary["K"], [str(k) for k in summary["K"]])
    ax.set_xlabel("K (most recent models used)")
    ax.set_ylabel(r"$n_e / n_r$")
    ax.legend(fontsize=8)
    return fig


def limit_curves(cells: pd.DataFrame, *, x: str, hue: str, col: str, y: str = "limit"):
    """Limiting distance against a setting, one line per ``hue``, one panel per ``col``."""
    panels = sorted(cells[col].unique(), reverse=True)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.8 * len(panels), 3.3), sharey=True, squeeze=False
    )
    colours = dict(
        zip(
            sorted(cells[hue].unique()),
            sns.color_palette("mako", n_colors=cells[hue].nunique()),
            strict=True,
        )
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        for value, group in cells[cells[col] == panel].groupby(hue):
            group = group.sort_values(x)
            ax.plot(
                group[x], group[y], "o-", ms=3, color=colours[value], label=f"{hue} = {value:g}"
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(x)
        name = "λ" if col == "lam" else col
        ax.set_title(f"{name} = {panel:g}")
    axes[0, 0].set_ylabel(r"limiting $W_2^2$ to $P_r$")
    axes[0, -1].legend(fontsize=8)
    return fig


def density_grid(
    real: np.ndarray,
    snapshots: dict,
    *,
    threshold: float | None = None,
    extent=((-3.5, 3.5), (-2.5, 9.0)),
    bins: int = 70,
):
    """2-D histograms (log density) of real samples and of each generation's samples.

    Parameters
    ----------
    real : ndarray, shape (n, 2)
        Drawn first, as the reference panel.
    snapshots : dict
        Generation to samples of shape ``(m, 2)``, one panel each.
    threshold : float, optional
        A horizontal dashed line at this value of the second coordinate (for example the real
        99% quantile that :func:`madutils.metrics.tails.tail_share` counts beyond).
    extent : pair of (low, high)
        Axis ranges of the histograms.
    """
    panels = {"real": real, **{f"generation {g}": x for g, x in sorted(snapshots.items())}}
    fig, axes = plt.subplots(
        1, len(panels), figsize=(2.3 * len(panels), 2.6), sharex=True, sharey=True, squeeze=False
    )
    edges = [np.linspace(low, high, bins + 1) for low, high in extent]
    for ax, (title, samples) in zip(axes[0], panels.items(), strict=True):
        counts, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=edges)
        ax.pcolormesh(edges[0], edges[1], np.log1p(counts.T), cmap="rocket_r", rasterized=True)
        if threshold is not None:
            ax.axhline(threshold, color="C0", lw=0.8, ls="--")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("$x_1$")
    axes[0, 0].set_ylabel("$x_2$")
    return fig


def _tile(images: np.ndarray, per_row: int) -> np.ndarray:
    """Tile ``(N, C, H, W)`` images into one array, ``per_row`` per row, 1-pixel gaps: shape
    ``(rows, cols)`` for grey images (gaps 0, white in the inverted grey map), ``(rows, cols,
    3)`` for colour ones (gaps 1, white)."""
    n, channels, h, w = images.shape
    rows = -(-n // per_row)
    shape = (rows * (h + 1) - 1, per_row * (w + 1) - 1)
    canvas = np.zeros(shape) if channels == 1 else np.ones((*shape, channels))
    for i, image in enumerate(images):
        r, c = divmod(i, per_row)
        cell = image[0] if channels == 1 else np.moveaxis(image, 0, -1)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = cell
    return canvas


def _show_images(ax, images, per_row: int) -> None:
    """Draw images ``(N, C, H, W)`` in [0, 1] tiled on ``ax``: grey dark on white, colour as
    it is."""
    images = np.asarray(images, dtype=float)
    if images.shape[1] == 1:
        ax.imshow(_tile(images, per_row), cmap="gray_r", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(np.clip(_tile(images, per_row), 0.0, 1.0), interpolation="nearest")


def image_panels(panels: dict, *, per_row: int, titles: dict | None = None, ncols: int = 4):
    """Image grids side by side, one panel per entry of ``panels``: grey images dark on white,
    colour images as they are.

    Parameters
    ----------
    panels : dict
        Panel key to images of shape ``(N, C, H, W)``, ``C`` 1 or 3, with values in [0, 1]
        (array or tensor).
    per_row : int
        Images per row inside a panel (the sample panels put one class per row).
    titles : dict, optional
        Panel key to title (default: the key).
    ncols : int
        Panels per figure row.
    """
    keys = list(panels)
    ncols = min(ncols, len(keys))
    nrows = -(-len(keys) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.7 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, key in zip(axes.flat, keys, strict=False):
        _show_images(ax, panels[key], per_row)
        ax.set_title((titles or {}).get(key, str(key)), fontsize=9)
    return fig


def radial_spectra(frame: pd.DataFrame, *, col: str | None = None):
    """Radial power spectra of the samples against the real images', one line per generation.

    Parameters
    ----------
    frame : pandas.DataFrame
        As :func:`madutils.analysis.images.generation_spectra` returns it (columns
        ``generation, radius, log_ratio``), for one or several loops.
    col : str, optional
        A column of ``frame`` with one panel per value (the loop, say).
    """
    panels = list(dict.fromkeys(frame[col])) if col else [None]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.4 * len(panels), 2.9), sharey=True, squeeze=False
    )
    generations = sorted(frame["generation"].unique())
    colours = sns.color_palette("viridis", n_colors=len(generations))
    for ax, panel in zip(axes[0], panels, strict=True):
        part = frame if panel is None else frame[frame[col] == panel]
        for colour, generation in zip(colours, generations, strict=True):
            rows = part[part["generation"] == generation].sort_values("radius")
            ax.plot(
                rows["radius"], rows["log_ratio"], color=colour, label=f"generation {generation}"
            )
        ax.axhline(0.0, color="0.5", lw=0.8, ls="--")
        ax.set_xlabel("radial frequency (cycles per image)")
        ax.set_title("" if panel is None else str(panel), fontsize=9)
    axes[0, 0].set_ylabel("log power, samples / real")
    axes[0, -1].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def zoom_and_spectra(zooms: dict, spectra: dict, *, titles: dict | None = None):
    """One column per generation: a sample enlarged pixel for pixel above the mean 2-D power
    spectrum of that generation's samples (log scale, zero frequency at the centre).

    Parameters
    ----------
    zooms : dict
        Key (a generation) to one image ``(C, H, W)`` in [0, 1].
    spectra : dict
        The same keys to arrays ``(S, S)`` (:func:`madutils.analysis.images.mean_power_spectra`).
    titles : dict, optional
        Key to column title (default: the key).
    """
    keys = list(zooms)
    fig, axes = plt.subplots(2, len(keys), figsize=(2.2 * len(keys), 4.6), squeeze=False)
    logs = {k: np.log10(np.maximum(np.asarray(spectra[k], dtype=float), 1e-12)) for k in keys}
    low = min(float(np.percentile(v, 5)) for v in logs.values())
    high = max(float(v.max()) for v in logs.values())
    for j, key in enumerate(keys):
        _show_images(axes[0, j], np.asarray(zooms[key])[None], 1)
        axes[0, j].set_title((titles or {}).get(key, str(key)), fontsize=9)
        mesh = axes[1, j].imshow(logs[key], cmap="magma", vmin=low, vmax=high)
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("one sample, zoomed", fontsize=8)
    axes[1, 0].set_ylabel("mean power spectrum", fontsize=8)
    fig.colorbar(mesh, ax=axes[1, :].tolist(), shrink=0.8, label="log10 power")
    return fig


def embedding_scatter(frame: pd.DataFrame, *, col: str = "generation", row: str | None = "run"):
    """t-SNE map of real (grey) and synthetic (coloured by class) features, one panel per set.

    ``frame`` as :func:`madutils.analysis.images.feature_embedding` returns it: columns
    ``x, y, label, run, generation``; the real points (``run == "real"``) are drawn in grey
    behind every panel.
    """
    real = frame[frame["run"] == "real"]
    synthetic = frame[frame["run"] != "real"]
    cols = sorted(synthetic[col].unique())
    rows = list(dict.fromkeys(synthetic[row])) if row else [None]
    fig, axes = plt.subplots(
        len(rows),
        len(cols),
        figsize=(2.5 * len(cols), 2.5 * len(rows)),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    palette = sns.color_palette("tab10", n_colors=max(10, int(frame["label"].max()) + 1))
    for i, row_value in enumerate(rows):
        for j, col_value in enumerate(cols):
            ax = axes[i, j]
            part = synthetic[synthetic[col] == col_value]
            if row:
                part = part[part[row] == row_value]
            ax.scatter(real["x"], real["y"], s=3, color="0.82", rasterized=True)
            ax.scatter(
                part["x"],
                part["y"],
                s=4,
                c=[palette[k] for k in part["label"]],
                rasterized=True,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            title = f"{col} {col_value}"
            ax.set_title(title if not row else f"{row_value}, {title}", fontsize=8)
    return fig


def _edges(centres: np.ndarray, log: bool) -> np.ndarray:
    values = np.log10(centres) if log else centres
    if len(values) == 1:
        edges = np.array([values[0] - 0.5, values[0] + 0.5])
    else:
        mids = (values[1:] + values[:-1]) / 2
        edges = np.concatenate([[2 * values[0] - mids[0]], mids, [2 * values[-1] - mids[-1]]])
    return 10**edges if log else edges


def save_figure(fig, output_dir: str | Path, name: str) -> None:
    """Save ``fig`` as ``<output_dir>/figures/<name>.png``, and what it shows as ``<name>.json``.

    The JSON record (:func:`figure_record`) lets a test check a built book's figures without
    reading pixels. Returns nothing, so that a notebook cell ending with this call shows only
    the figure.
    """
    path = Path(output_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    record = json.dumps(figure_record(fig), indent=1) + "\n"
    atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(record))


def figure_record(fig) -> dict:
    """What a figure draws, counted per panel: lines, and bands filled between two curves.

    A band of :func:`metric_curves` (a spread across replicates) is a filled area between two
    curves that is wider than nothing at two x positions or more: seaborn also fills a
    zero-width area for a single replicate, and an image run's generation 0 alone has the spread
    of its real sets. The real-versus-real floor, a horizontal span, is not counted.

    Returns
    -------
    dict
        ``{"panels": [{"title": str, "lines": int, "bands": int}, ...]}``.
    """
    from matplotlib.collections import PolyCollection  # what fill_between draws

    return {
        "panels": [
            {
                "title": ax.get_title(),
                "lines": len(ax.get_lines()),
                "bands": sum(
                    isinstance(c, PolyCollection) and _wide_points(c) >= 2 for c in ax.collections
                ),
            }
            for ax in fig.axes
        ]
    }


def _wide_points(collection) -> int:
    """At how many x positions of its vertices a filled area has a vertical extent."""
    wide = set()
    for path in collection.get_paths():
        xy = path.vertices[np.isfinite(path.vertices).all(axis=1)]
        for x in np.unique(xy[:, 0]):
            y = xy[xy[:, 0] == x, 1]
            if y.max() > y.min():
                wide.add(float(x))
    return len(wide)
