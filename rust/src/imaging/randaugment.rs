//! One RandAugment op as torchvision 0.29.2's `autoaugment._apply_op(img,
//! op_name, magnitude, interpolation=NEAREST, fill=None)` applies it to a PIL
//! image, on a square packed RGB image `size x size`.
//!
//! `magnitude` is the signed value stored upstream (already drawn); the
//! conversions (`1 + m`, `int(m)`, `degrees(atan(m))`) are done here exactly
//! as `_apply_op` does them.

use super::affine::{inverse_affine_matrix, rotate_matrix, transform_affine_nearest};
use super::pymath::{degrees, py_int, py_mod};
use super::{enhance, geometry, grown, lut_ops};
use crate::aug::Op;

/// Scratch buffers the ops need (reused across calls).
#[derive(Debug, Default)]
pub struct OpScratch {
    copy: Vec<u8>,
    small: Vec<u8>,
    xtab: Vec<usize>,
}

/// Apply `op` with `magnitude` in place. Errors (as text) only for a
/// magnitude the reference itself rejects (Posterize bits outside 1..=8).
pub fn apply_op(op: Op, magnitude: f64, img: &mut [u8], size: usize, scratch: &mut OpScratch) -> Result<(), String> {
    let (w, h) = (size, size);
    match op {
        Op::Identity => {}
        Op::ShearX => {
            let shear = [degrees(magnitude.atan()), 0.0];
            let m = inverse_affine_matrix([0.0, 0.0], 0.0, [0.0, 0.0], 1.0, shear);
            warp(img, w, h, &m, scratch);
        }
        Op::ShearY => {
            let shear = [0.0, degrees(magnitude.atan())];
            let m = inverse_affine_matrix([0.0, 0.0], 0.0, [0.0, 0.0], 1.0, shear);
            warp(img, w, h, &m, scratch);
        }
        Op::TranslateX | Op::TranslateY => {
            // F.affine's PIL path centers at (w * 0.5, h * 0.5); translate is int(m).
            let t = py_int(magnitude) as f64;
            let translate = if op == Op::TranslateX { [t, 0.0] } else { [0.0, t] };
            let center = [w as f64 * 0.5, h as f64 * 0.5];
            let m = inverse_affine_matrix(center, 0.0, translate, 1.0, [0.0, 0.0]);
            warp(img, w, h, &m, scratch);
        }
        Op::Rotate => rotate(img, w, h, magnitude, scratch),
        Op::Brightness => enhance::brightness(img, 1.0 + magnitude),
        Op::Color => enhance::color(img, 1.0 + magnitude, &mut scratch.small),
        Op::Contrast => enhance::contrast(img, 1.0 + magnitude),
        Op::Sharpness => enhance::sharpness(img, w, h, 1.0 + magnitude, &mut scratch.copy),
        Op::Posterize => {
            let bits = py_int(magnitude);
            // torchvision accepts 0..=8, ImageOps.posterize then requires 1..=8.
            if !(1..=8).contains(&bits) {
                return Err(format!("Posterize needs 1..=8 bits, got int({magnitude}) = {bits}"));
            }
            lut_ops::posterize(img, bits as u32);
        }
        Op::Solarize => lut_ops::solarize(img, magnitude),
        Op::AutoContrast => lut_ops::autocontrast(img),
        Op::Equalize => lut_ops::equalize(img),
    }
    Ok(())
}

/// `Image.transform(img.size, AFFINE, m, NEAREST, fillcolor=0)` in place.
fn warp(img: &mut [u8], w: usize, h: usize, m: &[f64; 6], scratch: &mut OpScratch) {
    let src = grown(&mut scratch.copy, img.len());
    src.copy_from_slice(img);
    transform_affine_nearest(src, w, h, m, img, &mut scratch.xtab);
}

/// `Image.rotate(angle, NEAREST, expand=False, fillcolor=0)`, including its
/// exact shortcuts for 0, 180 and (square images) 90 / 270 degrees.
fn rotate(img: &mut [u8], w: usize, h: usize, angle: f64, scratch: &mut OpScratch) {
    let angle = py_mod(angle, 360.0);
    if angle == 0.0 {
        return;
    }
    if angle == 180.0 {
        geometry::rotate_180(img, w, h);
        return;
    }
    if (angle == 90.0 || angle == 270.0) && w == h {
        let src = grown(&mut scratch.copy, img.len());
        src.copy_from_slice(img);
        if angle == 90.0 {
            geometry::rotate_90(src, w, h, img);
        } else {
            geometry::rotate_270(src, w, h, img);
        }
        return;
    }
    let m = rotate_matrix(angle, w, h);
    warp(img, w, h, &m, scratch);
}
