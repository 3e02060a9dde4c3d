"""How one batch is timed, and the passes of a protocol (thesis section 3.4).

Python 3.6 / torch 1.10 compatible (torch is passed in, never imported at module level).

Timings:
- `sync` (SyncTimer): the input batch already sits on the device; the clock (perf_counter) starts
  after a `torch.cuda.synchronize()` and stops after another one, so it measures the forward pass
  alone. On CPU there is nothing to synchronise.
- `thesis` (ThesisTimer): the thesis' own script: the host clock around loading and preprocessing
  the batch's images (uint8 HWC -> float, /255, CIFAR-10 normalisation), the copy to the device
  and the forward call, with no synchronize (asynchronous CUDA work is paid for by the next
  batch's copy). Images are synthetic (a seeded uint8 pool) unless real image files are given.
"""

import os
import time

from core.latency import AdaptiveStop

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class SyncTimer(object):
    def __init__(self, torch, model, batch, device):
        self.torch = torch
        self.model = model
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
        self.cuda = device.type == "cuda"
        self.images = "synthetic"

    def __call__(self):
        torch = self.torch
        with torch.no_grad():
            if self.cuda:
                torch.cuda.synchronize()
            self.t0 = t0 = time.perf_counter()
            self.model(self.x)
            if self.cuda:
                torch.cuda.synchronize()
            self.t1 = time.perf_counter()
            return self.t1 - t0


class ThesisTimer(object):
    def __init__(self, torch, model, batch, device, image_dir=None):
        self.torch = torch
        self.model = model
        self.batch = batch
        self.device = device
        self.mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
        if image_dir:
            self.source = ImageFiles(torch, image_dir, batch)
            self.images = "files:%s (%d images)" % (image_dir, len(self.source.paths))
        else:
            self.source = SyntheticImages(torch, batch)
            self.images = "synthetic"

    def __call__(self):
        torch = self.torch
        with torch.no_grad():
            self.t0 = t0 = time.perf_counter()
            raw = self.source.next_batch()  # uint8, N x H x W x 3
            x = raw.permute(0, 3, 1, 2).float().div(255.0)
            x = (x - self.mean) / self.std
            self.model(x.to(self.device))
            self.t1 = time.perf_counter()
            return self.t1 - t0


class SyntheticImages(object):
    """A fixed, seeded pool of uint8 32x32 RGB images, handed out batch by batch."""

    def __init__(self, torch, batch, pool_batches=4):
        gen = torch.Generator().manual_seed(0)
        self.pool = torch.randint(0, 256, (batch * pool_batches, 32, 32, 3), generator=gen, dtype=torch.uint8)
        self.batch = batch
        self.pos = 0

    def next_batch(self):
        if self.pos + self.batch > self.pool.shape[0]:
            self.pos = 0
        out = self.pool[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return out


class ImageFiles(object):
    """Real image files (e.g. the CIFAR-10 test JPEGs), decoded with PIL for every batch."""

    EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

    def __init__(self, torch, root, batch):
        from PIL import Image  # only needed for --images

        self.Image = Image
        self.torch = torch
        self.batch = batch
        self.paths = []
        for folder, _, files in os.walk(root):
            self.paths += [os.path.join(folder, f) for f in sorted(files) if f.lower().endswith(self.EXTENSIONS)]
        self.paths.sort()
        if not self.paths:
            raise ValueError("no image files under %s" % root)
        self.pos = 0

    def next_batch(self):
        torch = self.torch
        out = torch.empty((self.batch, 32, 32, 3), dtype=torch.uint8)
        for i in range(self.batch):
            path = self.paths[self.pos % len(self.paths)]
            self.pos += 1
            with self.Image.open(path) as img:
                img = img.convert("RGB")
                if img.size != (32, 32):
                    img = img.resize((32, 32))
                out[i] = torch.ByteTensor(bytearray(img.tobytes())).view(32, 32, 3)
        return out


def timed_info(batches, seconds, reason, **more):
    """The contract fields every pass reports: timed batches kept, their wall time, why it stopped."""
    info = {"batches_timed": batches, "seconds_timed": seconds, "stop_reason": reason}
    info.update(more)
    return info


def run_thesis(timer, protocol, emit, pass_name, on_measure=None, on_batch=None):
    """`runs` runs of `batches` batches; warm-up runs/batches are timed and reported, not kept.

    Returns (kept seconds, timed_info); seconds_timed spans the first kept batch to the last.
    """
    kept = []
    first = last = None
    for run in range(protocol.runs):
        for batch in range(protocol.batches):
            warmup = run < protocol.warmup_runs or batch < protocol.warmup_batches
            if not warmup and on_measure is not None:
                on_measure(True)
            t0 = time.time()
            if on_batch is not None:  # the power samplers' hook (H9); the timer holds the batch's t0/t1
                on_batch("before", run, batch, warmup, None)
            seconds = timer()
            if on_batch is not None:
                on_batch("after", run, batch, warmup, seconds)
            emit("latency", **{"pass": pass_name, "run": run, "batch": batch, "seconds": seconds, "warmup": warmup,
                               "t0": getattr(timer, "t0", None), "t1": getattr(timer, "t1", None)})
            if not warmup:
                kept.append(seconds)
                first = t0 if first is None else first
                last = time.time()
    return kept, timed_info(len(kept), (last - first) if kept else 0.0, "fixed")


def run_adaptive(timer, protocol, emit, pass_name, on_measure=None, fixed=None, on_batch=None, stop=None):
    """Warm-up batches, then batch after batch until core.latency.AdaptiveStop says stop.

    With `fixed`, exactly that many batches. With `stop` (the adaptive power pass: an object with
    start(), add(seconds, elapsed), done(), report(), reason and batches, e.g.
    remote.agent.measure.PowerPassStop), that rule decides instead of the latency one.
    Returns (kept seconds, timed_info): a drift discards the samples before it, so `kept` is
    what the figures are computed from; timed_info adds the stop rule's report as `adaptive`.
    """
    for batch in range(protocol.warmup_batches):
        emit("latency", **{"pass": pass_name, "run": 0, "batch": batch, "seconds": timer(), "warmup": True})
    rule = stop or AdaptiveStop(protocol.ci_rel, protocol.min_batches, protocol.max_batches,
                                min_seconds=protocol.min_seconds)
    if on_measure is not None:
        on_measure(True)
    if stop is not None:
        stop.start()
    batch = protocol.warmup_batches
    start = time.time()
    seconds_all = []
    while (len(seconds_all) < fixed) if fixed is not None else not rule.done():
        if on_batch is not None:
            on_batch("before", 0, batch, False, None)
        seconds = timer()
        if on_batch is not None:
            on_batch("after", 0, batch, False, seconds)
        emit("latency", **{"pass": pass_name, "run": 0, "batch": batch, "seconds": seconds, "warmup": False,
                           "t0": getattr(timer, "t0", None), "t1": getattr(timer, "t1", None)})
        seconds_all.append(seconds)
        rule.add(seconds, time.time() - start)
        batch += 1
    if fixed is not None:
        return seconds_all, timed_info(len(seconds_all), time.time() - start, "fixed")
    report = rule.report()
    if stop is not None:  # the power pass: every batch counts (power, not latency, decided when to stop)
        return seconds_all, timed_info(len(seconds_all), time.time() - start, stop.reason, adaptive=report)
    return list(rule.kept), timed_info(len(rule.kept), report["seconds_kept"], rule.reason, adaptive=report)


def run_extra(timer, emit, pass_name, until, start_batch, max_seconds):
    """Keep timing batches (reported as `extra`) while `until()` is False, for at most max_seconds.

    Returns how many extra batches it timed."""
    deadline = time.time() + max_seconds
    batch = start_batch
    while not until() and time.time() < deadline:
        emit("latency", **{"pass": pass_name, "run": -1, "batch": batch, "seconds": timer(), "warmup": False,
                           "extra": True})
        batch += 1
    return batch - start_batch
