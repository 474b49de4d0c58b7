//! Gemini generateContent / streamGenerateContent against `fixtures/gemini/*`.

use serde_json::{Value, json};

use crate::{
    assert_same_paths, client, events, fixture, fixture_json, key_paths, start, union_paths,
};

/// Function call arguments are free-form.
const OPAQUE: &[&str] = &["candidates[].content.parts[].functionCall.args"];
/// The mock does not think, so it reports no thought tokens.
const SKIPPED: &[&str] = &["usageMetadata.thoughtsTokenCount"];

/// The JSON answer of a Gemini request.
async fn generate_json(url: &str, model: &str, method: &str, body: Value) -> Value {
    generate(url, model, method, body)
        .await
        .json()
        .await
        .expect("a JSON answer")
}

async fn generate(url: &str, model: &str, method: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{url}/v1beta/models/{model}:{method}"))
        .header("x-goog-api-key", "AIza-test")
        .json(&body)
        .send()
        .await
        .expect("request")
}

fn user(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

#[tokio::test]
async fn text_response_matches_fixture_shape() {
    let mock = start().await;
    let request = fixture_json("gemini/generate_content_text.request.json");
    let response = generate(&mock.url(), "gemini-2.5-flash", "generateContent", request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_same_paths(
        key_paths(&body, OPAQUE),
        key_paths(&fixture_json("gemini/generate_content_text.json"), OPAQUE),
        SKIPPED,
        &[],
    );
    let candidate = &body["candidates"][0];
    assert_eq!(
        candidate["content"]["parts"][0]["text"],
        "What is the capital of France? One word."
    );
    assert_eq!(candidate["content"]["role"], "model");
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(body["modelVersion"], "gemini-2.5-flash");
    let usage = &body["usageMetadata"];
    assert_eq!(usage["promptTokenCount"], 8);
    assert_eq!(usage["candidatesTokenCount"], 8);
    assert_eq!(usage["totalTokenCount"], 16);
    assert_eq!(
        usage["promptTokensDetails"],
        json!([{"modality": "TEXT", "tokenCount": 8}])
    );
}

#[tokio::test]
async fn function_call_matches_fixture_shape_without_id_on_gemini_2() {
    let mock = start().await;
    let request = fixture_json("gemini/generate_content_function_call.request.json");
    let body: Value =
        generate_json(&mock.url(), "gemini-2.5-flash", "generateContent", request).await;
    assert_same_paths(
        key_paths(&body, OPAQUE),
        key_paths(
            &fixture_json("gemini/generate_content_function_call.json"),
            OPAQUE,
        ),
        SKIPPED,
        &[],
    );
    let candidate = &body["candidates"][0];
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(
        candidate["finishMessage"],
        "Model generated function call(s)."
    );
    let part = &candidate["content"]["parts"][0];
    assert_eq!(part["functionCall"]["name"], "sum");
    assert_eq!(
        part["functionCall"]["args"],
        json!({"text": "what is the sum of 1 + 2?"})
    );
    assert!(part["functionCall"].get("id").is_none());
    assert!(
        part["thoughtSignature"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
}

#[tokio::test]
async fn function_calls_get_ids_after_gemini_2_and_none_mode_is_honoured() {
    let mock = start().await;
    let mut request = user("add in parallel");
    request["tools"] = json!([{"functionDeclarations": [{"name": "sum"}, {"name": "product"}]}]);
    let body: Value = generate_json(
        &mock.url(),
        "gemini-3-flash-preview",
        "generateContent",
        request.clone(),
    )
    .await;
    let parts = body["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(parts.len(), 2);
    for part in parts {
        let id = part["functionCall"]["id"].as_str().unwrap();
        assert!(
            id.len() == 8
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{id}"
        );
    }
    assert_ne!(
        parts[0]["functionCall"]["id"],
        parts[1]["functionCall"]["id"]
    );
    assert!(parts[0].get("thoughtSignature").is_some());
    assert!(parts[1].get("thoughtSignature").is_none());

    request["toolConfig"] = json!({"functionCallingConfig": {"mode": "NONE"}});
    let body: Value = generate_json(
        &mock.url(),
        "gemini-3-flash-preview",
        "generateContent",
        request,
    )
    .await;
    assert_eq!(
        body["candidates"][0]["content"]["parts"],
        json!([{"text": "add in parallel"}])
    );
}

#[tokio::test]
async fn function_response_is_acknowledged() {
    let mock = start().await;
    let mut request = fixture_json("gemini/stream_after_function_response.request.json");
    request.as_object_mut().unwrap().remove("tools");
    let body: Value = generate_json(
        &mock.url(),
        "gemini-3-flash-preview",
        "generateContent",
        request,
    )
    .await;
    assert_eq!(
        body["candidates"][0]["content"]["parts"][0]["text"],
        r#"Tool result received: {"sum":5} {"sum":9} {"sum":13}"#
    );
}

#[tokio::test]
async fn max_output_tokens_truncates() {
    let mock = start().await;
    let mut request = user("one two three");
    request["generationConfig"] = json!({"maxOutputTokens": 1});
    let body: Value =
        generate_json(&mock.url(), "gemini-2.5-flash", "generateContent", request).await;
    assert_eq!(body["candidates"][0]["content"]["parts"][0]["text"], "one");
    assert_eq!(body["candidates"][0]["finishReason"], "MAX_TOKENS");
}

#[tokio::test]
async fn text_stream_matches_fixture_and_reassembles() {
    let mock = start().await;
    let text = "I can help you with that! Where are you?";
    let response = generate(
        &mock.url(),
        "gemini-2.5-flash",
        "streamGenerateContent?alt=sse",
        user(text),
    )
    .await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = response.text().await.unwrap();
    // Frames end in CRLF CRLF, exactly like the recording, and nothing else separates them.
    let recorded = fixture("gemini/stream_text.sse");
    assert!(recorded.ends_with("\r\n\r\n") && body.ends_with("\r\n\r\n"));
    assert_eq!(body.matches("\r\n\r\n").count(), 4);
    assert_eq!(body.matches("\n\n").count(), 0);

    let mine: Vec<Value> = events(&body, "\r\n\r\n")
        .iter()
        .map(crate::Event::json)
        .collect();
    let theirs: Vec<Value> = events(&recorded, "\r\n\r\n")
        .iter()
        .map(crate::Event::json)
        .collect();
    assert_same_paths(
        union_paths(&mine, OPAQUE),
        union_paths(&theirs, OPAQUE),
        SKIPPED,
        &[],
    );
    let (last, rest) = mine.split_last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(
        rest.iter()
            .all(|c| c["candidates"][0].get("finishReason").is_none())
    );
    let streamed: String = mine
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(streamed, text);
    // usageMetadata is cumulative and present in every chunk.
    let counts: Vec<u64> = mine
        .iter()
        .map(|c| c["usageMetadata"]["candidatesTokenCount"].as_u64().unwrap())
        .collect();
    assert!(counts.is_sorted());
    assert_eq!(counts.last(), Some(&9));
    assert!(
        mine.iter()
            .all(|c| c["responseId"] == mine[0]["responseId"])
    );
}

#[tokio::test]
async fn parallel_function_call_stream_matches_fixture() {
    let mock = start().await;
    let mut request = fixture_json("gemini/stream_parallel_function_calls.request.json");
    request["contents"][0]["parts"][0]["text"] =
        json!("Add 2 and 3 and multiply 4 and 5, in parallel");
    request["tools"][0]["functionDeclarations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "product", "description": "multiplies"}));
    let body = generate(
        &mock.url(),
        "gemini-3-flash-preview",
        "streamGenerateContent?alt=sse",
        request,
    )
    .await
    .text()
    .await
    .unwrap();
    let mine: Vec<Value> = events(&body, "\r\n\r\n")
        .iter()
        .map(crate::Event::json)
        .collect();
    let theirs: Vec<Value> = events(
        &fixture("gemini/stream_parallel_function_calls.sse"),
        "\r\n\r\n",
    )
    .iter()
    .map(crate::Event::json)
    .collect();
    assert_same_paths(
        union_paths(&mine, OPAQUE),
        union_paths(&theirs, OPAQUE),
        SKIPPED,
        &[],
    );

    // One whole functionCall per chunk, then an empty text part with finishReason.
    assert_eq!(mine.len(), 3);
    let part = |chunk: &Value| chunk["candidates"][0]["content"]["parts"][0].clone();
    assert_eq!(part(&mine[0])["functionCall"]["name"], "sum");
    assert!(part(&mine[0]).get("thoughtSignature").is_some());
    assert_eq!(part(&mine[1])["functionCall"]["name"], "product");
    assert!(part(&mine[1]).get("thoughtSignature").is_none());
    for chunk in &mine[..2] {
        assert!(chunk["candidates"][0].get("finishReason").is_none());
        assert_eq!(
            part(chunk)["functionCall"]["args"],
            json!({"text": "Add 2 and 3 and multiply 4 and 5, in parallel"})
        );
    }
    assert_eq!(part(&mine[2]), json!({"text": ""}));
    assert_eq!(mine[2]["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn stream_without_alt_sse_is_a_json_array() {
    let mock = start().await;
    let response = generate(
        &mock.url(),
        "gemini-2.5-flash",
        "streamGenerateContent",
        user("a b c d"),
    )
    .await;
    let body: Value = response.json().await.unwrap();
    let chunks = body.as_array().unwrap();
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[3]["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn key_query_parameter_and_missing_key() {
    let mock = start().await;
    let url = format!(
        "{}/v1beta/models/gemini-2.5-flash:generateContent",
        mock.url()
    );
    let with_query = client()
        .post(format!("{url}?key=AIza-q"))
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(with_query.status(), 200);

    let missing = client().post(&url).json(&user("hi")).send().await.unwrap();
    assert_eq!(missing.status(), 403);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert!(body["error"]["message"].is_string());

    let bad = client()
        .post(format!("{url}?key=k"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
}

/// A history whose model turn holds `calls` (a `thoughtSignature` on the first when `signed`),
/// answered by one functionResponse per call.
fn history_with_calls(calls: usize, signed: bool) -> Value {
    let parts: Vec<Value> = (0..calls)
        .map(|i| {
            let mut part = json!({"functionCall": {"name": "sum", "args": {"a": i, "b": 1}, "id": format!("id{i}")}});
            if signed && i == 0 {
                part["thoughtSignature"] = json!("EukBCuYB");
            }
            part
        })
        .collect();
    let responses: Vec<Value> = (0..calls)
        .map(|i| json!({"functionResponse": {"name": "sum", "id": format!("id{i}"), "response": {"sum": i + 1}}}))
        .collect();
    json!({"contents": [
        {"role": "user", "parts": [{"text": "add"}]},
        {"role": "model", "parts": parts},
        {"role": "user", "parts": responses},
    ]})
}

#[tokio::test]
async fn gemini_3_refuses_calls_without_their_thought_signature() {
    let mock = start().await;
    let unsigned = history_with_calls(2, false);
    let response = generate(
        &mock.url(),
        "gemini-3-flash-preview",
        "generateContent",
        unsigned.clone(),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        body["error"]["message"],
        "Function call is missing a thought_signature in functionCall parts. This is required \
         for tools to work correctly, and missing thought_signature may lead to degraded model \
         performance."
    );

    // The stream endpoint checks too, before any event.
    let response = generate(
        &mock.url(),
        "gemini-3-flash-preview",
        "streamGenerateContent?alt=sse",
        unsigned.clone(),
    )
    .await;
    assert_eq!(response.status(), 400);

    // A signature on the first call of the turn is enough; parallel calls carry none.
    let signed = generate(
        &mock.url(),
        "gemini-3-flash-preview",
        "generateContent",
        history_with_calls(2, true),
    )
    .await;
    assert_eq!(signed.status(), 200);

    // gemini-2.x does not check.
    let old = generate(&mock.url(), "gemini-2.5-flash", "generateContent", unsigned).await;
    assert_eq!(old.status(), 200);
}

#[tokio::test]
async fn unknown_fields_are_refused_like_the_real_api() {
    let mock = start().await;
    let url = mock.url();
    let check = |response: reqwest::Response, message: &'static str| async move {
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(body["error"]["message"], message);
    };
    let mut top = user("hi");
    top["reasoning_effort"] = json!("high");
    check(
        generate(&url, "gemini-2.5-flash", "generateContent", top).await,
        "Invalid JSON payload received. Unknown name \"reasoning_effort\": Cannot find field.",
    )
    .await;
    let mut nested = user("hi");
    nested["generationConfig"] = json!({"maxOutputTokens": 5, "max_tokens": 5});
    check(
        generate(&url, "gemini-2.5-flash", "generateContent", nested).await,
        "Invalid JSON payload received. Unknown name \"max_tokens\" at 'generation_config': Cannot find field.",
    )
    .await;
    let mut known = user("hi");
    known["generationConfig"] =
        json!({"maxOutputTokens": 50, "thinkingConfig": {"thinkingBudget": 0}});
    known["systemInstruction"] = json!({"parts": [{"text": "be brief"}]});
    let ok = generate(&url, "gemini-2.5-flash", "generateContent", known).await;
    assert_eq!(ok.status(), 200);
}
