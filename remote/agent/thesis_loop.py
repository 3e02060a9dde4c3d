"""`--like-thesis`: time what the thesis' own script (ivanipenburg/thesis, SNAS/test.py `infer`) timed.

Python 3.6 / torch 1.10 compatible; torch comes in as an argument.

Per batch, the thesis' loop body: wait for the DataLoader (CIFAR-10 test images, batch 64,
2 workers, pinned memory, ToTensor + normalise), `.cuda()` of input and target, the forward pass of
`SNAS_mild_edge_all` with every `none` edge computed, the loss, top-1/top-5 accuracy and three
`.item()` calls (which synchronise). cudnn.benchmark is on. The host clock spans the whole body.
The thesis started a fresh process per run (50 runs): with the thesis protocol the agent does
too (remote.agent.fresh_runs); the record says how many processes ran.

`like_thesis_setup(args)` turns the switches on; `LoopTimer` is the timer; `like_thesis_record()`
is what the summary's `like_thesis` field says was measured.
"""

import os
import time

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def like_thesis_setup(args):
    """--like-thesis: `none` edges kept (edge_all form), cudnn.benchmark, GPU rail unless a rail was named."""
    if not args.like_thesis:
        return
    args.keep_none = True
    args.cudnn_benchmark = True
    if args.power_rail is None:
        args.power_rail = "gpu"


def image_files(root):
    """[(path, label)] under root; the label is the CIFAR-10 class of the parent folder (else 0)."""
    found = []
    for folder, _, files in os.walk(root):
        name = os.path.basename(folder)
        label = CIFAR_CLASSES.index(name) if name in CIFAR_CLASSES else (int(name) if name.isdigit() else 0)
        found += [(os.path.join(folder, f), label) for f in sorted(files) if f.lower().endswith(EXTENSIONS)]
    # by file name first: a CIFAR-10 ImageFolder (0000.jpg in every class folder) comes interleaved
    # across the classes, as the official test order is, not class after class
    found.sort(key=lambda item: (os.path.basename(item[0]), item[0]))
    return found


def unpack_images(tar_path):
    """Unpack the host's image tar (remote.thesis_images) beside it once; the folder to read."""
    import tarfile

    dest = tar_path + ".d"
    done = os.path.join(dest, ".complete")
    if os.path.exists(done):
        return dest
    with tarfile.open(tar_path) as tar:
        members = tar.getmembers()
        for m in members:
            name = m.name
            if not (m.isfile() or m.isdir()) or name.startswith("/") or ".." in name.split("/"):
                raise ValueError("unexpected member %r in %s" % (name, tar_path))
        tar.extractall(dest, members=members)
    with open(done, "w") as f:
        f.write("ok\n")
    return dest


class ImageFileSet(object):
    """(3x32x32 float normalised, label) per image file; module level so spawned workers can load it."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        import torch
        from PIL import Image

        path, label = self.items[i]
        with Image.open(path) as img:
            img = img.convert("RGB")
            if img.size != (32, 32):
                img = img.resize((32, 32))
            raw = torch.ByteTensor(bytearray(img.tobytes())).view(32, 32, 3)
        return normalise(torch, raw.permute(2, 0, 1)), label


class SyntheticSet(object):
    """A seeded pool of uint8 images, normalised the same way (no image folder given)."""

    def __init__(self, torch, n):
        gen = torch.Generator().manual_seed(0)
        self.pool = torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)

    def __len__(self):
        return self.pool.shape[0]

    def __getitem__(self, i):
        import torch

        return normalise(torch, self.pool[i]), i % 10


def normalise(torch, chw_uint8):
    """ToTensor + Normalize(CIFAR mean, std), as the thesis' valid_transform."""
    mean = torch.tensor(CIFAR_MEAN).view(3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(3, 1, 1)
    return (chw_uint8.float().div(255.0) - mean) / std


def make_dataset(torch, root, batch):
    """(dataset, description): real image files under root, or a seeded synthetic pool."""
    if root:
        items = image_files(root)
        if len(items) < batch:
            raise ValueError("%d image files under %s, fewer than one batch of %d" % (len(items), root, batch))
        return ImageFileSet(items), "files:%s (%d images)" % (root, len(items))
    return SyntheticSet(torch, batch * 4), "synthetic"


class LoopTimer(object):
    """The thesis' whole loop body per batch; t0/t1 are perf_counter (the power samplers' clock)."""

    def __init__(self, torch, model, batch, device, image_dir=None, workers=2, start="spawn"):
        self.torch = torch
        self.model = model
        self.device = device
        self.batch = batch
        dataset, self.images = make_dataset(torch, image_dir, batch)
        # Workers are spawned, not forked: the agent has threads (the heartbeat reader blocks in
        # stdin, the power readers) and a forked worker inherits their held locks (closing stdin at
        # its start deadlocks). Persistent: started once, not again at every epoch's end. A worker
        # that still hangs is an error after `timeout` s, never a silent wait.
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch, shuffle=False, num_workers=workers,
            pin_memory=device.type == "cuda", drop_last=True, persistent_workers=workers > 0,
            timeout=300 if workers > 0 else 0,
            multiprocessing_context=start if workers > 0 else None)
        self.start = start
        self.workers = workers
        self.criterion = torch.nn.CrossEntropyLoss()
        self._it = iter(self.loader)
        self.t0 = self.t1 = None

    def _next(self):
        try:
            return next(self._it)
        except StopIteration:  # the thesis' loop ends with the test set; the protocol wants more
            self._it = iter(self.loader)
            return next(self._it)

    def __call__(self):
        torch = self.torch
        with torch.no_grad():
            self.t0 = time.perf_counter()
            x, target = self._next()
            x = x.to(self.device)
            target = target.to(self.device, non_blocking=True)
            logits, _ = self.model(x)
            loss = self.criterion(logits, target)
            top5 = logits.topk(5, 1, True, True)[1].t().eq(target.view(1, -1))
            prec1 = top5[:1].reshape(-1).float().sum(0) * (100.0 / x.size(0))
            prec5 = top5[:5].reshape(-1).float().sum(0) * (100.0 / x.size(0))
            loss.item()
            prec1.item()
            prec5.item()
            self.t1 = time.perf_counter()
        return self.t1 - self.t0

    def close(self):
        self._it = None  # stops the DataLoader's worker processes


def like_thesis_record(args, timer, genotype_used, none_edges):
    """The summary's `like_thesis`: False, or what this run reproduced of the thesis' measurement."""
    if not args.like_thesis:
        return False
    return {
        "genotype": genotype_used,
        "none_edges_computed": none_edges,
        "cudnn_benchmark": True,
        "timed": "DataLoader wait + .to(device) + forward + loss + top-1/top-5 + 3 x .item()",
        "dataloader": {"workers": timer.workers, "pin_memory": timer.device.type == "cuda", "batch": timer.batch,
                       "start": getattr(timer, "start", "fork")},
        "images": timer.images,
        "power_rail": args.power_rail,
        "fresh_process_per_run": bool(getattr(args, "fresh_runs", 0)),
        "processes": getattr(args, "fresh_runs", 0) or 1,
    }
