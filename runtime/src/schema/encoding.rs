//! What a type is on the wire: the [`Encoding`] every [`Schema`](super::Schema)
//! gives, computed through the type system (aliases, consts, generics and
//! types from other crates resolve to what is actually encoded), and the
//! `const fn`s that render it and compare it with a lock file at build time.
//!
//! The rendering is the lock file's `encoding` grammar:
//!
//! | encoding | text |
//! |---|---|
//! | unit, booleans, integers, floats, `char` | `()`, `bool`, `u8` … `u128`, `i8` … `i128`, `f32`, `f64`, `char` |
//! | `String` (and `PathBuf`) | `string` |
//! | `Option<T>` | `option<T>` |
//! | `Vec<T>`, `VecDeque<T>`, sets | `seq<T>` |
//! | maps | `map<K, V>` |
//! | `[T; N]` | `[T; N]` |
//! | tuples | `(A, B)` |
//! | a struct | `{name: T, 0: T}` (tuple fields by index) |
//! | an enum | `enum {Name: {…}, Unit: {}}` |
//! | the enclosing type inside itself | `self` |
//! | a generic type's parameter, in its own section | `$0`, `$1` |
//!
//! Names of types are not part of it (postcard does not encode them); names
//! of fields and variants are, because a released version keeps its names.

/// The wire form of a type, as postcard encodes it.
#[derive(Debug, Clone, Copy)]
pub enum Encoding {
    /// `()` and unit structs' content: nothing.
    Unit,
    /// One byte, 0 or 1.
    Bool,
    /// One byte.
    U8,
    /// A varint.
    U16,
    /// A varint.
    U32,
    /// A varint; `usize` too.
    U64,
    /// A varint.
    U128,
    /// One byte.
    I8,
    /// A zigzag varint.
    I16,
    /// A zigzag varint.
    I32,
    /// A zigzag varint; `isize` too.
    I64,
    /// A zigzag varint.
    I128,
    /// Four bytes.
    F32,
    /// Eight bytes.
    F64,
    /// UTF-8, length-prefixed.
    Char,
    /// UTF-8, length-prefixed.
    Str,
    /// A tag byte, then the value when present.
    Option(&'static Encoding),
    /// A length, then the items.
    Seq(&'static Encoding),
    /// A length, then key and value of each entry.
    Map(&'static Encoding, &'static Encoding),
    /// Exactly `N` items, no length.
    Array(&'static Encoding, usize),
    /// The items in order, no length.
    Tuple(&'static [&'static Encoding]),
    /// The fields in order (fields serde skips are not here).
    Struct(&'static [Field]),
    /// The variant's index, then its fields.
    Enum(&'static [Variant]),
    /// The enclosing struct or enum, inside itself (`children: Vec<Self>`).
    Recurse,
    /// A type whose derive failed: its error is reported, and checks that
    /// reach it stay quiet.
    Invalid,
    /// A generic type's parameter, by position: how a generic type's own
    /// lock section records it (each use is checked with its arguments).
    Param(usize),
}

/// A field of a struct or variant, by name (tuple fields by index: `"0"`).
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// As written (`value`), or the index of a tuple field (`0`).
    pub name: &'static str,
    /// How its value is encoded.
    pub encoding: &'static Encoding,
}

/// What one method's arguments and reply encode as: what a generated
/// dispatcher tells through [`crate::rpc::Dispatch::encodings`], so calls
/// can be drawn and replies read without the types (`upshift::conformance`).
#[derive(Debug, Clone, Copy)]
pub struct MethodEncoding {
    /// Each argument's encoding, in order (the payload is their tuple).
    pub args: &'static [&'static Encoding],
    /// The return value's encoding (the payload of an `Ok` reply).
    pub returns: &'static Encoding,
}

/// A variant of an enum.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    /// As written.
    pub name: &'static str,
    /// Its fields; empty for a unit variant.
    pub fields: &'static [Field],
}

/// The most text one rendering or message holds. A type whose encoding is
/// longer cannot be locked; the build says so.
pub const CAPACITY: usize = 16 * 1024;

/// Text built at compile time: an encoding's rendering, or a message.
pub struct Text {
    bytes: [u8; CAPACITY],
    len: usize,
    overflow: bool,
}

impl Text {
    /// Empty text.
    pub const fn new() -> Self {
        Self {
            bytes: [0; CAPACITY],
            len: 0,
            overflow: false,
        }
    }

    /// Appends `s`; text beyond [`CAPACITY`] is dropped and remembered.
    pub const fn push(&mut self, s: &str) {
        self.push_bytes(s.as_bytes());
    }

    pub(super) const fn push_bytes(&mut self, s: &[u8]) {
        let mut i = 0;
        while i < s.len() {
            if self.len == CAPACITY {
                self.overflow = true;
                return;
            }
            self.bytes[self.len] = s[i];
            self.len += 1;
            i += 1;
        }
    }

    pub(super) const fn push_number(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push_bytes(digits.split_at(i).1);
    }

    /// Whether some text did not fit.
    pub const fn overflowed(&self) -> bool {
        self.overflow
    }

    /// The text so far.
    pub const fn as_str(&self) -> &str {
        // Only whole `&str`s are pushed, and text is cut only at the end of
        // the buffer: back off to a character boundary.
        let bytes = self.bytes.split_at(self.len).0;
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => match core::str::from_utf8(bytes.split_at(e.valid_up_to()).0) {
                Ok(s) => s,
                Err(_) => "",
            },
        }
    }
}

impl core::fmt::Debug for Text {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Default for Text {
    fn default() -> Self {
        Self::new()
    }
}

/// Renders `encoding` in the lock file's grammar.
pub const fn render(encoding: &Encoding) -> Text {
    let mut out = Text::new();
    render_into(encoding, &mut out);
    out
}

const fn render_into(e: &Encoding, out: &mut Text) {
    match e {
        Encoding::Unit => out.push("()"),
        Encoding::Bool => out.push("bool"),
        Encoding::U8 => out.push("u8"),
        Encoding::U16 => out.push("u16"),
        Encoding::U32 => out.push("u32"),
        Encoding::U64 => out.push("u64"),
        Encoding::U128 => out.push("u128"),
        Encoding::I8 => out.push("i8"),
        Encoding::I16 => out.push("i16"),
        Encoding::I32 => out.push("i32"),
        Encoding::I64 => out.push("i64"),
        Encoding::I128 => out.push("i128"),
        Encoding::F32 => out.push("f32"),
        Encoding::F64 => out.push("f64"),
        Encoding::Char => out.push("char"),
        Encoding::Str => out.push("string"),
        Encoding::Recurse => out.push("self"),
        Encoding::Invalid => out.push("?"),
        Encoding::Param(i) => {
            out.push("$");
            out.push_number(*i);
        }
        Encoding::Option(t) => {
            out.push("option<");
            render_into(t, out);
            out.push(">");
        }
        Encoding::Seq(t) => {
            out.push("seq<");
            render_into(t, out);
            out.push(">");
        }
        Encoding::Map(k, v) => {
            out.push("map<");
            render_into(k, out);
            out.push(", ");
            render_into(v, out);
            out.push(">");
        }
        Encoding::Array(t, n) => {
            out.push("[");
            render_into(t, out);
            out.push("; ");
            out.push_number(*n);
            out.push("]");
        }
        Encoding::Tuple(items) => {
            out.push("(");
            let mut i = 0;
            while i < items.len() {
                if i > 0 {
                    out.push(", ");
                }
                render_into(items[i], out);
                i += 1;
            }
            out.push(")");
        }
        Encoding::Struct(fields) => render_fields(fields, out),
        Encoding::Enum(variants) => {
            out.push("enum {");
            let mut i = 0;
            while i < variants.len() {
                if i > 0 {
                    out.push(", ");
                }
                out.push(variants[i].name);
                out.push(": ");
                render_fields(variants[i].fields, out);
                i += 1;
            }
            out.push("}");
        }
    }
}

const fn render_fields(fields: &[Field], out: &mut Text) {
    out.push("{");
    let mut i = 0;
    while i < fields.len() {
        if i > 0 {
            out.push(", ");
        }
        out.push(fields[i].name);
        out.push(": ");
        render_into(fields[i].encoding, out);
        i += 1;
    }
    out.push("}");
}

/// What a released definition is, for [`mismatch`]'s message.
#[derive(Debug, Clone, Copy)]
pub struct Locked<'a> {
    /// The start of the message: "v1 of `Kv` is released (locked in …)".
    pub what: &'a str,
    /// The element checked: `get.key`, `get.return`, `Entry`, `Store`.
    pub label: &'a str,
    /// Its encoding as the lock file records it.
    pub encoding: &'a str,
    /// What to do instead, ending the message.
    pub advice: &'a str,
}

/// `None` when `encoding` renders as `locked.encoding`; else the message of
/// the build error: the path to the first element that differs, old → new,
/// or the members that were reordered.
pub const fn mismatch(encoding: &Encoding, locked: Locked<'_>) -> Option<Text> {
    let now = render(encoding);
    let mut msg = Text::new();
    if now.overflowed() {
        msg.push(locked.what);
        msg.push(": the encoding of `");
        msg.push(locked.label);
        msg.push("` is longer than upshift can lock (16 KiB of text); split the type");
        return Some(msg);
    }
    let (old, new) = (locked.encoding.as_bytes(), now.as_str().as_bytes());
    if eq(old, new) {
        return None;
    }
    // A type whose own derive failed stands in as `?`: its error is the one
    // to fix, and a mismatch here would only repeat it.
    if contains(new, b'?') {
        return None;
    }
    let place = locate(old, common_prefix(old, new));
    msg.push(locked.what);
    msg.push(" and its encoding must not change: `");
    msg.push(locked.label);
    // The innermost member list around the difference: when its members
    // are not the same ones in the same order, say so by name.
    let mut k = place.depth;
    while k > 0 && place.kinds[k - 1] != b'{' {
        k -= 1;
    }
    if k > 0 {
        let open = place.opens[k - 1];
        let (old_list, new_list) = (
            slice(old, open, close_of(old, open)),
            slice(new, open, close_of(new, open)),
        );
        let reordered = same_members(old_list, new_list);
        if reordered || !same_names(old_list, new_list) {
            push_path(&mut msg, old, &place, k - 1);
            msg.push(if reordered {
                "` has its members in another order: was `"
            } else {
                "` had the members `"
            });
            push_names(&mut msg, old_list);
            msg.push(if reordered { "`, is now `" } else { "`, has `" });
            push_names(&mut msg, new_list);
            msg.push(if reordered {
                "` (postcard encodes by position); "
            } else {
                "`; "
            });
            msg.push(locked.advice);
            return Some(msg);
        }
    }
    // The smallest element that differs: the one the first difference is
    // in, or, when that reads the same in both, the list around it.
    let mut level = place.depth;
    let mut start = place.element;
    // An array's length or item reads better as the whole array.
    if level > 0 && place.kinds[level - 1] == b'[' {
        level -= 1;
        start = place.starts[level];
    }
    loop {
        let (o, n) = (
            slice(old, start, element_end(old, start)),
            slice(new, start, element_end(new, start)),
        );
        if !eq(o, n) || level == 0 {
            push_path(&mut msg, old, &place, level);
            msg.push("` was `");
            push_short(&mut msg, o);
            msg.push("`, is now `");
            push_short(&mut msg, n);
            msg.push("`; ");
            msg.push(locked.advice);
            return Some(msg);
        }
        level -= 1;
        start = place.starts[level];
    }
}

/// The longest element a message quotes whole.
const QUOTE: usize = 120;

/// `text`, or its start and `…` when it is long.
pub(super) const fn push_short(msg: &mut Text, text: &[u8]) {
    if text.len() <= QUOTE {
        msg.push_bytes(text);
        return;
    }
    // Cut on a character boundary.
    let mut end = QUOTE;
    while end > 0 && text[end] & 0b1100_0000 == 0b1000_0000 {
        end -= 1;
    }
    msg.push_bytes(slice(text, 0, end));
    msg.push("…");
}

const fn contains(text: &[u8], byte: u8) -> bool {
    let mut i = 0;
    while i < text.len() {
        if text[i] == byte {
            return true;
        }
        i += 1;
    }
    false
}

/// The deepest nesting the path of a difference is followed through.
const DEPTH: usize = 64;

/// Where the first difference is: the open brackets around it, each with
/// the member it is in.
struct Place {
    depth: usize,
    /// `{`, `(`, `<` or `[` of each open bracket.
    kinds: [u8; DEPTH],
    /// The position of each open bracket.
    opens: [usize; DEPTH],
    /// Where the element holding each open bracket starts (its member).
    starts: [usize; DEPTH],
    /// Per open bracket: the member's name (`{`) or index (`(`).
    names: [(usize, usize); DEPTH],
    index: [usize; DEPTH],
    named: [bool; DEPTH],
    /// Where the element the difference is in starts.
    element: usize,
}

const fn locate(text: &[u8], upto: usize) -> Place {
    let mut p = Place {
        depth: 0,
        kinds: [0; DEPTH],
        opens: [0; DEPTH],
        starts: [0; DEPTH],
        names: [(0, 0); DEPTH],
        index: [0; DEPTH],
        named: [false; DEPTH],
        element: 0,
    };
    let mut i = 0;
    while i < upto {
        let c = text[i];
        match c {
            b'{' | b'(' | b'<' | b'[' if p.depth < DEPTH => {
                p.kinds[p.depth] = c;
                p.opens[p.depth] = i;
                p.starts[p.depth] = p.element;
                p.index[p.depth] = 0;
                p.named[p.depth] = false;
                p.depth += 1;
                p.element = i + 1;
            }
            b'}' | b')' | b'>' | b']' if p.depth > 0 => {
                p.depth -= 1;
                p.element = p.starts[p.depth];
            }
            b',' | b';' if p.depth > 0 => {
                p.index[p.depth - 1] += 1;
                p.named[p.depth - 1] = false;
                p.element = i + 2;
            }
            b':' if p.depth > 0 && p.kinds[p.depth - 1] == b'{' => {
                p.names[p.depth - 1] = (p.element, i);
                p.named[p.depth - 1] = true;
                p.element = i + 2;
            }
            _ => {}
        }
        i += 1;
    }
    p
}

/// `.meta.owner.id`: the members of the outermost `upto` open brackets.
const fn push_path(msg: &mut Text, text: &[u8], p: &Place, upto: usize) {
    let mut level = 0;
    while level < upto {
        match p.kinds[level] {
            b'{' if p.named[level] => {
                msg.push(".");
                let (from, to) = p.names[level];
                msg.push_bytes(slice(text, from, to));
            }
            b'(' => {
                msg.push(".");
                msg.push_number(p.index[level]);
            }
            _ => {}
        }
        level += 1;
    }
}

/// Where the element starting at `start` ends: at `, ` or a closing
/// bracket on its own level, or the end.
const fn element_end(text: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < text.len() {
        match text[i] {
            b'{' | b'(' | b'<' | b'[' => depth += 1,
            b'}' | b')' | b'>' | b']' => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
                if depth == 0 && is_list_end(text, i + 1) {
                    return i + 1;
                }
            }
            b',' | b';' if depth == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    text.len()
}

/// Whether the element ends at `i`: a separator, a closing bracket or the end.
const fn is_list_end(text: &[u8], i: usize) -> bool {
    i >= text.len() || matches!(text[i], b',' | b';' | b'}' | b')' | b'>' | b']')
}

/// The position just after the bracket matching the one at `open`.
const fn close_of(text: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < text.len() {
        match text[i] {
            b'{' | b'(' | b'<' | b'[' => depth += 1,
            b'}' | b')' | b'>' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    text.len()
}

/// The members of a `{…}` list, at its top level: `(start, end)` each.
const fn members(list: &[u8]) -> ([(usize, usize); DEPTH], usize) {
    let mut out = [(0, 0); DEPTH];
    let mut n = 0;
    if list.len() < 3 {
        return (out, 0);
    }
    let mut start = 1;
    while start < list.len() - 1 && n < DEPTH {
        let end = element_end(list, start);
        out[n] = (start, end);
        n += 1;
        start = end + 2;
    }
    (out, n)
}

/// Whether two member lists hold the same members (each once) in another order.
const fn same_members(a: &[u8], b: &[u8]) -> bool {
    let ((ma, na), (mb, nb)) = (members(a), members(b));
    if na != nb || na == DEPTH {
        return false;
    }
    let mut used = [false; DEPTH];
    let mut i = 0;
    while i < na {
        let mut found = false;
        let mut j = 0;
        while j < nb {
            if !used[j] && eq(slice(a, ma[i].0, ma[i].1), slice(b, mb[j].0, mb[j].1)) {
                used[j] = true;
                found = true;
                break;
            }
            j += 1;
        }
        if !found {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether two member lists have the same names in the same order.
const fn same_names(a: &[u8], b: &[u8]) -> bool {
    let ((ma, na), (mb, nb)) = (members(a), members(b));
    if na != nb {
        return false;
    }
    let mut i = 0;
    while i < na {
        if !eq(name_of(a, ma[i]), name_of(b, mb[i])) {
            return false;
        }
        i += 1;
    }
    true
}

/// The name of a member `name: encoding`.
const fn name_of(list: &[u8], (from, to): (usize, usize)) -> &[u8] {
    let mut end = from;
    while end < to && list[end] != b':' {
        end += 1;
    }
    slice(list, from, end)
}

/// `a, b, c`: the names of a member list.
const fn push_names(msg: &mut Text, list: &[u8]) {
    let (m, n) = members(list);
    let mut i = 0;
    while i < n {
        if i > 0 {
            msg.push(", ");
        }
        msg.push_bytes(name_of(list, m[i]));
        i += 1;
    }
}

const fn slice(text: &[u8], from: usize, to: usize) -> &[u8] {
    let to = if to > text.len() { text.len() } else { to };
    let from = if from > to { to } else { from };
    text.split_at(to).0.split_at(from).1
}

const fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut i = 0;
    while i < a.len() && i < b.len() && a[i] == b[i] {
        i += 1;
    }
    i
}

pub(super) const fn eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && common_prefix(a, b) == a.len()
}
