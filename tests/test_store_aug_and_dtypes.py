"""Augmentation records (layout, DataCompDR conversion, box rescaling) and the
embedding dtype conversions."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from mobileclip_fastload import Store, _core
from mobileclip_fastload.reference import AugParams, parse_aug
from mobileclip_fastload.store import (
    AUG_DTYPE,
    AUG_FLAG_HFLIP,
    AUG_FLAG_NULL,
    Sample,
    StoreWriter,
    aug_record,
    aug_records,
    bf16_bits_to_float32,
    check_aug,
    dequantize_int8,
    encode_embeddings,
    float_to_bf16_bits,
    null_record,
    quantize_int8,
    rescale_box,
)
from mobileclip_fastload.store.aug import AUG_NUM_OPS, MAX_OPS_PER_ENTRY


def test_record_layout_is_the_rust_one():
    rec = aug_record((-3, 7, 100, 120), [(5, -9.0), (11, 178.5)], hflip=True)
    # rust/src/aug.rs: f64 m0, f64 m1, i32 top/left/height/width, u8 op0/op1/n_ops/flags, 4 zero bytes
    assert rec.tobytes() == struct.pack("<ddiiiiBBBB4x", -9.0, 178.5, -3, 7, 100, 120, 5, 11, 2, AUG_FLAG_HFLIP)
    assert AUG_DTYPE.itemsize == 40


def test_datacompdr_entries_and_null():
    params = [[[10, 20, 30, 40], [[1, 0.09], [6, -0.27]]], None, [[0, 0, 5, 6], []]]
    aug, rescaled = aug_records(json.dumps(params), width=64, height=48)  # JSON text is accepted too
    assert not rescaled
    assert aug[0]["top"] == 10 and aug[0]["left"] == 20 and aug[0]["height"] == 30 and aug[0]["width"] == 40
    assert (aug[0]["op0"], aug[0]["m0"], aug[0]["op1"], aug[0]["m1"], aug[0]["n_ops"]) == (1, 0.09, 6, -0.27, 2)
    # null: the whole stored image, no ops, null flag
    assert (aug[1]["top"], aug[1]["left"], aug[1]["height"], aug[1]["width"]) == (0, 0, 48, 64)
    assert aug[1]["n_ops"] == 0 and aug[1]["flags"] == AUG_FLAG_NULL
    assert aug[2]["n_ops"] == 0 and aug[2]["flags"] == 0


def test_rescaling_maps_edges_with_round_half_up():
    # left 200 * 0.512 = 102.4 -> 102, right 600 * 0.512 = 307.2 -> 307; top 51.25 -> 51, bottom 205
    assert rescale_box((100, 200, 300, 400), (1000, 800), (512, 410)) == (51, 102, 154, 205)
    # exact halves round up: 1 * 3/2 = 1.5 -> 2, (1+1) * 3/2 = 3
    assert rescale_box((1, 1, 1, 1), (2, 2), (3, 3)) == (2, 2, 1, 1)
    # a box never collapses to zero size
    assert rescale_box((0, 0, 1, 1), (1000, 1000), (10, 10)) == (0, 0, 1, 1)
    aug, rescaled = aug_records(
        [None, [[0, 0, 800, 1000], []]], width=512, height=410, orig_width=1000, orig_height=800
    )
    assert rescaled
    # whole original image -> whole stored image; null entries use the stored size
    for rec in aug:
        assert (rec["top"], rec["left"], rec["height"], rec["width"]) == (0, 0, 410, 512)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4000), st.integers(1, 4000), st.integers(1, 4000), st.integers(1, 4000), st.data())
def test_rescaled_boxes_stay_inside_and_identity_is_exact(ow, oh, w, h, data):
    top = data.draw(st.integers(0, oh - 1))
    left = data.draw(st.integers(0, ow - 1))
    height = data.draw(st.integers(1, oh - top))
    width = data.draw(st.integers(1, ow - left))
    t, lf, hh, ww = rescale_box((top, left, height, width), (ow, oh), (w, h))
    assert t >= 0 and lf >= 0 and hh >= 1 and ww >= 1
    assert t + hh <= max(h, t + 1) and lf + ww <= max(w, lf + 1)
    assert abs(lf - left * w / ow) <= 0.5 and abs(t - top * h / oh) <= 0.5
    assert rescale_box((top, left, height, width), (ow, oh), (ow, oh)) == (top, left, height, width)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.integers(1, 64), elements=st.floats(allow_nan=False, allow_infinity=False, width=32)))
def test_bf16_rounding_matches_torch(x):
    ours = float_to_bf16_bits(x)
    theirs = torch.from_numpy(x.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(
        bf16_bits_to_float32(ours), torch.from_numpy(x.copy()).to(torch.bfloat16).float().numpy()
    )


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 4), st.sampled_from([2, 6])), elements=st.floats(-50, 50, width=32)))
def test_int8_quantization_error_is_at_most_half_a_step(x):
    q, scales = quantize_int8(x, 2)
    assert q.dtype == np.int8 and scales.shape == (x.shape[0], 2)
    err = np.abs(dequantize_int8(q, scales) - x).reshape(x.shape[0], 2, -1)
    assert (err <= scales[:, :, None] * (0.5 + 1e-5) + 1e-30).all()
    assert (np.abs(q) <= 127).all()


def numpy_int8_reference(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The int8 rule written with numpy (float32 throughout, rint = ties to even)."""
    per_teacher = np.asarray(x, np.float32).reshape(x.shape[0], k, -1)
    scales = (np.abs(per_teacher).max(axis=2) / np.float32(127)).astype(np.float32)
    safe = np.where(scales > 0, scales, np.float32(1))[:, :, None]
    q = np.clip(np.rint(per_teacher / safe), -127, 127).astype(np.int8)
    return q.reshape(x.shape), scales


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        st.sampled_from([np.float16, np.float32, np.float64]),
        st.tuples(st.integers(1, 4), st.sampled_from([2, 6])),
        elements=st.floats(-60000, 60000, width=16),
    )
)
def test_encodings_match_numpy_and_torch(x):
    """The Rust encoder against independent references, for every float input type."""
    values, scales = encode_embeddings(x, "float16", 2)
    assert scales is None and values.dtype == np.float16
    np.testing.assert_array_equal(values.view(np.uint16), x.astype(np.float16).view(np.uint16))
    values, _ = encode_embeddings(x, "bfloat16", 2)
    as_f32 = torch.from_numpy(x.astype(np.float32))
    np.testing.assert_array_equal(values, as_f32.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))
    values, scales = encode_embeddings(x, "int8", 2)
    want_q, want_scales = numpy_int8_reference(x, 2)
    np.testing.assert_array_equal(values, want_q)
    np.testing.assert_array_equal(scales, want_scales)
    # Already-encoded input is taken as it is.
    bits, _ = encode_embeddings(x, "bfloat16", 2)
    assert encode_embeddings(bits, "bfloat16", 2)[0].tobytes() == bits.tobytes()
    again, again_scales = encode_embeddings(values, "int8", 2, scales)
    assert again.tobytes() == values.tobytes() and again_scales.tobytes() == scales.tobytes()


def test_encoding_refuses_what_the_dtype_cannot_hold():
    with pytest.raises(ValueError, match="image_emb overflows float16"):
        encode_embeddings(np.full((1, 2), 1e5, np.float32), "float16", 1, what="image_emb")
    with pytest.raises(ValueError, match="overflows bfloat16"):
        encode_embeddings(np.full((1, 2), 3.4e38, np.float32), "bfloat16", 1)
    with pytest.raises(ValueError, match="non-finite"):
        encode_embeddings(np.array([[np.nan, 0]], np.float32), "int8", 1)
    with pytest.raises(ValueError, match="int8 input needs its scales"):
        encode_embeddings(np.zeros((1, 2), np.int8), "int8", 1)
    with pytest.raises(ValueError, match="got int32"):
        encode_embeddings(np.zeros((1, 2), np.int32), "float16", 1)


def test_int8_zero_slices_have_zero_scale():
    q, scales = quantize_int8(np.zeros((2, 4), np.float32), 2)
    assert not q.any() and not scales.any()


def test_aug_record_validation():
    with pytest.raises(ValueError, match="at most 2"):
        aug_record((0, 0, 1, 1), [(0, 0.0)] * 3)
    with pytest.raises(ValueError, match="finite"):
        aug_record((0, 0, 1, 1), [(0, float("inf"))])
    with pytest.raises(ValueError, match="int32"):
        aug_record((2**31, 0, 1, 1))


# --- the record, defined once in rust/src/aug/ ----------------------------------------------------

#: The layout as docs state it, spelled independently of the code: f64 m0, m1; i32 top, left,
#: height, width; u8 op0, op1, n_ops, flags; 4 zero bytes.
RECORD_STRUCT = struct.Struct("<ddiiiiBBBB4x")

int32 = st.integers(-(2**31), 2**31 - 1)
positive_int32 = st.integers(1, 2**31 - 1)
ops_st = st.lists(
    st.tuples(st.integers(0, AUG_NUM_OPS - 1), st.floats(allow_nan=False, allow_infinity=False)),
    max_size=MAX_OPS_PER_ENTRY,
)


def test_dtype_is_built_from_the_rust_layout():
    assert AUG_DTYPE.itemsize == RECORD_STRUCT.size == _core.AUG_RECORD_SIZE == 40
    assert AUG_DTYPE.names == tuple(name for name, _, _ in _core.AUG_RECORD_FIELDS)
    assert [AUG_DTYPE.fields[n][1] for n in AUG_DTYPE.names] == [off for _, _, off in _core.AUG_RECORD_FIELDS]
    assert (AUG_NUM_OPS, MAX_OPS_PER_ENTRY, AUG_FLAG_NULL, AUG_FLAG_HFLIP) == (14, 2, 1, 2)


@settings(max_examples=300, deadline=None)
@given(int32, int32, positive_int32, positive_int32, ops_st, st.booleans(), st.booleans())
def test_records_have_the_documented_bytes_and_decode_back(top, left, height, width, ops, null, hflip):
    rec = aug_record((top, left, height, width), ops, null=null, hflip=hflip)
    padded = list(ops) + [(0, 0.0)] * (2 - len(ops))
    flags = (AUG_FLAG_NULL if null else 0) | (AUG_FLAG_HFLIP if hflip else 0)
    want = RECORD_STRUCT.pack(
        padded[0][1], padded[1][1], top, left, height, width, padded[0][0], padded[1][0], len(ops), flags
    )
    assert rec.tobytes() == want
    assert parse_aug(rec.tobytes()) == AugParams(top, left, height, width, tuple(ops), null, hflip)
    check_aug(rec.reshape(1), 1)


@settings(max_examples=400, deadline=None)
@given(int32, int32, positive_int32, positive_int32, ops_st, st.booleans(), st.integers(0, 39), st.integers(0, 255))
def test_a_record_with_one_byte_changed_is_rejected_or_read_as_documented(
    top, left, height, width, ops, hflip, at, byte
):
    raw = bytearray(aug_record((top, left, height, width), ops, hflip=hflip).tobytes())
    raw[at] = byte
    m0, m1, top, left, height, width, op0, op1, n_ops, flags = RECORD_STRUCT.unpack(raw)
    valid = (
        op0 < 14
        and op1 < 14
        and n_ops <= 2
        and flags <= 3
        and np.isfinite([m0, m1]).all()
        and height > 0
        and width > 0
        and raw[36:] == bytes(4)
    )
    if valid:
        check_aug(np.frombuffer(bytes(raw), AUG_DTYPE), 1)
        assert parse_aug(bytes(raw)) == AugParams(
            top,
            left,
            height,
            width,
            ((op0, m0), (op1, m1))[:n_ops],
            bool(flags & AUG_FLAG_NULL),
            bool(flags & AUG_FLAG_HFLIP),
        )
    else:
        with pytest.raises(ValueError, match=r"aug\[0\] is not a valid augmentation record"):
            check_aug(np.frombuffer(bytes(raw), AUG_DTYPE), 1)
        with pytest.raises(ValueError):  # noqa: PT011 -- each invalid field has its own message
            parse_aug(bytes(raw))


def test_check_aug_applies_the_readers_rule_pad_included():
    good = aug_record((0, 0, 4, 4), [(13, 1.5)]).reshape(1)
    check_aug(good, 1)
    for field, value, why in [
        ("pad", [0, 0, 1, 0], "pad bytes"),
        ("op1", 14, "op index 14"),
        ("n_ops", 3, "at most 2"),
        ("flags", 4, "flags"),
        ("height", 0, "positive"),
        ("m1", np.nan, "finite"),
    ]:
        bad = good.copy()
        bad[0][field] = value
        with pytest.raises(ValueError, match=f"aug\\[0\\] is not a valid augmentation record: .*{why}"):
            check_aug(bad, 1)
        with pytest.raises(ValueError, match=why):
            _core.decode_aug_record(bad.tobytes())
    with pytest.raises(ValueError, match="must be 40 bytes, got 39"):
        parse_aug(good.tobytes()[:39])


def test_entry_values_must_be_integers_and_numbers():
    as_json = "[[[1.0, 2, 3, 4], [[5.0, 1]]], null]"
    assert (
        aug_records(as_json, width=9, height=9)[0].tobytes()
        == aug_records([[[np.int64(1), 2, 3, 4], [[np.uint8(5), np.float32(1.0)]]], None], width=9, height=9)[
            0
        ].tobytes()
    )
    assert (
        aug_records(as_json, width=9, height=9)[0].tobytes()
        == aug_records(as_json.encode(), width=9, height=9)[0].tobytes()
    )
    for bad, why in [
        ([[[0.5, 0, 1, 1], []]], "not 4 integers"),
        ([[[True, 0, 1, 1], []]], "not 4 integers"),
        ([[[0, 0, 1, 1], [["3", 1.0]]]], "op"),
        ([[[0, 0, 1, 1], [[3, None]]]], "op"),
        ([[[0, 0, 1, 1], [[3, float("nan")]]]], "finite"),
        ("[[[0, 0, 1", "not valid JSON"),
        ([[[2**40, 0, 1, 1], []]], "int32"),
    ]:
        with pytest.raises(ValueError, match=why):
            aug_records(bad, width=9, height=9)
    assert _core.parse_param_aug([[[1.0, 2, 3, 4], [[5.0, 1]]], None]) == [[[1, 2, 3, 4], [[5, 1.0]]], None]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 3000), st.integers(1, 3000), st.integers(1, 3000), st.data())
def test_rescaling_keeps_whole_boxes_whole_and_neighbours_adjacent(ow, oh, w, h, data):
    assert rescale_box((0, 0, oh, ow), (ow, oh), (w, h)) == (0, 0, h, w)
    top, left = data.draw(st.integers(-oh, oh)), data.draw(st.integers(-ow, ow))
    height, width = data.draw(st.integers(1, 2 * oh)), data.draw(st.integers(1, 2 * ow))
    t, lf, hh, ww = rescale_box((top, left, height, width), (ow, oh), (w, h))
    assert hh >= 1 and ww >= 1
    # the box to the right (below) starts where this one ends, unless this one was widened to 1 pixel
    _, right_l, _, _ = rescale_box((top, left + width, height, width), (ow, oh), (w, h))
    below_t, _, _, _ = rescale_box((top + height, left, height, width), (ow, oh), (w, h))
    assert right_l == lf + ww or (ww == 1 and right_l in (lf, lf + 1))
    assert below_t == t + hh or (hh == 1 and below_t in (t, t + 1))
    # aug_records applies exactly this rule to each entry
    recs, rescaled = aug_records(
        [[[top, left, height, width], []], None], width=w, height=h, orig_width=ow, orig_height=oh
    )
    assert rescaled == ((ow, oh) != (w, h))
    assert recs[0].tobytes() == aug_record((t, lf, hh, ww)).tobytes()
    assert recs[1].tobytes() == null_record(w, h).tobytes()


def test_rescale_box_rejects_empty_sizes():
    with pytest.raises(ValueError, match=r"cannot rescale a box between sizes \(0, 5\) and \(5, 5\)"):
        rescale_box((0, 0, 1, 1), (0, 5), (5, 5))


def test_records_round_trip_through_the_store(tmp_path):
    entries = [[[-3, 7, 10, 12], [[5, -9.0], [11, 178.5]]], None, [[0, 0, 24, 32], [[13, 0.0]]]]
    recs, _ = aug_records(entries, width=32, height=24)
    recs[2]["flags"] |= AUG_FLAG_HFLIP
    emb = np.full((3, 4), 0.5, np.float32)
    with StoreWriter(tmp_path / "s", J=3, S=1, K=1, D=4) as w:
        w.add(
            Sample(
                uid="a",
                image=b"x",
                width=32,
                height=24,
                orig_width=32,
                orig_height=24,
                caption="c",
                caption_tokens=np.array([49406, 49407], np.uint16),
                syn_captions=["s"],
                syn_tokens=[np.array([49406, 49407], np.uint16)],
                aug=recs,
                image_emb=emb,
                text_emb=emb[:2],
            )
        )
    got = Store(tmp_path / "s").sample(0).aug
    assert got.dtype == AUG_DTYPE and got.tobytes() == recs.tobytes()
    assert parse_aug(got[0]) == parse_aug(entries[0]) == AugParams(-3, 7, 10, 12, ((5, -9.0), (11, 178.5)))
    assert parse_aug(got[1]) == AugParams(0, 0, 24, 32, (), True, False)
    assert parse_aug(got[2]) == AugParams(0, 0, 24, 32, ((13, 0.0),), False, True)
