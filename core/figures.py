"""The thesis' figures, redrawn for any source (matplotlib, the optional `reproduce` extra).

- Figure 3: latency per architecture on two devices (the thesis: Jetson Nano vs T4), on a log axis,
  architectures ordered by their latency on the first one. Appendix A holds only the Nano's
  latencies, so for the `thesis` source alone Figure 3 shows one device and says so.
- Figure 4 a-e: 2-D Pareto fronts, (a) latency, (b) power, (c) parameters against accuracy,
  (d) latency and (e) power against parameters. Every row is a point coloured by its initial
  channel count (the three clusters the thesis points out); front rows are filled and joined by
  the front's staircase, dominated rows are hollow. Axes carry units; the caption names the
  source, what its figures are (`core.study.source_note`) and the front's size.

`draw_figures(store, out_dir, source=..., device=..., vs_device=..., fmt=...)` writes
`figure3.<fmt>`, `figure4a.<fmt>` ... `figure4e.<fmt>` and `figure4.<fmt>` (all five panels) and
returns what it wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InputError, OperationFailed
from core.reference import MEASURED_SOURCE, THESIS_SOURCE

FORMATS = ("png", "svg", "pdf")
LABELS = {
    "accuracy": "Accuracy (%)",
    "params_m": "Parameters (M)",
    "latency_s": "Latency (s per batch)",
    "power_w": "Power (W)",
}
# (panel, x, y) as the thesis' caption: "(a) latency, (b) power, (c) parameter size compared to
# accuracy and (d) latency, (e) power compared to parameter size".
PANELS = (("a", "latency_s", "accuracy"), ("b", "power_w", "accuracy"), ("c", "params_m", "accuracy"),
          ("d", "latency_s", "params_m"), ("e", "power_w", "params_m"))
DIRECTION = {"accuracy": "max", "params_m": "min", "latency_s": "min", "power_w": "min"}
_MARKERS = ("o", "s", "^", "D", "v", "P")


def source_rows_or_shipped(store, source: str) -> list[dict[str, Any]]:
    """A source's rows; the `thesis` source falls back to the shipped Appendix A when the store
    has not been initialised (so figures and reports of the thesis need no `klmtui init`)."""
    from core.study import source_rows

    if source == THESIS_SOURCE and store is not None and not store.find("results", source=THESIS_SOURCE):
        return _shipped_thesis()
    if store is None:
        if source != THESIS_SOURCE:
            raise InputError(f"source {source!r} needs a store")
        return _shipped_thesis()
    return [dict(r) for r in source_rows(store, source)]


def _shipped_thesis() -> list[dict[str, Any]]:
    from core.reference import thesis_results

    return [dict(r) for r in thesis_results()]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise OperationFailed("figures need matplotlib: pip install 'klmtui[reproduce]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _caption(source: str, note: str, extra: str = "") -> str:
    text = f"Source: {source}. {note[0].upper() + note[1:]}."
    return f"{text} {extra}".strip()


def _note(source: str) -> str:
    from core.study import source_note

    note = source_note(source)
    if source == THESIS_SOURCE:
        note += "; latency and power: Jetson Nano, batch 64 (thesis Appendix A)"
    return note


def draw_panel(ax, rows: list[dict], x: str, y: str, title: str = "") -> tuple[int, int]:
    """One 2-D front on `ax`; (front size, rows drawn)."""
    from core.pareto import Objective, front_2d

    ox, oy = Objective(x, DIRECTION[x]), Objective(y, DIRECTION[y])
    result = front_2d(rows, ox, oy)
    channels = sorted({int(r["channels"]) for r in result.rows})
    colours = {c: f"C{i}" for i, c in enumerate(channels)}
    for i, c in enumerate(channels):
        mine = [r for r in result.rows if int(r["channels"]) == c]
        on = [r for r in mine if r["on_front"]]
        off = [r for r in mine if not r["on_front"]]
        marker = _MARKERS[i % len(_MARKERS)]
        ax.scatter([r[x] for r in off], [r[y] for r in off], marker=marker, facecolors="none",
                   edgecolors=colours[c], linewidths=1.0, s=30, label=f"C = {c}")
        ax.scatter([r[x] for r in on], [r[y] for r in on], marker=marker, color=colours[c], s=36,
                   label=None if off else f"C = {c}")
    front = result.front
    if front:
        xs: list[float] = []
        ys: list[float] = []
        for r in front:  # a staircase through the front, best x first
            if xs:
                xs.append(r[x])
                ys.append(ys[-1])
            xs.append(r[x])
            ys.append(r[y])
        ax.plot(xs, ys, color="black", linewidth=0.8, linestyle="--", zorder=0, label="Pareto front")
    ax.set_xlabel(LABELS.get(x, x) + (" ↓" if DIRECTION[x] == "min" else " ↑"))
    ax.set_ylabel(LABELS.get(y, y) + (" ↑" if DIRECTION[y] == "max" else " ↓"))
    ax.set_title(f"{title} {len(front)} of {len(result.rows)} on the front".strip(), fontsize=9)
    ax.grid(True, linewidth=0.3, alpha=0.5)
    return len(front), len(result.rows)


@dataclass
class Written:
    name: str
    path: Path
    rows: int
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"figure": self.name, "file": str(self.path), "rows": self.rows, "note": self.note}


def _latencies(rows: list[dict]) -> dict[str, float]:
    return {r["arch_id"]: float(r["latency_s"]) for r in rows if r.get("latency_s") is not None}


def _second_series(store, name: str) -> tuple[str, list[dict]]:
    """`--vs-device B`: the benchmarks on device B (`measured:B`), or a source named B (e.g. the T4
    figures imported with `import-results t4.csv --source t4`)."""
    from core.study import source_names

    names = source_names(store) if store is not None else []
    for candidate in (f"{MEASURED_SOURCE}:{name}", name):
        if candidate in names:
            return candidate, source_rows_or_shipped(store, candidate)
    raise InputError(f"--vs-device {name!r}: no benchmarks on a device {name!r} and no source of that name")


def draw_figures(store, out_dir: str | Path, *, source: str = THESIS_SOURCE, device: str | None = None,
                 vs_device: str | None = None, fmt: str = "png") -> list[Written]:
    """Figure 3 and Figure 4 a-e of `source` into `out_dir` (see the module docstring)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown figure format {fmt!r} (known: {', '.join(FORMATS)})")
    if device and not source.startswith(MEASURED_SOURCE):
        raise InputError(f"--device {device} selects benchmarks: use it with --source measured (not {source})")
    if device:
        source = f"{MEASURED_SOURCE}:{device}"
    rows = source_rows_or_shipped(store, source)
    second = _second_series(store, vs_device) if vs_device else None  # bad input before anything is written
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"-o {out} is a file: figures go into a folder")
    out.mkdir(parents=True, exist_ok=True)
    plt = _pyplot()
    note = _note(source)
    written: list[Written] = []

    # Figure 3: latency per architecture on two devices
    first = _latencies(rows)
    if not first:
        raise InputError(f"source {source!r} has no latency figures to draw")
    series = [(source if not device else device, first)]
    extra = ""
    if second is not None:
        name, other_rows = second
        series.append((vs_device or name, _latencies(other_rows)))
        extra = f"Second series: {name} ({_note(name)})."
    elif source == THESIS_SOURCE:
        extra = "Appendix A holds only the Jetson Nano's latencies (the T4's are not published): one device shown."
    order = sorted(first, key=lambda a: (first[a], a))
    fig, ax = plt.subplots(figsize=(max(8.0, 0.16 * len(order) + 2), 4.4))
    for i, (label, values) in enumerate(series):
        xs = [k for k, a in enumerate(order) if a in values]
        ax.plot(xs, [values[order[k]] for k in xs], marker=_MARKERS[i], linestyle="-", linewidth=0.8,
                markersize=4, label=label)
    ax.set_yscale("log")
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    shown = [v for _, vals in series for v in vals.values() if v > 0]
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))
    # minor tick labels only within one decade (more would overlap)
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2g") if max(shown) < 10 * min(shown) else NullFormatter())
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(order, rotation=90, fontsize=6)
    ax.set_xlabel("Architecture (K-L-M@C), by latency on " + series[0][0])
    ax.set_ylabel("Latency (s per batch, log scale)")
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    ax.legend(fontsize=8)
    ax.set_title("Figure 3: latency per architecture" + (" on two devices" if vs_device else ""), fontsize=10)
    caption = _caption(source, note, extra)
    written.append(_save(plt, fig, out / f"figure3.{fmt}", caption, len(first), 6.5, 0.07, 150))

    # Figure 4 a-e, one file each and all five together
    combined, axes = plt.subplots(2, 3, figsize=(13.5, 8.2))
    flat = list(axes.flat)
    for (panel, x, y), cax in zip(PANELS, flat):
        fig, ax = plt.subplots(figsize=(5.2, 4.2))
        _, n = draw_panel(ax, rows, x, y, f"({panel})")
        ax.legend(fontsize=7, loc="best")
        cap = _caption(source, note, f"Front over {x}:{DIRECTION[x]}, {y}:{DIRECTION[y]}, plain dominance.")
        written.append(_save(plt, fig, out / f"figure4{panel}.{fmt}", cap, n, 5.5, 0.09, 150))
        draw_panel(cax, rows, x, y, f"({panel})")
    handles, labels = flat[0].get_legend_handles_labels()
    flat[-1].axis("off")
    flat[-1].legend(handles, labels, loc="center", fontsize=10, title="initial channels")
    combined.suptitle("Figure 4: 2-D Pareto fronts (filled: on the front; hollow: dominated)", fontsize=12)
    cap = _caption(source, note, "Plain dominance, no tolerance.")
    written.append(_save(plt, combined, out / f"figure4.{fmt}", cap, len(rows), 8, 0.04, 120, top=0.97))
    return written


def _save(plt, fig, path: Path, caption: str, rows: int, size: float, bottom: float, dpi: int,
          top: float = 1.0) -> Written:
    """The caption under the figure, then the file."""
    fig.text(0.01, 0.005, caption, fontsize=size, wrap=True, va="bottom")
    fig.tight_layout(rect=(0, bottom, 1, top))
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Written(path.stem, path, rows, caption)
