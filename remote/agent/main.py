"""The benchmark agent: `python -u -m remote.agent.main ARGS`, run from the bundle folder ON the device.

Python 3.6 + torch 1.10 compatible (a Jetson Nano stays on JetPack 4.6); no store access: the
architecture comes as K, L, M, channels and genotype arguments, the weights as a plain
state_dict file (or none: initial weights, marked `weights: initial`).

Stdout carries one JSON object per line, flushed (remote.agent.events):
  hello    {pid, arch, weights, protocol, timing, images, drop_none, device, params, environment}
  latency  {pass: latency|power, run, batch, seconds, warmup[, extra], t0, t1}   one per timed batch
  power    {board_power_mw, rails, temps_c, gpu_load_pct, ram_used_mb, in_window, t_mono, power_source}
  summary  {latency_s, latency_p90_s, images_per_s, latency{...}, power_w, power{...}, ...}
  error    {error, kind}   (kind heartbeat: the host went silent, --heartbeat-timeout; exit status 1, or 130 when cancelled by SIGTERM/SIGINT/SIGHUP;
           141, silently, when stdout is gone: the host died or the link dropped)

Power (remote.agent.measure): from the INA monitors in sysfs where the board exposes them, in the
same pass as the latency (blocks alternate with the sampler on and off: power_overhead_pct), else
as the thesis did in two passes: a latency pass without tegrastats, then a power pass with
`tegrastats --interval 100` running. power_w is the mean over the timed (non-warm-up) part of
the rail chosen by --power-rail (every rail: power_rails_w); energy_j is integrated per batch.
Inference drops the genotype's `none` edges by default (`--keep-none` builds the genotype's
edge_all form and times them as the thesis' code did: they compute x*0, cost time and change
nothing); `--like-thesis` times the thesis' whole loop body (remote.agent.thesis_loop).
"""

import argparse
import os
import signal
import sys
import time

from core.latency import FIELDS, PROTOCOLS, TIMINGS, Protocol, summarize
from remote.agent import environment
from remote.agent.events import Emitter
from remote.agent.heartbeat import Watchdog
from remote.agent.measure import PASSES, SOURCES, Measurement, PowerPassStop
from remote.agent.tegrastats import check_power_rail
from remote.agent.fresh_runs import FreshRuns, Times, run_child
from remote.agent.thesis_loop import LoopTimer, like_thesis_record, like_thesis_setup, make_dataset, unpack_images
from remote.agent.timing import SyncTimer, ThesisTimer, run_adaptive, run_extra, run_thesis

AGENT_VERSION = 1


class AgentError(Exception):
    """A problem the user can act on (bad argument, unreadable weights): one clear message."""


class Cancelled(BaseException):
    """SIGTERM/SIGINT/SIGHUP: unwinds through every `finally` so tegrastats is always stopped."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise AgentError("bad agent arguments: %s" % message)


def build_parser():
    p = _Parser(prog="python -m remote.agent.main", description="klmtui's device benchmark agent")
    p.add_argument("--K", type=int, required=True)
    p.add_argument("--L", type=int, required=True)
    p.add_argument("--M", type=int, required=True)
    p.add_argument("--channels", type=int, required=True)
    p.add_argument("--genotype", default="SNAS_mild")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--weights", help="a plain state_dict file; none: initial weights")
    p.add_argument("--protocol", choices=PROTOCOLS, default="thesis")
    p.add_argument("--timing", choices=TIMINGS, default="sync")
    for field in FIELDS:
        if field not in ("protocol", "timing"):
            kind = float if field in ("ci_rel", "min_seconds") else int
            p.add_argument("--" + field.replace("_", "-"), dest=field, type=kind, default=None)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--keep-none", action="store_true", help="keep the genotype's `none` edges")
    p.add_argument("--cudnn-benchmark", action="store_true")
    p.add_argument("--images", help="image folder for --timing thesis (default: synthetic images)")
    p.add_argument("--tegrastats", default="tegrastats", help="the tegrastats command")
    p.add_argument("--tegrastats-interval", type=int, default=100, help="ms")
    p.add_argument("--no-power", action="store_true", help="skip the power pass")
    p.add_argument("--power-min-samples", type=int, default=3,
                   help="extend the power pass until this many samples fall in its timed part")
    p.add_argument("--power-max-extra-s", type=float, default=60.0,
                   help="give up extending the power pass after this many seconds")
    # Power measurement (H9): source, pass, which figure is power_w; see remote.agent.measure.
    p.add_argument("--power-source", choices=SOURCES, default="auto",
                   help="auto: the INA monitors in sysfs where the board has them, else tegrastats")
    p.add_argument("--power-pass", choices=PASSES, default="auto",
                   help="same: latency and power in one pass; separate: the thesis' two passes; auto: same with sysfs")
    p.add_argument("--power-rail", default=None, type=_power_rail,
                   help="input (default; gpu with --like-thesis), gpu, cpu, sum, or a rail name: which figure is power_w")
    p.add_argument("--like-thesis", action="store_true",
                   help="time what the thesis' script timed (remote.agent.thesis_loop)")
    p.add_argument("--run-only", type=int, default=None, help=argparse.SUPPRESS)  # a fresh-process run (fresh_runs)
    p.add_argument("--pass-name", default="latency", choices=("latency", "power"), help=argparse.SUPPRESS)
    p.add_argument("--one-process", action="store_true",
                   help="--like-thesis: all runs in this process (default: a fresh process per run, as the thesis)")
    p.add_argument("--images-tar", help="a tar of images pushed by the host (--like-thesis); unpacked beside it")
    p.add_argument("--lock-clocks", action="store_true",
                   help="sudo -n jetson_clocks during the benchmark; the previous clocks are restored after")
    p.add_argument("--sysfs-root", default="/", help="where sysfs is mounted (tests use a fake tree)")
    p.add_argument("--sysfs-rate-hz", type=float, default=100.0, help="sysfs sampling rate")
    p.add_argument("--power-events-hz", type=float, default=10.0, help="at most this many power events a second (sysfs)")
    p.add_argument("--job", help="the host's benchmark id (only marks this process, for the host's cleanup)")
    p.add_argument("--heartbeat-timeout", type=float, default=0.0,
                   help="stop when stdin (the host's heartbeat) is silent this many seconds (0: off)")
    return p


def _power_rail(value):
    try:
        return check_power_rail(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def _raise_cancelled(signum, frame):
    raise Cancelled("cancelled by signal %d" % signum)


def build_model(torch, args, device):
    """The network in eval mode, with the given weights or its initial ones."""
    from core.genotypes import get_genotype
    from core.network import Network

    try:
        genotype = get_genotype(args.genotype)
    except (KeyError, ValueError) as exc:
        raise AgentError(str(exc).strip("'\""))
    moved = None
    if args.keep_none:  # time the `none` edges as the thesis did: build the genotype's edge_all form
        from core.genotypes import edge_all_form, genotype_name

        try:
            genotype, moved = edge_all_form(genotype)
        except ValueError as exc:
            raise AgentError("--keep-none: genotype %s: %s" % (args.genotype, exc))
        args.genotype_used = genotype_name(genotype)
    torch.manual_seed(0)
    model = Network(args.channels, args.num_classes, args.K, args.L, args.M, genotype,
                    auxiliary=False, drop_none=not args.keep_none)
    model.drop_path_prob = 0.0
    if args.weights:
        state = load_state_dict(torch, args.weights)
        model.load_state_dict(move_edges(state, moved, model.reductions) if moved else state)
    return model.to(device).eval()


def move_edges(state, moved, reductions):
    """Rename `cells.N._ops.<old>.` keys to the edge_all form's edge indices (moved: kind -> {old: new})."""
    import re

    out = {}
    for key, value in state.items():
        m = re.match(r"^cells\.(\d+)\._ops\.(\d+)\.(.*)$", key)
        if m:
            kind = "reduce" if int(m.group(1)) in reductions else "normal"
            new = moved[kind].get(int(m.group(2)), int(m.group(2)))
            key = "cells.%s._ops.%d.%s" % (m.group(1), new, m.group(3))
        out[key] = value
    return out


def none_edges(model):
    """How many `none` edges (core.ops.Zero) the built model computes."""
    from core.ops import Zero

    return sum(1 for m in model.modules() if isinstance(m, Zero))


def load_state_dict(torch, path):
    try:
        state = torch.load(path, map_location="cpu")
    except Exception as exc:
        raise AgentError("cannot read weights %s: %s" % (path, _first_line(exc)))
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise AgentError("weights %s are not a plain state_dict (name -> tensor)" % path)
    # The auxiliary head only trains; inference builds the network without it.
    return dict((k, v) for k, v in state.items() if not k.startswith("auxiliary_head."))


def run(args, emit):
    """Both passes; returns the summary fields. Raises AgentError / Cancelled."""
    try:
        protocol = Protocol(**dict((f, getattr(args, f)) for f in FIELDS))
    except ValueError as exc:
        raise AgentError(str(exc))
    try:
        import torch  # after the cheap checks: importing torch takes seconds on a Nano
    except ImportError as exc:
        raise AgentError("PyTorch is not importable by %s on this device: %s" % (sys.executable, exc))

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise AgentError("--device cuda but CUDA is not available on this device")
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    like_thesis_setup(args)  # --like-thesis: keep_none, cudnn_benchmark, GPU rail
    args.power_rail = args.power_rail or "input"
    args.genotype_used = args.genotype
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(args.cudnn_benchmark)
    try:
        model = build_model(torch, args, device)
    except RuntimeError as exc:  # load_state_dict mismatch
        raise AgentError("weights %s do not fit %d-%d-%d@%d: %s" % (
            args.weights, args.K, args.L, args.M, args.channels, _first_line(exc)[:300]))
    if args.images_tar:
        import tarfile

        try:
            args.images = unpack_images(args.images_tar)
        except (OSError, ValueError, tarfile.TarError) as exc:
            raise AgentError("cannot unpack images %s: %s" % (args.images_tar, _first_line(exc)))
    fresh = (args.like_thesis and protocol.protocol == "thesis" and args.run_only is None
             and not args.one_process)
    if fresh:  # the runs happen in child processes (remote.agent.fresh_runs): no DataLoader here
        try:
            _, images = make_dataset(torch, args.images, protocol.batch)
        except (ValueError, OSError) as exc:
            raise AgentError("--like-thesis: cannot use images from %s: %s" % (args.images, _first_line(exc)))
        timer = Times(images, 2, device, protocol.batch)
    elif args.like_thesis:
        try:  # a child has no threads: its workers fork, as the thesis' did; the agent's spawn
            timer = LoopTimer(torch, model, protocol.batch, device, args.images,
                              start="fork" if args.run_only is not None else "spawn")
        except (ValueError, ImportError, OSError) as exc:
            raise AgentError("--like-thesis: cannot use images from %s: %s" % (args.images, _first_line(exc)))
    elif args.timing == "thesis":
        try:
            timer = ThesisTimer(torch, model, protocol.batch, device, args.images)
        except (ValueError, ImportError, OSError) as exc:
            raise AgentError("cannot use images from %s: %s" % (args.images, _first_line(exc)))
    else:
        timer = SyncTimer(torch, model, protocol.batch, device)
    if args.run_only is not None:  # a child of fresh_runs: this run's batches, nothing else
        try:
            run_child(args, protocol, timer, emit)
        finally:
            timer.close()
        return None
    weights = "trained" if args.weights else "initial"
    emit("hello", agent_version=AGENT_VERSION, pid=os.getpid(),
         arch={"K": args.K, "L": args.L, "M": args.M, "channels": args.channels, "genotype": args.genotype},
         weights=weights, weights_file=args.weights, protocol=protocol.to_dict(), timing=args.timing,
         images=timer.images, drop_none=not args.keep_none, device=str(device),
         params=sum(p.numel() for p in model.parameters()),
         environment=environment.collect(torch, device), heartbeat_timeout_s=args.heartbeat_timeout)

    started = time.time()
    clocks = {"locked": False, "before_latency": environment.clock_state()}
    lock = None
    if args.lock_clocks:
        lock = environment.ClockLock(os.path.abspath("jetson_clocks.%d.conf" % os.getpid()))
        failed = lock.acquire()
        if failed:
            raise AgentError(failed)
        clocks["locked"] = True
        clocks["after_lock"] = environment.clock_state()
    measurement = Measurement(args, emit)
    measurement.clocks = clocks
    thesis_runs = FreshRuns(args, timer) if fresh else run_thesis
    measurement.thesis_runs = thesis_runs
    try:
        hook = measurement.latency_hook(timer, per_run=protocol.protocol == "thesis")
        if protocol.protocol == "thesis":
            kept, timed = thesis_runs(timer, protocol, emit, "latency", on_batch=hook)
        else:
            kept, timed = run_adaptive(timer, protocol, emit, "latency", on_batch=hook)
        adaptive = timed.pop("adaptive", None)
        latency = summarize(kept)
        median = latency["median_s"]
        clocks["after_latency"] = environment.clock_state()

        power_w, power_info, power_reason = None, {}, "skipped (--no-power)"
        if not args.no_power and measurement.same_pass and hook is not None:
            power_info, power_w, power_reason = measurement.finish_same()
        elif not args.no_power:
            power_info, power_w, power_reason = power_pass(args, protocol, timer, emit, measurement)
        if "after_power" not in clocks and not measurement.same_pass and not args.no_power:
            clocks["after_power"] = environment.clock_state()
    finally:
        measurement.close()
        if hasattr(timer, "close"):
            timer.close()
        if lock is not None:
            clocks["restore_error"] = lock.release()
            clocks["after_restore"] = environment.clock_state()
    power_fields = measurement.fields(kept, protocol.batch)
    power_fields["power_rails_w"] = (power_info or {}).get("power_rails_w")

    summary = {
        "latency_s": median,
        "latency_p90_s": latency["p90_s"],
        "images_per_s": protocol.batch / median if median else None,
        "latency": latency,
        "adaptive": adaptive,
        "batches_timed": timed["batches_timed"],
        "seconds_timed": timed["seconds_timed"],
        "stop_reason": timed["stop_reason"],
        "power_w": power_w,
        "power_reason": power_reason,
        "power": power_info,
        "protocol": protocol.to_dict(),
        "timing": args.timing,
        "images": timer.images,
        "weights": weights,
        "drop_none": not args.keep_none,
        "device": str(device),
        "environment_end": environment.snapshot(),
        "duration_s": time.time() - started,
    }
    summary.update(power_fields)  # power_pass, power_source, power_rail, power_rails_w, energy_j, ...
    summary["genotype_used"] = args.genotype_used
    summary["none_edges"] = none_edges(model)
    args.fresh_runs = thesis_runs.children if fresh else 0
    summary["like_thesis"] = like_thesis_record(args, timer, args.genotype_used, summary["none_edges"])
    summary["clocks"] = clocks
    return summary


def power_pass(args, protocol, timer, emit, measurement):
    """The separate power pass: the same protocol with the sampler running; (info, power_w, reason)."""
    sampler = measurement.new_sampler()
    hook = measurement.hook(timer, per_run=protocol.protocol == "thesis")
    try:
        if not sampler.start():
            return sampler.result()

        def measuring(on):
            sampler.measuring = on

        if protocol.protocol == "thesis":
            _, timed = measurement.thesis_runs(timer, protocol, emit, "power", on_measure=measuring, on_batch=hook)
        else:
            # its own stop rule: the CI of the median power, the floors and the drift guard
            stop = PowerPassStop(sampler, protocol, args.power_min_samples, recorder=hook)
            _, timed = run_adaptive(timer, protocol, emit, "power", on_measure=measuring, on_batch=hook, stop=stop)
        # A short pass may end before tegrastats has said anything: keep the load on until the
        # window holds enough samples (or tegrastats has died, or we have waited long enough).
        t0 = time.time()
        extra = run_extra(timer, emit, "power",
                          until=lambda: sampler.window_count() >= args.power_min_samples or not sampler.alive(),
                          start_batch=0, max_seconds=args.power_max_extra_s)
        if extra:  # the extension is measured too (the sampler's window stays open)
            timed.update(batches_timed=timed["batches_timed"] + extra,
                         seconds_timed=timed["seconds_timed"] + time.time() - t0, stop_reason="extended")
        sampler.measuring = False
    finally:
        sampler.stop()
    info, power_w, reason = sampler.result()
    info = dict(info or {})
    info.update(timed)  # batches_timed, seconds_timed, stop_reason of the power pass
    return info, power_w, reason


def _first_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _silence_stdout():
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def main(argv=None):
    emit = Emitter()
    old = {}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        old[sig] = signal.signal(sig, _raise_cancelled)
    watchdog = None
    try:
        args = build_parser().parse_args(argv)
        watchdog = Watchdog(args.heartbeat_timeout)
        watchdog.start()  # (assigned first: it may fire at once, e.g. stdin already closed)
        summary = run(args, emit)
        if summary is not None:  # None: a fresh-process run's child (remote.agent.fresh_runs)
            emit("summary", **summary)
        return 0
    except Cancelled as exc:
        if watchdog is not None and watchdog.reason:
            watchdog.last_words(emit)  # never blocks: the host may be frozen or gone
            _silence_stdout()
            return 130
        try:
            emit("error", error=str(exc), kind="cancelled")
        except (BrokenPipeError, OSError):  # nobody listens any more (the host is gone)
            _silence_stdout()
        return 130
    except BrokenPipeError:
        # The host is gone (killed, link dropped): nobody reads us. Stop quietly; the `finally`
        # blocks have already stopped tegrastats.
        _silence_stdout()
        return 141
    except AgentError as exc:
        emit("error", error=str(exc), kind="input")
        return 1
    except Exception as exc:  # anything else: still one clear line for the host, and a traceback on stderr
        import traceback

        traceback.print_exc()
        emit("error", error="%s: %s" % (type(exc).__name__, _first_line(exc)), kind="crash")
        return 1
    finally:
        if watchdog is not None:
            watchdog.stop()
        for sig, handler in old.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
