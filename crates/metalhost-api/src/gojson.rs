//! Decoding annotation JSON the way upstream's webhook does (Go's `encoding/json`), so that a bad
//! annotation is refused with upstream's message: the scanner's syntax errors (`invalid character
//! 's' looking for beginning of value`), `json: unknown field "x"` for fields the type lacks, and
//! `json: cannot unmarshal …` for values of the wrong JSON type. Field names and JSON types come
//! from the generated CRD schema, which matches upstream's.

use serde_json::Value;

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

struct Scanner<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

enum Ctx {
    Top,
    Array,
    ObjectKey,
    ObjectValue,
}

impl Scanner<'_> {
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
    /// One JSON value, scanned with an explicit stack of open containers (no recursion, so no
    /// input can exhaust the thread's stack), refused past Go's nesting limit with Go's message.
    fn value(&mut self, eof: &str) -> Result<(), String> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            // the start of a value
            self.ws();
            if self.eof() {
                return Err(eof.into());
            }
            let c = self.s[self.i];
            match c {
                b'{' | b'[' => {
                    if open.len() >= MAX_NESTING_DEPTH {
                        return Err(self.invalid("exceeded max depth"));
                    }
                    self.i += 1;
                    self.ws();
                    let close = if c == b'{' { b'}' } else { b']' };
                    if !self.eof() && self.s[self.i] == close {
                        self.i += 1;
                    } else {
                        open.push(c);
                        if c == b'{' {
                            self.object_key(eof)?;
                        }
                        continue;
                    }
                }
                b'"' => self.string(eof)?,
                b't' => self.literal("true", eof)?,
                b'f' => self.literal("false", eof)?,
                b'n' => self.literal("null", eof)?,
                b'-' | b'0'..=b'9' => self.number(eof)?,
                _ => return Err(self.invalid("looking for beginning of value")),
            }
            // a value ended: close the containers it ends, or go on to the next element
            loop {
                let Some(&container) = open.last() else { return Ok(()) };
                self.ws();
                if self.eof() {
                    return Err(eof.into());
                }
                match (container, self.s[self.i]) {
                    (b'[', b',') => self.i += 1,
                    (b'{', b',') => {
                        self.i += 1;
                        self.object_key(eof)?;
                    }
                    (b'[', b']') | (b'{', b'}') => {
                        self.i += 1;
                        open.pop();
                        continue;
                    }
                    (b'[', _) => return Err(self.after(Ctx::Array)),
                    _ => return Err(self.after(Ctx::ObjectValue)),
                }
                break;
            }
        }
    }
    /// An object's key and its colon (the value follows).
    fn object_key(&mut self, eof: &str) -> Result<(), String> {
        self.ws();
        if self.eof() {
            return Err(eof.into());
        }
        if self.s[self.i] != b'"' {
            return Err(self.invalid("looking for beginning of object key string"));
        }
        self.string(eof)?;
        self.ws();
        if self.eof() {
            return Err(eof.into());
        }
        if self.s[self.i] != b':' {
            return Err(self.after(Ctx::ObjectKey));
        }
        self.i += 1;
        Ok(())
    }
    fn after(&self, ctx: Ctx) -> String {
        self.invalid(match ctx {
            Ctx::Top => "after top-level value",
            Ctx::Array => "after array element",
            Ctx::ObjectKey => "after object key",
            Ctx::ObjectValue => "after object key:value pair",
        })
    }
    fn literal(&mut self, word: &str, eof: &str) -> Result<(), String> {
        for (n, expected) in word.bytes().enumerate() {
            if self.eof() {
                return Err(eof.into());
            }
            if self.s[self.i] != expected {
                return Err(self.invalid(&format!("in literal {word} (expecting '{}')", expected as char)));
            }
            let _ = n;
            self.i += 1;
        }
        Ok(())
    }
    fn string(&mut self, eof: &str) -> Result<(), String> {
        self.i += 1;
        loop {
            if self.eof() {
                return Err(eof.into());
            }
            match self.s[self.i] {
                b'"' => {
                    self.i += 1;
                    return Ok(());
                }
                b'\\' => {
                    self.i += 1;
                    if self.eof() {
                        return Err(eof.into());
                    }
                    match self.s[self.i] {
                        b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => self.i += 1,
                        b'u' => {
                            self.i += 1;
                            for _ in 0..4 {
                                if self.eof() {
                                    return Err(eof.into());
                                }
                                if !self.s[self.i].is_ascii_hexdigit() {
                                    return Err(self.invalid("in \\u hexadecimal character escape"));
                                }
                                self.i += 1;
                            }
                        }
                        _ => return Err(self.invalid("in string escape code")),
                    }
                }
                c if c < 0x20 => return Err(self.invalid("in string literal")),
                _ => self.i += self.char_at(self.i).len_utf8(),
            }
        }
    }
    fn digits(&mut self) {
        while !self.eof() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
    }
    fn number(&mut self, eof: &str) -> Result<(), String> {
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
            if self.eof() {
                return Err(eof.into());
            }
            if !self.s[self.i].is_ascii_digit() {
                return Err(self.invalid("after decimal point in numeric literal"));
            }
            self.digits();
        }
        if !self.eof() && matches!(self.s[self.i], b'e' | b'E') {
            self.i += 1;
            if !self.eof() && matches!(self.s[self.i], b'+' | b'-') {
                self.i += 1;
            }
            if self.eof() {
                return Err(eof.into());
            }
            if !self.s[self.i].is_ascii_digit() {
                return Err(self.invalid("in exponent of numeric literal"));
            }
            self.digits();
        }
        Ok(())
    }
}

/// Go's `json.Unmarshal` syntax check: the whole text must be one JSON value.
pub(crate) fn check_unmarshal_syntax(text: &str) -> Result<(), String> {
    let mut s = Scanner { s: text.as_bytes(), text, i: 0 };
    s.value("unexpected end of JSON input")?;
    s.ws();
    if !s.eof() {
        return Err(s.after(Ctx::Top));
    }
    Ok(())
}

/// Go's `json.Decoder.Decode` syntax check: the first JSON value of the text (the rest is not
/// read). Returns the length of that value.
pub(crate) fn check_decoder_syntax(text: &str) -> Result<usize, String> {
    let mut s = Scanner { s: text.as_bytes(), text, i: 0 };
    s.ws();
    if s.eof() {
        return Err("EOF".into());
    }
    s.value("unexpected EOF")?;
    Ok(s.i)
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
