"""Benchmark planning: what to measure next on a device, and how long a benchmark will take there.

- `plan_benchmarks(store, device, n, protocol)`: the N architectures (not yet measured on the
  device) whose measurement most reduces the latency predictor's uncertainty over the rest
  (greedy D-optimal design, core.predict.plan), each with its predicted latency and the predicted
  device time of benchmarking it under the protocol, and the total (`klmtui plan`).
- `predicted_benchmark_seconds(store, arch_id, device, protocol)`: the predicted device time of
  one benchmark, for `bench` to print before it starts and for a live ETA (None when nothing can
  be predicted: fewer than core.predict.MIN_ROWS rows anywhere).

Latency is predicted from the device's own done benchmarks when it has enough of them, else from
`source` (default `thesis`, i.e. a Jetson Nano's figures); every result says which.
"""

from __future__ import annotations

from typing import Any

from core.errors import InputError
from core.latency import Protocol
from core.predict import (
    MIN_ROWS,
    Model,
    features,
    fit_target,
    plan,
    predicted_device_seconds,
    store_archs,
    training_rows,
)
from core.schema import MEASURED_SOURCE, THESIS_SOURCE


def latency_model(store, device: str, source: str | None = None) -> tuple[Model, str]:
    """(the latency model, the source it was fitted on): the device's benchmarks, else `source`."""
    from core.study import arch_of

    names = [source] if source else [f"{MEASURED_SOURCE}:{device}", THESIS_SOURCE]
    last_error: InputError | None = None
    for name in names:
        try:
            rows = training_rows(store, name)
            return fit_target("latency_s", [(features(arch_of(r)), r.get("latency_s")) for r in rows],
                              where=f"source {name}"), name
        except InputError as exc:
            last_error = exc
    raise InputError(f"cannot plan for {device}: no source to predict latency from ({last_error}); "
                     f"benchmark at least {MIN_ROWS} architectures there or `klmtui init` for the thesis' figures")


def _protocol(protocol: Any) -> Protocol:
    if isinstance(protocol, Protocol):
        return protocol
    if isinstance(protocol, dict):
        return Protocol.from_dict(protocol)
    return Protocol(protocol)


def _check_device(store, device: str) -> None:
    if device != "local" and (not store.exists() or store.get("devices", device) is None):
        raise InputError(f"unknown device {device!r}: add it with `klmtui device add {device} --host HOST` "
                         "(or use --device local)")


def plan_benchmarks(store, device: str, n: int, protocol: Any = "adaptive", source: str | None = None,
                    power_pass: bool = True) -> dict:
    """The plan (see the module docstring): {rows, total_seconds, model, model_source}."""
    from core.study import measured_rows

    _check_device(store, device)
    proto = _protocol(protocol)
    model, model_source = latency_model(store, device, source)
    measured = {r["arch_id"] for r in measured_rows(store, device) if r.get("latency_s") is not None}
    archs = {a.id: a for a in store_archs(store)}
    feats = {arch_id: features(a) for arch_id, a in archs.items()}
    if not set(feats) - measured:
        raise InputError(f"nothing to plan: every architecture in {store.path} is measured on {device}")
    rows = []
    for arch_id in plan(feats, measured, n, model):
        a = archs[arch_id]
        value, low, high = model.predict(feats[arch_id])
        rows.append({"arch": a.triple, "arch_id": arch_id, "K": a.K, "L": a.L, "M": a.M, "channels": a.channels,
                     "latency_s": value, "low": low, "high": high,
                     "device_seconds": predicted_device_seconds(proto, value, power_pass),
                     "protocol": proto.protocol, "predicted_from": model_source})
    return {"rows": rows, "total_seconds": sum(r["device_seconds"] for r in rows),
            "model": model.describe(), "model_source": model_source}


def predicted_benchmark_seconds(store, arch_id: str, device: str, protocol: Any = "thesis",
                                power_pass: bool = True) -> float | None:
    """Predicted device time of benchmarking `arch_id` on `device` (a measured latency there wins)."""
    from core.arch import parse_arch
    from core.study import measured_rows

    proto = _protocol(protocol)
    own = {r["arch_id"]: r.get("latency_s") for r in measured_rows(store, device)}
    measured = own.get(arch_id)
    if measured:
        return predicted_device_seconds(proto, float(measured), power_pass)
    try:
        model, _ = latency_model(store, device)
    except InputError:
        return None
    return predicted_device_seconds(proto, model.predict(features(parse_arch(arch_id)))[0], power_pass)
