//! DataCompDR `param_aug` lists -> records.
//!
//! An upstream entry is `[[i, j, h, w], [[op, m], ...]]` (RandomResizedCrop box
//! top, left, height, width in pixels of the *original* image, then the
//! RandAugment ops) or `null`. Entries arrive as JSON text or, from Python, as
//! lists; both become `Item`s and go through one parser. Box values and op
//! indices must be integers (an integral float such as `5.0` counts; booleans do
//! not), magnitudes finite numbers; every error names its entry (`param_aug[n]: ...`).

use super::item::Item;
use super::record::{AugParams, InvalidRecord, AUG_RECORD_SIZE, MAX_OPS_PER_ENTRY};
use super::rescale::{rescale_box, RescaleError};

/// One non-null upstream entry, shaped but not yet checked against the record rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// (top, left, height, width) in pixels of the image the box was drawn on.
    pub crop: [i64; 4],
    /// (op index, magnitude), in order.
    pub ops: Vec<(i64, f64)>,
}

/// What is wrong with one entry.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EntryError {
    #[error("{0} is not [[i, j, h, w], [[op, m], ...]] or null")]
    Shape(Item),
    #[error("crop box {0} is not 4 integers [top, left, height, width]")]
    BoxValues(Item),
    #[error("op {0} is not [op index, magnitude] with an integer index and a number")]
    OpShape(Item),
    #[error(transparent)]
    Record(#[from] InvalidRecord),
    #[error(transparent)]
    Rescale(#[from] RescaleError),
}

/// What is wrong with a whole `param_aug` list.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ParamAugError {
    #[error("param_aug is not valid JSON: {0}")]
    NotJson(String),
    #[error("param_aug must be a list of entries, got {0}")]
    NotList(Item),
    #[error("{what} image size {width}x{height} must be positive and fit int32")]
    ImageSize { what: &'static str, width: i64, height: i64 },
    #[error("param_aug[{index}]: {error}")]
    Entry { index: usize, error: EntryError },
}

/// The entries of a `param_aug` JSON text (not yet checked one by one).
pub fn parse_json(text: &[u8]) -> Result<Vec<Item>, ParamAugError> {
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| ParamAugError::NotJson(e.to_string()))?;
    match Item::from(&value) {
        Item::List(items) => Ok(items),
        other => Err(ParamAugError::NotList(other)),
    }
}

/// `[top, left, height, width]` as integers (not yet checked against the record rule).
pub fn crop_box(crop: &Item) -> Result<[i64; 4], EntryError> {
    let bad = || EntryError::BoxValues(crop.clone());
    let values = crop.as_list().filter(|v| v.len() == 4).ok_or_else(bad)?;
    let mut b = [0i64; 4];
    for (slot, v) in b.iter_mut().zip(values) {
        *slot = v.as_integer().ok_or_else(bad)?;
    }
    Ok(b)
}

/// Shape one entry (`None` for null) and check it against the record rule as drawn.
pub fn parse_entry(item: &Item) -> Result<Option<Entry>, EntryError> {
    if *item == Item::Null {
        return Ok(None);
    }
    let shape = || EntryError::Shape(item.clone());
    let [crop, ops] = item.as_list().ok_or_else(shape)? else {
        return Err(shape());
    };
    let b = crop_box(crop)?;
    let ops = ops.as_list().ok_or_else(shape)?;
    if ops.len() > MAX_OPS_PER_ENTRY {
        return Err(InvalidRecord::TooManyOps(ops.len()).into());
    }
    let pairs = ops
        .iter()
        .map(|op| match op.as_list() {
            Some([index, m]) => match (index.as_integer(), m.as_number()) {
                (Some(index), Some(m)) => Ok((index, m)),
                _ => Err(EntryError::OpShape(op.clone())),
            },
            _ => Err(EntryError::OpShape(op.clone())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    AugParams::new(b, &pairs, false, false)?;
    Ok(Some(Entry { crop: b, ops: pairs }))
}

/// Every entry shaped and checked; the first bad one is the error.
pub fn parse_entries(items: &[Item]) -> Result<Vec<Option<Entry>>, ParamAugError> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_entry(item).map_err(|error| ParamAugError::Entry { index, error }))
        .collect()
}

/// The records of a whole list, boxes mapped from `orig` to the `stored` image
/// (both `(width, height)`), and whether they were rescaled (the sizes differ).
/// A null entry is the whole stored image with no ops and the null flag.
pub fn records(items: &[Item], stored: (i64, i64), orig: (i64, i64)) -> Result<(Vec<u8>, bool), ParamAugError> {
    let fits = |(w, h): (i64, i64)| (1..=i32::MAX as i64).contains(&w) && (1..=i32::MAX as i64).contains(&h);
    for (what, size) in [("stored", stored), ("original", orig)] {
        if !fits(size) {
            return Err(ParamAugError::ImageSize { what, width: size.0, height: size.1 });
        }
    }
    let rescale = stored != orig;
    let mut out = Vec::with_capacity(items.len() * AUG_RECORD_SIZE);
    for (index, item) in items.iter().enumerate() {
        let record = || -> Result<AugParams, EntryError> {
            let Some(entry) = parse_entry(item)? else {
                return Ok(AugParams::null(stored.0 as i32, stored.1 as i32));
            };
            let crop = if rescale { rescale_box(entry.crop, orig, stored)? } else { entry.crop };
            Ok(AugParams::new(crop, &entry.ops, false, false)?)
        };
        let rec = record().map_err(|error| ParamAugError::Entry { index, error })?;
        out.extend_from_slice(&rec.encode());
    }
    Ok((out, rescale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_records(text: &str, stored: (i64, i64), orig: (i64, i64)) -> Result<(Vec<u8>, bool), ParamAugError> {
        records(&parse_json(text.as_bytes())?, stored, orig)
    }

    fn decoded(bytes: &[u8]) -> Vec<AugParams> {
        bytes.chunks(AUG_RECORD_SIZE).map(|r| AugParams::validate(r).unwrap()).collect()
    }

    #[test]
    fn datacompdr_entries_and_null() {
        let (bytes, rescaled) =
            json_records("[[[10, 20, 30, 40], [[1, 0.09], [6, -0.27]]], null, [[0, 0, 5, 6], []]]", (64, 48), (64, 48))
                .unwrap();
        assert!(!rescaled);
        let recs = decoded(&bytes);
        assert_eq!(recs[0], AugParams::new([10, 20, 30, 40], &[(1, 0.09), (6, -0.27)], false, false).unwrap());
        assert_eq!(recs[1], AugParams::null(64, 48));
        assert_eq!(recs[2], AugParams::new([0, 0, 5, 6], &[], false, false).unwrap());
    }

    #[test]
    fn rescaled_whole_box_and_null_use_the_stored_size() {
        let (bytes, rescaled) = json_records("[null, [[0, 0, 800, 1000], []]]", (512, 410), (1000, 800)).unwrap();
        assert!(rescaled);
        for r in decoded(&bytes) {
            assert_eq!((r.top, r.left, r.height, r.width), (0, 0, 410, 512));
        }
    }

    #[test]
    fn integral_floats_count_as_integers_booleans_do_not() {
        assert!(json_records("[[[0.0, 1, 2e0, 3], [[4.0, 1]]]]", (9, 9), (9, 9)).is_ok());
        let err = json_records("[[[0.5, 1, 2, 3], []]]", (9, 9), (9, 9)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "param_aug[0]: crop box [0.5, 1, 2, 3] is not 4 integers [top, left, height, width]"
        );
        let err = json_records("[null, [[true, 1, 2, 3], []]]", (9, 9), (9, 9)).unwrap_err();
        assert!(err.to_string().starts_with("param_aug[1]: crop box [true"), "{err}");
    }

    #[test]
    fn every_error_names_its_entry() {
        let cases = [
            ("[null, [[1, 2, 3]]]", "param_aug[1]: [[1, 2, 3]] is not [[i, j, h, w], [[op, m], ...]] or null"),
            ("[[[0, 0, 5, 5], [[14, 1.0]]]]", "param_aug[0]: RandAugment op index 14 is not in 0..13"),
            ("[[[0, 0, 0, 5], []]]", "param_aug[0]: crop box (0, 0, 0, 5) is empty: height and width must be positive"),
            ("[[[0, 0, 5, 5], [[0, 1], [0, 1], [0, 1]]]]", "param_aug[0]: at most 2 RandAugment ops per entry, got 3"),
            (
                "[[[0, 0, 5, 5], [[0, \"x\"]]]]",
                "param_aug[0]: op [0, \"x\"] is not [op index, magnitude] with an integer index and a number",
            ),
            ("[[[2147483648, 0, 5, 5], []]]", "param_aug[0]: crop box (2147483648, 0, 5, 5) does not fit int32"),
            ("{\"a\": 1}", "param_aug must be a list of entries, got {\"a\":1}"),
        ];
        for (text, want) in cases {
            assert_eq!(json_records(text, (10, 10), (10, 10)).unwrap_err().to_string(), want);
        }
        assert!(matches!(json_records("[nul", (1, 1), (1, 1)), Err(ParamAugError::NotJson(_))));
        assert!(matches!(json_records("[]", (0, 1), (1, 1)), Err(ParamAugError::ImageSize { what: "stored", .. })));
        // a box that fits as drawn but not once scaled up
        let err = json_records("[[[0, 0, 2000000000, 5], []]]", (10, 20), (10, 10)).unwrap_err();
        assert!(err.to_string().contains("does not fit int32"), "{err}");
    }

    /// Fuzz-style: random JSON-ish text never panics; whatever parses gives valid records.
    #[test]
    fn random_param_aug_text_parses_or_fails_cleanly() {
        let atoms = [
            "null",
            "0",
            "1",
            "-7",
            "13",
            "14",
            "2.5",
            "1e308",
            "-0.0",
            "true",
            "\"s\"",
            "[",
            "]",
            ",",
            "[[",
            "]]",
            "2147483647",
            "-2147483648",
            "99999999999999999999",
            "{}",
            "[0, 0, 5, 5]",
            "[[3, 0.5]]",
            "[]",
        ];
        let mut state = 7u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut ok = 0;
        for _ in 0..50_000 {
            let mut text = String::from("[");
            for _ in 0..next(12) {
                text.push_str(atoms[next(atoms.len())]);
            }
            text.push(']');
            if next(4) == 0 {
                text = format!(
                    "[[[{}, {}, {}, {}], [[{}, 0.5]]], null]",
                    next(40),
                    next(40),
                    next(40),
                    next(40),
                    next(16)
                );
            }
            let (w, h) = (1 + next(50) as i64, 1 + next(50) as i64);
            if let Ok((bytes, _)) = json_records(&text, (w, h), (1 + next(50) as i64, h)) {
                ok += 1;
                assert!(bytes.chunks(AUG_RECORD_SIZE).all(|r| AugParams::validate(r).is_ok()));
            }
        }
        assert!(ok > 1000, "{ok} lists parsed");
    }
}
