//! An encoding as the lock file records it (`{id: u32, tags: seq<string>}`),
//! read back into a tree: the macros turn a locked encoding into a constant
//! to compare today's types with, and the generated decoding tests draw
//! values from it.

/// A locked encoding, parsed. The grammar is the one
/// `upshift::schema::encoding::render` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// `()`: nothing on the wire (also the empty tuple).
    Unit,
    /// A scalar: `bool`, `u8` … `i128`, `f32`, `f64`, `char`, `string`.
    Scalar(Scalar),
    /// `option<T>`.
    Option(Box<Shape>),
    /// `seq<T>`.
    Seq(Box<Shape>),
    /// `map<K, V>`.
    Map(Box<Shape>, Box<Shape>),
    /// `[T; N]`.
    Array(Box<Shape>, usize),
    /// `(A, B)`.
    Tuple(Vec<Shape>),
    /// `{name: T, 0: U}`.
    Struct(Vec<(String, Shape)>),
    /// `enum {Name: {…}}`.
    Enum(Vec<(String, Vec<(String, Shape)>)>),
    /// `self`: the enclosing struct or enum.
    Recurse,
    /// `$0`: a generic type's parameter.
    Param(usize),
    /// `?`: a type whose derive failed.
    Invalid,
}

/// The scalars, by their names in the grammar. Variants are named as the
/// runtime's `Encoding` variants (the macros rely on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Bool,
    U8,
    U16,
    U32,
    U64,
    U128,
    I8,
    I16,
    I32,
    I64,
    I128,
    F32,
    F64,
    Char,
    Str,
}

impl Scalar {
    /// Every scalar with its name in the grammar.
    pub const ALL: [(Scalar, &'static str); 15] = [
        (Scalar::Bool, "bool"),
        (Scalar::U8, "u8"),
        (Scalar::U16, "u16"),
        (Scalar::U32, "u32"),
        (Scalar::U64, "u64"),
        (Scalar::U128, "u128"),
        (Scalar::I8, "i8"),
        (Scalar::I16, "i16"),
        (Scalar::I32, "i32"),
        (Scalar::I64, "i64"),
        (Scalar::I128, "i128"),
        (Scalar::F32, "f32"),
        (Scalar::F64, "f64"),
        (Scalar::Char, "char"),
        (Scalar::Str, "string"),
    ];

    /// Its name in the grammar.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("?", |(_, n)| n)
    }
}

/// Parses a locked encoding; the error names the position and what was
/// expected there.
pub fn parse(text: &str) -> Result<Shape, String> {
    let mut p = Parser { text, at: 0 };
    let shape = p.shape(0)?;
    p.skip_space();
    if p.at != text.len() {
        return Err(p.error("the end of the encoding"));
    }
    Ok(shape)
}

/// Deeper nesting than this is refused rather than followed (the lock file
/// is input; a hostile one must not overflow the stack).
const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn error(&self, expected: &str) -> String {
        let found: String = self.rest().chars().take(20).collect();
        format!(
            "expected {expected} at byte {} of `{}`, found `{found}`",
            self.at, self.text
        )
    }

    fn skip_space(&mut self) {
        while self.rest().starts_with(' ') {
            self.at += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), String> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(&format!("`{token}`")))
        }
    }

    /// A word: a name, a scalar or a keyword.
    fn word(&mut self) -> &str {
        self.skip_space();
        let start = self.at;
        let len = self
            .rest()
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '#'))
            .unwrap_or(self.rest().len());
        self.at += len;
        &self.text[start..self.at]
    }

    fn number(&mut self) -> Result<usize, String> {
        let at = self.at;
        let word = self.word();
        word.parse().map_err(|_| {
            self.at = at;
            self.error("a number")
        })
    }

    fn shape(&mut self, depth: usize) -> Result<Shape, String> {
        if depth > MAX_DEPTH {
            return Err(self.error("less nesting"));
        }
        let d = depth + 1;
        if self.eat("()") {
            return Ok(Shape::Unit);
        }
        if self.eat("?") {
            return Ok(Shape::Invalid);
        }
        if self.eat("$") {
            return Ok(Shape::Param(self.number()?));
        }
        if self.eat("(") {
            let mut items = vec![self.shape(d)?];
            while self.eat(",") {
                items.push(self.shape(d)?);
            }
            self.expect(")")?;
            return Ok(Shape::Tuple(items));
        }
        if self.eat("[") {
            let item = self.shape(d)?;
            self.expect(";")?;
            let n = self.number()?;
            self.expect("]")?;
            return Ok(Shape::Array(Box::new(item), n));
        }
        if self.rest().trim_start().starts_with('{') {
            return Ok(Shape::Struct(self.fields(d)?));
        }
        let at = self.at;
        let word = self.word().to_string();
        match word.as_str() {
            "self" => Ok(Shape::Recurse),
            "option" | "seq" => {
                self.expect("<")?;
                let inner = Box::new(self.shape(d)?);
                self.expect(">")?;
                Ok(if word == "option" {
                    Shape::Option(inner)
                } else {
                    Shape::Seq(inner)
                })
            }
            "map" => {
                self.expect("<")?;
                let k = self.shape(d)?;
                self.expect(",")?;
                let v = self.shape(d)?;
                self.expect(">")?;
                Ok(Shape::Map(Box::new(k), Box::new(v)))
            }
            "enum" => {
                self.expect("{")?;
                let mut variants = Vec::new();
                if !self.eat("}") {
                    loop {
                        let name = self.name()?;
                        self.expect(":")?;
                        variants.push((name, self.fields(d)?));
                        if self.eat("}") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok(Shape::Enum(variants))
            }
            other => match Scalar::ALL.iter().find(|(_, n)| *n == other) {
                Some((s, _)) => Ok(Shape::Scalar(*s)),
                None => {
                    self.at = at;
                    Err(self.error("an encoding"))
                }
            },
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let at = self.at;
        let name = self.word();
        if name.is_empty() {
            self.at = at;
            return Err(self.error("a name"));
        }
        Ok(name.to_string())
    }

    /// `{name: T, …}`.
    fn fields(&mut self, depth: usize) -> Result<Vec<(String, Shape)>, String> {
        self.expect("{")?;
        let mut fields = Vec::new();
        if self.eat("}") {
            return Ok(fields);
        }
        loop {
            let name = self.name()?;
            self.expect(":")?;
            fields.push((name, self.shape(depth)?));
            if self.eat("}") {
                return Ok(fields);
            }
            self.expect(",")?;
        }
    }
}

impl std::fmt::Display for Shape {
    /// The lock file's text again.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn fields(f: &mut std::fmt::Formatter<'_>, fs: &[(String, Shape)]) -> std::fmt::Result {
            f.write_str("{")?;
            for (i, (name, shape)) in fs.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{name}: {shape}")?;
            }
            f.write_str("}")
        }
        match self {
            Shape::Unit => f.write_str("()"),
            Shape::Scalar(s) => f.write_str(s.name()),
            Shape::Option(t) => write!(f, "option<{t}>"),
            Shape::Seq(t) => write!(f, "seq<{t}>"),
            Shape::Map(k, v) => write!(f, "map<{k}, {v}>"),
            Shape::Array(t, n) => write!(f, "[{t}; {n}]"),
            Shape::Tuple(items) => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
            Shape::Struct(fs) => fields(f, fs),
            Shape::Enum(vs) => {
                f.write_str("enum {")?;
                for (i, (name, fs)) in vs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}: ")?;
                    fields(f, fs)?;
                }
                f.write_str("}")
            }
            Shape::Recurse => f.write_str("self"),
            Shape::Param(i) => write!(f, "${i}"),
            Shape::Invalid => f.write_str("?"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_rendered_is_read_back() {
        for text in [
            "()",
            "u32",
            "option<string>",
            "map<string, seq<u8>>",
            "[u8; 32]",
            "(u32, string)",
            "(u32)",
            "{id: u32, 0: string}",
            "{}",
            "enum {Never: {}, InSecs: {0: u64}, Unknown: {}}",
            "{value: u32, children: seq<self>}",
            "{items: seq<$0>, next: option<$1>}",
            "{owner: ?}",
            "{entries: map<string, {value: string, expiry: enum {Never: {}, AtUnixMs: {0: u64}}, hits: u64}>, evictions: u64}",
        ] {
            let shape = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(shape.to_string(), text);
        }
    }

    #[test]
    fn malformed_text_names_the_place() {
        assert_eq!(
            parse("{id: u33}").unwrap_err(),
            "expected an encoding at byte 5 of `{id: u33}`, found `u33}`"
        );
        assert!(parse("seq<u8").unwrap_err().contains("`>`"));
        assert!(parse("u8 u8").unwrap_err().contains("the end"));
        let deep = format!("{}u8{}", "option<".repeat(500), ">".repeat(500));
        assert!(parse(&deep).unwrap_err().contains("less nesting"));
    }
}
