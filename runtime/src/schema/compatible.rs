//! The `compatibility wire` relation between a released encoding and
//! today's: whether every byte string the released version writes is read
//! by today's types as the same value and written back as the same bytes.
//!
//! Postcard writes a struct, a tuple or an array as its items one after the
//! other, with no names, lengths or tags; so both sides are compared as the
//! sequences of what they put on the wire, with structs, tuples and arrays
//! flattened and unit values dropped. What carries its own framing
//! (`option`, `seq`, `map`, an enum's variants) is compared item by item.
//! Scalars must be equal, except for the widenings that read every old
//! value as itself: `u16` → `u32` → `u64` → `u128` (varints), `i16` → `i32`
//! → `i64` → `i128` (zigzag varints), `char` → `string`.

use super::encoding::{Encoding, Field, Locked, Text, Variant, eq, push_short, render};

/// The deepest flattening followed; deeper is reported, not guessed.
const DEPTH: usize = 32;

/// Where a cursor is in one sequence: a struct's fields, a tuple's items,
/// an array's repeated item, or a single encoding.
#[derive(Clone, Copy)]
enum Frame<'a> {
    Fields(&'a [Field], usize),
    Items(&'a [&'a Encoding], usize),
    Repeat(&'a Encoding, usize, usize),
    One(&'a Encoding, bool),
}

/// A walk over one side's wire items, in order.
struct Cursor<'a> {
    frames: [Frame<'a>; DEPTH],
    depth: usize,
}

impl<'a> Cursor<'a> {
    const fn new(first: Frame<'a>) -> Self {
        let mut frames = [Frame::One(&Encoding::Unit, true); DEPTH];
        frames[0] = first;
        Cursor { frames, depth: 1 }
    }

    /// The encoding at the cursor, leaving finished frames; `None` at the end.
    const fn peek(&mut self) -> Option<&'a Encoding> {
        while self.depth > 0 {
            let current = match self.frames[self.depth - 1] {
                Frame::Fields(fields, i) if i < fields.len() => Some(fields[i].encoding),
                Frame::Items(items, i) if i < items.len() => Some(items[i]),
                Frame::Repeat(item, n, i) if i < n => Some(item),
                Frame::One(e, false) => Some(e),
                _ => None,
            };
            if current.is_some() {
                return current;
            }
            self.depth -= 1;
        }
        None
    }

    /// The name of the field or the index of the item at the cursor, for
    /// the path in a message.
    const fn push_path(&self, msg: &mut Text) {
        let mut level = 0;
        while level < self.depth {
            // A frame below the top moved past the member it holds open.
            let back = if level + 1 < self.depth { 1 } else { 0 };
            match self.frames[level] {
                Frame::Fields(fields, i) if i >= back && i - back < fields.len() => {
                    msg.push(".");
                    msg.push(fields[i - back].name);
                }
                Frame::Items(_, i) | Frame::Repeat(_, _, i) if i >= back => {
                    msg.push(".");
                    msg.push_number(i - back);
                }
                _ => {}
            }
            level += 1;
        }
    }

    const fn advance(&mut self) {
        if self.depth == 0 {
            return;
        }
        let top = &mut self.frames[self.depth - 1];
        *top = match *top {
            Frame::Fields(fields, i) => Frame::Fields(fields, i + 1),
            Frame::Items(items, i) => Frame::Items(items, i + 1),
            Frame::Repeat(item, n, i) => Frame::Repeat(item, n, i + 1),
            Frame::One(e, _) => Frame::One(e, true),
        };
    }

    /// Steps into the struct, tuple or array at the cursor (which must be
    /// one); `false` when that is deeper than upshift follows.
    const fn enter(&mut self, e: &'a Encoding) -> bool {
        let frame = match e {
            Encoding::Struct(fields) => Frame::Fields(fields, 0),
            Encoding::Tuple(items) => Frame::Items(items, 0),
            Encoding::Array(item, n) => Frame::Repeat(item, *n, 0),
            _ => Frame::One(&Encoding::Unit, true),
        };
        // The frame that holds `e` moves on first, so it resumes after it.
        self.advance();
        if self.depth == DEPTH {
            return false;
        }
        self.frames[self.depth] = frame;
        self.depth += 1;
        true
    }
}

const fn flattens(e: &Encoding) -> bool {
    matches!(
        e,
        Encoding::Unit | Encoding::Struct(_) | Encoding::Tuple(_) | Encoding::Array(..)
    )
}

/// `None` when `new` reads and writes everything `old` writes as the same
/// values and bytes (see the module); else the message of the build error,
/// naming the element of `old` where they part.
pub const fn readable(old: &Encoding, new: &Encoding, locked: Locked<'_>) -> Option<Text> {
    let mut msg = Text::new();
    if compare(Frame::One(old, false), Frame::One(new, false), &mut msg) {
        return None;
    }
    let mut out = Text::new();
    out.push(locked.what);
    out.push(" and what it writes must stay readable (compatibility wire): `");
    out.push(locked.label);
    out.push_bytes(msg.as_str().as_bytes());
    out.push("; ");
    out.push(locked.advice);
    Some(out)
}

/// Compares two sequences of wire items; on a difference, writes the path
/// and what differs to `msg` and returns `false`.
const fn compare(old: Frame<'_>, new: Frame<'_>, msg: &mut Text) -> bool {
    let (mut a, mut b) = (Cursor::new(old), Cursor::new(new));
    loop {
        let (x, y) = (a.peek(), b.peek());
        let (x, y) = match (x, y) {
            (None, None) => return true,
            (Some(sx @ Encoding::Struct(fa)), Some(sy @ Encoding::Struct(fb))) => {
                let (names_a, names_b) = (Names::Fields(fa), Names::Fields(fb));
                if moved(names_a, names_b) {
                    a.push_path(msg);
                    push_moved(msg, names_a, names_b);
                    return false;
                }
                if !a.enter(sx) || !b.enter(sy) {
                    return too_deep(&a, msg);
                }
                continue;
            }
            (Some(x), _) if flattens(x) && !same_array(x, y) => {
                if !a.enter(x) {
                    return too_deep(&a, msg);
                }
                continue;
            }
            (_, Some(y)) if flattens(y) && !same_array(y, x) => {
                if !b.enter(y) {
                    return too_deep(&a, msg);
                }
                continue;
            }
            (Some(x), None) => {
                a.push_path(msg);
                msg.push("` is `");
                push_rendered(msg, x);
                msg.push("`, which today's types no longer read");
                return false;
            }
            (None, Some(y)) => {
                a.push_path(msg);
                msg.push("` ends where today's types read `");
                push_rendered(msg, y);
                msg.push("` more");
                return false;
            }
            (Some(x), Some(y)) => (x, y),
        };
        let mut inner = Text::new();
        if !item(x, y, &mut inner) {
            a.push_path(msg);
            if inner.as_str().is_empty() {
                msg.push("` was `");
                push_rendered(msg, x);
                msg.push("`, is now `");
                push_rendered(msg, y);
                msg.push("`");
            } else {
                msg.push_bytes(inner.as_str().as_bytes());
            }
            return false;
        }
        a.advance();
        b.advance();
    }
}

/// The names of a struct's fields or an enum's variants.
#[derive(Clone, Copy)]
enum Names<'a> {
    Fields(&'a [Field]),
    Variants(&'a [Variant]),
}

impl<'a> Names<'a> {
    const fn len(self) -> usize {
        match self {
            Names::Fields(f) => f.len(),
            Names::Variants(v) => v.len(),
        }
    }

    const fn get(self, i: usize) -> &'a str {
        match self {
            Names::Fields(f) => f[i].name,
            Names::Variants(v) => v[i].name,
        }
    }
}

/// Whether a name both sides have is at different positions: a swap of
/// two alike members writes the same bytes and means something else, and a
/// member inserted before others moves them, so the wire mode refuses both
/// (a rename, where the old name is gone, is accepted).
const fn moved(old: Names<'_>, new: Names<'_>) -> bool {
    let mut i = 0;
    while i < old.len() {
        let mut j = 0;
        while j < new.len() {
            let (a, b) = (old.get(i).as_bytes(), new.get(j).as_bytes());
            if i != j && eq(a, b) {
                return true;
            }
            j += 1;
        }
        i += 1;
    }
    false
}

const fn push_moved(msg: &mut Text, old: Names<'_>, new: Names<'_>) {
    msg.push("` had `");
    push_names(msg, old);
    msg.push("`, has `");
    push_names(msg, new);
    msg.push("` (postcard writes members by position: one that moves is read as another)");
}

const fn push_names(msg: &mut Text, names: Names<'_>) {
    let mut i = 0;
    while i < names.len() {
        if i > 0 {
            msg.push(", ");
        }
        msg.push(names.get(i));
        i += 1;
    }
}

/// Whether `x` is an array of the same length as `y`: compared item to
/// item without flattening (an array of 4,096 bytes stays one step).
const fn same_array(x: &Encoding, y: Option<&Encoding>) -> bool {
    matches!((x, y), (Encoding::Array(_, n), Some(Encoding::Array(_, m))) if *n == *m)
}

const fn too_deep(a: &Cursor<'_>, msg: &mut Text) -> bool {
    a.push_path(msg);
    msg.push("` nests structs deeper than upshift compares (32 levels)");
    false
}

/// Compares one wire item of each side (neither a struct, tuple or unit;
/// arrays only of the same length). An empty `msg` on `false` means "the
/// items differ"; else it holds the inner path and difference.
const fn item(x: &Encoding, y: &Encoding, msg: &mut Text) -> bool {
    use Encoding as E;
    match (x, y) {
        // A type whose derive failed has its own error.
        (E::Invalid, _) | (_, E::Invalid) => true,
        (E::Recurse, E::Recurse) => true,
        (E::Param(i), E::Param(j)) => *i == *j,
        (E::Option(s), E::Option(t)) | (E::Seq(s), E::Seq(t)) => {
            compare(Frame::One(s, false), Frame::One(t, false), msg)
        }
        (E::Array(s, _), E::Array(t, _)) => {
            compare(Frame::One(s, false), Frame::One(t, false), msg)
        }
        (E::Map(k, v), E::Map(l, w)) => {
            compare(Frame::One(k, false), Frame::One(l, false), msg)
                && compare(Frame::One(v, false), Frame::One(w, false), msg)
        }
        (E::Enum(vs), E::Enum(ws)) => {
            if vs.len() != ws.len() {
                msg.push("` had ");
                msg.push_number(vs.len());
                msg.push(" variants, has ");
                msg.push_number(ws.len());
                msg.push(" (postcard writes a variant's index; an index one side does not know fails to decode)");
                return false;
            }
            if moved(Names::Variants(vs), Names::Variants(ws)) {
                push_moved(msg, Names::Variants(vs), Names::Variants(ws));
                return false;
            }
            let mut i = 0;
            while i < vs.len() {
                let mut inner = Text::new();
                if !compare(
                    Frame::Fields(vs[i].fields, 0),
                    Frame::Fields(ws[i].fields, 0),
                    &mut inner,
                ) {
                    msg.push(".");
                    msg.push(vs[i].name);
                    if inner.as_str().is_empty() {
                        msg.push("` differs");
                    } else {
                        msg.push_bytes(inner.as_str().as_bytes());
                    }
                    return false;
                }
                i += 1;
            }
            true
        }
        _ => scalar(x, y),
    }
}

/// Equal scalars, or a widening that reads every old value as itself.
const fn scalar(x: &Encoding, y: &Encoding) -> bool {
    match (rank(x), rank(y)) {
        (Some((cx, rx)), Some((cy, ry))) => cx == cy && rx <= ry,
        _ => false,
    }
}

/// A scalar's class (which values read the same across it) and its width
/// within the class.
const fn rank(e: &Encoding) -> Option<(u8, u8)> {
    use Encoding as E;
    Some(match e {
        E::Bool => (0, 0),
        E::U8 => (1, 0),
        E::I8 => (2, 0),
        E::U16 => (3, 1),
        E::U32 => (3, 2),
        E::U64 => (3, 3),
        E::U128 => (3, 4),
        E::I16 => (4, 1),
        E::I32 => (4, 2),
        E::I64 => (4, 3),
        E::I128 => (4, 4),
        E::F32 => (5, 0),
        E::F64 => (6, 0),
        E::Char => (7, 0),
        E::Str => (7, 1),
        _ => return None,
    })
}

const fn push_rendered(msg: &mut Text, e: &Encoding) {
    let text = render(e);
    push_short(msg, text.as_str().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schema;

    fn check<Old: Schema, New: Schema>() -> Option<String> {
        readable(
            Old::ENCODING,
            New::ENCODING,
            Locked {
                what: "v1",
                label: "x",
                encoding: "",
                advice: "advice",
            },
        )
        .map(|t| t.as_str().to_string())
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Point {
        x: u32,
        y: u32,
    }
    impl Schema for Point {
        const ENCODING: &'static Encoding = &Encoding::Struct(&[
            Field {
                name: "x",
                encoding: &Encoding::U32,
            },
            Field {
                name: "y",
                encoding: &Encoding::U32,
            },
        ]);
    }

    struct Swapped;
    impl Schema for Swapped {
        const ENCODING: &'static Encoding = &Encoding::Struct(&[
            Field {
                name: "y",
                encoding: &Encoding::U32,
            },
            Field {
                name: "x",
                encoding: &Encoding::U32,
            },
        ]);
    }

    #[test]
    fn what_postcard_writes_alike_is_readable() {
        assert_eq!(check::<(u32, u32), Point>(), None);
        assert_eq!(check::<[u32; 2], Point>(), None);
        assert_eq!(check::<(Point, u8), (u32, (u32, u8))>(), None);
        assert_eq!(check::<u16, u64>(), None);
        assert_eq!(check::<i32, i128>(), None);
        assert_eq!(check::<char, String>(), None);
        assert_eq!(check::<Box<Vec<u16>>, Vec<u32>>(), None);
        assert_eq!(check::<((), u8), u8>(), None);
        assert_eq!(check::<[u8; 4096], [u8; 4096]>(), None);
        assert_eq!(
            check::<std::collections::HashMap<String, u8>, std::collections::BTreeMap<String, u8>>(
            ),
            None
        );
    }

    #[test]
    fn what_reads_differently_is_named() {
        assert_eq!(
            check::<u64, u32>().as_deref(),
            Some(
                "v1 and what it writes must stay readable (compatibility wire): `x` was `u64`, is now `u32`; advice"
            )
        );
        assert_eq!(
            check::<(u32, u32), (u32, i32)>().as_deref(),
            Some(
                "v1 and what it writes must stay readable (compatibility wire): `x.1` was `u32`, is now `i32`; advice"
            )
        );
        assert!(
            check::<Point, (u32, u32, u32)>()
                .unwrap()
                .contains("ends where today's types read `u32` more")
        );
        assert!(
            check::<Point, u32>()
                .unwrap()
                .contains("`x.y` is `u32`, which today's types no longer read")
        );
        // The path names the member that holds the difference, at each level.
        assert!(
            check::<(u8, Point, u8), (u8, (u32, i64), u8)>()
                .unwrap()
                .contains("`x.1.y` was `u32`, is now `i64`"),
            "{:?}",
            check::<(u8, Point, u8), (u8, (u32, i64), u8)>()
        );
        assert!(
            check::<u8, u16>()
                .unwrap()
                .contains("was `u8`, is now `u16`")
        );
        assert!(check::<String, char>().is_some());
        assert!(check::<Option<u32>, Vec<u32>>().is_some());
        assert!(
            check::<Option<(u32, u64)>, Option<(u32, u8)>>()
                .unwrap()
                .contains("`x.1` was `u64`, is now `u8`")
        );
        assert!(
            check::<Result<u32, String>, Result<u32, String>>().is_none()
                && check::<Result<u32, String>, Result<u32, u8>>()
                    .unwrap()
                    .contains("`x.Err.0` was `string`, is now `u8`"),
            "{:?}",
            check::<Result<u32, String>, Result<u32, u8>>()
        );
        assert!(
            check::<Result<u32, u32>, Result<u32, u32>>().is_none()
                && check::<Swapped, Point>()
                    .unwrap()
                    .contains("`x` had `y, x`, has `x, y` (postcard writes members by position"),
            "{:?}",
            check::<Swapped, Point>()
        );
        assert!(
            check::<Result<u32, String>, Option<u32>>().is_some(),
            "an enum is not an option"
        );
    }
}
