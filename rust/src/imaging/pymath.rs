//! The few Python float operations the reference evaluates before handing
//! numbers to Pillow, with CPython's exact semantics (all IEEE doubles; the
//! transcendental functions are the platform libm's, as CPython's `math` uses).

use std::f64::consts::PI;
use std::io::Write;

/// `math.radians(x)`: CPython multiplies by the constant `pi / 180`.
pub fn radians(x: f64) -> f64 {
    x * (PI / 180.0)
}

/// `math.degrees(x)`: CPython multiplies by the constant `180 / pi`.
pub fn degrees(x: f64) -> f64 {
    x * (180.0 / PI)
}

/// Python's `x % y` for floats (result takes the sign of `y`; zero gets `y`'s sign).
pub fn py_mod(x: f64, y: f64) -> f64 {
    let mut m = x % y; // C fmod
    if m != 0.0 {
        if (y < 0.0) != (m < 0.0) {
            m += y;
        }
    } else {
        m = 0.0f64.copysign(y);
    }
    m
}

/// Python's `round(x, ndigits)` for 0 <= ndigits <= 20: the exact binary value
/// rounded to `ndigits` decimals, then read back correctly rounded. Formats into
/// a stack buffer, so it does not allocate.
pub fn py_round(x: f64, ndigits: usize) -> f64 {
    debug_assert!(ndigits <= 20);
    if !x.is_finite() {
        return x;
    }
    // |x| <= 1 here in practice; 340 digits before the point cover any double.
    let mut buf = [0u8; 400];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    if write!(cursor, "{:.*}", ndigits, x).is_err() {
        return x;
    }
    let n = cursor.position() as usize;
    // Formatting a double only emits ASCII.
    let s = std::str::from_utf8(&buf[..n]).unwrap_or("");
    let r: f64 = s.parse().unwrap_or(x);
    // Python keeps the sign of a value that rounds to zero.
    if r == 0.0 {
        0.0f64.copysign(x)
    } else {
        r
    }
}

/// Python's `int(x)` for a float: truncation toward zero (saturating here).
pub fn py_int(x: f64) -> i64 {
    x as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_mod_semantics() {
        assert_eq!(py_mod(-9.0, 360.0), 351.0);
        assert_eq!(py_mod(370.0, 360.0), 10.0);
        assert_eq!(py_mod(-0.0, 360.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(py_mod(-360.0, 360.0).to_bits(), 0.0f64.to_bits());
        // A tiny negative angle wraps to exactly 360.0 after rounding, as in Python.
        assert_eq!(py_mod(-1e-20, 360.0), 360.0);
    }

    #[test]
    fn python_round_semantics() {
        assert_eq!(py_round(0.9876883405951378, 15), 0.987688340595138);
        assert_eq!(py_round(-0.15643446504023087, 15), -0.156434465040231);
        assert_eq!(py_round(6.123233995736766e-17, 15), 0.0);
        assert_eq!(py_round(1.0, 15), 1.0);
    }
}
