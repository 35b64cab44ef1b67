//! Proof by data for the lock: the test the macros generate for every
//! released element draws random byte strings from the encoding the lock
//! file records, and checks that today's type reads each one and writes it
//! back as the same bytes. The build compares encodings as upshift models
//! them; this compares them with what serde and postcard really do, so a
//! hand-written `Schema` that does not tell the truth, a serde attribute
//! upshift does not model, or a `compatibility wire` change that does not
//! read as it claims fails `cargo test`.
//!
//! Collections compare as written, or else as sets: a `BTreeSet` or a
//! `HashMap` may write back the same items in another order (and a set
//! or map keeps one of two equal keys).

use serde::Serialize;
use serde::de::DeserializeOwned;
use upshift_schema::shape::{self, Scalar, Shape};

use super::record::{Node, record};

/// One released element: its label, its locked encoding, and how today's
/// type reads and writes it.
#[doc(hidden)]
#[derive(Debug)]
pub struct Element {
    label: &'static str,
    locked: &'static str,
    roundtrip: Roundtrip,
}

/// The element `label` of a released section, locked as `locked`, whose
/// type today is `T`.
#[doc(hidden)]
pub fn element<T: Serialize + DeserializeOwned>(
    label: &'static str,
    locked: &'static str,
) -> Element {
    Element {
        label,
        locked,
        roundtrip: roundtrip::<T>,
    }
}

/// What today's type reads from the bytes (the values, as serde writes
/// them) and the bytes it writes back.
type Roundtrip = fn(&[u8]) -> Result<(Vec<Node>, Vec<u8>), String>;

fn roundtrip<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
) -> Result<(Vec<Node>, Vec<u8>), String> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes)
        .map_err(|e| format!("today's type cannot read them: {e}"))?;
    if !rest.is_empty() {
        return Err(format!(
            "today's type reads only {} of the {} bytes",
            bytes.len() - rest.len(),
            bytes.len()
        ));
    }
    let values = record(&value).map_err(|e| format!("today's type cannot write them back: {e}"))?;
    let back = postcard::to_allocvec(&value)
        .map_err(|e| format!("today's type cannot write them back: {e}"))?;
    Ok((values, back))
}

/// How many byte strings each element is checked with:
/// `UPSHIFT_DECODE_CASES` when set (a deeper local run), else 256.
fn cases() -> u64 {
    std::env::var("UPSHIFT_DECODE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// The generated test's body: checks every element of the released
/// section `what`.
///
/// # Panics
///
/// With every element that failed, the bytes and what went wrong.
#[doc(hidden)]
pub fn check_decoding(what: &str, elements: &[Element]) {
    let failures = failures(elements, cases());
    assert!(
        failures.is_empty(),
        "{what}: today's types do not read what it wrote as the lock file records it:\n{}\n\
         The lock says what each element encodes, and the build trusts it: a hand-written \
         `Schema` must describe its serde encoding exactly, and a serde attribute that changes \
         the encoding must be modelled (see the compatibility chapter of the book).",
        failures.join("\n")
    );
}

/// The first failure of each element, over `cases` byte strings each.
fn failures(elements: &[Element], cases: u64) -> Vec<String> {
    let mut out = Vec::new();
    for e in elements {
        let shape = match shape::parse(e.locked) {
            Ok(shape) => shape,
            Err(why) => {
                out.push(format!(
                    "- `{}`: its locked encoding is malformed: {why}",
                    e.label
                ));
                continue;
            }
        };
        // Generic parameters are checked where the type is used.
        if mentions_param(&shape) {
            continue;
        }
        let seed = upshift_schema::lock::fingerprint(&[e.label.to_string(), e.locked.to_string()]);
        for case in 0..cases {
            let mut rng = Rng(seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut bytes = Vec::new();
            Walk::default().draw(&shape, &mut rng, &mut bytes);
            if let Err(why) = check_one(&shape, &bytes, e.roundtrip) {
                out.push(format!(
                    "- `{}` (locked as `{}`): the bytes {} ({why})",
                    e.label,
                    e.locked,
                    hex(&bytes)
                ));
                break;
            }
        }
    }
    out
}

fn check_one(shape: &Shape, bytes: &[u8], roundtrip: Roundtrip) -> Result<(), String> {
    let read = |b: &[u8]| {
        let (mut at, mut out) = (0, Vec::new());
        Walk::default().read(shape, b, &mut at, &mut out)?;
        (at == b.len()).then_some(out)
    };
    let Some(expected) = read(bytes) else {
        return Err(
            "were drawn from the locked encoding but do not read as it: a bug of upshift's".into(),
        );
    };
    let (values, back) = roundtrip(bytes)?;
    if !same(&values, &expected) {
        return Err(format!(
            "were read as {}, where the released version reads {}",
            short(&values),
            short(&expected)
        ));
    }
    if back == bytes {
        return Ok(());
    }
    match read(&back) {
        Some(again) if same(&again, &expected) => Ok(()),
        Some(_) => Err(format!("were written back as {}", hex(&back))),
        None => Err(format!(
            "were written back as {}, which the released version cannot read",
            hex(&back)
        )),
    }
}

/// Equal, or equal as sets (see the module).
fn same(a: &[Node], b: &[Node]) -> bool {
    if a == b {
        return true;
    }
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    Node::as_sets(&mut a);
    Node::as_sets(&mut b);
    a == b
}

fn short(values: &[Node]) -> String {
    let text = format!("{values:?}");
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

fn hex(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let mut s: String = bytes.iter().take(MAX).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > MAX {
        s.push('…');
    }
    format!("[{s}]")
}

fn mentions_param(shape: &Shape) -> bool {
    match shape {
        Shape::Param(_) => true,
        Shape::Option(t) | Shape::Seq(t) | Shape::Array(t, _) => mentions_param(t),
        Shape::Map(k, v) => mentions_param(k) || mentions_param(v),
        Shape::Tuple(items) => items.iter().any(mentions_param),
        Shape::Struct(fields) => fields.iter().any(|(_, s)| mentions_param(s)),
        Shape::Enum(vs) => vs
            .iter()
            .any(|(_, fs)| fs.iter().any(|(_, s)| mentions_param(s))),
        _ => false,
    }
}

/// splitmix64: small, seeded, the same on every platform.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator that starts from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// Mostly small numbers, sometimes the edges, sometimes anything.
    fn integer(&mut self, bits: u32) -> u128 {
        let max = if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        let wide = (u128::from(self.next()) << 64) | u128::from(self.next());
        match self.below(8) {
            0..=3 => u128::from(self.below(256)) & max,
            4 => [0, 1, max, max >> 1, (max >> 1) + 1][self.below(5) as usize],
            _ => wide & max,
        }
    }
}

fn varint(mut n: u128, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Walks a shape, resolving `self` to the innermost struct or enum around it.
#[derive(Default)]
struct Walk<'s> {
    enclosing: Vec<&'s Shape>,
    /// Draws from small domains (a few short strings, small numbers), so
    /// that drawn calls meet: two `put`s and a `get` of the same key.
    small: bool,
}

/// The bytes of a value drawn from `shape` from small domains: strings of
/// `""`, `"a"`, `"b"`, numbers mostly below 4, at times an edge. What
/// the conformance tests call methods with and start states from.
pub(crate) fn draw_small(shape: &Shape, rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    Walk {
        enclosing: Vec::new(),
        small: true,
    }
    .draw(shape, rng, &mut out);
    out
}

/// How deep recursive shapes are drawn before choosing what ends them.
const RECURSION: usize = 4;

impl<'s> Walk<'s> {
    fn resolve(&self, shape: &'s Shape) -> Option<&'s Shape> {
        match shape {
            Shape::Recurse => self.enclosing.last().copied(),
            _ => Some(shape),
        }
    }

    fn recursions(&self) -> usize {
        self.enclosing.len()
    }

    fn draw(&mut self, shape: &'s Shape, rng: &mut Rng, out: &mut Vec<u8>) {
        let Some(shape) = self.resolve(shape) else {
            return;
        };
        let deep = self.recursions() > RECURSION;
        match shape {
            Shape::Unit | Shape::Invalid | Shape::Param(_) | Shape::Recurse => {}
            Shape::Scalar(s) if self.small => draw_small_scalar(*s, rng, out),
            Shape::Scalar(s) => draw_scalar(*s, rng, out),
            Shape::Option(t) => {
                let some = !deep && rng.below(2) == 1;
                out.push(u8::from(some));
                if some {
                    self.draw(t, rng, out);
                }
            }
            Shape::Seq(t) => {
                let n = if deep { 0 } else { rng.below(4) };
                varint(u128::from(n), out);
                for _ in 0..n {
                    self.draw(t, rng, out);
                }
            }
            Shape::Map(k, v) => {
                let n = if deep { 0 } else { rng.below(4) };
                let mut keys: Vec<Vec<u8>> = Vec::new();
                for _ in 0..n {
                    let mut key = Vec::new();
                    self.draw(k, rng, &mut key);
                    // Distinct keys: a map keeps one of two equal ones.
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
                varint(keys.len() as u128, out);
                for key in keys {
                    out.extend(key);
                    self.draw(v, rng, out);
                }
            }
            Shape::Array(t, n) => {
                for _ in 0..*n {
                    self.draw(t, rng, out);
                }
            }
            Shape::Tuple(items) => items.iter().for_each(|t| self.draw(t, rng, out)),
            Shape::Struct(fields) => {
                self.enclosing.push(shape);
                if let Some(secs) = time_since(fields) {
                    // serde refuses nanoseconds of 10^9 and more, and a
                    // `SystemTime` past what the platform holds.
                    varint(u128::from(rng.below(secs)), out);
                    varint(u128::from(rng.below(1_000_000_000)), out);
                } else {
                    fields.iter().for_each(|(_, t)| self.draw(t, rng, out));
                }
                self.enclosing.pop();
            }
            Shape::Enum(variants) => {
                self.enclosing.push(shape);
                let mut i = rng.below(variants.len() as u64) as usize;
                if deep && let Some(end) = variants.iter().position(|(_, fs)| !recurses(fs)) {
                    i = end;
                }
                varint(i as u128, out);
                if let Some((_, fields)) = variants.get(i) {
                    fields.iter().for_each(|(_, t)| self.draw(t, rng, out));
                }
                self.enclosing.pop();
            }
        }
    }

    /// Reads `bytes` from `at` as `shape`, appending its values to `out`;
    /// `None` when they are not one.
    fn read(
        &mut self,
        shape: &'s Shape,
        bytes: &[u8],
        at: &mut usize,
        out: &mut Vec<Node>,
    ) -> Option<()> {
        let shape = self.resolve(shape)?;
        if self.enclosing.len() > 1024 {
            return None;
        }
        match shape {
            Shape::Unit | Shape::Invalid | Shape::Param(_) | Shape::Recurse => {}
            Shape::Scalar(s) => out.push(read_scalar(*s, bytes, at)?),
            Shape::Option(t) => out.push(Node::Option(match take(bytes, at, 1)?[0] {
                0 => None,
                1 => Some(self.part(t, bytes, at)?),
                _ => return None,
            })),
            Shape::Seq(t) => {
                let n = read_varint(bytes, at, 64)?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.part(t, bytes, at)?);
                }
                out.push(Node::Seq(items));
            }
            Shape::Map(k, v) => {
                let n = read_varint(bytes, at, 64)?;
                let mut entries = Vec::new();
                for _ in 0..n {
                    entries.push((self.part(k, bytes, at)?, self.part(v, bytes, at)?));
                }
                out.push(Node::Map(entries));
            }
            Shape::Array(t, n) => {
                for _ in 0..*n {
                    self.read(t, bytes, at, out)?;
                }
            }
            Shape::Tuple(items) => {
                for t in items {
                    self.read(t, bytes, at, out)?;
                }
            }
            Shape::Struct(fields) => {
                self.enclosing.push(shape);
                let read = fields
                    .iter()
                    .try_for_each(|(_, t)| self.read(t, bytes, at, out));
                self.enclosing.pop();
                read?;
            }
            Shape::Enum(variants) => {
                let i = u32::try_from(read_varint(bytes, at, 32)?).ok()?;
                let (_, fields) = variants.get(i as usize)?;
                self.enclosing.push(shape);
                let mut values = Vec::new();
                let read = fields
                    .iter()
                    .try_for_each(|(_, t)| self.read(t, bytes, at, &mut values));
                self.enclosing.pop();
                read?;
                out.push(Node::Variant(i, values));
            }
        }
        Some(())
    }

    /// An item of something framed: its own list of values.
    fn part(&mut self, shape: &'s Shape, bytes: &[u8], at: &mut usize) -> Option<Vec<Node>> {
        let mut out = Vec::new();
        self.read(shape, bytes, at, &mut out)?;
        Some(out)
    }
}

/// The largest seconds drawn for a struct that is serde's `Duration` or
/// `SystemTime`; `None` for any other struct.
fn time_since(fields: &[(String, Shape)]) -> Option<u64> {
    let names: Vec<(&str, &Shape)> = fields.iter().map(|(n, s)| (n.as_str(), s)).collect();
    let (u64s, u32s) = (Shape::Scalar(Scalar::U64), Shape::Scalar(Scalar::U32));
    match names.as_slice() {
        [("secs", a), ("nanos", b)] if **a == u64s && **b == u32s => Some(u64::MAX),
        [("secs_since_epoch", a), ("nanos_since_epoch", b)] if **a == u64s && **b == u32s => {
            Some(1 << 40)
        }
        _ => None,
    }
}

/// Whether a variant's fields hold the enclosing type (drawing it recurses).
fn recurses(fields: &[(String, Shape)]) -> bool {
    fn any(s: &Shape) -> bool {
        match s {
            Shape::Recurse => true,
            Shape::Option(t) | Shape::Seq(t) | Shape::Array(t, _) => any(t),
            Shape::Map(k, v) => any(k) || any(v),
            Shape::Tuple(items) => items.iter().any(any),
            _ => false,
        }
    }
    fields.iter().any(|(_, s)| any(s))
}

fn bits(s: Scalar) -> u32 {
    match s {
        Scalar::U16 | Scalar::I16 => 16,
        Scalar::U32 | Scalar::I32 => 32,
        Scalar::U64 | Scalar::I64 => 64,
        _ => 128,
    }
}

fn draw_scalar(s: Scalar, rng: &mut Rng, out: &mut Vec<u8>) {
    match s {
        Scalar::Bool => out.push(rng.below(2) as u8),
        Scalar::U8 | Scalar::I8 => out.push(rng.next() as u8),
        Scalar::U16 | Scalar::U32 | Scalar::U64 | Scalar::U128 => varint(rng.integer(bits(s)), out),
        // Zigzag: any unsigned varint of the width is some signed value.
        Scalar::I16 | Scalar::I32 | Scalar::I64 | Scalar::I128 => {
            varint(rng.integer(bits(s)), out);
        }
        Scalar::F32 => out.extend((rng.next() as u32).to_le_bytes()),
        Scalar::F64 => out.extend(rng.next().to_le_bytes()),
        Scalar::Char => {
            let c = draw_char(rng);
            let mut buf = [0; 4];
            let text = c.encode_utf8(&mut buf);
            varint(text.len() as u128, out);
            out.extend(text.as_bytes());
        }
        Scalar::Str => {
            let text: String = (0..rng.below(9)).map(|_| draw_char(rng)).collect();
            varint(text.len() as u128, out);
            out.extend(text.as_bytes());
        }
    }
}

fn draw_small_scalar(s: Scalar, rng: &mut Rng, out: &mut Vec<u8>) {
    const TEXTS: [&str; 5] = ["", "a", "b", "a", "ab"];
    match s {
        Scalar::Str | Scalar::Char => {
            let text = if s == Scalar::Char {
                ["a", "b"][rng.below(2) as usize]
            } else {
                TEXTS[rng.below(TEXTS.len() as u64) as usize]
            };
            varint(text.len() as u128, out);
            out.extend(text.as_bytes());
        }
        Scalar::U8 | Scalar::I8 => out.push(rng.below(4) as u8),
        Scalar::F32 => out.extend((rng.below(4) as f32).to_le_bytes()),
        Scalar::F64 => out.extend((rng.below(4) as f64).to_le_bytes()),
        // Mostly small, one draw in eight anything (edges included); signed
        // ones are zigzagged, so small varints are small either way.
        _ if rng.below(8) > 0 => varint(u128::from(rng.below(4)), out),
        _ => draw_scalar(s, rng, out),
    }
}

fn draw_char(rng: &mut Rng) -> char {
    if rng.below(4) > 0 {
        char::from(b' ' + rng.below(95) as u8)
    } else {
        char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}')
    }
}

pub(super) fn take<'b>(bytes: &'b [u8], at: &mut usize, n: usize) -> Option<&'b [u8]> {
    let end = at.checked_add(n)?;
    let taken = bytes.get(*at..end)?;
    *at = end;
    Some(taken)
}

pub(super) fn read_varint(bytes: &[u8], at: &mut usize, bits: u32) -> Option<u128> {
    let mut n: u128 = 0;
    let mut shift = 0;
    loop {
        let byte = take(bytes, at, 1)?[0];
        if shift >= bits.max(7) + 7 {
            return None;
        }
        n |= u128::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return (bits == 128 || n >> bits == 0).then_some(n);
        }
        shift += 7;
    }
}

pub(super) fn read_scalar(s: Scalar, bytes: &[u8], at: &mut usize) -> Option<Node> {
    let unzigzag = |n: u128| ((n >> 1) as i128) ^ -((n & 1) as i128);
    Some(match s {
        Scalar::Bool => match take(bytes, at, 1)?[0] {
            0 => Node::Bool(false),
            1 => Node::Bool(true),
            _ => return None,
        },
        Scalar::U8 => Node::Unsigned(u128::from(take(bytes, at, 1)?[0])),
        Scalar::I8 => Node::Signed(i128::from(take(bytes, at, 1)?[0] as i8)),
        Scalar::F32 => Node::F32(u32::from_le_bytes(take(bytes, at, 4)?.try_into().ok()?)),
        Scalar::F64 => Node::F64(u64::from_le_bytes(take(bytes, at, 8)?.try_into().ok()?)),
        Scalar::Char | Scalar::Str => {
            let len = usize::try_from(read_varint(bytes, at, 64)?).ok()?;
            let text = std::str::from_utf8(take(bytes, at, len)?).ok()?;
            if s == Scalar::Char && text.chars().count() != 1 {
                return None;
            }
            Node::Text(text.to_string())
        }
        Scalar::I16 | Scalar::I32 | Scalar::I64 | Scalar::I128 => {
            Node::Signed(unzigzag(read_varint(bytes, at, bits(s))?))
        }
        Scalar::U16 | Scalar::U32 | Scalar::U64 | Scalar::U128 => {
            Node::Unsigned(read_varint(bytes, at, bits(s))?)
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    use super::*;

    fn run<T: Serialize + DeserializeOwned>(locked: &'static str) -> Vec<String> {
        failures(&[element::<T>("x", locked)], 512)
    }

    #[test]
    fn types_that_encode_as_locked_pass() {
        assert_eq!(run::<u32>("u32"), Vec::<String>::new());
        assert_eq!(
            run::<(u8, i64, String, char, bool)>("(u8, i64, string, char, bool)"),
            Vec::<String>::new()
        );
        assert_eq!(
            run::<Option<Vec<f32>>>("option<seq<f32>>"),
            Vec::<String>::new()
        );
        assert_eq!(run::<[u16; 3]>("[u16; 3]"), Vec::<String>::new());
        assert_eq!(
            run::<Result<u64, String>>("enum {Ok: {0: u64}, Err: {0: string}}"),
            Vec::<String>::new()
        );
        assert_eq!(
            run::<std::time::Duration>("{secs: u64, nanos: u32}"),
            Vec::<String>::new()
        );
        assert_eq!(
            run::<std::time::SystemTime>("{secs_since_epoch: u64, nanos_since_epoch: u32}"),
            Vec::<String>::new()
        );
        assert_eq!(run::<u128>("u128"), Vec::<String>::new());
        assert_eq!(run::<i128>("i128"), Vec::<String>::new());
    }

    #[test]
    fn sets_and_maps_written_back_in_their_order_pass() {
        assert_eq!(run::<BTreeSet<u8>>("seq<u8>"), Vec::<String>::new());
        assert_eq!(
            run::<HashMap<String, u32>>("map<string, u32>"),
            Vec::<String>::new()
        );
        assert_eq!(
            run::<BTreeMap<u8, bool>>("map<u8, bool>"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn wire_widenings_read_every_old_value() {
        assert_eq!(run::<u64>("u16"), Vec::<String>::new());
        assert_eq!(run::<i128>("i32"), Vec::<String>::new());
        assert_eq!(run::<String>("char"), Vec::<String>::new());
        assert_eq!(run::<(u32, u32)>("{x: u32, y: u32}"), Vec::<String>::new());
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    enum Tree {
        Leaf(u8),
        Node(Vec<Tree>),
    }

    #[test]
    fn recursive_types_are_drawn_to_a_bounded_depth() {
        assert_eq!(
            run::<Tree>("enum {Leaf: {0: u8}, Node: {0: seq<self>}}"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn types_that_do_not_encode_as_locked_fail_with_the_bytes() {
        let narrowed = run::<u16>("u32");
        assert_eq!(narrowed.len(), 1, "{narrowed:?}");
        assert!(
            narrowed[0].starts_with("- `x` (locked as `u32`): the bytes ["),
            "{narrowed:?}"
        );
        assert!(
            narrowed[0].contains("today's type cannot read them"),
            "{narrowed:?}"
        );
        // Unsigned and signed varints: the same bytes, other values.
        assert!(
            run::<i32>("u32")[0].contains("were read as [Signed("),
            "{:?}",
            run::<i32>("u32")
        );
        assert!(run::<u8>("(u8, u8)")[0].contains("reads only 1 of the 2 bytes"));
        assert!(!run::<String>("u32").is_empty());
        assert!(!run::<Option<u8>>("bool").is_empty());
        assert!(!run::<Result<u8, u8>>("enum {Ok: {0: u8}, Err: {0: u8}, Other: {}}").is_empty());
        assert!(
            run::<u8>("{0: ?, 1: $0}").is_empty(),
            "a generic element is checked where used"
        );
        assert!(run::<u8>("{id: u33}")[0].contains("malformed"));
    }

    #[test]
    #[should_panic(expected = "v1 of `Kv`: today's types do not read what it wrote")]
    fn the_generated_test_panics_with_every_failure() {
        check_decoding("v1 of `Kv`", &[element::<u8>("get.return", "string")]);
    }
}
