//! Small shared readers for message bodies: typed field access with JSON paths, and text extraction.
//!
//! Paths are built lazily (closures) because the request path only pays for
//! a `format!` when something is actually wrong.

use serde_json::{Map, Value};

use crate::TranslateError;

pub(crate) type Object = Map<String, Value>;

/// `v` as an object, or a `WrongType` error at `path()`.
pub(crate) fn object(v: &Value, path: impl FnOnce() -> String) -> Result<&Object, TranslateError> {
    v.as_object()
        .ok_or_else(|| TranslateError::wrong_type(path(), "a JSON object"))
}

/// `v` as an array, or a `WrongType` error at `path()`.
pub(crate) fn array(
    v: &Value,
    path: impl FnOnce() -> String,
) -> Result<&Vec<Value>, TranslateError> {
    v.as_array()
        .ok_or_else(|| TranslateError::wrong_type(path(), "an array"))
}

/// A field that is absent or `null` counts as absent: clients send both.
pub(crate) fn present<'a>(obj: &'a Object, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// A required string field.
pub(crate) fn required_str<'a>(
    obj: &'a Object,
    key: &str,
    path: impl Fn() -> String,
) -> Result<&'a str, TranslateError> {
    match present(obj, key) {
        None => Err(TranslateError::missing(format!("{}.{key}", path()))),
        Some(v) => v
            .as_str()
            .ok_or_else(|| TranslateError::wrong_type(format!("{}.{key}", path()), "a string")),
    }
}

/// The `type` of a content block or part ("" when missing, so it shows up
/// as `unsupported ... type ""`).
pub(crate) fn kind(block: &Value) -> &str {
    block.get("type").and_then(Value::as_str).unwrap_or("")
}

/// The text of a `content` value in either dialect: a string, or the `text`
/// of each `{"type":"text"}` item of an array joined with `sep`. Non-text
/// items are skipped; `None` when `content` is neither a string nor an array.
pub(crate) fn plain_text(content: &Value, sep: &str) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let mut out = String::new();
            let mut first = true;
            for text in items.iter().filter_map(text_of_item) {
                if !first {
                    out.push_str(sep);
                }
                out.push_str(text);
                first = false;
            }
            Some(out)
        }
        _ => None,
    }
}

/// The text of one `{"type":"text","text":…}` item.
pub(crate) fn text_of_item(item: &Value) -> Option<&str> {
    if kind(item) == "text" {
        item.get("text").and_then(Value::as_str)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_text_reads_strings_and_text_items() {
        assert_eq!(plain_text(&json!("hi"), "\n").as_deref(), Some("hi"));
        let parts =
            json!([{"type":"text","text":"a"},{"type":"image_url"},{"type":"text","text":"b"}]);
        assert_eq!(plain_text(&parts, "\n").as_deref(), Some("a\nb"));
        assert_eq!(plain_text(&json!(null), "\n"), None);
    }

    #[test]
    fn required_str_names_the_field() {
        let obj = json!({"id": 3});
        let obj = obj.as_object().unwrap();
        let err = required_str(obj, "id", || "tools[0]".into()).unwrap_err();
        assert_eq!(err.to_string(), "tools[0].id: expected a string");
        let err = required_str(obj, "name", || "tools[0]".into()).unwrap_err();
        assert_eq!(err.to_string(), "tools[0].name: missing required field");
    }
}
