//! Decoding annotation JSON the way upstream's webhook does (Go's `encoding/json`), so that a bad
//! annotation is refused with upstream's message: the scanner's syntax errors (`invalid character
//! 's' looking for beginning of value`), `json: unknown field "x"` for fields the type lacks, and
//! `json: cannot unmarshal …` for values of the wrong JSON type. Field names and JSON types come
//! from the generated CRD schema, which matches upstream's.

use serde_json::{Map, Value};

/// Go's `quoteChar`.
fn quote_char(c: char) -> String {
    match c {
        '\'' => "'\\''".into(),
        '"' => "'\"'".into(),
        c if c.is_control() => format!("'\\x{:02x}'", c as u32),
        c => format!("'{c}'"),
    }
}

/// Go's `maxNestingDepth`: the scanner refuses more open arrays and objects than this.
const MAX_NESTING_DEPTH: usize = 10_000;

/// Containers nested deeper than this are checked for syntax but kept empty: the types decoded
/// into are far shallower, so a type error is found above this depth, and no deep value is ever
/// built (or dropped, which is recursive).
const KEPT_DEPTH: usize = 64;

/// A container being read.
enum Open {
    Array(Vec<Value>),
    Object(Map<String, Value>, String),
}

struct Scanner<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    /// The first number Go could not hold (reported only once the syntax is known good, as Go
    /// checks the syntax of the whole value before decoding it).
    bad_number: Option<String>,
}

enum Ctx {
    Top,
    Array,
    ObjectKey,
    ObjectValue,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner { s: text.as_bytes(), text, i: 0, bad_number: None }
    }
    fn char_at(&self, i: usize) -> char {
        self.text[i..].chars().next().unwrap_or('\0')
    }
    fn invalid(&self, context: &str) -> String {
        format!("invalid character {} {context}", quote_char(self.char_at(self.i)))
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&mut self, eof: &str) -> Result<u8, String> {
        self.ws();
        if self.eof() { Err(eof.into()) } else { Ok(self.s[self.i]) }
    }
    /// One JSON value, read with an explicit stack of open containers (no recursion, so no input
    /// can exhaust the thread's stack), refused past Go's nesting limit with Go's message.
    fn value(&mut self, eof: &str) -> Result<Value, String> {
        let mut open: Vec<Open> = Vec::new();
        loop {
            let c = self.peek(eof)?;
            let mut done = match c {
                b'{' | b'[' => {
                    if open.len() >= MAX_NESTING_DEPTH {
                        return Err(self.invalid("exceeded max depth"));
                    }
                    self.i += 1;
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.peek(eof).is_ok() && self.s[self.i] == close {
                        self.i += 1;
                        if c == b'{' { Value::Object(Map::new()) } else { Value::Array(Vec::new()) }
                    } else if c == b'{' {
                        let key = self.object_key(eof)?;
                        open.push(Open::Object(Map::new(), key));
                        continue;
                    } else {
                        open.push(Open::Array(Vec::new()));
                        continue;
                    }
                }
                b'"' => Value::String(self.string(eof)?),
                b't' => self.literal("true", Value::Bool(true), eof)?,
                b'f' => self.literal("false", Value::Bool(false), eof)?,
                b'n' => self.literal("null", Value::Null, eof)?,
                b'-' | b'0'..=b'9' => self.number(eof)?,
                _ => return Err(self.invalid("looking for beginning of value")),
            };
            // a value ended: put it in its container; close the containers it ends, or go on to
            // the next element
            loop {
                let depth = open.len();
                let Some(container) = open.last_mut() else { return Ok(done) };
                let keep = depth <= KEPT_DEPTH;
                let next = self.peek(eof)?;
                match (container, next) {
                    (Open::Array(items), b',' | b']') => {
                        if keep {
                            items.push(std::mem::take(&mut done));
                        }
                        self.i += 1;
                        if next == b',' {
                            break;
                        }
                    }
                    (Open::Object(map, key), b',' | b'}') => {
                        if keep {
                            map.insert(std::mem::take(key), std::mem::take(&mut done));
                        }
                        self.i += 1;
                        if next == b',' {
                            *key = self.object_key(eof)?;
                            break;
                        }
                    }
                    (Open::Array(_), _) => return Err(self.after(Ctx::Array)),
                    (Open::Object(..), _) => return Err(self.after(Ctx::ObjectValue)),
                }
                done = match open.pop() {
                    Some(Open::Array(items)) => Value::Array(items),
                    Some(Open::Object(map, _)) => Value::Object(map),
                    None => Value::Null,
                };
            }
        }
    }
    /// An object's key and its colon (the value follows).
    fn object_key(&mut self, eof: &str) -> Result<String, String> {
        if self.peek(eof)? != b'"' {
            return Err(self.invalid("looking for beginning of object key string"));
        }
        let key = self.string(eof)?;
        if self.peek(eof)? != b':' {
            return Err(self.after(Ctx::ObjectKey));
        }
        self.i += 1;
        Ok(key)
    }
    fn after(&self, ctx: Ctx) -> String {
        self.invalid(match ctx {
            Ctx::Top => "after top-level value",
            Ctx::Array => "after array element",
            Ctx::ObjectKey => "after object key",
            Ctx::ObjectValue => "after object key:value pair",
        })
    }
    fn literal(&mut self, word: &str, value: Value, eof: &str) -> Result<Value, String> {
        for expected in word.bytes() {
            if self.eof() {
                return Err(eof.into());
            }
            if self.s[self.i] != expected {
                return Err(self.invalid(&format!("in literal {word} (expecting '{}')", expected as char)));
            }
            self.i += 1;
        }
        Ok(value)
    }
    /// A string, its escapes decoded as Go does (a lone surrogate becomes U+FFFD).
    fn string(&mut self, eof: &str) -> Result<String, String> {
        self.i += 1;
        let mut out = String::new();
        let mut high: Option<u32> = None;
        loop {
            if self.eof() {
                return Err(eof.into());
            }
            let c = self.s[self.i];
            if c == b'\\' && self.s.get(self.i + 1) == Some(&b'u') {
                self.i += 2;
                let unit = self.hex4(eof)?;
                match (high.take(), unit) {
                    (None, 0xD800..=0xDBFF) => high = Some(unit),
                    (Some(h), 0xDC00..=0xDFFF) => out.push(
                        char::from_u32(0x10000 + ((h - 0xD800) << 10) + (unit - 0xDC00))
                            .unwrap_or('\u{FFFD}'),
                    ),
                    (Some(_), 0xD800..=0xDBFF) => {
                        out.push('\u{FFFD}');
                        high = Some(unit);
                    }
                    (earlier, unit) => {
                        if earlier.is_some() {
                            out.push('\u{FFFD}');
                        }
                        out.push(char::from_u32(unit).unwrap_or('\u{FFFD}'));
                    }
                }
                continue;
            }
            if high.take().is_some() {
                out.push('\u{FFFD}');
            }
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.i += 1;
                    if self.eof() {
                        return Err(eof.into());
                    }
                    out.push(match self.s[self.i] {
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'"' => '"',
                        _ => return Err(self.invalid("in string escape code")),
                    });
                    self.i += 1;
                }
                c if c < 0x20 => return Err(self.invalid("in string literal")),
                _ => {
                    let ch = self.char_at(self.i);
                    out.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
    }
    /// The four hexadecimal digits of a `\u` escape.
    fn hex4(&mut self, eof: &str) -> Result<u32, String> {
        let mut unit = 0;
        for _ in 0..4 {
            if self.eof() {
                return Err(eof.into());
            }
            let Some(digit) = (self.s[self.i] as char).to_digit(16) else {
                return Err(self.invalid("in \\u hexadecimal character escape"));
            };
            unit = unit * 16 + digit;
            self.i += 1;
        }
        Ok(unit)
    }
    fn digits(&mut self) {
        while !self.eof() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
    }
    fn number(&mut self, eof: &str) -> Result<Value, String> {
        let start = self.i;
        if self.s[self.i] == b'-' {
            self.i += 1;
            if self.eof() {
                return Err(eof.into());
            }
            if !self.s[self.i].is_ascii_digit() {
                return Err(self.invalid("in numeric literal"));
            }
        }
        if self.s[self.i] == b'0' {
            self.i += 1;
        } else {
            self.digits();
        }
        if !self.eof() && self.s[self.i] == b'.' {
            self.i += 1;
            self.some_digits(eof, "after decimal point in numeric literal")?;
        }
        if !self.eof() && matches!(self.s[self.i], b'e' | b'E') {
            self.i += 1;
            if !self.eof() && matches!(self.s[self.i], b'+' | b'-') {
                self.i += 1;
            }
            self.some_digits(eof, "in exponent of numeric literal")?;
        }
        Ok(self.number_value(&self.text[start..self.i]))
    }
    /// One digit or more (a fraction's, an exponent's), else Go's error for `context`.
    fn some_digits(&mut self, eof: &str, context: &str) -> Result<(), String> {
        if self.eof() {
            return Err(eof.into());
        }
        if !self.s[self.i].is_ascii_digit() {
            return Err(self.invalid(context));
        }
        self.digits();
        Ok(())
    }
    /// The number a literal stands for: an integer when it is one that fits, else a float.
    fn number_value(&mut self, literal: &str) -> Value {
        if let Ok(n) = literal.parse::<i64>() {
            return n.into();
        }
        if let Ok(n) = literal.parse::<u64>() {
            return n.into();
        }
        match literal.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            Some(n) => Value::Number(n),
            None => {
                self.bad_number.get_or_insert_with(|| {
                    format!("json: cannot unmarshal number {literal} into Go value of type float64")
                });
                Value::Null
            }
        }
    }
    /// The value read, unless a number in it was out of range.
    fn checked(&mut self, value: Value) -> Result<Value, String> {
        match self.bad_number.take() {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }
}

/// Decodes as Go's `json.Unmarshal` does: the whole text must be one JSON value.
pub(crate) fn unmarshal(text: &str) -> Result<Value, String> {
    let mut s = Scanner::new(text);
    let value = s.value("unexpected end of JSON input")?;
    s.ws();
    if !s.eof() {
        return Err(s.after(Ctx::Top));
    }
    s.checked(value)
}

/// Decodes as Go's `json.Decoder.Decode` does: the first JSON value of the text (the rest is not
/// read).
pub(crate) fn decode(text: &str) -> Result<Value, String> {
    if text.trim_start_matches([' ', '\t', '\n', '\r']).is_empty() {
        return Err("EOF".into());
    }
    let mut s = Scanner::new(text);
    let value = s.value("unexpected EOF")?;
    s.checked(value)
}

fn kind_of(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

fn go_type(schema: &Value) -> String {
    // a named Go type (`type RebootMode string`) is shown by its name, as Go does
    if let Some(named) = schema.get("x-go-type").and_then(Value::as_str) {
        return named.to_string();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => "int".into(),
        Some("number") => "float64".into(),
        Some("boolean") => "bool".into(),
        Some("array") => format!("[]{}", go_type(&schema["items"])),
        Some("object") if schema.get("properties").is_none() => "map[string]string".into(),
        Some("object") => "struct".into(),
        _ => "string".into(),
    }
}

/// Checks `value` against `schema` as Go decodes into upstream's type: the first unknown field or
/// value of the wrong JSON type, in Go's words. `root` names the Go type for messages.
pub(crate) fn check_fields(value: &Value, schema: &Value, root: &str) -> Result<(), String> {
    if !value.is_null() && !value.is_object() {
        return Err(format!(
            "json: cannot unmarshal {} into Go value of type v1alpha1.{root}",
            kind_of(value)
        ));
    }
    walk(value, schema, root, "")
}

fn walk(value: &Value, schema: &Value, root: &str, path: &str) -> Result<(), String> {
    if value.is_null() {
        return Ok(());
    }
    let wrong = || {
        let shown = match value {
            Value::Number(n)
                if schema.get("type").and_then(Value::as_str) == Some("integer") && !n.is_i64() =>
            {
                format!("number {n}")
            }
            other => kind_of(other),
        };
        Err(format!(
            "json: cannot unmarshal {shown} into Go struct field {root}.{path} of type {}",
            go_type(schema)
        ))
    };
    let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let Value::Object(map) = value else { return wrong() };
            match schema.get("properties").and_then(Value::as_object) {
                Some(props) => {
                    for (k, v) in map {
                        match field(props, k) {
                            Some((name, sub)) => walk(v, sub, root, &join(name))?,
                            None => return Err(format!("json: unknown field \"{k}\"")),
                        }
                    }
                }
                None => {
                    if let Some(extra) = schema.get("additionalProperties") {
                        for (k, v) in map {
                            walk(v, extra, root, &join(k))?;
                        }
                    }
                }
            }
        }
        Some("array") => {
            let Value::Array(items) = value else { return wrong() };
            for item in items {
                walk(item, &schema["items"], root, path)?;
            }
        }
        Some("string") if !value.is_string() => return wrong(),
        Some("boolean") if !value.is_boolean() => return wrong(),
        Some("integer") if !value.as_number().is_some_and(|n| n.is_i64() || n.is_u64()) => return wrong(),
        Some("number") if !value.is_number() => return wrong(),
        _ => {}
    }
    Ok(())
}

/// The schema property a JSON key sets: as Go matches keys to struct fields, the exact name first,
/// else one that differs only in case.
pub(crate) fn field<'a>(
    props: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Option<(&'a str, &'a Value)> {
    props
        .get_key_value(key)
        .or_else(|| props.iter().find(|(name, _)| name.eq_ignore_ascii_case(key)))
        .map(|(name, value)| (name.as_str(), value))
}

/// The value of `name` in a decoded object, with Go's case-insensitive key matching.
pub(crate) fn get<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    let map = object.as_object()?;
    map.get(name).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_decoded_as_go_decodes_them() {
        let v = unmarshal(r#" {"a": "x\u00e9\ud83d\ude00\n\/", "b": [1, -2, 1.5, 18446744073709551615, 1e3], "c": null, "d": true} "#)
            .unwrap();
        assert_eq!(v["a"], "xé😀\n/");
        assert_eq!(v["b"], serde_json::json!([1, -2, 1.5, 18446744073709551615u64, 1000.0]));
        assert_eq!((v["c"].is_null(), v["d"].as_bool()), (true, Some(true)));
        // a lone surrogate becomes U+FFFD, as in Go
        assert_eq!(unmarshal(r#""\ud83dx""#).unwrap(), "\u{FFFD}x");
        // a number Go cannot hold is refused once the syntax is known good; a syntax error first
        assert_eq!(
            unmarshal("[1e400]").unwrap_err(),
            "json: cannot unmarshal number 1e400 into Go value of type float64"
        );
        assert_eq!(
            unmarshal("[1e400,]").unwrap_err(),
            "invalid character ']' looking for beginning of value"
        );
        // the decoder reads the first value only
        assert_eq!(decode(r#"{"a": 1} trailing"#).unwrap(), serde_json::json!({"a": 1}));
        assert_eq!(decode("  ").unwrap_err(), "EOF");
    }

    #[test]
    fn deep_values_are_checked_but_not_kept() {
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let mut v = unmarshal(&deep).unwrap();
        let mut depth = 0;
        while let Value::Array(mut items) = v {
            depth += 1;
            v = items.pop().unwrap_or(Value::Null);
        }
        assert_eq!(depth, KEPT_DEPTH + 1);
    }
}
