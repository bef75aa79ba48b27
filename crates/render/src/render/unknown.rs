//! Deserialising a JSON tree into a typed value while noting the first field the type does
//! not know. A typed value skips such a field by asking for it as `IgnoredAny`; this
//! deserializer reads the tree itself (like serde_json's `&Value` deserializer) and records
//! where that happened. The path is a chain of borrowed keys on the stack, written out as a
//! string only for the field recorded. (`serde_ignored` did the same as a wrapper, at the
//! price of an owned copy of every key read.)

use std::cell::RefCell;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Error, Value};

/// Where a node is: the chain of keys and indices from the root.
#[derive(Clone, Copy)]
enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl Path<'_> {
    /// `spec.template.spec.containers[0].imagePulPolicy`.
    fn write(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.write(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Path::Index(parent, i) => {
                parent.write(out);
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
}

/// `T` from `v`, and the path of the first field `T` skipped, if any.
pub(super) fn deserialize<'de, T: de::Deserialize<'de>>(
    v: &'de Value,
) -> Result<(T, Option<String>), Error> {
    let unknown = RefCell::new(None);
    let t = T::deserialize(Node {
        v,
        path: Path::Root,
        unknown: &unknown,
    })?;
    Ok((t, unknown.into_inner()))
}

struct Node<'de, 'p> {
    v: &'de Value,
    path: Path<'p>,
    unknown: &'p RefCell<Option<String>>,
}

impl<'de> Deserializer<'de> for Node<'de, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.v {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else if let Some(f) = n.as_f64() {
                    visitor.visit_f64(f)
                } else {
                    Err(de::Error::custom("number out of range"))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(a) => {
                let mut seq = Seq {
                    items: a.iter().enumerate(),
                    path: &self.path,
                    unknown: self.unknown,
                };
                let out = visitor.visit_seq(&mut seq)?;
                if seq.items.len() == 0 {
                    Ok(out)
                } else {
                    Err(de::Error::invalid_length(
                        a.len(),
                        &"fewer elements in array",
                    ))
                }
            }
            Value::Object(m) => {
                let mut map = Members {
                    entries: m.iter(),
                    value: None,
                    path: &self.path,
                    unknown: self.unknown,
                };
                let out = visitor.visit_map(&mut map)?;
                if map.entries.len() == 0 {
                    Ok(out)
                } else {
                    Err(de::Error::invalid_length(m.len(), &"fewer elements in map"))
                }
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.v {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut unknown = self.unknown.borrow_mut();
        if unknown.is_none() {
            let mut p = String::new();
            self.path.write(&mut p);
            *unknown = Some(p);
        }
        visitor.visit_unit()
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // No k8s-openapi type we check has an enum; serde_json's own reading, untracked.
        self.v.deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct Seq<'p, I> {
    items: I,
    path: &'p Path<'p>,
    unknown: &'p RefCell<Option<String>>,
}

impl<'de, I> SeqAccess<'de> for &mut Seq<'_, I>
where
    I: Iterator<Item = (usize, &'de Value)> + ExactSizeIterator,
{
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        let Some((i, v)) = self.items.next() else {
            return Ok(None);
        };
        seed.deserialize(Node {
            v,
            path: Path::Index(self.path, i),
            unknown: self.unknown,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Members<'de, 'p> {
    entries: serde_json::map::Iter<'de>,
    value: Option<(&'de str, &'de Value)>,
    path: &'p Path<'p>,
    unknown: &'p RefCell<Option<String>>,
}

impl<'de> MapAccess<'de> for &mut Members<'de, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((k, v)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((k.as_str(), v));
        seed.deserialize(BorrowedStrDeserializer::<Error>::new(k.as_str()))
            .map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        let Some((k, v)) = self.value.take() else {
            return Err(de::Error::custom("value is missing"));
        };
        seed.deserialize(Node {
            v,
            path: Path::Key(self.path, k),
            unknown: self.unknown,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    #[test]
    fn the_first_skipped_field_is_named_by_its_path() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "labels": {"x": "y"}},
            "spec": {"replicas": 2, "selector": {}, "template": {"spec": {"containers": [
                {"name": "c", "ports": [{"containerPort": 80}]},
                {"name": "d", "ports": [{"containerPort": 81, "hostPortt": 1}], "imagePulPolicy": "x"}]}}}});
        let (typed, unknown) = super::deserialize::<Deployment>(&d).expect("typed");
        let _: Deployment = typed;
        assert_eq!(
            unknown.as_deref(),
            Some("spec.template.spec.containers[1].ports[0].hostPortt")
        );
        let ok = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}});
        assert_eq!(
            super::deserialize::<Deployment>(&ok).expect("typed").1,
            None
        );
        let bad =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "two"}});
        assert!(super::deserialize::<Deployment>(&bad).is_err());
    }
}
