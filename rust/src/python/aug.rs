//! Bindings for the augmentation record (`crate::aug`): its layout for numpy's
//! `AUG_DTYPE`, building records from entries, checking and decoding bytes.
//! Python's `mobileclip_fastload.store` wraps these under its public names.

use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::aug::param_aug;
use crate::aug::{
    rescale_box as rescale, AugParams, FieldKind, Item, Op, AUG_RECORD_SIZE, FIELDS, FLAG_HFLIP, FLAG_NULL,
    MAX_OPS_PER_ENTRY, NUM_OPS,
};

/// Entries nest three lists deep; deeper input is shown, not walked.
const MAX_DEPTH: usize = 4;

fn value_error(e: impl ToString) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn shown(ob: &Bound<'_, PyAny>) -> Item {
    Item::Other(ob.repr().map(|r| r.to_string()).unwrap_or_else(|_| "<unprintable>".to_owned()))
}

/// A Python value as the core's `Item`: lists/tuples/other iterables, ints
/// (numpy ones too), floats; bools, strings and the rest are kept as shown.
fn item(ob: &Bound<'_, PyAny>, depth: usize) -> Item {
    let walk = |items: &mut dyn Iterator<Item = Bound<'_, PyAny>>| {
        if depth >= MAX_DEPTH {
            return shown(ob);
        }
        Item::List(items.map(|x| item(&x, depth + 1)).collect())
    };
    if ob.is_none() {
        Item::Null
    } else if let Ok(list) = ob.cast::<PyList>() {
        walk(&mut list.iter())
    } else if let Ok(tuple) = ob.cast::<PyTuple>() {
        walk(&mut tuple.iter())
    } else if ob.is_instance_of::<PyBool>() || ob.is_instance_of::<PyString>() || ob.is_instance_of::<PyBytes>() {
        shown(ob)
    } else if let Ok(f) = ob.cast::<PyFloat>() {
        Item::Float(f.value())
    } else if ob.is_instance_of::<PyInt>() {
        ob.extract::<i64>().map(Item::Int).unwrap_or_else(|_| shown(ob))
    } else if let Ok(v) = ob.extract::<i64>() {
        Item::Int(v) // numpy / torch integers (`__index__`)
    } else if let Ok(mut iter) = ob.try_iter() {
        let mut values = Vec::new();
        for x in &mut iter {
            match x {
                Ok(x) => values.push(x),
                Err(_) => return shown(ob),
            }
        }
        walk(&mut values.into_iter())
    } else if let Ok(f) = ob.extract::<f64>() {
        Item::Float(f) // numpy float32 and other `__float__` numbers
    } else {
        shown(ob)
    }
}

/// `param_aug` as a list, or its JSON text (str or bytes), as the core's items.
fn param_aug_items(param_aug: &Bound<'_, PyAny>) -> PyResult<Vec<Item>> {
    if let Ok(text) = param_aug.cast::<PyString>() {
        return param_aug::parse_json(text.to_str()?.as_bytes()).map_err(value_error);
    }
    if let Ok(bytes) = param_aug.cast::<PyBytes>() {
        return param_aug::parse_json(bytes.as_bytes()).map_err(value_error);
    }
    match item(param_aug, 0) {
        Item::List(items) => Ok(items),
        other => Err(value_error(param_aug::ParamAugError::NotList(other))),
    }
}

/// `(name, numpy format, offset)` of every field of the 40-byte record, in order.
fn fields_for_numpy() -> Vec<(&'static str, String, usize)> {
    FIELDS
        .iter()
        .map(|f| {
            let format = match f.kind {
                FieldKind::F64 => "<f8".to_owned(),
                FieldKind::I32 => "<i4".to_owned(),
                FieldKind::U8 => "u1".to_owned(),
                FieldKind::Pad(n) => format!("({n},)u1"),
            };
            (f.name, format, f.offset)
        })
        .collect()
}

/// One record's 40 bytes (uint8) from a box (top, left, height, width) and up
/// to two (op index, magnitude) pairs.
#[pyfunction]
#[pyo3(signature = (r#box, ops = None, *, null = false, hflip = false))]
fn encode_aug_record<'py>(
    py: Python<'py>,
    r#box: &Bound<'py, PyAny>,
    ops: Option<&Bound<'py, PyAny>>,
    null: bool,
    hflip: bool,
) -> PyResult<Bound<'py, PyArray1<u8>>> {
    let ops = ops.map_or(Item::List(Vec::new()), |o| item(o, 1));
    let entry = param_aug::parse_entry(&Item::List(vec![item(r#box, 1), ops])).map_err(value_error)?;
    let param_aug::Entry { crop, ops } = entry.expect("a list is not a null entry");
    let rec = AugParams::new(crop, &ops, null, hflip).map_err(value_error)?;
    Ok(PyArray1::from_vec(py, rec.encode().to_vec()))
}

/// The records (uint8, 40 per entry) of a DataCompDR `param_aug` list or its
/// JSON text, boxes mapped from the original to the stored size; and whether
/// they were rescaled.
#[pyfunction]
#[pyo3(signature = (param_aug, *, width, height, orig_width = None, orig_height = None))]
fn encode_aug_records<'py>(
    py: Python<'py>,
    param_aug: &Bound<'py, PyAny>,
    width: i64,
    height: i64,
    orig_width: Option<i64>,
    orig_height: Option<i64>,
) -> PyResult<(Bound<'py, PyArray1<u8>>, bool)> {
    let items = param_aug_items(param_aug)?;
    let orig = (orig_width.unwrap_or(width), orig_height.unwrap_or(height));
    let (bytes, rescaled) = param_aug::records(&items, (width, height), orig).map_err(value_error)?;
    Ok((PyArray1::from_vec(py, bytes), rescaled))
}

/// A `param_aug` list (or its JSON text) checked entry by entry and normalised:
/// `None` or `[[top, left, height, width], [[op, magnitude], ...]]` of ints and floats.
#[pyfunction]
fn parse_param_aug<'py>(py: Python<'py>, param_aug: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    let entries = param_aug::parse_entries(&param_aug_items(param_aug)?).map_err(value_error)?;
    let out = PyList::empty(py);
    for entry in entries {
        match entry {
            None => out.append(py.None())?,
            Some(e) => {
                let ops = PyList::empty(py);
                for (op, m) in e.ops {
                    ops.append(PyList::new(py, [op.into_pyobject(py)?.into_any(), m.into_pyobject(py)?.into_any()])?)?;
                }
                out.append(PyList::new(py, [PyList::new(py, e.crop)?.into_any(), ops.into_any()])?)?;
            }
        }
    }
    Ok(out)
}

/// Map a box (top, left, height, width) from an `orig_size` image to a `size`
/// image ((width, height) pairs): edges rounded half up, exact.
#[pyfunction]
fn rescale_box(r#box: &Bound<'_, PyAny>, orig_size: (i64, i64), size: (i64, i64)) -> PyResult<(i64, i64, i64, i64)> {
    let crop = param_aug::crop_box(&item(r#box, 1)).map_err(value_error)?;
    let [t, l, h, w] = rescale(crop, orig_size, size).map_err(value_error)?;
    Ok((t, l, h, w))
}

/// Raise ValueError naming the first invalid record in `data` (J * 40 bytes).
#[pyfunction]
fn check_aug_records(data: &[u8]) -> PyResult<()> {
    if data.len() % AUG_RECORD_SIZE != 0 {
        return Err(value_error(format!("{} bytes are not whole {AUG_RECORD_SIZE}-byte records", data.len())));
    }
    for (n, rec) in data.chunks_exact(AUG_RECORD_SIZE).enumerate() {
        AugParams::validate(rec)
            .map_err(|why| value_error(format!("aug[{n}] is not a valid augmentation record: {why}")))?;
    }
    Ok(())
}

/// One record's fields: {"top", "left", "height", "width", "ops": ((op, m), ...)
/// (the n_ops that apply), "is_null", "hflip"}; ValueError if it is not valid.
#[pyfunction]
fn decode_aug_record<'py>(py: Python<'py>, record: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    let p = AugParams::validate(record).map_err(value_error)?;
    let d = PyDict::new(py);
    d.set_item("top", p.top)?;
    d.set_item("left", p.left)?;
    d.set_item("height", p.height)?;
    d.set_item("width", p.width)?;
    let ops: Vec<(u8, f64)> = p.active_ops().iter().map(|&(op, m)| (op as u8, m)).collect();
    d.set_item("ops", PyTuple::new(py, ops)?)?;
    d.set_item("is_null", p.is_null)?;
    d.set_item("hflip", p.hflip)?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("AUG_RECORD_SIZE", AUG_RECORD_SIZE)?;
    m.add("AUG_RECORD_FIELDS", PyTuple::new(m.py(), fields_for_numpy())?)?;
    m.add("AUG_FLAG_NULL", FLAG_NULL)?;
    m.add("AUG_FLAG_HFLIP", FLAG_HFLIP)?;
    m.add("AUG_NUM_OPS", NUM_OPS)?;
    let names: Vec<&str> = (0..NUM_OPS).filter_map(Op::from_index).map(Op::name).collect();
    m.add("AUG_OP_NAMES", PyTuple::new(m.py(), names)?)?;
    m.add("AUG_MAX_OPS_PER_ENTRY", MAX_OPS_PER_ENTRY)?;
    m.add_function(wrap_pyfunction!(encode_aug_record, m)?)?;
    m.add_function(wrap_pyfunction!(encode_aug_records, m)?)?;
    m.add_function(wrap_pyfunction!(parse_param_aug, m)?)?;
    m.add_function(wrap_pyfunction!(rescale_box, m)?)?;
    m.add_function(wrap_pyfunction!(check_aug_records, m)?)?;
    m.add_function(wrap_pyfunction!(decode_aug_record, m)?)?;
    Ok(())
}
