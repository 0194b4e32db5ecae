//! A small JSON reader for the shared test vectors (no crates are available here).
//!
//! Integers are kept exact (`i128`), which is the point: the vectors' money values
//! reach the 64-bit limits and must never pass through a float. Non-integer numbers
//! are refused, as the vectors have none.

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Str(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member `key` of an object, if present (`null` members included).
    pub fn get_opt(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> &Value {
        self.get_opt(key).unwrap_or_else(|| panic!("no member {key:?} in {self:?}"))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_i128(&self) -> i128 {
        match self {
            Value::Int(v) => *v,
            other => panic!("not an integer: {other:?}"),
        }
    }

    pub fn as_i64(&self) -> i64 {
        i64::try_from(self.as_i128()).expect("fits in i64")
    }

    pub fn as_u64(&self) -> u64 {
        u64::try_from(self.as_i128()).expect("fits in u64")
    }

    pub fn as_str(&self) -> &str {
        match self {
            Value::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    pub fn as_array(&self) -> &[Value] {
        match self {
            Value::Array(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }
}

/// Parses one JSON document; `Err` names the byte offset of the first problem.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser { s: text.as_bytes(), at: 0 };
    let v = p.value()?;
    p.ws();
    if p.at != p.s.len() {
        return Err(format!("trailing data at {}", p.at));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.at), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.at))
    }

    fn eat(&mut self, lit: &str) -> Result<(), String> {
        if self.s[self.at..].starts_with(lit.as_bytes()) {
            self.at += lit.len();
            Ok(())
        } else {
            self.err(&format!("expected {lit}"))
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        match self.s.get(self.at) {
            Some(b'n') => self.eat("null").map(|_| Value::Null),
            Some(b't') => self.eat("true").map(|_| Value::Bool(true)),
            Some(b'f') => self.eat("false").map(|_| Value::Bool(false)),
            Some(b'"') => self.string().map(Value::Str),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.at) == Some(&b']') {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return self.err("expected , or ]"),
                    }
                }
            }
            Some(b'{') => {
                self.at += 1;
                let mut members = Vec::new();
                self.ws();
                if self.s.get(self.at) == Some(&b'}') {
                    self.at += 1;
                    return Ok(Value::Object(members));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.ws();
                    self.eat(":")?;
                    members.push((key, self.value()?));
                    self.ws();
                    match self.s.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Value::Object(members));
                        }
                        _ => return self.err("expected , or }"),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => self.int(),
            _ => self.err("expected a value"),
        }
    }

    fn int(&mut self) -> Result<Value, String> {
        let start = self.at;
        if self.s[self.at] == b'-' {
            self.at += 1;
        }
        while matches!(self.s.get(self.at), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        if matches!(self.s.get(self.at), Some(b'.' | b'e' | b'E')) {
            return self.err("non-integer number");
        }
        let text = std::str::from_utf8(&self.s[start..self.at]).unwrap();
        text.parse::<i128>().map(Value::Int).or_else(|_| self.err("bad integer"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat("\"")?;
        let mut out = String::new();
        loop {
            let c = match self.s.get(self.at) {
                Some(&c) => c,
                None => return self.err("unterminated string"),
            };
            self.at += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let e = self.s.get(self.at).copied();
                    self.at += 1;
                    match e {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'n') => out.push('\n'),
                        Some(b't') => out.push('\t'),
                        Some(b'r') => out.push('\r'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'u') => {
                            let hex = std::str::from_utf8(self.s.get(self.at..self.at + 4).unwrap_or(b""))
                                .map_err(|e| e.to_string())?;
                            let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                            self.at += 4;
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        _ => return self.err("bad escape"),
                    }
                }
                _ => {
                    // copy one UTF-8 sequence as is
                    let start = self.at - 1;
                    while matches!(self.s.get(self.at), Some(b) if b & 0xc0 == 0x80) {
                        self.at += 1;
                    }
                    out.push_str(std::str::from_utf8(&self.s[start..self.at]).map_err(|e| e.to_string())?);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shapes_the_vectors_use() {
        let v = parse(
            r#" {"a": [1, -2, 9223372036854775807, -9223372036854775808], "b": null,
                          "c": {"d": "x\"y\u00e9"}, "e": true, "f": [], "g": {}} "#,
        )
        .unwrap();
        assert_eq!(v.get("a").as_array()[2].as_i64(), i64::MAX);
        assert_eq!(v.get("a").as_array()[3].as_i64(), i64::MIN);
        assert!(v.get("b").is_null());
        assert_eq!(v.get("c").get("d").as_str(), "x\"yé");
        assert_eq!(v.get("e"), &Value::Bool(true));
        assert!(v.get_opt("z").is_none());
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for bad in ["", "{", "[1,]", "1.5", "1e3", "{\"a\" 1}", "\"abc", "[1] x", "nul"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
