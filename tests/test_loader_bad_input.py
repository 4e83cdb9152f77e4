"""Bad files under the loader: a FIFO (or other non-regular file) in place of a
store file is a clear error, not a hang; a shard the OS refuses to open is an
OSError naming it; a truncated JPEG that Pillow refuses is never delivered,
even when the crop lies in its intact part."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import synthetic_sample
from mobileclip_fastload import FastReinforcedLoader, ImageDecodeError, Store, StoreIOError, _core
from mobileclip_fastload.store import StoreWriter, aug_records
from mobileclip_fastload.testing.synthetic_store import photo_jpeg
from PIL import Image, ImageFile


def run_child(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """A hang must fail the test, not block pytest: run `code` in a child with a timeout."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {timeout} s")


@pytest.mark.slow
def test_a_fifo_in_place_of_a_store_file_is_an_error_not_a_hang(make_store):
    targets = []
    for victim in ("shard-00000.arrow", "manifest.json"):
        path = make_store(4, name=f"fifo-{victim}")
        (path / victim).unlink()
        os.mkfifo(path / victim)
        targets.append((str(path), victim))
    # One child for every call (Store, loader, verify, the verify command), as they would hang before.
    done = run_child(f"""
        import contextlib, io, sys
        from mobileclip_fastload import FastReinforcedLoader, Store, StoreFormatError, _core
        from mobileclip_fastload.cli import main
        for path, victim in {targets!r}:
            # Opening reads only the manifest; a shard is opened (and checked) on first use.
            for what, call in [("Store", lambda: Store(path).uid(0)),
                               ("loader", lambda: next(iter(FastReinforcedLoader(path, 2, image_size=8))))]:
                try:
                    call()
                except StoreFormatError as e:
                    print(victim, what, "error:", e)
                else:
                    sys.exit(what + " accepted a FIFO")
            try:
                print(victim, "verify:", _core.verify_store(path))
            except StoreFormatError as e:
                print(victim, "verify error:", e)
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
                status = main(["verify", path])
            print(victim, "verify command exit", status, err.getvalue().replace(chr(10), " "))
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 8, lines
    for line in lines:
        victim = line.split()[0]
        assert f"{victim}: not a regular file (a FIFO)" in line, line
    assert sum(" exit 1 " in line or " exit 2 " in line for line in lines) == 2, lines


# ----------------------------------------------------------------------------- truncated JPEG
def test_a_shard_the_os_cannot_open_is_a_store_io_error_from_store_and_loader(make_store):
    # A symlink loop: open() fails with ELOOP (root can read anything, but not this).
    path = make_store(4, name="eloop")
    shard = path / "shard-00000.arrow"
    shard.unlink()
    shard.symlink_to(shard.name)
    loader = FastReinforcedLoader(path, 2, image_size=8, num_threads=1, on_error="skip")  # reads only the manifest
    for use in (lambda: Store(path).uid(0), lambda: next(iter(loader))):
        with pytest.raises(StoreIOError, match=r"shard-00000\.arrow: Too many levels of symbolic links") as info:
            use()
        e = info.value
        assert isinstance(e, OSError) and (e.errno, e.filename) == (errno.ELOOP, str(shard))


def truncated_jpeg(progressive: bool, keep: float) -> tuple[bytes, int, int]:
    rng = np.random.default_rng(4)
    data, w, h = photo_jpeg(rng, min_side=200, max_side=260)
    img = Image.open(io.BytesIO(data)).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, progressive=progressive)
    full = buf.getvalue()
    return full[: int(len(full) * keep)], w, h


def pillow_refuses(data: bytes) -> bool:
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        Image.open(io.BytesIO(data)).convert("RGB")
    except OSError:
        return True
    return False


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_a_truncated_jpeg_is_refused_like_pillow_even_when_the_crop_is_intact(progressive, keep):
    data, _, _ = truncated_jpeg(progressive, keep)
    if len(data) == len(truncated_jpeg(progressive, 1.0)[0]):
        pytest.skip("nothing cut")
    assert pillow_refuses(data)
    with pytest.raises(ImageDecodeError, match="truncated"):
        _core.decode_rgb(data)
    for top, left in [(0, 0), (5, 30)]:  # a small crop near the top: only the intact part is needed
        with pytest.raises(ImageDecodeError, match="truncated"):
            _core.replay_augmentation(data, top, left, 24, 24, [], 16)


def test_complete_jpegs_with_trailing_bytes_still_decode_like_pillow():
    data, _, _ = truncated_jpeg(False, 1.0)
    padded = data + b"\0garbage after the end of image"
    assert not pillow_refuses(padded)
    want = np.asarray(Image.open(io.BytesIO(padded)).convert("RGB"))
    assert np.array_equal(_core.decode_rgb(padded), want)
    crop = _core.replay_augmentation(padded, 0, 0, 24, 24, [], 16)
    assert np.array_equal(crop, _core.replay_augmentation(data, 0, 0, 24, 24, [], 16))


def test_the_loader_never_delivers_a_truncated_jpeg(tmp_path):
    J = 3
    path = tmp_path / "store"
    with StoreWriter(path, J=J, S=2, K=2, D=4, embedding_dtype="float16") as w:
        for i in range(4):
            data, width, height = truncated_jpeg(False, 0.6 if i == 1 else 1.0)
            s = synthetic_sample(i, J=J, image=data, size=(width, height))
            s.aug = aug_records([[[0, 0, 30, 30], []]] * J, width=width, height=height)[0]  # top-left crops
            w.add(s)
    with pytest.raises(ImageDecodeError, match="truncated"):
        list(FastReinforcedLoader(path, 2, image_size=8, shuffle=False, num_threads=1, on_error="raise"))
    loader = FastReinforcedLoader(path, 2, image_size=8, shuffle=False, num_threads=1)
    delivered = [i for b in loader for i in b.index.tolist()]
    assert 1 not in delivered and len(delivered) == 4
    assert [s["index"] for s in loader.skipped] == [1]
