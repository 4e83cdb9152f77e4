#!/usr/bin/env python3
"""Does the suite catch these bugs? Each mutation is applied to a temporary copy
of the working tree (files git tracks or would track, plus the built extension),
never to the tree itself; the named test files run there and the failing tests
are listed. A mutation that catches nothing is a hole in the suite.

    scripts/dev-build                       # the copy reuses python/mobileclip_fastload/_core*.so
    python3 scripts/mutation_check.py                 # every mutation
    python3 scripts/mutation_check.py no_ddp teacher_targets_average_logits

Only Python mutations: a Rust one would need its own build of the copy.
Exit status 1 if some mutation fails no test (or no longer applies).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONVERT_TESTS = (
    "tests/test_end_to_end.py",
    "tests/test_demo.py",
    "tests/test_convert_joined.py",
    "tests/test_convert_separate.py",
    "tests/test_convert_inputs.py",
    "tests/test_store_aug_and_dtypes.py",
)


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    path: str
    old: str  # must occur exactly once in `path`
    new: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation(
        "loss_lambda_one_keeps_half_clip",
        "the loss keeps 0.5 x CLIP when lambda = 1",
        "python/mobileclip_fastload_train/loss.py",
        "loss = (1.0 - self.lam) * clip + self.lam * kd",
        "loss = ((1.0 - self.lam) if self.lam < 1.0 else 0.5) * clip + self.lam * kd",
        ("tests/test_training_loss.py",),
    ),
    Mutation(
        "no_ddp",
        "mobileclip_fastload_train.train never wraps the model in DDP under torchrun",
        "python/mobileclip_fastload_train/train.py",
        "net = DistributedDataParallel(model,",
        "net = model if True else DistributedDataParallel(model,",
        ("tests/test_training_loop.py",),
    ),
    Mutation(
        "zero_shot_first_template",
        "zero-shot evaluation tokenizes only the first prompt template",
        "python/mobileclip_fastload_train/evaluate.py",
        "tokenizer([t.format(name) for t in templates])",
        "tokenizer([t.format(name) for t in templates[:1]])",
        ("tests/test_training_loop.py",),
    ),
    Mutation(
        "zero_shot_first_embedding",
        "zero-shot evaluation embeds every prompt but keeps the first",
        "python/mobileclip_fastload_train/evaluate.py",
        "F.normalize(emb.mean(dim=0), dim=-1)",
        "F.normalize(emb[0], dim=-1)",
        ("tests/test_training_loop.py",),
    ),
    Mutation(
        "teacher_targets_average_logits",
        "teacher targets: average the logits, then softmax",
        "python/mobileclip_fastload_train/loss.py",
        "return logits.softmax(dim=-1).mean(dim=0)",
        "return logits.mean(dim=0).softmax(dim=-1)",
        ("tests/test_training_loss.py",),
    ),
    Mutation(
        "convert_drops_randaugment_ops",
        "convert drops every RandAugment op of the stored records",
        "python/mobileclip_fastload/convert/aug_records.py",
        "records, _ = aug_records(\n        entries,",
        "records, _ = aug_records(\n        [None if e is None else [e[0], []] for e in entries],",
        CONVERT_TESTS,
    ),
    Mutation(  # the rescaling rule itself is Rust (rust/src/aug/rescale.rs), checked by its cargo tests
        "convert_skips_box_rescaling",
        "convert keeps boxes in original-image pixels on a resized image",
        "python/mobileclip_fastload/convert/aug_records.py",
        "orig_width=orig_size[0], orig_height=orig_size[1]",
        "orig_width=stored_size[0], orig_height=stored_size[1]",
        CONVERT_TESTS,
    ),
    Mutation(
        "tokenizer_fast_path_skips_html_unescape",
        "the tokenizer's ASCII fast path also takes text with '&'",
        "python/mobileclip_fastload/tokenizer.py",
        'return text.isascii() and text.isprintable() and "&" not in text',
        "return text.isascii() and text.isprintable()",
        ("tests/test_tokenizer.py",),
    ),
)


def copy_tree(dest: Path) -> None:
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    files += [os.path.relpath(p, REPO) for p in glob.glob(str(REPO / "python/mobileclip_fastload/_core*.so"))]
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run(m: Mutation, timeout: float) -> tuple[str, list[str]]:
    """(pytest's summary line, the failed test ids) with ``m`` applied to a copy."""
    with tempfile.TemporaryDirectory(prefix=f"mutation-{m.name}-") as tmp:
        copy = Path(tmp)
        copy_tree(copy)
        target = copy / m.path
        text = target.read_text()
        if text.count(m.old) != 1:
            return f"DOES NOT APPLY: {m.path} holds the original text {text.count(m.old)} times", []
        target.write_text(text.replace(m.old, m.new))
        env = dict(os.environ, PYTHONPATH=str(copy / "python"), PYTHONDONTWRITEBYTECODE="1")
        cmd = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", *m.tests]
        proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
        failed = re.findall(r"^(?:FAILED|ERROR) (.*?)(?: - .*)?$", proc.stdout, flags=re.M)
        summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
        return summary, failed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help=f"mutations to run (default: all): {', '.join(m.name for m in MUTATIONS)}")
    p.add_argument("--timeout", type=float, default=900, help="seconds per mutation")
    args = p.parse_args()
    unknown = set(args.names) - {m.name for m in MUTATIONS}
    if unknown:
        p.error(f"unknown mutations: {', '.join(sorted(unknown))}")
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    holes = 0
    for m in chosen:
        summary, failed = run(m, args.timeout)
        holes += not failed
        print(
            f"## {m.name}: {m.what}\n   {m.path}: {m.old.strip()!r} -> {m.new.strip()!r}\n   ran {' '.join(m.tests)}\n"
            f"   {summary}\n" + "".join(f"   FAILED {t}\n" for t in failed),
            flush=True,
        )
    print(f"{len(chosen) - holes}/{len(chosen)} mutations fail at least one test")
    return 1 if holes else 0


if __name__ == "__main__":
    sys.exit(main())
