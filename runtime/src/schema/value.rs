//! Encoded values read back into a tree that keeps the names the encoding
//! gives (fields, variants): what the conformance tests compare replies
//! and states with, and print them as, without the types at hand.

use std::fmt;

use upshift_schema::shape::Shape;

use super::decode::{read_scalar, read_varint, take};
use super::record::Node;

/// A value as its encoding describes it.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub(crate) enum Value {
    Unit,
    Scalar(Node),
    Option(Option<Box<Value>>),
    Seq(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Tuple(Vec<Value>),
    /// A struct's fields, by name (`0`, `1` for a tuple struct's).
    Struct(Vec<(String, Value)>),
    /// A variant, by name, with its fields.
    Variant(String, Vec<(String, Value)>),
}

/// Reads `bytes` whole as `shape`; `None` when they are not one value of it.
pub(crate) fn read(shape: &Shape, bytes: &[u8]) -> Option<Value> {
    let mut at = 0;
    let value = Reader::default().value(shape, bytes, &mut at)?;
    (at == bytes.len()).then_some(value)
}

/// The shape an encoding renders to, to draw and read values of it.
pub(crate) fn shape_of(encoding: &super::Encoding) -> Result<Shape, String> {
    let text = super::encoding::render(encoding);
    if text.overflowed() {
        return Err("an encoding is too large to draw values from".into());
    }
    upshift_schema::shape::parse(text.as_str())
        .map_err(|e| format!("an encoding does not parse: {e}"))
}

/// Whether two encodings of `shape` hold the same value (a map's entries
/// in any order).
pub(crate) fn same(shape: &Shape, a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (read(shape, a), read(shape, b)) {
        (Some(a), Some(b)) => a.normalized() == b.normalized(),
        _ => false,
    }
}

/// An encoded value of `shape` as a person reads it.
pub(crate) fn show(shape: &Shape, bytes: &[u8]) -> String {
    read(shape, bytes).map_or_else(
        || format!("{} bytes that do not read as the type", bytes.len()),
        |v| v.to_string(),
    )
}

/// A call as a person reads it: `get(key: "a")`, from the method's name,
/// its arguments' names and shapes, and the encoded arguments.
pub(crate) fn show_call(name: &str, args: &[(String, Shape)], payload: &[u8]) -> String {
    let shape = Shape::Tuple(args.iter().map(|(_, s)| s.clone()).collect());
    let args = match read(&shape, payload) {
        Some(Value::Tuple(values)) => args
            .iter()
            .zip(values)
            .map(|((name, _), value)| format!("{name}: {value}"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => format!("{} bytes", payload.len()),
    };
    format!("{name}({args})")
}

impl Value {
    /// The value with every map's entries in key order, so two maps that
    /// hold the same entries compare equal whatever order they wrote them
    /// in (a `HashMap`'s). Sequences keep their order: it is part of what a
    /// `Vec` says.
    pub(crate) fn normalized(mut self) -> Value {
        self.normalize();
        self
    }

    fn normalize(&mut self) {
        match self {
            Value::Unit | Value::Scalar(_) | Value::Option(None) => {}
            Value::Option(Some(v)) => v.normalize(),
            Value::Seq(items) | Value::Tuple(items) => items.iter_mut().for_each(Value::normalize),
            Value::Map(entries) => {
                for (k, v) in entries.iter_mut() {
                    k.normalize();
                    v.normalize();
                }
                entries.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            }
            Value::Struct(fields) | Value::Variant(_, fields) => {
                fields.iter_mut().for_each(|(_, v)| v.normalize());
            }
        }
    }
}

/// Rust-like: `Some({value: "a", expiry: InSecs(3)})`, `{"a": 1}`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, items: &[Value], open: &str, close: &str| {
            f.write_str(open)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(close)
        };
        let fields = |f: &mut fmt::Formatter<'_>, fields: &[(String, Value)]| {
            if fields.iter().all(|(name, _)| name.parse::<usize>().is_ok()) {
                let values: Vec<Value> = fields.iter().map(|(_, v)| v.clone()).collect();
                return list(f, &values, "(", ")");
            }
            f.write_str("{")?;
            for (i, (name, value)) in fields.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{name}: {value}")?;
            }
            f.write_str("}")
        };
        match self {
            Value::Unit => f.write_str("()"),
            Value::Scalar(node) => match node {
                Node::Bool(b) => write!(f, "{b}"),
                Node::Unsigned(n) => write!(f, "{n}"),
                Node::Signed(n) => write!(f, "{n}"),
                Node::F32(bits) => write!(f, "{}", f32::from_bits(*bits)),
                Node::F64(bits) => write!(f, "{}", f64::from_bits(*bits)),
                Node::Text(text) => write!(f, "{text:?}"),
                other => write!(f, "{other:?}"),
            },
            Value::Option(None) => f.write_str("None"),
            Value::Option(Some(v)) => write!(f, "Some({v})"),
            Value::Seq(items) => list(f, items, "[", "]"),
            Value::Tuple(items) => list(f, items, "(", ")"),
            Value::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Struct(fs) => fields(f, fs),
            Value::Variant(name, fs) if fs.is_empty() => f.write_str(name),
            Value::Variant(name, fs) => {
                f.write_str(name)?;
                fields(f, fs)
            }
        }
    }
}

/// Walks a shape as `decode`'s reader does, keeping names.
#[derive(Default)]
struct Reader<'s> {
    enclosing: Vec<&'s Shape>,
}

impl<'s> Reader<'s> {
    fn value(&mut self, shape: &'s Shape, bytes: &[u8], at: &mut usize) -> Option<Value> {
        let shape = match shape {
            Shape::Recurse => *self.enclosing.last()?,
            _ => shape,
        };
        // Deep enough for any value a test draws; a bound for what it reads.
        if self.enclosing.len() > 256 {
            return None;
        }
        Some(match shape {
            Shape::Unit | Shape::Invalid | Shape::Param(_) | Shape::Recurse => Value::Unit,
            Shape::Scalar(s) => Value::Scalar(read_scalar(*s, bytes, at)?),
            Shape::Option(t) => Value::Option(match take(bytes, at, 1)?[0] {
                0 => None,
                1 => Some(Box::new(self.value(t, bytes, at)?)),
                _ => return None,
            }),
            Shape::Seq(t) => {
                let n = read_varint(bytes, at, 64)?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.value(t, bytes, at)?);
                }
                Value::Seq(items)
            }
            Shape::Map(k, v) => {
                let n = read_varint(bytes, at, 64)?;
                let mut entries = Vec::new();
                for _ in 0..n {
                    entries.push((self.value(k, bytes, at)?, self.value(v, bytes, at)?));
                }
                Value::Map(entries)
            }
            Shape::Array(t, n) => {
                let mut items = Vec::new();
                for _ in 0..*n {
                    items.push(self.value(t, bytes, at)?);
                }
                Value::Seq(items)
            }
            Shape::Tuple(items) => Value::Tuple(
                items
                    .iter()
                    .map(|t| self.value(t, bytes, at))
                    .collect::<Option<_>>()?,
            ),
            Shape::Struct(fields) => {
                self.enclosing.push(shape);
                let read = self.fields(fields, bytes, at);
                self.enclosing.pop();
                Value::Struct(read?)
            }
            Shape::Enum(variants) => {
                let i = usize::try_from(read_varint(bytes, at, 32)?).ok()?;
                let (name, fields) = variants.get(i)?;
                self.enclosing.push(shape);
                let read = self.fields(fields, bytes, at);
                self.enclosing.pop();
                Value::Variant(name.clone(), read?)
            }
        })
    }

    fn fields(
        &mut self,
        fields: &'s [(String, Shape)],
        bytes: &[u8],
        at: &mut usize,
    ) -> Option<Vec<(String, Value)>> {
        fields
            .iter()
            .map(|(name, t)| Some((name.clone(), self.value(t, bytes, at)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use upshift_schema::shape::parse;

    fn show<T: serde::Serialize>(shape: &str, value: &T) -> String {
        let bytes = postcard::to_allocvec(value).unwrap();
        read(&parse(shape).unwrap(), &bytes).unwrap().to_string()
    }

    #[test]
    fn values_print_as_rust_reads_them() {
        assert_eq!(show("option<string>", &Some("a")), "Some(\"a\")");
        assert_eq!(
            show("{value: string, hits: u64}", &("v", 3u64)),
            "{value: \"v\", hits: 3}"
        );
        assert_eq!(
            show("enum {Never: {}, In: {0: u64}}", &(1u8, 5u64)),
            "In(5)"
        );
        assert_eq!(show("enum {Never: {}, In: {0: u64}}", &0u8), "Never");
        assert_eq!(
            show(
                "map<string, bool>",
                &[("a", true)]
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>()
            ),
            "{\"a\": true}"
        );
        assert_eq!(show("seq<i32>", &vec![-1, 2]), "[-1, 2]");
    }

    #[test]
    fn maps_compare_in_any_order_and_sequences_in_theirs() {
        let shape = parse("map<string, u8>").unwrap();
        let ab = read(&shape, &[2, 1, b'a', 1, 1, b'b', 2]).unwrap();
        let ba = read(&shape, &[2, 1, b'b', 2, 1, b'a', 1]).unwrap();
        assert_ne!(ab, ba);
        assert_eq!(ab.normalized(), ba.normalized());
        let seq = parse("seq<u8>").unwrap();
        let (one, two) = (
            read(&seq, &[2, 1, 2]).unwrap(),
            read(&seq, &[2, 2, 1]).unwrap(),
        );
        assert_ne!(one.normalized(), two.normalized());
    }

    #[test]
    fn bytes_that_are_not_one_value_read_as_none() {
        let shape = parse("(bool, string)").unwrap();
        assert_eq!(read(&shape, &[2]), None);
        assert_eq!(read(&shape, &[1, 1, b'a', 0]), None);
        assert!(read(&shape, &[1, 1, b'a']).is_some());
    }
}
