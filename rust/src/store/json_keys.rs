//! Duplicate keys in a JSON object: serde_json keeps the last one silently, so a
//! manifest saying two things about one field would be read as one of them.
//! This pass walks the text once (no values kept) and names the first duplicate.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// `Err("duplicate key \"k\" in an object")` for the first object with a repeated key.
pub fn reject_duplicate_keys(text: &str) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_str(text);
    // Nesting is bounded by serde_json's own recursion limit (128).
    NoDuplicates.deserialize(&mut de).map_err(|e| e.to_string())
}

#[derive(Clone, Copy)]
struct NoDuplicates;

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Objects are small: a linear search over borrowed keys, no allocation per key.
        let mut keys: Vec<Key<'de>> = Vec::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if keys.iter().any(|k| k.as_str() == key.as_str()) {
                return Err(de::Error::custom(format!("duplicate key {:?} in an object", key.as_str())));
            }
            keys.push(key);
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// An object key: borrowed from the text unless it holds escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_string()))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::reject_duplicate_keys;

    #[test]
    fn duplicates_at_any_depth_are_named() {
        assert!(reject_duplicate_keys(r#"{"a": 1, "b": [{"c": 1, "d": {"e": null}}], "f": 1.5}"#).is_ok());
        let top = reject_duplicate_keys(r#"{"num_samples": 1, "num_samples": 9}"#).unwrap_err();
        assert!(top.contains("duplicate key \"num_samples\""), "{top}");
        let nested = reject_duplicate_keys(r#"{"shards": [{"file": "a", "file": "b"}]}"#).unwrap_err();
        assert!(nested.contains("duplicate key \"file\""), "{nested}");
        // The same key in two different objects is fine.
        assert!(reject_duplicate_keys(r#"[{"a": 1}, {"a": 2}]"#).is_ok());
    }
}
