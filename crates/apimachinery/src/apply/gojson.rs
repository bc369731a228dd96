//! JSON text exactly as Go writes it, for the few outputs that must match upstream byte for byte.
//!
//! Go's encoders sort map keys, escape `<`, `>`, `&`, U+2028 and U+2029, and print floats in
//! their own shortest form; `serde_json` does none of that, so `FieldsV1` keys, manager
//! identifiers and the last-applied annotation are written here instead.

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// Which Go encoder's escaping of `\b` and `\f` to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escapes {
    /// `encoding/json` since Go 1.22: `\b` and `\f`.
    Std,
    /// `json-iterator` (which structured-merge-diff uses for `FieldsV1`): `\u0008`, `\u000c`.
    Jsoniter,
}

/// Appends `s` as a JSON string literal with Go's (HTML-safe) escaping.
pub(crate) fn write_string(out: &mut String, s: &str, escapes: Escapes) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' if escapes == Escapes::Std => out.push_str("\\b"),
            '\u{0c}' if escapes == Escapes::Std => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a number as Go writes a decoded `int64` or `float64`.
pub(crate) fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
        return;
    }
    let f = n.as_f64().unwrap_or_default();
    out.push_str(&float(f));
}

/// A float as Go's `encoding/json` prints it: plain decimal between 1e-6 and 1e21,
/// exponent form (`1e+21`, `1e-7`) outside.
pub(crate) fn float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        if let Some((mantissa, exp)) = s.split_once('e') {
            return match exp.strip_prefix('-') {
                Some(digits) => format!("{mantissa}e-{digits}"),
                None => format!("{mantissa}e+{exp:0>2}"),
            };
        }
        return s;
    }
    let s = format!("{f}");
    if s == "-0" { "0".to_owned() } else { s }
}

/// Appends `v` as Go's `encoding/json` writes the equivalent `interface{}`: keys sorted,
/// no whitespace.
pub(crate) fn write_value(out: &mut String, v: &Value, escapes: Escapes) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s, escapes),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, escapes);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k, escapes);
                out.push(':');
                if let Some(item) = map.get(k) {
                    write_value(out, item, escapes);
                }
            }
            out.push('}');
        }
    }
}

/// `v` as Go's `encoding/json` writes it.
pub(crate) fn value(v: &Value, escapes: Escapes) -> String {
    let mut out = String::new();
    write_value(&mut out, v, escapes);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strings_and_values_are_escaped_and_sorted_like_go() {
        let string = |s: &str, escapes| {
            let mut out = String::new();
            write_string(&mut out, s, escapes);
            out
        };
        assert_eq!(
            string("a<b>&\"\n", Escapes::Std),
            r#""a\u003cb\u003e\u0026\"\n""#
        );
        assert_eq!(string("\u{8}", Escapes::Std), r#""\b""#);
        assert_eq!(string("\u{8}", Escapes::Jsoniter), r#""\u0008""#);
        assert_eq!(
            value(&json!({"b": [1, 2.5, null], "a": true}), Escapes::Std),
            r#"{"a":true,"b":[1,2.5,null]}"#
        );
        assert_eq!(float(1e21), "1e+21");
        assert_eq!(float(1e-7), "1e-7");
        assert_eq!(float(1.5e-10), "1.5e-10");
        assert_eq!(float(100.0), "100");
    }
}
