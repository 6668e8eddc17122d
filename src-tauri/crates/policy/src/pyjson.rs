//! JSON written the way Python's `json.dumps` writes it, for the `tojson`
//! filter of Hugging Face chat templates.
//!
//! Hugging Face replaces Jinja's `tojson` with
//! `json.dumps(x, ensure_ascii=False, indent=indent, separators=separators,
//! sort_keys=sort_keys)`. The prompt a model was trained on therefore has
//! `", "` and `": "` between items, keys in insertion order, non-ASCII text
//! unescaped and `<`, `>`, `&` as they are (Jinja's and MiniJinja's own
//! `tojson` escape those for HTML, which would change the tokens). Floats
//! follow Python's `repr` (`1e-05`, `1e+16`, `100.0`).

use std::fmt::Write as _;

use serde_json::Value;

/// The `json.dumps` options the filter accepts.
#[derive(Debug, Clone)]
pub(crate) struct PyJsonStyle {
    /// `None`: one line. `Some(s)`: a newline and `s` per nesting level.
    pub indent: Option<String>,
    pub item_separator: String,
    pub key_separator: String,
    pub sort_keys: bool,
    pub ensure_ascii: bool,
}

impl PyJsonStyle {
    /// Python's defaults for a given indent: `", "` between items on one
    /// line, `","` when each item gets its own line.
    pub fn new(indent: Option<String>) -> PyJsonStyle {
        let item_separator = if indent.is_some() { "," } else { ", " };
        PyJsonStyle {
            indent,
            item_separator: item_separator.to_owned(),
            key_separator: ": ".to_owned(),
            sort_keys: false,
            ensure_ascii: false,
        }
    }
}

/// `value` as `json.dumps` would write it with `style`.
pub(crate) fn dumps(value: &Value, style: &PyJsonStyle) -> String {
    let mut out = String::new();
    write_value(&mut out, value, style, 0);
    out
}

fn write_value(out: &mut String, value: &Value, style: &PyJsonStyle, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => {
                let _ = write!(out, "{i}");
            }
            (None, Some(u), _) => {
                let _ = write!(out, "{u}");
            }
            (None, None, Some(f)) => out.push_str(&py_float(f)),
            (None, None, None) => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_str(out, s, style.ensure_ascii),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separate(out, style, depth + 1, i == 0);
                write_value(out, item, style, depth + 1);
            }
            close(out, style, depth, ']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if style.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                separate(out, style, depth + 1, i == 0);
                write_str(out, key, style.ensure_ascii);
                out.push_str(&style.key_separator);
                write_value(out, item, style, depth + 1);
            }
            close(out, style, depth, '}');
        }
    }
}

/// What goes before an item: the item separator (not before the first) and,
/// when indenting, a newline and the item's indentation.
fn separate(out: &mut String, style: &PyJsonStyle, depth: usize, first: bool) {
    if !first {
        out.push_str(&style.item_separator);
    }
    if let Some(indent) = &style.indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    }
}

fn close(out: &mut String, style: &PyJsonStyle, depth: usize, bracket: char) {
    if let Some(indent) = &style.indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    }
    out.push(bracket);
}

/// A JSON string literal with Python's escapes: the two-character forms for
/// `"`, `\`, `\n`, `\r`, `\t`, `\b`, `\f`, `\u00xx` for other control
/// characters, and (only with `ensure_ascii`) `\uxxxx` for non-ASCII.
fn write_str(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ensure_ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional
/// for decimal exponents from -4 to 15 (always with a fractional part),
/// scientific with a signed two-digit-minimum exponent otherwise.
pub(crate) fn py_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.5e-7", "0e0".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_match_python_repr() {
        for (v, py) in [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.5, "0.5"),
            (100.0, "100.0"),
            (1234.5678, "1234.5678"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.25e100, "1.25e+100"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(py_float(v), py, "{v}");
        }
    }

    #[test]
    fn one_line_like_json_dumps() {
        let v = json!({"name": "get_weather", "arguments": {"city": "Zürich <3 & co", "days": [1, 2.5], "ok": true, "n": null}, "e": {}, "l": []});
        // json.dumps(v, ensure_ascii=False)
        assert_eq!(
            dumps(&v, &PyJsonStyle::new(None)),
            r#"{"name": "get_weather", "arguments": {"city": "Zürich <3 & co", "days": [1, 2.5], "ok": true, "n": null}, "e": {}, "l": []}"#
        );
    }

    #[test]
    fn indented_sorted_and_ascii() {
        let v = json!({"b": [1, {"c": "x"}], "a": "é\u{1F600}\t\u{1}"});
        // json.dumps(v, indent=2, sort_keys=True, ensure_ascii=True)
        let mut style = PyJsonStyle::new(Some("  ".into()));
        style.sort_keys = true;
        style.ensure_ascii = true;
        assert_eq!(
            dumps(&v, &style),
            "{\n  \"a\": \"\\u00e9\\ud83d\\ude00\\t\\u0001\",\n  \"b\": [\n    1,\n    {\n      \"c\": \"x\"\n    }\n  ]\n}"
        );
        // json.dumps([1, 2], separators=(",", ":"))
        let mut compact = PyJsonStyle::new(None);
        compact.item_separator = ",".into();
        compact.key_separator = ":".into();
        assert_eq!(dumps(&json!([1, {"a": 2}]), &compact), r#"[1,{"a":2}]"#);
    }
}
