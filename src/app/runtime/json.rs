//! A tiny JSON writer for the API: a value tree and its text form, with correct string
//! escaping (RFC 8259 §7). serde_json would cost more bytes than the API needs.

use std::fmt::Write;

/// A JSON value. Object keys are static: every key the API writes is known at compile time.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    /// Non-finite numbers have no JSON form; they are written as `null`.
    Float(f64),
    /// A number always written with two decimals (`2.00`, `8.34`), the way SRS's JSON writer
    /// writes every number (`%.2f`): hook servers written for SRS may expect a decimal point.
    /// Non-finite numbers are written as `null`.
    Fixed2(f64),
    Str(String),
    Arr(Vec<Value>),
    Obj(Vec<(&'static str, Value)>),
    /// An object whose keys are data, not ours (a stream's onMetaData property names).
    Map(Vec<(String, Value)>),
}

impl Value {
    /// The JSON text.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write(&mut out);
        out
    }

    pub fn write(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::UInt(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Float(f) if f.is_finite() => {
                // Always with a fraction (`0.0`, not `0`): SRS writes every float as `%.2f`,
                // and typed clients (Go structs, serde) tell an int from a float by the text.
                let start = out.len();
                let _ = write!(out, "{f}");
                if !out[start..].contains('.') {
                    out.push_str(".0");
                }
            }
            Value::Fixed2(f) if f.is_finite() => {
                let _ = write!(out, "{f:.2}");
            }
            Value::Float(_) | Value::Fixed2(_) => out.push_str("null"),
            Value::Str(s) => write_str(s, out),
            Value::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Value::Map(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(k, out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
            Value::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(k, out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    /// Appends a field to an object (no-op on other values).
    pub fn push(&mut self, key: &'static str, v: impl Into<Value>) {
        if let Value::Obj(fields) = self {
            fields.push((key, v.into()));
        }
    }
}

/// Builds an object: `obj([("a", 1.into()), ...])`.
pub fn obj<const N: usize>(fields: [(&'static str, Value); N]) -> Value {
    Value::Obj(fields.into())
}

/// Writes `s` as a JSON string. Control characters are escaped, and so are U+2028/U+2029
/// (valid JSON but line terminators in JavaScript, which matters for JSONP).
pub fn write_str(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}
impl From<i32> for Value {
    fn from(n: i32) -> Value {
        Value::Int(n as i64)
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::UInt(n)
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::UInt(n as u64)
    }
}
impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::UInt(n as u64)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value::Arr(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_strings() {
        let v = obj([
            ("s", "a\"b\\c\nd\u{1}e\u{2028}é".into()),
            ("n", Value::Null),
            ("f", 1.5.into()),
            ("whole", 2.0.into()),
            ("nan", f64::NAN.into()),
            (
                "a",
                vec![Value::from(1u32), Value::from(-2i64), true.into()].into(),
            ),
        ]);
        assert_eq!(
            v.to_json(),
            r#"{"s":"a\"b\\c\nd\u0001e\u2028é","n":null,"f":1.5,"whole":2.0,"nan":null,"a":[1,-2,true]}"#
        );
    }

    #[test]
    fn fixed2_always_has_two_decimals() {
        let table = [
            (2.0, "2.00"),
            (0.0, "0.00"),
            (8.333, "8.33"),
            (1.999, "2.00"),
            (f64::INFINITY, "null"),
        ];
        for (f, text) in table {
            assert_eq!(Value::Fixed2(f).to_json(), text, "{f}");
        }
    }
}
