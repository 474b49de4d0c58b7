//! Loose readers for request JSON: the mock accepts anything and reads what it understands.

use serde_json::Value;

/// `value[key]` as a string, or "".
pub(crate) fn str_at<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `value[key]` as an array, or an empty slice.
pub(crate) fn array_at<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The text of an OpenAI or Anthropic `content`: the string itself, or the `text` of its
/// `type: "text"` parts joined with "".
pub(crate) fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|part| str_at(part, "type") == "text")
            .map(|part| str_at(part, "text"))
            .collect(),
        _ => String::new(),
    }
}

/// The first top-level key of `value` that is not in `known`, as the real APIs refuse
/// unknown fields (each vendor with its own message).
pub(crate) fn unknown_key<'a>(value: &'a Value, known: &[&str]) -> Option<&'a str> {
    value
        .as_object()?
        .keys()
        .map(String::as_str)
        .find(|key| !known.contains(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_text_reads_strings_and_text_parts() {
        assert_eq!(content_text(Some(&json!("hi"))), "hi");
        let parts =
            json!([{"type":"text","text":"a"},{"type":"image_url"},{"type":"text","text":"b"}]);
        assert_eq!(content_text(Some(&parts)), "ab");
        assert_eq!(content_text(None), "");
    }
}
