//! Content parts each vendor accepts, so a gateway that sends a part the real vendor would
//! refuse (the original router's `file_url`, a PDF as an Anthropic `image`, audio to
//! Anthropic, per-part download headers) gets the vendor's 400 here too. Each check returns
//! the message the vendor's error would carry.

use serde_json::Value;

use crate::json::{array_at, str_at};

/// OpenAI Chat Completions: `text`, `image_url` (`url`, `detail`), `input_audio` (mp3, wav)
/// and `file` (`file_data` as a `data:` URL, or `file_id`) in user turns.
pub(crate) fn openai_refusal(request: &Value) -> Option<String> {
    for (i, message) in array_at(request, "messages").iter().enumerate() {
        for (j, part) in array_at(message, "content").iter().enumerate() {
            let at = format!("messages[{i}].content[{j}]");
            let kind = str_at(part, "type");
            let problem = match kind {
                "text" | "refusal" => None,
                "image_url" => {
                    let image = part.get("image_url").unwrap_or(&Value::Null);
                    let url = str_at(image, "url");
                    if let Some(key) = extra_key(image, &["url", "detail"]) {
                        Some(format!(
                            "Unrecognized request argument supplied: {at}.image_url.{key}"
                        ))
                    } else if !(url.starts_with("http://")
                        || url.starts_with("https://")
                        || url.starts_with("data:image/"))
                    {
                        Some(format!("Invalid image URL in {at}"))
                    } else {
                        None
                    }
                }
                "input_audio" => {
                    let audio = part.get("input_audio").unwrap_or(&Value::Null);
                    match str_at(audio, "format") {
                        "mp3" | "wav" if !str_at(audio, "data").is_empty() => None,
                        format => Some(format!(
                            "Invalid value: '{format}'. Supported values are: 'wav' and 'mp3'. ({at}.input_audio.format)"
                        )),
                    }
                }
                "file" => {
                    let file = part.get("file").unwrap_or(&Value::Null);
                    let data = str_at(file, "file_data");
                    if !str_at(file, "file_id").is_empty()
                        || data.starts_with("data:application/pdf;base64,")
                    {
                        None
                    } else {
                        Some(format!(
                            "Invalid file data in {at}: expected a base64 data URL of a PDF"
                        ))
                    }
                }
                other => Some(format!(
                    "Invalid value: '{other}'. Supported values are: 'text', 'image_url', 'input_audio', 'refusal', 'audio', and 'file'. ({at}.type)"
                )),
            };
            if problem.is_some() {
                return problem;
            }
        }
    }
    None
}

/// Anthropic Messages: image sources must be images, document sources PDFs (or text), and no
/// block type of another API (`image_url`, `input_audio`, `file`…).
pub(crate) fn anthropic_refusal(request: &Value) -> Option<String> {
    for (i, message) in array_at(request, "messages").iter().enumerate() {
        for (j, block) in array_at(message, "content").iter().enumerate() {
            let at = format!("messages.{i}.content.{j}");
            let source = block.get("source").unwrap_or(&Value::Null);
            let problem = match str_at(block, "type") {
                "text" | "tool_use" | "tool_result" | "thinking" | "redacted_thinking"
                | "search_result" => None,
                "image" => match str_at(source, "type") {
                    "base64"
                        if matches!(
                            str_at(source, "media_type"),
                            "image/jpeg" | "image/png" | "image/gif" | "image/webp"
                        ) =>
                    {
                        None
                    }
                    "url" => None,
                    _ => Some(format!(
                        "{at}.image.source: Input should be a valid image source"
                    )),
                },
                "document" => match str_at(source, "type") {
                    "base64" if str_at(source, "media_type") == "application/pdf" => None,
                    "text" | "url" | "content" => None,
                    _ => Some(format!(
                        "{at}.document.source: Input tag does not match any of the expected tags or media types"
                    )),
                },
                other => Some(format!(
                    "{at}: Input tag '{other}' found using 'type' does not match any of the expected tags"
                )),
            };
            if problem.is_some() {
                return problem;
            }
        }
    }
    None
}

/// Gemini: each part holds one known member; `inlineData` must carry a media type Gemini
/// reads (images, PDF, audio, video, text).
pub(crate) fn gemini_refusal(request: &Value) -> Option<String> {
    const KNOWN: &[&str] = &[
        "text",
        "inlineData",
        "inline_data",
        "fileData",
        "file_data",
        "functionCall",
        "function_call",
        "functionResponse",
        "function_response",
        "thought",
        "thoughtSignature",
        "thought_signature",
        "executableCode",
        "codeExecutionResult",
        "videoMetadata",
    ];
    for (i, content) in array_at(request, "contents").iter().enumerate() {
        for (j, part) in array_at(content, "parts").iter().enumerate() {
            if let Some(key) = extra_key(part, KNOWN) {
                return Some(format!(
                    "Invalid JSON payload received. Unknown name \"{key}\" at 'contents[{i}].parts[{j}]': Cannot find field."
                ));
            }
            let Some(blob) = part.get("inlineData").or_else(|| part.get("inline_data")) else {
                continue;
            };
            let mime = blob
                .get("mimeType")
                .or_else(|| blob.get("mime_type"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let readable = ["image/", "audio/", "video/", "text/"]
                .iter()
                .any(|prefix| mime.starts_with(prefix))
                || mime == "application/pdf";
            if !readable {
                return Some(format!("Unsupported MIME type: {mime}"));
            }
        }
    }
    None
}

/// The first key of `value` (an object) that is not in `known`.
fn extra_key<'a>(value: &'a Value, known: &[&str]) -> Option<&'a str> {
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
    fn each_vendor_takes_its_native_document_and_refuses_others() {
        let pdf = "data:application/pdf;base64,JVBERi0=";
        let openai =
            |part: Value| openai_refusal(&json!({"messages":[{"role":"user","content":[part]}]}));
        assert_eq!(
            openai(json!({"type":"file","file":{"filename":"a.pdf","file_data":pdf}})),
            None
        );
        assert_eq!(
            openai(json!({"type":"input_audio","input_audio":{"data":"AA==","format":"mp3"}})),
            None
        );
        assert!(openai(json!({"type":"file_url","file_url":{"url":"https://x/a.pdf"}})).is_some());
        assert!(openai(json!({"type":"image_url","image_url":{"url":"https://x/a.png","headers":{"a":"b"}}})).is_some());

        let anthropic = |block: Value| {
            anthropic_refusal(&json!({"messages":[{"role":"user","content":[block]}]}))
        };
        let doc = json!({"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}});
        assert_eq!(anthropic(doc), None);
        assert!(anthropic(json!({"type":"image","source":{"type":"base64","media_type":"application/pdf","data":"x"}})).is_some());
        assert!(anthropic(json!({"type":"input_audio"})).is_some());

        let gemini =
            |part: Value| gemini_refusal(&json!({"contents":[{"role":"user","parts":[part]}]}));
        assert_eq!(
            gemini(json!({"inlineData":{"mimeType":"application/pdf","data":"x"}})),
            None
        );
        assert!(gemini(json!({"inlineData":{"mimeType":"application/zip","data":"x"}})).is_some());
        assert!(gemini(json!({"document":{}})).is_some());
    }
}
