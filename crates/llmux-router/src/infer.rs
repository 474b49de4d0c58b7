//! Vendor inference from a model name (DESIGN.md routing rule 4).

/// The vendor a model name belongs to, by its well-known prefix.
pub fn infer_vendor(model: &str) -> Option<&'static str> {
    let m = model.to_ascii_lowercase();
    let openai = [
        "gpt-",
        "chatgpt",
        "o1",
        "o3",
        "o4",
        "text-embedding-",
        "davinci",
        "babbage",
    ];
    if openai.iter().any(|p| m.starts_with(p)) {
        Some("openai")
    } else if m.starts_with("claude") {
        Some("anthropic")
    } else if m.starts_with("gemini") || m.starts_with("models/gemini") {
        Some("gemini")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_prefixes() {
        for (model, vendor) in [
            ("gpt-4o", Some("openai")),
            ("o1-mini", Some("openai")),
            ("o3", Some("openai")),
            ("o4-mini", Some("openai")),
            ("chatgpt-4o-latest", Some("openai")),
            ("text-embedding-3-small", Some("openai")),
            ("claude-sonnet-4-5", Some("anthropic")),
            ("gemini-2.5-flash", Some("gemini")),
            ("llama3", None),
            ("omni", None),
        ] {
            assert_eq!(infer_vendor(model), vendor, "{model}");
        }
    }
}
