//! Mapping a crop box from the image it was drawn on to the stored image.
//!
//! The box's edges are mapped, not its size: with sx = W/OW, sy = H/OH,
//! `left' = round_half_up(left * sx)`, `right' = round_half_up((left + width) * sx)`,
//! `width' = max(1, right' - left')` (same for top/height with sy), in exact
//! integer arithmetic: `round_half_up(a/b) = floor((2a + b) / 2b)`.
//! Mapping edges keeps a whole-image box whole and adjacent boxes adjacent.

/// The sizes cannot be rescaled between, or the result does not fit an i64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RescaleError {
    #[error("cannot rescale a box between sizes ({}, {}) and ({}, {})", .orig.0, .orig.1, .size.0, .size.1)]
    Sizes { orig: (i64, i64), size: (i64, i64) },
    #[error("box {crop:?} rescaled from ({}, {}) to ({}, {}) does not fit int64", .orig.0, .orig.1, .size.0, .size.1)]
    Overflow { crop: [i64; 4], orig: (i64, i64), size: (i64, i64) },
}

/// round_half_up(num / den) for den > 0, exact.
fn round_ratio(num: i128, den: i128) -> i128 {
    (2 * num + den).div_euclid(2 * den)
}

/// Map `(top, left, height, width)` from an `orig` image to a `size` image
/// (both `(width, height)`).
pub fn rescale_box(b: [i64; 4], orig: (i64, i64), size: (i64, i64)) -> Result<[i64; 4], RescaleError> {
    let ((ow, oh), (w, h)) = (orig, size);
    if ow.min(oh).min(w).min(h) < 1 {
        return Err(RescaleError::Sizes { orig, size });
    }
    let [top, left, height, width] = b.map(i128::from);
    let (ow, oh, w, h) = (ow as i128, oh as i128, w as i128, h as i128);
    let (new_left, new_right) = (round_ratio(left * w, ow), round_ratio((left + width) * w, ow));
    let (new_top, new_bottom) = (round_ratio(top * h, oh), round_ratio((top + height) * h, oh));
    let out = [new_top, new_left, (new_bottom - new_top).max(1), (new_right - new_left).max(1)];
    let [Ok(t), Ok(l), Ok(hh), Ok(ww)] = out.map(i64::try_from) else {
        return Err(RescaleError::Overflow { crop: b, orig, size });
    };
    Ok([t, l, hh, ww])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_cases() {
        // left 200 * 0.512 = 102.4 -> 102, right 600 * 0.512 = 307.2 -> 307; top 51.25 -> 51, bottom 205
        assert_eq!(rescale_box([100, 200, 300, 400], (1000, 800), (512, 410)), Ok([51, 102, 154, 205]));
        // exact halves round up: 1 * 3/2 = 1.5 -> 2, (1+1) * 3/2 = 3
        assert_eq!(rescale_box([1, 1, 1, 1], (2, 2), (3, 3)), Ok([2, 2, 1, 1]));
        // negative halves round up too (toward +inf): -1 * 1/2 = -0.5 -> 0
        assert_eq!(rescale_box([-1, -1, 2, 2], (2, 2), (1, 1)), Ok([0, 0, 1, 1]));
        // never collapses to zero size
        assert_eq!(rescale_box([0, 0, 1, 1], (1000, 1000), (10, 10)), Ok([0, 0, 1, 1]));
        assert_eq!(rescale_box([0, 0, 1, 1], (0, 5), (5, 5)), Err(RescaleError::Sizes { orig: (0, 5), size: (5, 5) }));
        assert!(matches!(rescale_box([i64::MAX, 0, 1, 1], (1, 1), (4, 4)), Err(RescaleError::Overflow { .. })));
    }

    #[test]
    fn whole_stays_whole_adjacent_stay_adjacent_identity_is_exact() {
        let mut state = 12345u64;
        let mut draw = |n: i64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            1 + ((state >> 33) as i64) % n
        };
        for _ in 0..20_000 {
            let (ow, oh, w, h) = (draw(5000), draw(5000), draw(5000), draw(5000));
            assert_eq!(rescale_box([0, 0, oh, ow], (ow, oh), (w, h)), Ok([0, 0, h, w]));
            let (top, left) = (draw(oh) - 1, draw(ow) - 1);
            let (bh, bw) = (draw(oh), draw(ow));
            let a = rescale_box([top, left, bh, bw], (ow, oh), (w, h)).unwrap();
            // the box to the right/below starts where this one ends (unless this one was widened to 1)
            let right = rescale_box([top, left + bw, bh, bw], (ow, oh), (w, h)).unwrap();
            let below = rescale_box([top + bh, left, bh, bw], (ow, oh), (w, h)).unwrap();
            assert!(a[2] >= 1 && a[3] >= 1);
            assert!(right[1] == a[1] + a[3] || a[3] == 1 && right[1] == a[1]);
            assert!(below[0] == a[0] + a[2] || a[2] == 1 && below[0] == a[0]);
            assert_eq!(rescale_box([top, left, bh, bw], (ow, oh), (ow, oh)), Ok([top, left, bh, bw]));
        }
    }
}
