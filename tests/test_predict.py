"""issue 10: `klmtui predict` / `plan` / `pareto --with-predicted` and core.predict.

Known structure (a synthetic latency law the family can express, with noise), the thesis'
Appendix A (fit on a subset, check held-out error and interval coverage), and the CLI contract.
"""

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from core.arch import Arch
from core.counting import block_macs, count_macs
from core.predict import CANDIDATES, MIN_ROWS, features, fit_target, plan, t_quantile
from tests.fixtures.cli import assert_one_line_error

APPENDIX_A = Path(__file__).resolve().parents[1] / "core" / "reference" / "thesis_appendix_a.csv"


def appendix_rows():
    rows = list(csv.DictReader(APPENDIX_A.open()))
    return [(Arch(int(r["K"]), int(r["L"]), int(r["M"]), int(r["channels"])), float(r["latency_s"]),
             float(r["power_w"])) for r in rows]


def evaluate(model, held_out):
    errors, inside = [], 0
    for arch, truth in held_out:
        value, low, high = model.predict(features(arch))
        assert low < value < high
        errors.append(abs(value / truth - 1))
        inside += low <= truth <= high
    return float(np.mean(errors)), float(np.max(errors)), inside / len(held_out)


def test_block_macs_sum_to_the_analytic_count():
    for arch in (Arch(1, 1, 1, 8), Arch(6, 6, 6, 36), Arch(9, 3, 6, 12)):
        parts = block_macs(arch)
        assert sum(parts) == count_macs(arch) and all(p > 0 for p in parts)


def test_t_quantile_matches_tables():
    # Student's t, 95th percentile (two-sided 90%), from any statistics table
    for dof, expected in ((1, 6.314), (2, 2.920), (3, 2.353), (5, 2.015), (10, 1.812), (30, 1.697)):
        assert abs(t_quantile(0.95, dof) - expected) / expected < 0.01


def test_known_structure_is_recovered_with_honest_intervals():
    """latency = a + per-block cost x cells x channels^2 (a law `cells x channels` cannot express
    exactly, the log and MACs models can approximate), 1% noise: predictions within a few %, and
    the 90% interval covers about 90% of fresh architectures."""
    rng = random.Random(5)

    def law(a: Arch) -> float:
        c = a.channels
        return 0.05 + 1e-5 * c * c * (3.0 * a.K + 1.6 * a.L + 0.9 * a.M) + 0.004 * c

    grid = [Arch(k, l, m, c) for k in range(1, 10) for l in range(1, 10) for m in range(1, 10)
            for c in (12, 24, 36) if 8 <= k + l + m <= 20]
    rng.shuffle(grid)
    train, test = grid[:30], grid[30:330]
    model = fit_target("latency_s", [(features(a), law(a) * (1 + rng.gauss(0, 0.01))) for a in train])
    truth = [(a, law(a) * (1 + rng.gauss(0, 0.01))) for a in test]
    mape, worst, coverage = evaluate(model, truth)
    assert mape < 0.03 and worst < 0.12, (model.describe(), mape, worst)
    assert 0.75 <= coverage <= 1.0, (model.describe(), coverage)
    # the noise-free law of a model in the family is found (near) exactly
    exact = fit_target("power_w", [(features(a), 3.5 + 0.02 * a.channels) for a in train])
    assert exact.fit.candidate.columns[:2] == ("one", "C") and exact.fit.loo_mape < 1e-9


def _subset(rows, pick):
    train = [r for i, r in enumerate(rows) if i in pick]
    test = [r for i, r in enumerate(rows) if i not in pick]
    return train, test


def test_appendix_a_held_out_error_and_coverage():
    """Fit on 12 of the 54 rows (4 per channel count, spread over the triples), predict the 42."""
    rows = appendix_rows()
    by_channel = {c: [i for i, r in enumerate(rows) if r[0].channels == c] for c in (12, 24, 36)}
    pick = set()
    for offset, c in enumerate((12, 24, 36)):
        pick |= {by_channel[c][j] for j in range(offset, 18, 5)[:4]}
    assert len(pick) == 12
    train, test = _subset(rows, pick)
    lat = fit_target("latency_s", [(features(a), y) for a, y, _ in train])
    mape, worst, coverage = evaluate(lat, [(a, y) for a, y, _ in test])
    assert mape <= 0.015 and worst <= 0.05 and coverage >= 0.75, (lat.describe(), mape, worst, coverage)
    power = fit_target("power_w", [(features(a), p) for a, _, p in train])
    mape, worst, coverage = evaluate(power, [(a, p) for a, _, p in test])
    assert mape <= 0.02 and coverage >= 0.75, (power.describe(), mape, worst, coverage)
    # the two targets choose their models independently (a latency model is not a power model)
    assert lat.fit.candidate != power.fit.candidate


def test_appendix_a_other_subsets_on_average():
    """Robustness, not tuning: 20 seeded random 12-row subsets (4 per channel count)."""
    rows = appendix_rows()
    rng = random.Random(11)
    by_channel = {c: [i for i, r in enumerate(rows) if r[0].channels == c] for c in (12, 24, 36)}
    results = {"latency_s": [], "power_w": []}
    for _ in range(20):
        pick = {i for v in by_channel.values() for i in rng.sample(v, 4)}
        train, test = _subset(rows, pick)
        for col, target in ((1, "latency_s"), (2, "power_w")):
            model = fit_target(target, [(features(r[0]), r[col]) for r in train])
            results[target].append(evaluate(model, [(r[0], r[col]) for r in test]))
    lat = np.array(results["latency_s"])
    power = np.array(results["power_w"])
    assert lat[:, 0].mean() <= 0.012 and lat[:, 1].mean() <= 0.04 and lat[:, 2].mean() >= 0.85, lat.mean(axis=0)
    assert power[:, 0].mean() <= 0.02 and power[:, 2].mean() >= 0.8, power.mean(axis=0)


def test_too_few_rows_is_an_input_error():
    from core.errors import InputError

    rows = appendix_rows()[:MIN_ROWS - 1]
    with pytest.raises(InputError, match="at least"):
        fit_target("latency_s", [(features(a), y) for a, y, _ in rows])
    with pytest.raises(InputError, match="0 row"):
        fit_target("power_w", [(features(a), None) for a, _, _ in appendix_rows()])


def test_plan_prefers_informative_architectures():
    rows = appendix_rows()
    model = fit_target("latency_s", [(features(a), y) for a, y, _ in rows])
    feats = {a.id: features(a) for a, _, _ in rows}
    measured = [a.id for a, _, _ in rows[:3]]
    picked = plan(feats, measured, 6, model)
    assert len(picked) == len(set(picked)) == 6 and not set(picked) & set(measured)
    assert len({feats[a]["C"] for a in picked}) >= 2  # a design spreads over the channel counts


def test_candidates_are_small():
    assert len(CANDIDATES) <= 12 and all(len(c.columns) <= 9 for c in CANDIDATES)


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def study(cli):
    assert cli("init").returncode == 0
    return cli


def test_predict_json_contract(study):
    r = study("predict", "--target", "latency_s", "--target", "power_w", "--target", "energy_j", "--json")
    assert r.returncode == 0, r.stderr
    rows = r.json()
    assert {tuple(sorted(row)) for row in rows} == {tuple(sorted(
        ("arch", "K", "L", "M", "channels", "target", "value", "low", "high", "measured")))}
    assert len(rows) == 57 * 3  # every architecture in the store, every target
    by = {(row["arch"], row["channels"], row["target"]): row for row in rows}
    six = by[("6-6-6", 36, "latency_s")]
    assert six["measured"] == 1.87 and six["low"] < six["value"] < six["high"]
    assert abs(six["value"] / 1.87 - 1) < 0.03
    new = by[("5-5-8", 24, "power_w")]
    assert new["measured"] is None and 3.5 < new["value"] < 5.5
    energy = by[("6-6-6", 36, "energy_j")]
    assert abs(energy["measured"] - 4.7 * 1.87 / 64) < 1e-9


def test_predict_table_names_the_model(study):
    r = study("predict")
    assert r.returncode == 0, r.stderr
    assert "5-5-8" in r.stdout and "predicted from thesis" in r.stdout and "model latency_s:" in r.stdout


def test_predict_with_one_row_or_an_unmeasured_target_is_one_line_exit_2(study, tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("K,L,M,channels,accuracy,params_m,latency_s,power_w\n6,6,6,36,97.0,2.7,1.87,\n")
    assert study("import-results", one, "--source", "one").returncode == 0
    line = assert_one_line_error(study("predict", "--source", "one"), 2)
    assert "latency_s" in line and "1 row" in line
    line = assert_one_line_error(study("predict", "--source", "thesis", "--target", "power_w", "--device", "x"), 2)
    assert "not both" in line
    few = tmp_path / "few.csv"
    few.write_text("K,L,M,channels,accuracy,params_m,latency_s,power_w\n"
                   + "".join(f"{k},{18 - k - 4},4,24,96.0,1.0,{0.5 + k / 10},\n" for k in range(2, 9)))
    assert study("import-results", few, "--source", "few").returncode == 0
    assert study("predict", "--source", "few", "--json").returncode == 0
    line = assert_one_line_error(study("predict", "--source", "few", "--target", "power_w"), 2)
    assert "power_w" in line and "0 row" in line
    assert_one_line_error(study("predict", "--device", "nano"), 2)
    assert_one_line_error(study("predict", "--target", "accuracy"), 2)


def test_plan_json_and_total(study):
    r = study("plan", "4", "--device", "local", "--protocol", "thesis", "--json")
    assert r.returncode == 0, r.stderr
    rows = r.json()
    assert len(rows) == 4 and len({row["arch_id"] for row in rows}) == 4
    for row in rows:  # thesis protocol: 2 passes x 50 x 50 batches at the predicted latency
        assert row["device_seconds"] == pytest.approx(2 * 2500 * row["latency_s"])
        assert row["predicted_from"] == "thesis"
    r = study("plan", "2", "--device", "local")
    assert r.returncode == 0 and "total predicted device time" in r.stdout
    assert_one_line_error(study("plan", "2", "--device", "nope"), 2)


def test_pareto_with_predicted_marks_and_counts(study):
    objectives = ("--objective", "params_m:min", "--objective", "latency_s:min", "--objective", "power_w:min")
    r = study("pareto", *objectives, "--with-predicted", "--json")
    assert r.returncode == 0, r.stderr
    plain = study("pareto", *objectives, "--json").json()
    rows = r.json()
    assert all(row["predicted"] == [] for row in rows if row["arch"] != "5-5-8")
    for row in rows:
        if row["predicted"]:
            assert set(row["predicted"]) == {"latency_s", "power_w"} and row["arch"] == "5-5-8"
            low, high = row["intervals"]["latency_s"]
            assert low < row["latency_s"] < high
    assert len(rows) >= len([p for p in plain if p["arch"] != "5-5-8"])
    table = study("pareto", *objectives, "--with-predicted")
    assert table.returncode == 0 and "3 row(s) with predicted figures" in table.stdout
    assert "~" in table.stdout
    assert json.loads(study("pareto", "--json").stdout)  # without the flag: unchanged shape


def test_tui_home_table_shows_predictions_only_when_asked_and_marked(tmp_path):
    import asyncio

    from core.store import Store
    from core.study import init_study
    from klmtui.app import KlmtuiApp
    from klmtui.widgets.arch_table import row_cells

    init_study(Store(tmp_path / "runs.json"))
    app = KlmtuiApp(tmp_path / "runs.json")

    async def body():
        async with app.run_test(size=(160, 50)) as pilot:
            table = None
            for _ in range(600):
                await pilot.pause(0.1)
                table = app.screen.query_one("#arch-table")
                if table.rows_by_id:
                    break
            assert app.screen.source == "thesis"
            new = table.rows_by_id["5-5-8@36"]
            assert new.latency_s is None and not new.predicted  # off by default: nothing invented
            await pilot.press("w")
            await pilot.pause(0.3)
            new = app.screen.query_one("#arch-table").rows_by_id["5-5-8@36"]
            assert set(new.predicted) == {"latency_s", "power_w", "energy_mj"}
            low, high = new.predicted["latency_s"]
            assert low < new.latency_s < high and 1.5 < new.latency_s < 2.0
            cells = [str(c) for c in row_cells(new, False)]
            assert any(c.startswith("~") and "%" in c for c in cells)
            measured = app.screen.query_one("#arch-table").rows_by_id["6-6-6@36"]
            assert not measured.predicted and measured.latency_s == 1.87
            await pilot.press("w")
            await pilot.pause(0.3)
            assert app.screen.query_one("#arch-table").rows_by_id["5-5-8@36"].latency_s is None

    asyncio.run(body())


def test_tui_pareto_screen_marks_predicted_rows(tmp_path):
    import asyncio

    from core.store import Store
    from core.study import init_study
    from klmtui.app import KlmtuiApp

    init_study(Store(tmp_path / "runs.json"))
    app = KlmtuiApp(tmp_path / "runs.json")

    async def body():
        async with app.run_test(size=(200, 60)) as pilot:
            for _ in range(600):
                await pilot.pause(0.1)
                if app.screen.query("#arch-table") and app.screen.query_one("#arch-table").rows_by_id:
                    break
            await pilot.press("p")
            for _ in range(100):
                await pilot.pause(0.1)
                if type(app.screen).__name__ == "ParetoScreen" and app.screen.result is not None:
                    break
            screen = app.screen
            screen.query_one("#objectives").value = "params_m:min latency_s:min power_w:min"
            screen.recompute()
            assert not any(r.get("predicted") for r in screen.result.rows)
            await pilot.press("w")
            await pilot.pause(0.3)
            guessed = [r for r in screen.result.rows if r.get("predicted")]
            assert {r["id"] for r in guessed} == {"5-5-8@12", "5-5-8@24", "5-5-8@36"}
            assert "3 row(s) with predicted figures" in str(screen.query_one("#front-description").render())
            table = screen.query_one("#front-table")
            row = table.get_row("5-5-8@36")
            assert any(str(c).startswith("~") for c in row)

    asyncio.run(body())


def _bench_record(i: int, arch: Arch, device: str, latency: float, power=None) -> dict:
    from core.reference import arch_fields

    return {"id": f"b-{i:08x}", "arch_id": arch.id, **arch_fields(arch), "device": device, "status": "done",
            "protocol": "adaptive", "timing": "sync", "batch": 64, "latency_s": latency, "power_w": power,
            "created": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}", "finished": f"2026-01-01T01:{i // 60:02d}:{i % 60:02d}"}


def test_predict_across_devices_uses_the_other_device_latency(study):
    """Known structure: device `fast` runs every architecture at 0.21 x nano^0.9 (+-0.3% noise);
    with 8 architectures benchmarked on `fast` and all 54 on `nano` (the thesis' figures),
    `--from-device nano` predicts the other 46 to well under 2%."""
    from core.store import Store

    store = Store(study.store)
    rng = random.Random(2)
    rows = appendix_rows()
    law = {a.id: 0.21 * y ** 0.9 for a, y, _ in rows}
    on_fast = {a.id for a, _, _ in rng.sample(rows, 8)}
    with store.transaction() as tx:
        for i, (a, y, p) in enumerate(rows):
            tx.insert("benchmarks", _bench_record(i, a, "nano", y, p))
            if a.id in on_fast:
                tx.insert("benchmarks", _bench_record(100 + i, a, "fast", law[a.id] * (1 + rng.gauss(0, 0.003))))
    r = study("predict", "--device", "fast", "--from-device", "nano", "--json")
    assert r.returncode == 0, r.stderr
    preds = {(p["arch"], p["channels"]): p for p in r.json()}
    assert len(preds) == 54  # every architecture measured on nano (5-5-8 is not: no feature)
    errors = [abs(p["value"] / law[f"{arch}@{c}"] - 1) for (arch, c), p in preds.items() if f"{arch}@{c}" not in on_fast]
    assert np.mean(errors) < 0.01 and max(errors) < 0.03
    inside = [p["low"] <= law[f"{arch}@{c}"] <= p["high"] for (arch, c), p in preds.items()]
    assert np.mean(inside) >= 0.75
    table = study("predict", "--device", "fast", "--from-device", "nano")
    assert "other device" in table.stdout
    assert_one_line_error(study("predict", "--device", "fast", "--from-device", "nowhere"), 2)


def test_tui_plan_selects_the_planned_architectures(tmp_path):
    import asyncio

    from core.planning import plan_benchmarks
    from core.store import Store
    from core.study import init_study
    from klmtui.app import KlmtuiApp

    store = Store(tmp_path / "runs.json")
    init_study(store)
    expected = {r["arch_id"] for r in plan_benchmarks(store, "local", 5, "adaptive")["rows"]}
    app = KlmtuiApp(tmp_path / "runs.json")

    async def body():
        async with app.run_test(size=(160, 50)) as pilot:
            for _ in range(600):
                await pilot.pause(0.1)
                if app.screen.query("#arch-table") and app.screen.query_one("#arch-table").rows_by_id:
                    break
            await pilot.press("g")
            await pilot.pause(0.3)
            assert app.screen.query_one("#arch-table").selected == expected

    asyncio.run(body())
