"""`--like-thesis` with the thesis protocol: every run in a fresh process, as the thesis' eval_time.py did.

Python 3.6 compatible. The agent (the parent) keeps the power sampler, the events and the
statistics; for each run it starts `python -u -m remote.agent.main ... --run-only R --pass-name P`
(the child), which builds the network and the DataLoader afresh, times that run's batches and
prints one `latency` event per batch (with t0/t1 on the system-wide monotonic clock the parent's
samplers use), then exits. The parent re-emits each event and calls the same hooks run_thesis
calls; `before` for batch b is called when batch b-1 is reported (the child is already running),
so a sampler switches windows at most one batch late. The child has no threads, so its
DataLoader workers fork, as the thesis' did.
"""

import json
import os
import subprocess
import sys
import time

from remote.agent.timing import timed_info


class Times(object):
    """Stands in for a timer in the hooks: the last reported batch's t0/t1."""

    def __init__(self, images, workers, device, batch):
        self.images, self.workers, self.device, self.batch = images, workers, device, batch
        self.t0 = self.t1 = None


def child_argv(args, protocol, run, pass_name):
    """The child's arguments: the same network, protocol and images; one run, no power, no host."""
    argv = ["--K", str(args.K), "--L", str(args.L), "--M", str(args.M), "--channels", str(args.channels),
            "--genotype", args.genotype, "--num-classes", str(args.num_classes), "--device", args.device,
            "--threads", str(args.threads), "--like-thesis", "--no-power",
            "--run-only", str(run), "--pass-name", pass_name]
    argv += protocol.args()
    if args.weights:
        argv += ["--weights", args.weights]
    if args.images:
        argv += ["--images", args.images]
    return argv


class FreshRuns(object):
    """run_thesis' signature and result, each run a child process."""

    def __init__(self, args, times):
        self.args = args
        self.times = times
        self.children = 0

    def __call__(self, timer, protocol, emit, pass_name, on_measure=None, on_batch=None):
        kept = []
        first = last = None
        for run in range(protocol.runs):
            cmd = [sys.executable, "-u", "-m", "remote.agent.main"] + child_argv(self.args, protocol, run, pass_name)
            warm0 = run < protocol.warmup_runs or protocol.warmup_batches > 0
            if on_batch is not None:
                on_batch("before", run, 0, warm0, None)
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    universal_newlines=True, cwd=os.getcwd())
            self.children += 1
            try:
                for line in iter(lambda: proc.stdout.readline(65536), ""):
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if event.get("event") == "error":
                        raise RuntimeError("fresh run %d: %s" % (run, event.get("error")))
                    if event.get("event") != "latency":
                        continue
                    batch, warmup, seconds = event["batch"], event["warmup"], event["seconds"]
                    if not warmup and on_measure is not None:
                        on_measure(True)
                    self.times.t0, self.times.t1 = event.get("t0"), event.get("t1")
                    if on_batch is not None:
                        on_batch("after", run, batch, warmup, seconds)
                    emit("latency", **{"pass": pass_name, "run": run, "batch": batch, "seconds": seconds,
                                       "warmup": warmup, "t0": self.times.t0, "t1": self.times.t1})
                    if not warmup:
                        kept.append(seconds)
                        first = time.time() - seconds if first is None else first
                        last = time.time()
                    if on_batch is not None and batch + 1 < protocol.batches:
                        nxt = run < protocol.warmup_runs or batch + 1 < protocol.warmup_batches
                        on_batch("before", run, batch + 1, nxt, None)
                code = proc.wait()
                if code != 0:
                    tail = [l for l in proc.stderr.read().splitlines() if l.strip()][-1:] or ["no output"]
                    raise RuntimeError("fresh run %d exited with status %s: %s" % (run, code, tail[0][:300]))
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return kept, timed_info(len(kept), (last - first) if kept else 0.0, "fixed")


def run_child(args, protocol, timer, emit):
    """The child: time run `args.run_only` of the protocol, one latency event per batch."""
    run = args.run_only
    for batch in range(protocol.batches):
        warmup = run < protocol.warmup_runs or batch < protocol.warmup_batches
        seconds = timer()
        emit("latency", **{"pass": args.pass_name, "run": run, "batch": batch, "seconds": seconds,
                           "warmup": warmup, "t0": timer.t0, "t1": timer.t1})
