//! Formatting helpers that reproduce the few Go `fmt` verbs upstream messages are built with.
//!
//! Clients compare error strings byte for byte (kubectl prints them verbatim), so
//! quoting must follow Go's `strconv.Quote` rather than Rust's `Debug`.

use std::fmt::Write as _;

/// Quotes `s` the way Go's `%q` verb (`strconv.Quote`) does.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `strconv.IsPrint`: everything but control and
/// formatting characters and the Unicode separators other than the ASCII space.
pub(crate) fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}'))
}

/// Formats a float the way Go's `%v` verb does for a `float64` (shortest
/// representation, exponent form for very large or very small magnitudes).
pub(crate) fn float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        // Go prints e.g. 1e+21 and 1e-05: at least two exponent digits and a sign.
        let s = format!("{f:e}");
        if let Some((mantissa, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mantissa}e{sign}{digits:0>2}");
        }
        return s;
    }
    let s = format!("{f}");
    if s == "-0" { "0".to_owned() } else { s }
}

/// Formats a JSON value the way Go's `%v` verb prints the equivalent decoded
/// `interface{}` (`map[a:1 b:[x y]]`), for error messages that embed documents.
pub(crate) fn value(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(value).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", value(&map[k.as_str()])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// The Go type name of the `interface{}` a JSON value decodes to, for type errors.
pub(crate) fn type_name(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go_strconv_quote() {
        let check = |input: &str, want: &str| assert_eq!(quote(input), want, "quote({input:?})");
        check("Foo", r#""Foo""#);
        check("a\"b", r#""a\"b""#);
        check("a\\b", r#""a\\b""#);
        check("tab\there", r#""tab\there""#);
        check("\u{1}", r#""\x01""#);
        check("héllo", "\"héllo\"");
        check("\u{200b}", r#""\u200b""#);
    }

    #[test]
    fn floats_print_like_go_percent_v() {
        let check = |input: f64, want: &str| assert_eq!(float(input), want, "float({input})");
        check(1.5, "1.5");
        check(3.0, "3");
        check(1e21, "1e+21");
        check(0.00001, "1e-05");
        check(-2.25, "-2.25");
    }

    #[test]
    fn json_values_print_like_go_percent_v() {
        let v = serde_json::json!({"b": [1, "x", null], "a": {"c": true}});
        assert_eq!(value(&v), "map[a:map[c:true] b:[1 x <nil>]]");
        assert_eq!(type_name(&serde_json::json!([])), "[]interface {}");
    }
}
