//! Nearest-neighbour affine warps as the reference computes them:
//! torchvision 0.29.2 builds an inverse matrix in Python doubles
//! (`_get_inverse_affine_matrix`, or `Image.rotate`'s matrix rounded to 15
//! decimals), then Pillow 13.0.0's `Image.transform(size, AFFINE, matrix,
//! NEAREST, fillcolor=0)` runs `ImagingTransformAffine` (Geometry.c), which
//! picks one of three engines:
//! - `ImagingScaleAffine` when `a[1] == 0 && a[3] == 0` (pure scale /
//!   translation, e.g. TranslateX/Y): tabulated columns, double accumulation;
//! - `affine_fixed` when the four corners map inside +-32768: 16.16 fixed
//!   point (ShearX/Y, Rotate in practice);
//! - otherwise a double-precision walk.
//!
//! Pixels with no source stay at the fill colour (black).

use super::pymath::{py_round, radians};
use super::CHANNELS;

/// torchvision `_get_inverse_affine_matrix(center, angle, translate, scale,
/// shear, inverted=True)`, term for term in doubles.
pub fn inverse_affine_matrix(
    center: [f64; 2],
    angle: f64,
    translate: [f64; 2],
    scale: f64,
    shear: [f64; 2],
) -> [f64; 6] {
    let rot = radians(angle);
    let sx = radians(shear[0]);
    let sy = radians(shear[1]);
    let [cx, cy] = center;
    let [tx, ty] = translate;
    let a = (rot - sy).cos() / sy.cos();
    let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
    let c = (rot - sy).sin() / sy.cos();
    let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();
    let mut m = [d, -b, 0.0, -c, a, 0.0];
    for v in m.iter_mut() {
        *v /= scale;
    }
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
    m
}

/// The matrix `Image.rotate(angle)` passes to `transform` (no expand, no
/// translate, default center `(w / 2, h / 2)`); `angle` is already `% 360`.
pub fn rotate_matrix(angle: f64, w: usize, h: usize) -> [f64; 6] {
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let angle = -radians(angle);
    let mut m = [
        py_round(angle.cos(), 15),
        py_round(angle.sin(), 15),
        0.0,
        py_round(-angle.sin(), 15),
        py_round(angle.cos(), 15),
        0.0,
    ];
    // matrix[2], matrix[5] = transform(-center[0] - 0, -center[1] - 0, matrix)
    let (x, y) = (-cx - 0.0, -cy - 0.0);
    let m2 = m[0] * x + m[1] * y + m[2];
    let m5 = m[3] * x + m[4] * y + m[5];
    m[2] = m2 + cx;
    m[5] = m5 + cy;
    m
}

/// Geometry.c `COORD(v)`.
#[inline]
fn coord(v: f64) -> i64 {
    if v < 0.0 {
        -1
    } else {
        v as i64
    }
}

/// Geometry.c `FLOOR(v)` as used by `FIX`.
#[inline]
fn floor_int(v: f64) -> i32 {
    if v < 0.0 {
        v.floor() as i32
    } else {
        v as i32
    }
}

/// Geometry.c `check_fixed(a, x, y)`.
#[inline]
fn check_fixed(a: &[f64; 6], x: usize, y: usize) -> bool {
    let (x, y) = (x as f64, y as f64);
    (x * a[0] + y * a[1] + a[2]).abs() < 32768.0 && (x * a[3] + y * a[4] + a[5]).abs() < 32768.0
}

#[inline]
fn copy_px(src: &[u8], w: usize, xin: usize, yin: usize, out: &mut [u8]) {
    let s = (yin * w + xin) * CHANNELS;
    out.copy_from_slice(&src[s..s + CHANNELS]);
}

/// `ImagingTransformAffine(out, in, 0, 0, w, h, a, NEAREST, fill)` where the
/// output has the input's size and starts black. `src` and `dst` are packed
/// RGB `w * h * 3`; `xtab` is scratch (grown on demand).
pub fn transform_affine_nearest(src: &[u8], w: usize, h: usize, a: &[f64; 6], dst: &mut [u8], xtab: &mut Vec<usize>) {
    assert_eq!(src.len(), w * h * CHANNELS);
    assert_eq!(dst.len(), src.len());
    dst.fill(0);
    if a[1] == 0.0 && a[3] == 0.0 {
        scale_affine(src, w, h, a, dst, xtab);
    } else if check_fixed(a, 0, 0) && check_fixed(a, w, h) && check_fixed(a, 0, h) && check_fixed(a, w, 0) {
        affine_fixed(src, w, h, a, dst);
    } else {
        affine_float(src, w, h, a, dst);
    }
}

/// `ImagingScaleAffine`; `xtab` is scratch for its column table.
fn scale_affine(src: &[u8], w: usize, h: usize, a: &[f64; 6], dst: &mut [u8], xtab: &mut Vec<usize>) {
    let mut xo = a[2] + a[0] * 0.5;
    let mut yo = a[5] + a[4] * 0.5;
    // Pretabulated source columns; Pillow's table is calloc'ed, so unset entries are 0.
    xtab.clear();
    xtab.resize(w, 0);
    let (mut xmin, mut xmax) = (w, 0);
    for (x, t) in xtab.iter_mut().enumerate() {
        let xin = coord(xo);
        if xin >= 0 && (xin as usize) < w {
            xmax = x + 1;
            if x < xmin {
                xmin = x;
            }
            *t = xin as usize;
        }
        xo += a[0];
    }
    // A translation maps the columns to consecutive source columns: each row
    // is then one contiguous copy (the same pixels as the per-pixel loop).
    let contiguous = xmin < xmax && xtab[xmin..xmax].windows(2).all(|p| p[1] == p[0] + 1);
    for y in 0..h {
        let yi = coord(yo);
        if yi >= 0 && (yi as usize) < h && xmin < xmax {
            let row = &mut dst[(y * w + xmin) * CHANNELS..(y * w + xmax) * CHANNELS];
            if contiguous {
                let s = (yi as usize * w + xtab[xmin]) * CHANNELS;
                row.copy_from_slice(&src[s..s + row.len()]);
            } else {
                for (px, &xin) in row.chunks_exact_mut(CHANNELS).zip(&xtab[xmin..xmax]) {
                    copy_px(src, w, xin, yi as usize, px);
                }
            }
        }
        yo += a[4];
    }
}

/// `affine_fixed`: 16.16 fixed point, `xx >> 16` floors.
fn affine_fixed(src: &[u8], w: usize, h: usize, a: &[f64; 6], dst: &mut [u8]) {
    let fix = |v: f64| floor_int(v * 65536.0 + 0.5);
    let a0 = fix(a[0]);
    let a1 = fix(a[1]);
    let a3 = fix(a[3]);
    let a4 = fix(a[4]);
    let mut a2 = fix(a[2] + a[0] * 0.5 + a[1] * 0.5);
    let mut a5 = fix(a[5] + a[3] * 0.5 + a[4] * 0.5);
    let (wi, hi) = (w as i32, h as i32);
    for y in 0..h {
        let (mut xx, mut yy) = (a2, a5);
        let row = &mut dst[y * w * CHANNELS..(y + 1) * w * CHANNELS];
        for px in row.chunks_exact_mut(CHANNELS) {
            let xin = xx >> 16;
            if xin >= 0 && xin < wi {
                let yin = yy >> 16;
                if yin >= 0 && yin < hi {
                    copy_px(src, w, xin as usize, yin as usize, px);
                }
            }
            xx = xx.wrapping_add(a0);
            yy = yy.wrapping_add(a3);
        }
        a2 = a2.wrapping_add(a1);
        a5 = a5.wrapping_add(a4);
    }
}

/// The double-precision fallback of `ImagingTransformAffine`.
fn affine_float(src: &[u8], w: usize, h: usize, a: &[f64; 6], dst: &mut [u8]) {
    let mut xo = a[2] + a[1] * 0.5 + a[0] * 0.5;
    let mut yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
    for y in 0..h {
        let (mut xx, mut yy) = (xo, yo);
        let row = &mut dst[y * w * CHANNELS..(y + 1) * w * CHANNELS];
        for px in row.chunks_exact_mut(CHANNELS) {
            let xin = coord(xx);
            if xin >= 0 && (xin as usize) < w {
                let yin = coord(yy);
                if yin >= 0 && (yin as usize) < h {
                    copy_px(src, w, xin as usize, yin as usize, px);
                }
            }
            xx += a[0];
            yy += a[3];
        }
        xo += a[1];
        yo += a[4];
    }
}
