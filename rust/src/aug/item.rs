//! The JSON-like value an upstream `param_aug` entry arrives as (from JSON text
//! or from Python objects), and how it is shown in error messages.

use std::fmt;

/// A JSON-like value, as an entry arrives.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Null,
    Int(i64),
    Float(f64),
    List(Vec<Item>),
    /// Anything else (a string, a boolean, an integer past i64), as it is shown.
    Other(String),
}

impl Item {
    pub(super) fn as_integer(&self) -> Option<i64> {
        match *self {
            Item::Int(v) => Some(v),
            // The range check keeps the cast exact; floats past it cannot be int32 anyway.
            Item::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
            _ => None,
        }
    }

    pub(super) fn as_number(&self) -> Option<f64> {
        match *self {
            Item::Int(v) => Some(v as f64),
            Item::Float(f) => Some(f),
            _ => None,
        }
    }

    pub(super) fn as_list(&self) -> Option<&[Item]> {
        match self {
            Item::List(items) => Some(items),
            _ => None,
        }
    }
}

impl From<&serde_json::Value> for Item {
    fn from(v: &serde_json::Value) -> Self {
        use serde_json::Value;
        match v {
            Value::Null => Item::Null,
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Item::Int(i),
                (None, Some(f)) if !n.is_u64() => Item::Float(f),
                _ => Item::Other(n.to_string()),
            },
            Value::Array(items) => Item::List(items.iter().map(Item::from).collect()),
            other => Item::Other(other.to_string()),
        }
    }
}

/// JSON-like text, cut to a readable length for error messages.
impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 120;
        let mut s = String::new();
        write_item(self, &mut s);
        if s.chars().count() > MAX {
            s = s.chars().take(MAX).collect::<String>() + "...";
        }
        f.write_str(&s)
    }
}

fn write_item(item: &Item, out: &mut String) {
    use fmt::Write;
    match item {
        Item::Null => out.push_str("null"),
        Item::Int(v) => write!(out, "{v}").expect("write to String"),
        Item::Float(v) => write!(out, "{v:?}").expect("write to String"),
        Item::Other(s) => out.push_str(s),
        Item::List(items) => {
            out.push('[');
            for (k, it) in items.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                if out.len() > 200 {
                    out.push_str("...");
                    break;
                }
                write_item(it, out);
            }
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_and_how_they_are_shown() {
        let v: serde_json::Value =
            serde_json::from_str(r#"[null, 1, -2.5, 1e20, 18446744073709551615, true, "s", {"a": 1}]"#).unwrap();
        let item = Item::from(&v);
        assert_eq!(item.to_string(), r#"[null, 1, -2.5, 1e20, 18446744073709551615, true, "s", {"a":1}]"#);
        assert_eq!(Item::Float(5.0).as_integer(), Some(5));
        assert_eq!(Item::Float(0.5).as_integer(), None);
        assert_eq!(Item::Other("True".into()).as_integer(), None);
        let long = Item::List(vec![Item::Int(123456789); 100]);
        assert!(long.to_string().len() < 130 && long.to_string().ends_with("..."));
    }
}
