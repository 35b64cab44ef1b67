//! What a value *is*, as serde sees it: a serializer that records the
//! values a type writes (an unsigned 5, a signed −3, a text, a variant's
//! index) rather than their bytes, so the decoding test can tell a value
//! read as itself from one reinterpreted (`u32` bytes read as `i32` write
//! back the same bytes, but 3 becomes −2).
//!
//! Structs, tuples, arrays and units are flattened as postcard flattens
//! them; what postcard frames (options, sequences, maps, variants) keeps
//! its boundaries.

use serde::ser::{self, Serialize};

/// One value on the wire, framed the way postcard frames it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Node {
    Bool(bool),
    Unsigned(u128),
    Signed(i128),
    F32(u32),
    F64(u64),
    Text(String),
    Option(Option<Vec<Node>>),
    Seq(Vec<Vec<Node>>),
    Map(Vec<(Vec<Node>, Vec<Node>)>),
    Variant(u32, Vec<Node>),
}

impl Node {
    /// Sorted and without repeats: what a set or a map writes back.
    pub(super) fn as_sets(nodes: &mut [Node]) {
        for node in nodes {
            match node {
                Node::Option(Some(items)) | Node::Variant(_, items) => Node::as_sets(items),
                Node::Seq(items) => {
                    items.iter_mut().for_each(|i| Node::as_sets(i));
                    items.sort();
                    items.dedup();
                }
                Node::Map(entries) => {
                    for (k, v) in entries.iter_mut() {
                        Node::as_sets(k);
                        Node::as_sets(v);
                    }
                    // The last of two equal keys is the one a map keeps.
                    entries.reverse();
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                    entries.dedup_by(|a, b| a.0 == b.0);
                }
                _ => {}
            }
        }
    }
}

/// The values `value` writes, or why serde refused.
pub(super) fn record<T: Serialize + ?Sized>(value: &T) -> Result<Vec<Node>, String> {
    let mut r = Recorder {
        frames: vec![Frame::Part(Vec::new())],
    };
    value.serialize(&mut r).map_err(|e| e.0)?;
    match r.frames.pop() {
        Some(Frame::Part(nodes)) if r.frames.is_empty() => Ok(nodes),
        _ => Err("the type's Serialize left a sequence or map open".into()),
    }
}

#[derive(Debug)]
pub(super) struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

enum Frame {
    /// Values flattened into what holds them.
    Part(Vec<Node>),
    Seq(Vec<Vec<Node>>),
    Map(Vec<(Vec<Node>, Vec<Node>)>, Option<Vec<Node>>),
    Variant(u32),
}

struct Recorder {
    frames: Vec<Frame>,
}

impl Recorder {
    fn push(&mut self, node: Node) {
        match self.frames.last_mut() {
            Some(Frame::Part(nodes)) => nodes.push(node),
            // An item, key or value is serialized inside its own `Part`.
            _ => unreachable!("values are recorded into a part"),
        }
    }

    fn part(&mut self) {
        self.frames.push(Frame::Part(Vec::new()));
    }

    fn end_part(&mut self) -> Vec<Node> {
        match self.frames.pop() {
            Some(Frame::Part(nodes)) => nodes,
            _ => unreachable!("parts are closed in order"),
        }
    }

    /// An item of the sequence or map on top, serialized in its own part.
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<Vec<Node>, Error> {
        self.part();
        value.serialize(&mut *self)?;
        Ok(self.end_part())
    }

    fn begin_variant(&mut self, index: u32) {
        self.frames.push(Frame::Variant(index));
        self.part();
    }

    fn end_variant(&mut self) {
        let fields = self.end_part();
        if let Some(Frame::Variant(index)) = self.frames.pop() {
            self.push(Node::Variant(index, fields));
        }
    }
}

impl ser::Serializer for &mut Recorder {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    // Postcard is a binary format; types that write text for humans
    // (addresses, times) write their binary form to it.
    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.push(Node::Bool(v));
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i128(i128::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i128(i128::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i128(i128::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.serialize_i128(i128::from(v))
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.push(Node::Signed(v));
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u128(u128::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u128(u128::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u128(u128::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.serialize_u128(u128::from(v))
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.push(Node::Unsigned(v));
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.push(Node::F32(v.to_bits()));
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.push(Node::F64(v.to_bits()));
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.push(Node::Text(v.to_string()));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.push(Node::Text(v.to_string()));
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        // Postcard writes bytes as a length and the bytes: a `seq<u8>`.
        let items = v
            .iter()
            .map(|b| vec![Node::Unsigned(u128::from(*b))])
            .collect();
        self.push(Node::Seq(items));
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.push(Node::Option(None));
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        let inner = self.item(value)?;
        self.push(Node::Option(Some(inner)));
        Ok(())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
    ) -> Result<(), Error> {
        self.push(Node::Variant(index, Vec::new()));
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let fields = self.item(value)?;
        self.push(Node::Variant(index, fields));
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Error> {
        self.frames.push(Frame::Seq(Vec::new()));
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, Error> {
        self.begin_variant(index);
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, Error> {
        self.frames.push(Frame::Map(Vec::new(), None));
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, Error> {
        self.begin_variant(index);
        Ok(self)
    }
}

impl ser::SerializeSeq for &mut Recorder {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let item = self.item(value)?;
        if let Some(Frame::Seq(items)) = self.frames.last_mut() {
            items.push(item);
        }
        Ok(())
    }
    fn end(self) -> Result<(), Error> {
        if let Some(Frame::Seq(items)) = self.frames.pop() {
            self.push(Node::Seq(items));
        }
        Ok(())
    }
}

/// Tuples and structs flatten into what holds them.
macro_rules! flat {
    ($($trait:ident :: $method:ident ($($name:ty)?)),*) => {$(
        impl ser::$trait for &mut Recorder {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, $(_: $name,)? value: &T) -> Result<(), Error> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        }
    )*};
}

flat!(
    SerializeTuple::serialize_element(),
    SerializeTupleStruct::serialize_field(),
    SerializeStruct::serialize_field(&'static str)
);

macro_rules! variant {
    ($($trait:ident :: $method:ident ($($name:ty)?)),*) => {$(
        impl ser::$trait for &mut Recorder {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, $(_: $name,)? value: &T) -> Result<(), Error> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), Error> {
                self.end_variant();
                Ok(())
            }
        }
    )*};
}

variant!(
    SerializeTupleVariant::serialize_field(),
    SerializeStructVariant::serialize_field(&'static str)
);

impl ser::SerializeMap for &mut Recorder {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        let key = self.item(key)?;
        if let Some(Frame::Map(_, pending)) = self.frames.last_mut() {
            *pending = Some(key);
        }
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let value = self.item(value)?;
        match self.frames.last_mut() {
            Some(Frame::Map(entries, pending)) => match pending.take() {
                Some(key) => {
                    entries.push((key, value));
                    Ok(())
                }
                None => Err(Error("a map value without its key".into())),
            },
            _ => Err(Error("a map value outside a map".into())),
        }
    }
    fn end(self) -> Result<(), Error> {
        if let Some(Frame::Map(entries, _)) = self.frames.pop() {
            self.push(Node::Map(entries));
        }
        Ok(())
    }
}
