"""FastReinforcedLoader's arguments: memory is sized to what can be delivered,
impossible sizes are a ValueError / MemoryError from the constructor, and no
argument makes a Rust panic reach Python or aborts the process (fuzzed).

Calls that could abort the interpreter run in a child process, so that a
regression fails these tests instead of killing pytest."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mobileclip_fastload import FastReinforcedLoader
from mobileclip_fastload.testing.synthetic_store import make_store

N = 37


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("arguments") / "store", n=N, seed=11)


def run_isolated(code: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run Python `code` in a child interpreter (an abort there cannot take pytest down)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=os.path.dirname(__file__),
    )


@pytest.mark.slow
def test_a_batch_larger_than_the_epoch_is_sized_to_the_epoch(store_path):
    # Before: the first next() tried to allocate 10**6 images and aborted the interpreter.
    done = run_isolated(f"""
        from mobileclip_fastload import FastReinforcedLoader
        loader = FastReinforcedLoader({store_path!r}, 10**6, image_size=64, num_threads=2)
        batches = list(loader)
        assert len(loader) == 1 and len(batches) == 1, len(batches)
        assert tuple(batches[0].images.shape) == ({N}, 3, 64, 64), batches[0].images.shape
        assert loader._core.batch_capacity() == {N}
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_a_rank_shard_bounds_the_batch_memory(store_path):
    loader = FastReinforcedLoader(store_path, 1000, image_size=8, rank=1, world_size=4, num_threads=1)
    assert loader._core.batch_capacity() == math.ceil(N / 4)
    assert [len(b) for b in loader] == [math.ceil(N / 4)]


@pytest.mark.parametrize("image_size", [2**31, 2**40, 2**63])
def test_an_impossible_image_size_is_a_value_error(store_path, image_size):
    # Before: pyo3's PanicException (a BaseException that `except Exception` misses).
    with pytest.raises(ValueError, match="image_size"):
        FastReinforcedLoader(store_path, 4, image_size=image_size)


def test_buffers_larger_than_the_machine_are_a_memory_error(store_path):
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    side = 13_000  # within the per-image pixel limit
    if N * 3 * side * side * 4 <= physical:
        pytest.skip("this machine has room for the largest batch the test store allows")
    with pytest.raises(MemoryError, match="batch"):
        FastReinforcedLoader(store_path, N, image_size=side)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(mean=(float("nan"), 0.0, 0.0)),
        dict(mean=(0.0, float("inf"), 0.0)),
        dict(std=(1.0, 1e-45, 1.0)),  # subnormal in float32: inf pixels
        dict(std=(1.0, 1.0, 1e-50)),  # zero in float32
        dict(std=(float("nan"), 1.0, 1.0)),
        dict(std=(1.0, float("-inf"), 1.0)),
        dict(mean=(1e38, 0.0, 0.0), std=(1e-30, 1.0, 1.0)),  # finite inputs, infinite pixels
        dict(mix_probability=float("nan")),
        dict(num_threads=2**40),
        dict(seed=2**64),
        dict(prefetch=2**70),
        dict(dct_scaling=0.0),
        dict(dct_scaling=float("nan")),
        dict(cache_size=0),
        dict(shuffle_window=0),
    ],
)
def test_invalid_numbers_are_value_errors_naming_the_argument(store_path, kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        FastReinforcedLoader(store_path, 4, image_size=8, **kwargs)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("batch_size", -1, r"batch_size must be an integer in \[1, 2\*\*64 - 1\], got -1"),
        ("batch_size", 0, r"batch_size must be an integer in \[1, 2\*\*64 - 1\], got 0"),
        ("seed", -(2**200), r"seed must be an integer in \[0, 2\*\*64 - 1\]"),
        ("num_threads", 1025, r"num_threads must be an integer in \[1, 1024\], got 1025"),
        ("num_threads", 0, r"num_threads must be an integer in \[1, 1024\], got 0"),  # the real bound, not 2**64 - 1
        ("rank", 2, r"rank must be < world_size \(got rank 2, world_size 1\)"),
        ("mean", (0.0, 0.0), r"mean must have 3 values \(one per RGB channel\), got 2"),
        ("mix_probability", 1.5, r"mix_probability must be in \[0, 1\], got 1.5"),
        ("image_dtype", "float", r"image_dtype must be one of \"float32\", \"uint8\", got \"float\""),
        ("interpolation", "BICUBIC", r"interpolation must be one of \"bicubic\", \"bilinear\", got \"BICUBIC\""),
        ("embedding_output_dtype", "bfloat16", r"embedding_output_dtype must be one of \"float16\", \"float32\""),
        ("caption_mode", "syn", r"caption_mode must be one of \"both\", \"mix\""),
        ("on_error", "ignore", r"on_error must be one of \"skip\", \"raise\""),
        ("order", "random", r"order must be one of \"auto\", \"global\", \"shard_block\""),
        ("caption_sets", ["syn_x"], r"caption_sets: no caption set 'syn_x' \(available: \['syn_text'\]\)"),
        ("caption_sets", "^x", r"caption_sets: caption set regex '\^x' matches none of the caption sets"),
    ],
)
def test_bad_values_name_the_argument_and_the_valid_ones(store_path, name, value, message):
    with pytest.raises(ValueError, match=message):
        FastReinforcedLoader(store_path, **{"batch_size": 4, "image_size": 8, name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("batch_size", 4.0),
        ("batch_size", True),
        ("seed", "1"),
        ("image_dtype", 8),
        ("shuffle", 1),
        ("mean", "abc"),
        ("mix_probability", "0.5"),
        ("storage_options", {"allow_http": True}),
    ],
)
def test_values_of_the_wrong_type_are_type_errors_naming_the_argument(store_path, name, value):
    with pytest.raises(TypeError, match=f"'{name}'"):  # pyo3 notes "while processing '<name>'"
        FastReinforcedLoader(store_path, **{"batch_size": 4, "image_size": 8, name: value})


def test_numpy_integers_and_sequences_are_accepted(store_path):
    import numpy as np

    loader = FastReinforcedLoader(
        store_path,
        np.int64(4),
        image_size=np.uint16(8),
        mean=np.zeros(3),
        std=[1, 1, 1],
        seed=np.uint64(2**64 - 1),
        num_threads=1,
    )
    assert (loader.batch_size, loader._config["seed"], loader._config["image_size"]) == (4, 2**64 - 1, 8)
    loader.set_epoch(np.int32(3))
    assert loader.epoch == 3 and type(loader.epoch) is int


def test_extreme_but_valid_numbers_work(store_path):
    loader = FastReinforcedLoader(
        store_path, 2**63, image_size=8, prefetch=2**63, seed=2**64 - 1, rank=5, world_size=2**63, num_threads=3
    )
    loader.set_epoch(2**64 - 1)
    batches = list(loader)
    assert [len(b) for b in batches] == [1]  # one (padded) sample per rank
    assert loader.state_dict()["epoch"] == 2**64  # counted on in Python, but not an epoch the loader can run
    with pytest.raises(ValueError, match="epoch"):
        iter(loader)


# ----------------------------------------------------------------------------- fuzz
HUGE = st.integers(2**16, 2**63)
ANY_INT = st.one_of(st.integers(-3, 70), HUGE, st.integers(-(2**63), 2**64 + 3))
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)
RANK_WORLD = st.one_of(
    st.just((None, None)), st.integers(1, 2**63).flatmap(lambda w: st.tuples(st.integers(0, w - 1), st.just(w)))
)
# Per argument: values that must work (extremes included), and anything at all. Sizes that are
# valid and large (an image side of 5000) would really be allocated and filled, so the wild
# image sizes and thread counts are either small or impossibly large.
VALID = dict(
    batch_size=st.one_of(st.integers(1, 40), st.integers(1, 2**63)),
    image_size=st.integers(1, 48),
    num_threads=st.one_of(st.none(), st.integers(1, 4)),
    prefetch=st.one_of(st.none(), st.integers(1, 2**63)),
    seed=st.integers(0, 2**64 - 1),
    rank_world=RANK_WORLD,
    epoch=st.integers(0, 2**64 - 2),
    mean=st.tuples(*[st.floats(-10, 10)] * 3),
    std=st.tuples(*[st.floats(0.01, 10)] * 3),
    mix_probability=st.floats(0, 1),
    dct_scaling=st.one_of(st.none(), st.floats(0.25, 4)),
)
WILD = dict(
    batch_size=ANY_INT,
    image_size=st.one_of(st.integers(-3, 48), HUGE),
    num_threads=st.one_of(st.integers(-3, 4), HUGE),
    prefetch=ANY_INT,
    seed=ANY_INT,
    rank_world=st.tuples(st.one_of(st.none(), ANY_INT), st.one_of(st.none(), ANY_INT)),
    epoch=ANY_INT,
    mean=st.tuples(ANY_FLOAT, ANY_FLOAT, ANY_FLOAT),
    std=st.tuples(ANY_FLOAT, ANY_FLOAT, ANY_FLOAT),
    mix_probability=ANY_FLOAT,
    dct_scaling=st.one_of(st.none(), ANY_FLOAT),
)


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "80")), deadline=None, database=None)
@given(
    data=st.data(),
    wild=st.sets(st.sampled_from(sorted(WILD)), max_size=3),
    flags=st.tuples(st.booleans(), st.booleans()),
    image_dtype=st.sampled_from(["float32", "uint8"]),
    caption_mode=st.sampled_from(["both", "mix"]),
)
def fuzz_constructor(store, data, wild, flags, image_dtype, caption_mode):
    """Every call works or raises ValueError / MemoryError; a PanicException (a
    BaseException) or an abort fails it. Up to three arguments per call are wild."""
    args = {k: data.draw(WILD[k] if k in wild else VALID[k], label=k) for k in sorted(VALID)}
    args["rank"], args["world_size"] = args.pop("rank_world")
    epoch = args.pop("epoch")
    drop_last, shuffle = flags
    kwargs = dict(args, drop_last=drop_last, shuffle=shuffle, image_dtype=image_dtype, caption_mode=caption_mode)
    print("trying epoch", epoch, kwargs, flush=True)  # the last line names the culprit of an abort
    try:
        loader = FastReinforcedLoader(store, **kwargs)
        loader.set_epoch(epoch)
        batch = next(iter(loader), None)
        assert batch is None or len(batch) <= min(loader.batch_size, loader.num_samples)
    except (ValueError, MemoryError):
        if not wild:
            raise  # only valid values were drawn: this call must work
        return


@pytest.mark.slow
def test_constructor_arguments_never_panic_or_abort(store_path):
    done = run_isolated(f"""
        import runpy
        runpy.run_path({__file__!r})["fuzz_constructor"]({store_path!r})
        print("fuzz ok")
    """)
    tail = done.stdout[-1500:] + done.stderr[-3000:]
    assert done.returncode == 0 and "fuzz ok" in done.stdout, tail
