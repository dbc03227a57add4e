//! A JSON value with no member twice in one object. serde_json keeps the last of two members
//! with one name silently; the APIs refuse such a body instead (RFC 8259 §4: names "SHOULD be
//! unique", and readers disagree on which one wins).

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};

/// Deserializes any JSON value, failing on the first object that names a member twice.
pub(super) struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: Error>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_i64<E: Error>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_u64<E: Error>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_f64<E: Error>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_str<E: Error>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_unit<E: Error>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                return Err(A::Error::custom(format!(
                    "the member {name:?} appears twice"
                )));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}

#[cfg(test)]
mod tests {
    use super::Unique;

    #[test]
    fn a_member_named_twice_in_any_object_is_refused() {
        assert!(serde_json::from_str::<Unique>(r#"{"a": 1, "b": [1, {"c": null}]}"#).is_ok());
        let e = serde_json::from_str::<Unique>(r#"{"a": 1, "a": 2}"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("\"a\" appears twice"), "{e}");
        assert!(serde_json::from_str::<Unique>(r#"[{"x": {"y": 1, "y": 1}}]"#).is_err());
        assert!(serde_json::from_str::<Unique>(r#"{"a": 1, "A": 2}"#).is_ok());
    }
}
