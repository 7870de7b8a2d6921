"""Stop a PyTorch run mid-epoch, then resume it with exactly the batches it would have seen.

    python examples/resume_torch.py [DATASET]            # half an epoch, save, exit
    python examples/resume_torch.py [DATASET] --resume   # load, finish the epoch

DATASET is a datumio dataset directory; without one the long-tailed demo shapes are drawn
and ingested once under ``--workdir``. The checkpoint (``torch.save``) holds the model, the
optimizer and ``TorchIterable.state_dict()``: the place after the last batch the training
loop received, not after the batches the loader (or, with ``--device``, the transfer
thread) had read ahead, so a resume serves those again. ``--resume`` builds everything
afresh, loads the three states and goes on to the end of ``--epochs``; batches, pixels and
the final weights equal those of a run that was never stopped (``--stop-after 0``).
``--trace FILE`` appends the record ids of every batch trained on, one JSON line each.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time

import torch
from torch import nn
from torch.utils.data import DataLoader

import datumio
from datumio.adapters.torch import TorchIterable

SIZE = 24
BATCH = 32


def make_model(classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, classes),
    )


def demo_dataset(workdir: str) -> str:
    """The demo's training split, drawn and ingested on the first run, reused after."""
    path = os.path.join(workdir, "train.lmdb")
    if not os.path.exists(os.path.join(path, "manifest.json")):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from _demo_data import build_splits

        path = build_splits(workdir)[0]
    return path


def trace(
    path: str | None,
    step: int,
    epoch: int,
    images: torch.Tensor,
    labels: torch.Tensor,
    ids: torch.Tensor,
) -> None:
    """Append what this step trained on: record ids, labels and a digest of the pixels."""
    if path is None:
        return
    row = {
        "step": step,
        "epoch": epoch,
        "ids": ids.tolist(),
        "labels": labels.tolist(),
        "pixels": hashlib.sha1(images.detach().cpu().numpy().tobytes()).hexdigest()[:16],
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def run(args: argparse.Namespace) -> int:
    workdir = args.workdir or os.path.join(tempfile.gettempdir(), "datumio-resume-demo")
    os.makedirs(workdir, exist_ok=True)
    checkpoint = args.checkpoint or os.path.join(workdir, "resume_torch.pt")
    if args.resume and not os.path.exists(checkpoint):
        print(f"no checkpoint at {checkpoint}: run once without --resume", file=sys.stderr)
        return 2
    path = args.dataset or demo_dataset(workdir)
    # mean/std default to the dataset's ingest stats.
    spec = datumio.Transform(size=(SIZE, SIZE), flip=0.5)
    torch.manual_seed(0)
    model = make_model(len(datumio.open(path).class_names)).to(args.device or "cpu")
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    # The Loader must be built as in the saved run: same dataset, batch size, seed, sampling.
    loader = datumio.Loader(
        path,
        args.batch_size,
        sampling="balanced",
        seed=0,
        workers=args.workers,
        transform=spec,
        extras=("ids",),
    )
    with loader:
        feed = TorchIterable(loader, device=args.device)
        steps = 0
        if args.resume:
            saved = torch.load(checkpoint, weights_only=True)
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            feed.load_state_dict(saved["data"])
            steps = saved["steps"]
            print(f"resumed after step {steps}: epoch {loader.epoch}, record {loader.position}")
        stop_after = args.stop_after
        if stop_after is None:
            stop_after = 0 if args.resume else len(loader) // 2
        batches = DataLoader(feed, batch_size=None)
        last_loss, stopped = float("nan"), False
        while loader.epoch < args.epochs and not stopped:
            epoch = loader.epoch
            for images, labels, ids in batches:
                loss = nn.functional.cross_entropy(model(images), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps, last_loss = steps + 1, loss.item()
                trace(args.trace, steps, epoch, images, labels, ids)
                if steps == stop_after:
                    state = {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "data": feed.state_dict(),  # the batches trained on, no more
                        "steps": steps,
                    }
                    torch.save(state, checkpoint)
                    stopped = True
                    break  # leaving the loop stops what TorchIterable had read ahead
            else:
                print(f"epoch {epoch} done after step {steps} (loss {last_loss:.3f})")
    if stopped:
        print(f"stopped after step {steps} (loss {last_loss:.3f}); saved {checkpoint}")
        return 0
    checksum = sum(float(p.detach().double().sum()) for p in model.parameters())
    print(f"weights checksum {checksum:.10f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", help="a datumio dataset (default: the demo)")
    parser.add_argument("--resume", action="store_true", help="load the checkpoint, go on")
    parser.add_argument("--checkpoint", help="default: resume_torch.pt in --workdir")
    parser.add_argument("--workdir", help="demo data and checkpoint (default: a temp folder)")
    parser.add_argument("--epochs", type=int, default=1, help="train to the end of these")
    parser.add_argument(
        "--stop-after",
        type=int,
        help="save and exit after this many steps in all (default: half the first epoch; "
        "0, or with --resume: never)",
    )
    parser.add_argument("--device", help="e.g. cuda: a transfer thread moves batches there")
    parser.add_argument("--batch-size", type=int, default=BATCH)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trace", help="append the ids of each batch trained on (JSON lines)")
    args = parser.parse_args(argv)
    # One intra-op thread: the loader's workers use the other core(s).
    torch.set_num_threads(1)
    started = time.perf_counter()
    code = run(args)
    if code == 0:
        print(f"done in {time.perf_counter() - started:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
