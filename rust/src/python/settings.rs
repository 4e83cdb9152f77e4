//! Python objects into the core's setting types, at the boundary, one way per
//! type: a named setting (`image_dtype="uint8"`) becomes its Rust enum (an unknown
//! name is a ValueError listing the valid ones), an integer setting becomes an
//! `Integer` the core checks. Wrong types are TypeErrors, which pyo3 prefixes
//! with the argument's name.

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};

use super::errors::IntoPyResult;
use crate::imaging::Interpolation;
use crate::loader::{CaptionSetting, EmbeddingOutput, ImageDtype, Named, OnError, OrderSetting};
use crate::store::AccessPattern;

/// A named setting from a Python `str`.
fn named<T: Named>(obj: Borrowed<'_, '_, PyAny>) -> PyResult<T> {
    let text =
        obj.cast::<PyString>().map_err(|_| PyTypeError::new_err(format!("expected a str, got {}", type_name(obj))))?;
    T::from_name(&text.to_cow()?).py_err()
}

fn type_name(obj: Borrowed<'_, '_, PyAny>) -> String {
    obj.get_type().name().map_or_else(|_| "?".into(), |n| n.to_string())
}

macro_rules! named_from_py {
    ($($t:ty),+ $(,)?) => {$(
        impl<'a, 'py> FromPyObject<'a, 'py> for $t {
            type Error = PyErr;
            fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
                named(obj)
            }
        }
    )+};
}

named_from_py!(Interpolation, ImageDtype, EmbeddingOutput, CaptionSetting, OnError, OrderSetting, AccessPattern);

/// Any Python integer (numpy integers too; not a bool, not a float), saturated
/// to the i128 range: the core checks each integer setting's own range.
#[derive(Clone, Copy, Debug)]
pub struct Integer(pub i128);

impl<'a, 'py> FromPyObject<'a, 'py> for Integer {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.is_instance_of::<PyBool>() {
            return Err(PyTypeError::new_err("expected an int, got bool"));
        }
        match obj.extract::<i128>() {
            Ok(v) => Ok(Integer(v)),
            Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
                Ok(Integer(if obj.lt(0)? { i128::MIN } else { i128::MAX }))
            }
            Err(e) => Err(e),
        }
    }
}
