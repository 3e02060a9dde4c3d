"""`init`, `status`, `import-results`, `pareto`, `export`: the study store and its results.

Composition only: the work is in core.study (sources), core.pareto (fronts) and core.report
(tables, plots). Sources: imported ones (`thesis`, `import-results --source NAME`) and the
pseudo-source `measured` (our runs + benchmarks; `measured:DEVICE` for one device).
"""

from __future__ import annotations

from pathlib import Path

import click

from core.numbers import column_figure, counted, figure
from core.schema import MEASURED_SOURCE, THESIS_SOURCE
from klmtui.cli.common import bad_input, emit_json, pass_app, print_table, stdout_console


# --------------------------------------------------------------------------- init


@click.command("init")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as a JSON array of one object.")
@pass_app
def init(app, as_json: bool) -> None:
    """Create or update the store: sampled architectures + the thesis' Appendix A (source `thesis`).

    Idempotent; runs, benchmarks and devices are never touched.
    """
    from core.study import init_study

    store = app.store()
    counts = init_study(store)
    if as_json:
        emit_json([{"store": str(store.path), **counts}])
        return
    click.echo(
        f"{store.path}: {counts['architectures']} architectures "
        f"({counts['architectures_added']} added, {counts['architectures_updated']} updated), "
        f"{counts['results']} results "
        f"({counts['results_added']} added, {counts['results_updated']} updated)"
    )


# --------------------------------------------------------------------------- status


def _short(result: dict | None) -> str:
    if not result:
        return "-"
    parts = []
    for key, column, unit in (("accuracy", "accuracy", "%"), ("latency_s", "latency_s", "s"), ("power_w", "power_w", "W"),
                              ("energy_j", "energy_mj", "mJ/img")):
        value = result.get(key)
        if value is not None:  # core.numbers: the house rule (a measured 0.0242 s is not `0.02s`)
            parts.append(column_figure(column, value * 1000 if key == "energy_j" else value) + unit)
    return " ".join(parts) or "-"


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, one object per architecture.")
@pass_app
def status(app, as_json: bool) -> None:
    """Architectures with their runs, benchmarks and best results by source (energy per image derived)."""
    from core.schema import ACTIVE_STATUSES
    from core.study import study_status

    store = app.live_view()
    rows = study_status(store)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo(f"{store.path}: empty store; run `klmtui init` to add the sampled study", err=True)
        return
    sources = sorted({s for r in rows for s in r["results"] if s != MEASURED_SOURCE}, key=lambda s: (s != THESIS_SOURCE, s))
    columns = ["arch", "params (M)", "in thesis", "runs (done/all)", "acc % (ours)", "bench (latest)", "measured"]
    columns += sources
    table_rows = []
    for r in rows:
        runs = r["runs"]
        active = sum(runs["by_status"].get(s, 0) for s in ACTIVE_STATUSES)
        run_cell = f"{runs['by_status'].get('done', 0)}/{runs['total']}" + (f" ({active} active)" if active else "")
        latest = r["benchmarks"]["latest"]
        bench_cell = "-" if not latest else f"{latest['status']} on {latest.get('device') or ', '.join(latest.get('devices') or [])}"
        table_rows.append([
            r["id"],
            None if r["params"] is None else f"{r['params'] / 1e6:.3f}",
            {True: "yes", False: "no", None: "-"}[r["in_thesis"]],
            run_cell,
            r.get("accuracy_text"),  # e.g. 97.10+-0.10 (paper x3): one recipe, distinct seeds
            bench_cell,
            _short(r["results"].get("measured")),
            *[_short(r["results"].get(s)) for s in sources],
        ])
    print_table(f"{store.path}: {counted(len(rows), 'architecture')}", columns, table_rows)


# --------------------------------------------------------------------------- import-results


@click.command("import-results")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--source", required=True, metavar="NAME", help="Name of this results source, e.g. snas-paper.")
@click.option("--replace", is_flag=True, help="Also remove the source's rows that are not in FILE.csv.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as a JSON array of one object.")
@pass_app
def import_results(app, csv_file: Path, source: str, replace: bool, as_json: bool) -> None:
    """Import a results table (columns K,L,M,channels,accuracy,params_m,latency_s,power_w; extras kept).

    Every row is checked first; a bad row is reported by line number and nothing is imported.
    """
    from core.reference import read_results_csv
    from core.study import import_results as do_import

    records = read_results_csv(csv_file, source)
    store = app.store()
    store.view(strict=True).check()  # a bad store file (hostile, records missing keys) is reported before anything else
    counts = do_import(store, records, replace=replace, csv=csv_file.name)
    if as_json:
        emit_json([counts])
        return
    click.echo(
        f"{source}: {counts['added']} added, {counts['updated']} updated, {counts['removed']} removed "
        f"({counts['architectures_added']} new architectures) in {store.path}"
    )


# --------------------------------------------------------------------------- pareto


def _objectives(specs: tuple[str, ...]):
    from core.pareto import DEFAULT_OBJECTIVES, parse_objective

    return tuple(parse_objective(s) for s in specs) if specs else DEFAULT_OBJECTIVES


def _tolerances(specs: tuple[str, ...]) -> dict:
    from core.pareto import parse_tolerance

    return dict(parse_tolerance(s) for s in specs)


def _plot_axes(spec: str, objectives):
    """`X,Y` with optional `:max`/`:min`; directions default to the objectives', else min."""
    from core.pareto import DEFAULT_OBJECTIVES, parse_objective

    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 2 or not all(parts):
        raise bad_input(f"--plot wants two columns X,Y (e.g. latency_s,accuracy), got {spec!r}")
    known = {o.name: o for o in (*DEFAULT_OBJECTIVES, *objectives)}
    return tuple(parse_objective(p) if ":" in p else known.get(p, parse_objective(p)) for p in parts)


@click.command("pareto")
@click.option("--source", default=THESIS_SOURCE, show_default=True, metavar="NAME",
              help="Results source: thesis, an imported NAME, measured, or measured:DEVICE.")
@click.option("--objective", "objective_specs", multiple=True, metavar="NAME:max|min",
              help="Objective column and direction; repeat. Default accuracy:max params_m:min latency_s:min power_w:min.")
@click.option("--tolerance", "tolerance_specs", multiple=True, metavar="OBJ=VALUE",
              help="Tolerance per objective: absolute (accuracy=0.1) or relative (latency_s=5%). Default none.")
@click.option("--exact-params", is_flag=True, help="Use exact parameter counts instead of the source's figures.")
@click.option("--reference", "reference_specs", multiple=True, metavar="OBJ=VALUE",
              help="Reference point for the hypervolume, one per objective (table output).")
@click.option("--plot", "plot_spec", metavar="X,Y", help="Also draw X against Y with their 2-D front highlighted.")
@click.option("--with-predicted", "with_predicted", is_flag=True,
              help="Fill missing latency/power with predictions (klmtui predict), marked ~ and counted.")
@click.option("--json", "as_json", is_flag=True, help="Print the front rows as a JSON array.")
@pass_app
def pareto(app, source: str, objective_specs, tolerance_specs, exact_params: bool, reference_specs,
           plot_spec: str | None, with_predicted: bool, as_json: bool) -> None:
    """The Pareto front over one source's own figures (plain dominance unless --tolerance)."""
    from core.pareto import check_columns, front_2d, hypervolume, pareto_front, parse_reference
    from core.report import scatter, with_derived
    from core.study import source_rows, with_exact_params

    objectives = _objectives(objective_specs)
    tolerances = _tolerances(tolerance_specs)
    reference = parse_reference(reference_specs, objectives)
    axes = _plot_axes(plot_spec, objectives) if plot_spec else None
    if as_json and not (tolerances or exact_params or with_predicted or axes):
        from core.study import file_source_front

        front = file_source_front(app.live_view(), source, objectives)  # 100k imported rows: on the columns
        if front is not None:
            emit_json(_front_json(front, [o.name for o in objectives], source, with_predicted))
            return
    rows = source_rows(app.live_view(), source)
    if exact_params:
        rows = with_exact_params(rows)
    notes: list[str] = []
    if with_predicted:
        from core.predict import with_predicted as add_predictions

        rows, notes = add_predictions(app.live_store(), source, rows,
                                      [o.name for o in (*objectives, *(axes or ()))])
    rows = [with_derived(r) for r in rows]
    if not objective_specs:  # the default objectives fall back to the columns that have values, and say so
        from core.pareto import available_objectives

        objectives, dropped = available_objectives(rows, objectives)
        if dropped and objectives:
            click.echo(f"klmtui: source {source} has no values for {', '.join(dropped)}: front over "
                       f"{', '.join(o.name for o in objectives)} (--objective chooses)", err=True)
    check_columns(rows, [o.name for o in (*objectives, *(axes or ()))])
    result = pareto_front(rows, objectives, tolerances)
    names = [o.name for o in objectives]
    if as_json:
        emit_json(_front_json(result.front, names, source, with_predicted))
        return
    from rich.text import Text

    tie_ids = {r["arch_id"] for group in result.ties for r in group}
    table1 = any((r.get("extra") or {}).get("table1") for r in rows)  # the thesis' own selection
    columns = ["front", "arch", "channels", *names, "mJ/image", *(["Table 1"] if table1 else [])]
    table_rows = []
    for r in result.rows:
        mark = ("●=" if r["arch_id"] in tie_ids else "●") if r["on_front"] else ""
        guessed = set(r.get("predicted") or ())
        if guessed:
            guessed |= {"energy_mj", "energy_j"}
        cells = [Text(mark, style="bold green"), r["arch"], r["channels"],
                 *[_cell(n, r, rows, guessed) for n in names],
                 _cell("energy_mj", r, rows, guessed)]
        if table1:
            cells.append("yes" if (r.get("extra") or {}).get("table1") else "")
        table_rows.append(cells)
    title = f"source {source}: {len(result.front)} of {len(result.rows)} rows on the front"
    if with_predicted:
        from core.predict import predicted_count

        on_front = predicted_count(result.front)
        title += (f"; {predicted_count(result.rows)} row(s) with predicted figures (~, italic), "
                  f"{on_front} of them on the front")
    print_table(title, columns, table_rows, caption=_caption(result, source, exact_params, tie_ids))
    console = stdout_console()
    for note in notes:
        console.print(f"not predicted: {note}")
    if result.excluded:
        missing = ", ".join(r["arch_id"] for r in result.excluded)
        console.print(f"excluded for a missing objective value: {missing}")
    if reference:
        point = ", ".join(f"{name}={figure(value)}" for name, value in reference.items())
        console.print(f"hypervolume (reference {point}): {figure(hypervolume(result.front, objectives, reference))}",
                      highlight=False)
    if axes:
        x, y = axes
        front2 = front_2d(rows, x, y, tolerances)
        click.echo(scatter(rows, x, y, {r["arch_id"] for r in front2.front},
                           title=f"{source}: 2-D Pareto front of {x} vs {y}"))


def _front_json(front: list[dict], names: list[str], source: str, with_predicted: bool) -> list[dict]:
    """`pareto --json`: one object per front row (contract: arch, K, L, M, channels, the objectives)."""
    return [
        {"arch": r["arch"], "arch_id": r["arch_id"], "K": r["K"], "L": r["L"], "M": r["M"],
         "channels": r["channels"], "source": r.get("source", source), **{n: r.get(n) for n in names},
         **({"predicted": r.get("predicted") or [], "intervals": r.get("intervals") or {}} if with_predicted else {})}
        for r in front
    ]


def _cell(name: str, row: dict, rows, guessed: set):
    """A table cell; a predicted figure is `~value` in italics, never mistaken for a measured one."""
    from rich.text import Text

    from core.report import format_value

    text = format_value(name, row.get(name), rows)
    return Text("~" + text, style="italic yellow") if name in guessed and row.get(name) is not None else text


def _caption(result, source: str, exact_params: bool, tie_ids: set) -> str:
    from core.study import source_note

    text = f"{result.describe()} {source_note(source, exact_params)}."
    if tie_ids:
        text += " ●= marks identical points (ties)."
    return text


# --------------------------------------------------------------------------- export


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "md", "latex"]), required=True,
              help="csv (full precision, re-importable), md or latex (Table 1 / Appendix A shape).")
@click.option("--source", default=THESIS_SOURCE, show_default=True, metavar="NAME", help="Results source.")
@click.option("--front", "front_only", is_flag=True,
              help="Only the rows on the plain 4-objective Pareto front (the shape of Table 1).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE, not stdout.")
@pass_app
def export(app, fmt: str, source: str, front_only: bool, output: Path | None) -> None:
    """Export a source's results table (Table 1 / Appendix A shape, energy per image derived)."""
    from core.study import export_file, export_text

    if output is None:
        text, _ = export_text(app.live_store(), source, fmt, front_only=front_only)
        click.echo(text, nl=False)
        return
    count = export_file(app.live_store(), source, fmt, output, front_only=front_only)
    click.echo(f"wrote {count} rows to {output}", err=True)


COMMANDS: list = [init, status, import_results, pareto, export]
