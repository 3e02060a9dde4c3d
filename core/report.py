"""Result tables (csv, markdown, LaTeX, plain cells for rich) and ASCII scatter plots.

The table has the shape of the thesis' Table 1 / Appendix A: architecture, initial channels,
accuracy, params, latency, power, plus the derived energy per image
(`power_w * latency_s / batch`, only where all three are known; the thesis measured with
batch 64, our benchmarks record their own batch).
"""

from __future__ import annotations

import csv
import io
import threading
from typing import Any, Iterable, Mapping, Sequence

from core.pareto import Objective, value_of

FORMATS = ("csv", "md", "latex")
_PLOT_LOCK = threading.Lock()  # plotext draws on one module-level figure

# (key, human header, decimals)
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("accuracy", "Accuracy (%)", 2),
    ("params_m", "Params (M)", 1),
    ("latency_s", "Latency (s)", 2),
    ("power_w", "Power Usage (W)", 2),
    ("energy_mj", "Energy (mJ/image)", 1),
)
CSV_FIELDS = (
    "arch_id", "K", "L", "M", "channels", "accuracy", "params_m", "latency_s", "power_w", "batch", "energy_j",
    "on_front",
)


def batch_of(row: Mapping[str, Any]) -> int | None:
    """The batch the latency was measured with: the row's own, else its source's (`extra`)."""
    batch = row.get("batch") or (row.get("extra") or {}).get("batch")
    try:
        return int(batch) if batch else None
    except (TypeError, ValueError):
        return None


def energy_per_image_j(row: Mapping[str, Any]) -> float | None:
    """Joules per image = mean power (W) x latency per batch (s) / batch, when all are known."""
    power, latency, batch = value_of(row, "power_w"), value_of(row, "latency_s"), batch_of(row)
    if power is None or latency is None or not batch:
        return None
    return power * latency / batch


def with_derived(row: Mapping[str, Any]) -> dict:
    """The row plus `batch`, `energy_j` (per image) and `energy_mj`."""
    out = dict(row)
    out["batch"] = batch_of(row)
    energy = energy_per_image_j(row)
    out["energy_j"] = energy
    out["energy_mj"] = None if energy is None else energy * 1000
    return out


def _params_decimals(rows: Sequence[Mapping[str, Any]]) -> int:
    """1 decimal when every params figure is already a multiple of 0.1M (as published), else 3."""
    values = [value_of(r, "params_m") for r in rows]
    return 1 if all(v is None or abs(v * 10 - round(v * 10)) < 1e-9 for v in values) else 3


def _fmt(value: Any, decimals: int, expand: bool = True) -> str:
    """The house rule (core.numbers.figure): at least the column's decimals, 3 significant digits
    (a latency of 0.0242 s is `0.0242`, never `0.02`; the thesis' 0.49 stays `0.49`).
    `expand=False` for figures whose decimals are the published rounding (params): exactly those."""
    from core.numbers import figure

    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is None:
        return "-"
    return figure(float(number), decimals) if expand else f"{number:.{decimals}f}"


def format_value(column: str, value: Any, rows: Sequence[Mapping[str, Any]] = ()) -> str:
    """A cell as the tables show it: the column's decimals (params: see `_params_decimals`)."""
    decimals = {key: dec for key, _, dec in COLUMNS}
    if column == "params_m":
        return _fmt(value, _params_decimals(rows) if rows else 3, expand=False)
    if column in decimals:
        return _fmt(value, decimals[column])
    return "-" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))


def arch_label(row: Mapping[str, Any]) -> str:
    """`K - L - M` as the thesis writes it (plus `/GENOTYPE` when not the default)."""
    label = f"{row['K']} - {row['L']} - {row['M']}"
    genotype = row.get("genotype")
    return label if not genotype or genotype == "SNAS_mild" else f"{label} /{genotype}"


def table_cells(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of the Table 1 shape (rows as given, derived columns added)."""
    rows = [with_derived(r) for r in rows]
    p_dec = _params_decimals(rows)
    header = ["Architecture", "Init Channels"] + [h for _, h, _ in COLUMNS]
    body = []
    for r in rows:
        cells = [arch_label(r), str(r["channels"])]
        for key, _, dec in COLUMNS:
            cells.append(_fmt(r.get(key), p_dec if key == "params_m" else dec, expand=key != "params_m"))
        body.append(cells)
    return header, body


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Machine-readable, full precision; re-importable with `import-results` (extras kept)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        r = with_derived(row)
        r.setdefault("arch_id", f"{r['K']}-{r['L']}-{r['M']}@{r['channels']}")
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_FIELDS})
    return buf.getvalue()


def to_markdown(rows: Sequence[Mapping[str, Any]], caption: str = "") -> str:
    header, body = table_cells(rows)
    right = [False, True] + [True] * len(COLUMNS)
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if r else "---" for r in right) + "|",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    if caption:
        lines += ["", caption]
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(rows: Sequence[Mapping[str, Any]], caption: str = "") -> str:
    """A `table` with a `tabular` (booktabs rules), the architecture written once per group."""
    header, body = table_cells(rows)
    lines = [
        r"\begin{table}[ht]",
        r"\centering",
        r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in header) + r" \\",
        r"\midrule",
    ]
    previous = None
    for cells in body:
        label = cells[0] if cells[0] != previous else ""
        previous = cells[0]
        lines.append(" & ".join(latex_escape(c) for c in [label, *cells[1:]]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(r"\caption{" + latex_escape(caption) + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def render(rows: Sequence[Mapping[str, Any]], fmt: str, caption: str = "") -> str:
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "md":
        return to_markdown(rows, caption)
    if fmt == "latex":
        return to_latex(rows, caption)
    raise ValueError(f"unknown format {fmt!r}; formats are {', '.join(FORMATS)}")


def scatter(
    rows: Sequence[Mapping[str, Any]],
    x: Objective,
    y: Objective,
    front_ids: set[str],
    *,
    width: int = 80,
    height: int = 22,
    title: str = "",
    theme: str | None = None,
) -> str:
    """An ASCII scatter of two columns: front rows as `●`, the other rows as `·`.

    `front_ids` are `arch_id`s (computed by the caller: the 2-D front of x and y, or any other
    front). Rows missing x or y are left out. Plain text unless a plotext `theme` is named
    (then ANSI colours, e.g. for `rich.text.Text.from_ansi`). plotext is imported here only.
    """
    import plotext as plt

    points = [(value_of(r, x.name), value_of(r, y.name), r.get("arch_id")) for r in rows]
    points = [(px, py, rid) for px, py, rid in points if px is not None and py is not None]
    others = [(px, py) for px, py, rid in points if rid not in front_ids]
    front = [(px, py) for px, py, rid in points if rid in front_ids]
    with _PLOT_LOCK:
        fig = plt.figure
        fig.clear()
        fig.plot_size(width, height)
        fig.theme(theme or "clear")
        fig.legend(active=False)
        if others:
            fig.draw(fig.signal([p[0] for p in others], [p[1] for p in others], marker="·"))
        if front:
            fig.draw(fig.signal([p[0] for p in front], [p[1] for p in front], marker="●"))
        if title:
            fig.title(title)
        fig.label(f"{x.name} ({x.direction})", axis="x")
        fig.label(f"{y.name} ({y.direction})", axis="y")
        text = fig.build().string() if theme else plt.uncolorize(str(fig.build()))
        fig.clear()
    legend = f"● Pareto front ({len(front)})   · other rows ({len(others)})"
    return text.rstrip("\n") + "\n" + legend + "\n"
