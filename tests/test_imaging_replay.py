"""replay_augmentation must equal reference_replay (the real Pillow + torchvision
of _core.PIXEL_REFERENCE, checked installed by test_pixel_reference.py) exactly:
max |diff| == 0 for crop boxes inside, across and outside the image, every size
and both interpolations, every RandAugment op at every magnitude bin with both
signs, and op pairs."""

from __future__ import annotations

import io
import math
from contextlib import contextmanager
from functools import cache

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mobileclip_fastload import _core
from mobileclip_fastload._core import AUG_OP_NAMES
from mobileclip_fastload.reference import AugParams, reference_replay
from PIL import Image
from skimage import data as skdata

NUM_BINS = 31  # RandAugment(num_magnitude_bins=31), DataCompDR uses magnitude 9 of these


@cache
def encoded_images() -> list[tuple[str, bytes]]:
    """Real photographs, small, in the flavours the decoder supports."""
    out = []

    def save(name, im, fmt, **kw):
        b = io.BytesIO()
        im.save(b, fmt, **kw)
        out.append((name, b.getvalue()))

    for name, (w, h) in [
        ("astronaut", (120, 120)),
        ("coffee", (150, 100)),
        ("chelsea", (97, 131)),
        ("rocket", (160, 107)),
    ]:
        im = Image.fromarray(getattr(skdata, name)()).resize((w, h), Image.BILINEAR)
        save(f"{name}-q90-420", im, "JPEG", quality=90, subsampling=2)
        save(f"{name}-q75-422", im, "JPEG", quality=75, subsampling=1)
        save(f"{name}-q95-444", im, "JPEG", quality=95, subsampling=0)
        save(f"{name}-png", im, "PNG")
    cam = Image.fromarray(skdata.camera()).resize((111, 90), Image.BILINEAR)
    save("camera-gray-jpeg", cam, "JPEG", quality=85)
    save("camera-gray-png", cam, "PNG")
    rgba = Image.fromarray(skdata.astronaut()).resize((70, 90)).convert("RGBA")
    save("astronaut-rgba-png", rgba, "PNG")
    save("astronaut-palette-png", rgba.convert("RGB").convert("P", palette=Image.ADAPTIVE), "PNG")
    return out


def image_size(b: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(b)) as im:
        return im.size


def replay_both(b, box, ops, size, interp, hflip=False):
    top, left, height, width = box
    ours = _core.replay_augmentation(b, top, left, height, width, list(ops), size, interp, hflip)
    ref = reference_replay(b, AugParams(top, left, height, width, tuple(ops), False, hflip), size, interp)
    return ours, ref


def assert_exact(ours, ref, what=""):
    assert ours.shape == ref.shape and ours.dtype == np.uint8
    if not np.array_equal(ours, ref):
        diff = np.abs(ours.astype(int) - ref)
        pytest.fail(f"{what}: max |diff| {diff.max()} at {int((diff.max(axis=2) > 0).sum())} pixels")


def magnitude_bins(op: int, size: int) -> list[float]:
    """torchvision RandAugment._augmentation_space(31, (size, size)) magnitudes,
    as the Python floats `.item()` would give (float32 values)."""
    n = NUM_BINS
    space = {
        1: torch.linspace(0.0, 0.3, n),
        2: torch.linspace(0.0, 0.3, n),
        3: torch.linspace(0.0, 150.0 / 331.0 * size, n),
        4: torch.linspace(0.0, 150.0 / 331.0 * size, n),
        5: torch.linspace(0.0, 30.0, n),
        6: torch.linspace(0.0, 0.9, n),
        7: torch.linspace(0.0, 0.9, n),
        8: torch.linspace(0.0, 0.9, n),
        9: torch.linspace(0.0, 0.9, n),
        10: 8 - (torch.arange(n) / ((n - 1) / 4)).round().int(),
        11: torch.linspace(255.0, 0.0, n),
    }
    if op not in space:
        return [0.0]
    return [float(v) for v in space[op].tolist()]


SIGNED = set(range(1, 10))


# --------------------------------------------------------------- crop + resize


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_crop_resize_matches_reference(data):
    images = encoded_images()
    name, b = images[data.draw(st.integers(0, len(images) - 1), label="image")]
    w, h = image_size(b)
    kind = data.draw(st.sampled_from(["inside", "anywhere", "tiny", "huge"]), label="box kind")
    if kind == "inside":
        height = data.draw(st.integers(1, h))
        width = data.draw(st.integers(1, w))
        top = data.draw(st.integers(0, h - height))
        left = data.draw(st.integers(0, w - width))
    elif kind == "anywhere":
        height = data.draw(st.integers(1, 2 * h))
        width = data.draw(st.integers(1, 2 * w))
        top = data.draw(st.integers(-h, h))
        left = data.draw(st.integers(-w, w))
    elif kind == "tiny":
        height = data.draw(st.integers(1, 4))
        width = data.draw(st.integers(1, 4))
        top = data.draw(st.integers(-3, h + 2))
        left = data.draw(st.integers(-3, w + 2))
    else:
        height = data.draw(st.integers(h, 6 * h))
        width = data.draw(st.integers(w, 6 * w))
        top = data.draw(st.integers(-3 * h, 0))
        left = data.draw(st.integers(-3 * w, 0))
    size = data.draw(st.one_of(st.integers(1, 300), st.sampled_from([224, 256, height, width])), label="size")
    interp = data.draw(st.sampled_from(["bilinear", "bicubic"]), label="interp")
    hflip = data.draw(st.booleans(), label="hflip")
    ours, ref = replay_both(b, (top, left, height, width), [], size, interp, hflip)
    assert_exact(ours, ref, f"{name} box={(top, left, height, width)} size={size} {interp} hflip={hflip}")


@pytest.mark.parametrize("interp", ["bilinear", "bicubic"])
@pytest.mark.parametrize(
    ("box", "size"),
    [
        ((0, 0, 131, 97), 97),  # width keeps its size: Pillow skips the horizontal pass
        ((0, 0, 97, 97), 40),  # plain square downscale
        ((0, 0, 131, 20), 15),  # tall: Pillow 13 runs the vertical pass first
        ((0, 0, 131, 60), 100),  # height shrinks, width grows: vertical first
        ((0, 0, 40, 97), 60),  # wide: horizontal first
        ((-50, -50, 10, 10), 8),  # entirely outside the image: black
        ((131, 97, 5, 5), 5),  # just past the bottom-right corner: black
        ((5, 5, 1, 1), 300),  # one pixel to a large upscale
        ((-40, 0, 1, 97), 1),  # height keeps its size, rows all outside: black
        ((0, 200, 131, 2), 2),  # width keeps its size, columns all outside: black
        ((-10, -10, 131, 97), 97),  # no pass at all: a shifted copy with black edges
    ],
)
@pytest.mark.slow
def test_resize_pass_order_and_edge_boxes(box, size, interp):
    b = dict(encoded_images())["chelsea-q90-420"]
    ours, ref = replay_both(b, box, [], size, interp)
    assert_exact(ours, ref, f"box={box} size={size}")


# --------------------------------------------------------------- RandAugment ops


@pytest.mark.slow
@pytest.mark.parametrize("size", [64, 224])
@pytest.mark.parametrize("op", range(len(AUG_OP_NAMES)), ids=AUG_OP_NAMES)
def test_every_op_at_every_bin_both_signs(op, size):
    """Deterministic and exhaustive: the 31 bins of each op, both signs where signed."""
    b = dict(encoded_images())["coffee-q90-420"]
    box = (3, 8, 90, 130)
    for m in magnitude_bins(op, size):
        for sign in (1.0, -1.0) if op in SIGNED else (1.0,):
            ours, ref = replay_both(b, box, [(op, sign * m)], size, "bicubic")
            assert_exact(ours, ref, f"{AUG_OP_NAMES[op]}({sign * m!r}) size={size}")


@pytest.mark.parametrize(
    ("op", "m"),
    [
        (5, 90.0),
        (5, -90.0),
        (5, 180.0),
        (5, 270.0),
        (5, 360.0),
        (5, -0.0),
        (5, 1e-9),
        (5, -1e-20),
        (5, 45.0),
        (5, 123.456),
        (1, 5.0),
        (2, -3.0),
        (1, 1e-12),
        (3, -30.45),
        (3, 0.999),
        (4, -0.999),
        (3, 500.0),
        (4, -64.0),
        (6, -1.0),
        (6, 2.5),
        (7, -1.0),
        (7, 1.7),
        (8, -1.0),
        (8, 3.0),
        (9, -1.0),
        (9, 4.0),
        (9, -7.0),
        (10, 1.0),
        (10, 8.9),
        (11, 0.0),
        (11, -1.0),
        (11, 255.0),
        (11, 256.0),
        (11, 127.5),
    ],
)
@pytest.mark.slow
def test_op_magnitudes_outside_the_bins(op, m):
    b = dict(encoded_images())["rocket-q95-444"]
    ours, ref = replay_both(b, (0, 0, 107, 160), [(op, m)], 96, "bilinear")
    assert_exact(ours, ref, f"{AUG_OP_NAMES[op]}({m!r})")


@pytest.mark.parametrize("m", [0.0, 0.5, 9.0, -3.0])
def test_posterize_bits_the_reference_rejects(m):
    b = dict(encoded_images())["rocket-q95-444"]
    with pytest.raises(ValueError, match="bits"):
        reference_replay(b, AugParams(0, 0, 50, 50, ((10, m),)), 32, "bilinear")
    with pytest.raises(ValueError, match="Posterize"):
        _core.replay_augmentation(b, 0, 0, 50, 50, [(10, m)], 32)


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_op_pairs_match_reference(data):
    images = encoded_images()
    name, b = images[data.draw(st.integers(0, len(images) - 1), label="image")]
    w, h = image_size(b)
    size = data.draw(st.sampled_from([17, 64, 128, 224]), label="size")
    ops = []
    for _ in range(data.draw(st.integers(0, 2), label="n_ops")):
        op = data.draw(st.integers(0, len(AUG_OP_NAMES) - 1), label="op")
        m = data.draw(st.sampled_from(magnitude_bins(op, size)), label="bin")
        if op in SIGNED and data.draw(st.booleans(), label="negative"):
            m = -m
        ops.append((op, m))
    height = data.draw(st.integers(max(1, h // 4), 2 * h))
    width = data.draw(st.integers(max(1, w // 4), 2 * w))
    top = data.draw(st.integers(-h // 2, h))
    left = data.draw(st.integers(-w // 2, w))
    interp = data.draw(st.sampled_from(["bilinear", "bicubic"]), label="interp")
    hflip = data.draw(st.booleans(), label="hflip")
    ours, ref = replay_both(b, (top, left, height, width), ops, size, interp, hflip)
    assert_exact(ours, ref, f"{name} ops={ops} size={size} {interp}")


@pytest.mark.slow
def test_datacompdr_like_entries():
    """Magnitude-9 entries as DataCompDR stores them (float32 bins as doubles)."""
    b = dict(encoded_images())["astronaut-q90-420"]
    shear = float(torch.linspace(0.0, 0.3, NUM_BINS)[9])
    tx = float(torch.linspace(0.0, 150.0 / 331.0 * 224, NUM_BINS)[9])
    entries = [
        ((10, 12, 100, 90), [(1, -shear), (11, float(torch.linspace(255.0, 0.0, NUM_BINS)[9]))]),
        ((0, 0, 120, 120), [(3, tx), (5, -9.0)]),
        ((-5, 30, 80, 95), [(8, 0.27), (13, 0.0)]),
        ((40, 2, 60, 70), [(7, -0.27), (9, 0.27)]),
    ]
    # Teacher side (224), student side (256), both bicubic as Apple's pipeline; bilinear stays an option.
    for size, interp in [(224, "bicubic"), (256, "bicubic"), (256, "bilinear")]:
        for box, ops in entries:
            ours, ref = replay_both(b, box, ops, size, interp)
            assert_exact(ours, ref, f"box={box} ops={ops} size={size}")


# --------------------------------------------------------------- errors


def test_invalid_arguments_are_value_errors():
    b = dict(encoded_images())["rocket-q95-444"]
    with pytest.raises(ValueError, match="interpolation"):
        _core.replay_augmentation(b, 0, 0, 10, 10, [], 8, "nearest")
    with pytest.raises(ValueError, match="op index"):
        _core.replay_augmentation(b, 0, 0, 10, 10, [(14, 0.0)], 8)
    with pytest.raises(ValueError, match="empty"):
        _core.replay_augmentation(b, 0, 0, 0, 10, [], 8)
    with pytest.raises(ValueError, match="at most 2"):
        _core.replay_augmentation(b, 0, 0, 10, 10, [(0, 0.0)] * 3, 8)
    with pytest.raises(ValueError, match="finite"):
        _core.replay_augmentation(b, 0, 0, 10, 10, [(5, math.nan)], 8)
    with pytest.raises(ValueError, match="too large"):
        _core.replay_augmentation(b, 0, 0, 10, 10, [], 1_000_000)
    # A crop above Pillow's bomb limit is refused (Pillow raises DecompressionBombError).
    with pytest.raises(ValueError, match="exceeds the limit"):
        _core.replay_augmentation(b, 0, 0, 20000, 20000, [], 8)


def test_threads_share_nothing():
    """Per-thread replayers (GIL released): concurrent calls give the sequential results."""
    from concurrent.futures import ThreadPoolExecutor

    images = encoded_images()
    jobs = [
        (
            images[i % len(images)][1],
            (i - 5, 2 * i - 7, 40 + 3 * i, 50 + i),
            [(i % 14, 0.2), ((i + 3) % 10 + 1, -0.1)],
            32 + i,
        )
        for i in range(24)
    ]
    jobs = [(b, box, [(o, 5.0) if o == 10 else (o, m) for o, m in ops], s) for b, box, ops, s in jobs]

    def run(job):
        b, box, ops, size = job
        return _core.replay_augmentation(b, *box, ops, size, "bicubic")

    sequential = [run(j) for j in jobs]
    with ThreadPoolExecutor(4) as pool:
        concurrent = list(pool.map(run, jobs * 3))
    for i, arr in enumerate(concurrent):
        assert np.array_equal(arr, sequential[i % len(jobs)])


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_partial_jpeg_decode_is_pixel_identical(data):
    """Decoding only the crop's region of a JPEG changes no output pixel."""
    images = [(n, b) for n, b in encoded_images() if "jpeg" in n or "-q" in n]
    name, b = images[data.draw(st.integers(0, len(images) - 1), label="image")]
    w, h = image_size(b)
    height, width = data.draw(st.integers(1, h)), data.draw(st.integers(1, w))
    top, left = data.draw(st.integers(-h // 3, h)), data.draw(st.integers(-w // 3, w))
    size = data.draw(st.sampled_from([1, 7, 64, 150]))
    interp = data.draw(st.sampled_from(["bilinear", "bicubic"]))
    args = (b, top, left, height, width, [(5, 9.0)], size, interp)
    assert np.array_equal(
        _core.replay_augmentation(*args, partial_decode=True),
        _core.replay_augmentation(*args, partial_decode=False),
    ), f"{name} box={(top, left, height, width)}"


@pytest.mark.slow
def test_dct_scaling_fast_mode_is_close_and_off_by_default():
    """The optional inexact mode: identical when no scaling applies, close otherwise."""
    big = Image.fromarray(skdata.astronaut()).resize((1024, 1024), Image.BICUBIC)
    bio = io.BytesIO()
    big.save(bio, "JPEG", quality=90)
    b = bio.getvalue()
    exact = _core.replay_augmentation(b, 100, 50, 800, 900, [], 96, "bicubic")
    # 800 px crop, 96 px output, ratio 2: decoded at 1/4 (200 px >= 2 * 96).
    fast = _core.replay_augmentation(b, 100, 50, 800, 900, [], 96, "bicubic", dct_scaling=2.0)
    assert not np.array_equal(fast, exact)
    mse = np.mean((fast.astype(float) - exact.astype(float)) ** 2)
    # About 31 dB here; a box misplaced by 4 source pixels alone scores about 23 dB.
    assert 10 * np.log10(255**2 / mse) > 28
    # A crop too small to scale is replayed exactly.
    small = _core.replay_augmentation(b, 10, 10, 150, 150, [], 96, "bicubic", dct_scaling=1.0)
    assert np.array_equal(small, _core.replay_augmentation(b, 10, 10, 150, 150, [], 96, "bicubic"))
    # PNG input is never scaled.
    png = dict(encoded_images())["coffee-png"]
    assert np.array_equal(
        _core.replay_augmentation(png, 0, 0, 100, 150, [], 8, "bilinear", dct_scaling=0.1),
        _core.replay_augmentation(png, 0, 0, 100, 150, [], 8, "bilinear"),
    )


def test_reference_accepts_records_upstream_entries_and_null():
    """reference_replay reads the 40-byte record of rust/src/aug.rs, upstream
    `param_aug` entries and `None` consistently."""
    import struct

    b = dict(encoded_images())["chelsea-q90-420"]
    w, h = image_size(b)
    ops = ((5, -9.0), (11, 178.5))
    rec = struct.pack("<ddiiiiBBBB4x", -9.0, 178.5, 7, -3, 80, 60, 5, 11, 2, 2)
    via_record = reference_replay(b, rec, 64, "bicubic")
    via_params = reference_replay(b, AugParams(7, -3, 80, 60, ops, False, True), 64, "bicubic")
    assert np.array_equal(via_record, via_params)
    upstream = [[7, -3, 80, 60], [[5, -9.0], [11, 178.5]]]
    assert np.array_equal(
        reference_replay(b, upstream, 64, "bicubic"),
        reference_replay(b, AugParams(7, -3, 80, 60, ops), 64, "bicubic"),
    )
    ours = _core.replay_augmentation(b, 7, -3, 80, 60, list(ops), 64, "bicubic", True)
    assert np.array_equal(ours, via_record)
    # null: the whole image, no ops, whatever the record's box says
    null_rec = struct.pack("<ddiiiiBBBB4x", 0.0, 0.0, 1, 1, 5, 5, 0, 0, 0, 1)
    full = _core.replay_augmentation(b, 0, 0, h, w, [], 64, "bicubic")
    assert np.array_equal(reference_replay(b, null_rec, 64, "bicubic"), full)
    assert np.array_equal(reference_replay(b, None, 64, "bicubic"), full)


# --------------------------------------------------------------- kernels and batch replay


@cache
def larger_jpegs() -> list[tuple[str, bytes]]:
    """Photographs large enough for every SIMD block path (full 8x8 and 32-byte
    blocks plus ragged edges)."""
    out = []
    for name, (w, h), ss in [("coffee", (333, 221), 2), ("rocket", (203, 290), 0)]:
        b = io.BytesIO()
        Image.fromarray(getattr(skdata, name)()).resize((w, h), Image.BICUBIC).save(
            b, "JPEG", quality=88, subsampling=ss
        )
        out.append((name, b.getvalue()))
    return out


@contextmanager
def portable_kernels():
    """Force the portable (non-SIMD) kernels for the duration (process-wide)."""
    assert _core.set_portable_kernels(True) == "portable"
    try:
        yield
    finally:
        _core.set_portable_kernels(False)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_portable_and_simd_kernels_both_match_reference(data):
    """The dispatched kernels (AVX2 where the CPU has it) and the forced
    portable ones give the reference's pixels, on crops with and without ops."""
    images = larger_jpegs() + encoded_images()[:3]
    name, b = images[data.draw(st.integers(0, len(images) - 1), label="image")]
    w, h = image_size(b)
    height, width = data.draw(st.integers(1, 2 * h)), data.draw(st.integers(1, 2 * w))
    top, left = data.draw(st.integers(-h // 2, h)), data.draw(st.integers(-w // 2, w))
    size = data.draw(st.sampled_from([9, 64, 224, 256]), label="size")
    ops = []
    for _ in range(data.draw(st.integers(0, 2), label="n_ops")):
        op = data.draw(st.integers(0, len(AUG_OP_NAMES) - 1), label="op")
        m = data.draw(st.sampled_from(magnitude_bins(op, size)), label="bin")
        ops.append((op, -m if op in SIGNED and data.draw(st.booleans()) else m))
    interp = data.draw(st.sampled_from(["bilinear", "bicubic"]), label="interp")
    box = (top, left, height, width)
    native, ref = replay_both(b, box, ops, size, interp)
    assert_exact(native, ref, f"{_core.kernel_level()} {name} box={box} ops={ops} size={size} {interp}")
    with portable_kernels():
        portable = _core.replay_augmentation(b, *box, ops, size, interp)
    assert_exact(portable, ref, f"portable {name} box={box} ops={ops} size={size} {interp}")


def test_portable_switch_reports_the_kernel_set():
    level = _core.kernel_level()
    assert level in ("avx2", "portable")
    with portable_kernels():
        assert _core.kernel_level() == "portable"
    assert _core.kernel_level() == level


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_replay_augmentations_decodes_once_same_pixels(data):
    """J entries of one image replayed with one decode equal one
    replay_augmentation per entry, and the reference (null entries included)."""
    images = larger_jpegs() + encoded_images()[:2]
    name, b = images[data.draw(st.integers(0, len(images) - 1), label="image")]
    w, h = image_size(b)
    size = data.draw(st.sampled_from([16, 64]), label="size")
    interp = data.draw(st.sampled_from(["bilinear", "bicubic"]), label="interp")
    entries = []
    for _ in range(data.draw(st.integers(1, 5), label="J")):
        if data.draw(st.integers(0, 9)) == 0:
            entries.append(None)
            continue
        height, width = data.draw(st.integers(1, h)), data.draw(st.integers(1, w))
        top, left = data.draw(st.integers(-h // 4, h - 1)), data.draw(st.integers(-w // 4, w - 1))
        op = data.draw(st.integers(0, len(AUG_OP_NAMES) - 1), label="op")
        ops = [(op, data.draw(st.sampled_from(magnitude_bins(op, size))))]
        entries.append((top, left, height, width, ops, data.draw(st.booleans())))
    got = _core.replay_augmentations(b, entries, size, interp)
    assert got.shape == (len(entries), size, size, 3)
    for k, e in enumerate(entries):
        if e is None:
            ref = reference_replay(b, None, size, interp)
        else:
            top, left, height, width, ops, hflip = e
            one = _core.replay_augmentation(b, top, left, height, width, ops, size, interp, hflip)
            assert np.array_equal(got[k], one), f"{name} entry {k}={e}"
            ref = reference_replay(b, AugParams(top, left, height, width, tuple(ops), False, hflip), size, interp)
        assert_exact(got[k], ref, f"{name} entry {k}={e}")
