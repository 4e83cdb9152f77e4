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

from mobileclip_fastload.store import (
    AUG_DTYPE,
    AUG_FLAG_HFLIP,
    AUG_FLAG_NULL,
    aug_record,
    aug_records,
    bf16_bits_to_float32,
    dequantize_int8,
    encode_embeddings,
    float_to_bf16_bits,
    quantize_int8,
    rescale_box,
)


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
    aug, rescaled = aug_records([None, [[0, 0, 800, 1000], []]], width=512, height=410, orig_width=1000, orig_height=800)
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
    t, l, hh, ww = rescale_box((top, left, height, width), (ow, oh), (w, h))
    assert 0 <= t and 0 <= l and hh >= 1 and ww >= 1
    assert t + hh <= max(h, t + 1) and l + ww <= max(w, l + 1)
    assert abs(l - left * w / ow) <= 0.5 and abs(t - top * h / oh) <= 0.5
    assert rescale_box((top, left, height, width), (ow, oh), (ow, oh)) == (top, left, height, width)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.integers(1, 64), elements=st.floats(allow_nan=False, allow_infinity=False, width=32)))
def test_bf16_rounding_matches_torch(x):
    ours = float_to_bf16_bits(x)
    theirs = torch.from_numpy(x.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(bf16_bits_to_float32(ours), torch.from_numpy(x.copy()).to(torch.bfloat16).float().numpy())


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
@given(arrays(st.sampled_from([np.float16, np.float32, np.float64]), st.tuples(st.integers(1, 4), st.sampled_from([2, 6])),
              elements=st.floats(-60000, 60000, width=16)))
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
