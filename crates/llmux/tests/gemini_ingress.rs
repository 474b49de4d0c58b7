//! The Gemini API ingress (`/v1beta/models/{model}:generateContent` and friends) on every
//! vendor: the byte path to Gemini, translation to OpenAI and Anthropic, both stream framings,
//! tools, errors in Google's envelope, Google-style auth, countTokens and the model list.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use serde_json::{Value, json};

const VIA: [&str; 3] = ["via-openai", "via-anthropic", "via-gemini"];

fn generate(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

fn text_of(answer: &Value) -> String {
    answer["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter(|p| p["thought"] != true)
        .filter_map(|p| p["text"].as_str())
        .collect()
}

#[tokio::test]
async fn generate_content_answers_in_gemini_shape_on_every_vendor() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    for via in VIA {
        let response = gateway
            .post(
                &format!("/v1beta/models/{via}:generateContent"),
                &generate("hello gemini"),
            )
            .await;
        assert_eq!(response.status(), 200, "{via}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(text_of(&answer), "hello gemini", "{via}: {answer}");
        assert_eq!(
            answer["modelVersion"], via,
            "{via}: the client's name comes back"
        );
        assert_eq!(answer["candidates"][0]["finishReason"], "STOP", "{via}");
        assert!(
            answer["usageMetadata"]["totalTokenCount"].as_u64().unwrap() > 0,
            "{via}: {answer}"
        );
    }
    // The Gemini vendor got the client's body on the byte path, its model in the URL.
    let gemini_call = mock
        .calls()
        .into_iter()
        .find(|c| c.credential.starts_with("AIza"))
        .unwrap();
    assert_eq!(
        gemini_call.path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(gemini_call.body, generate("hello gemini"));
}

/// SSE frames (`data: …` separated by a blank line) as JSON values.
fn sse_chunks(text: &str) -> Vec<Value> {
    assert!(
        text.contains("\r\n\r\n"),
        "Google frames events with CRLF: {text:?}"
    );
    text.replace("\r\n", "\n")
        .split("\n\n")
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|frame| {
            let data = frame
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("{frame}"));
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn stream_generate_content_in_both_framings_on_every_vendor() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    for via in VIA {
        let response = gateway
            .post(
                &format!("/v1beta/models/{via}:streamGenerateContent?alt=sse"),
                &generate("stream me please"),
            )
            .await;
        assert_eq!(response.status(), 200, "{via}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let chunks = sse_chunks(&response.text().await.unwrap());
        let text: String = chunks.iter().map(text_of).collect();
        assert_eq!(text, "stream me please", "{via}: {chunks:?}");
        let last = chunks.last().unwrap();
        assert_eq!(last["candidates"][0]["finishReason"], "STOP", "{via}");
        assert!(chunks.iter().all(|c| c["modelVersion"] == via), "{via}");

        // Without `alt=sse`: one JSON array, streamed.
        let response = gateway
            .post(
                &format!("/v1beta/models/{via}:streamGenerateContent"),
                &generate("array please"),
            )
            .await;
        assert_eq!(response.status(), 200, "{via}");
        let body = response.text().await.unwrap();
        let array: Vec<Value> = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{via}: not a JSON array ({e}): {body}"));
        let text: String = array.iter().map(text_of).collect();
        assert_eq!(text, "array please", "{via}");
    }
}

#[tokio::test]
async fn function_calls_round_trip_with_ids_and_names() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    let tools = json!([{"functionDeclarations": [{
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "OBJECT", "properties": {"text": {"type": "STRING"}}, "required": ["text"]}
    }]}]);
    for via in VIA {
        let mut body = generate("Paris");
        body["tools"] = tools.clone();
        let answer: Value = gateway
            .answer(&format!("/v1beta/models/{via}:generateContent"), &body)
            .await;
        let call = answer["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|p| p.get("functionCall"))
            .unwrap_or_else(|| panic!("{via}: no function call in {answer}"))
            .clone();
        assert_eq!(call["name"], "get_weather", "{via}");
        assert_eq!(call["args"], json!({"text": "Paris"}), "{via}");

        // The second turn answers the call; the vendor replies with text.
        let mut follow_up = body.clone();
        follow_up["contents"] = json!([
            {"role": "user", "parts": [{"text": "Paris"}]},
            answer["candidates"][0]["content"].clone(),
            {"role": "user", "parts": [{"functionResponse": {
                "id": call.get("id").cloned().unwrap_or(Value::Null),
                "name": "get_weather", "response": {"temperature": 21}}}]}
        ]);
        let response = gateway
            .post(&format!("/v1beta/models/{via}:generateContent"), &follow_up)
            .await;
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{via}: {answer}");
        assert!(!text_of(&answer).is_empty(), "{via}: {answer}");
    }
}

#[tokio::test]
async fn errors_use_google_s_envelope() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    let response = gateway
        .post(
            "/v1beta/models/via-openai:generateContent",
            &json!({"contents": [{"parts": [{"text": "x"}]}], "nonsense": 1}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 400, "{body}");
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown name \"nonsense\"")
    );

    let response = gateway
        .post(
            "/v1beta/models/via-openai:generateContent",
            &json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 2}}),
        )
        .await;
    assert_eq!(response.status(), 400);

    let response = gateway
        .post(
            "/v1beta/models/via-openai:generateContent?vendor=nosuch",
            &generate("x"),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nosuch"),
        "{body}"
    );
}

#[tokio::test]
async fn google_style_keys_authenticate_and_are_never_forwarded() {
    let mock = mock().await;
    let dir = temp_dir("gemini-auth");
    let gateway = TestGateway::start(&every_vendor(
        &mock,
        &format!(
            "auth: {{ master_key: sk-master-gemini-0123456789, database: \"sqlite://{}\" }}\n",
            dir.join("keys.db").display()
        ),
    ))
    .await;
    let url = format!("{}/v1beta/models/via-gemini:generateContent", gateway.url);
    let refused = gateway
        .client
        .post(&url)
        .json(&generate("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED", "{body}");
    for request in [
        gateway
            .client
            .post(&url)
            .header("x-goog-api-key", "sk-master-gemini-0123456789"),
        gateway
            .client
            .post(format!("{url}?key=sk-master-gemini-0123456789")),
    ] {
        let response = request.json(&generate("hi")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    for call in mock.calls() {
        assert!(
            call.headers
                .iter()
                .all(|(_, v)| !v.contains("sk-master-gemini")),
            "the client's key reached the vendor: {:?}",
            call.headers
        );
        assert!(!call.path.contains("key="), "{}", call.path);
    }
}

#[tokio::test]
async fn count_tokens_and_the_model_list() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    let response = gateway
        .post(
            "/v1beta/models/via-anthropic:countTokens",
            &json!({"contents": [{"role": "user", "parts": [{"text": "count these few words please"}]}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llmux-token-count"], "estimated");
    let body: Value = response.json().await.unwrap();
    assert!(body["totalTokens"].as_u64().unwrap() > 0, "{body}");

    let list: Value = gateway.get("/v1beta/models").await.json().await.unwrap();
    let names: Vec<&str> = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for via in VIA {
        assert!(
            names.contains(&format!("models/{via}").as_str()),
            "{names:?}"
        );
    }
    let one = gateway.get("/v1beta/models/via-gemini").await;
    assert_eq!(one.status(), 200);
    // The OpenAI model list keeps its own shape beside the Gemini routes.
    let openai: Value = gateway.get("/v1/models").await.json().await.unwrap();
    assert_eq!(openai["object"], "list");
}

#[tokio::test]
async fn the_v1_path_of_the_genai_sdks_works_beside_openai_routes() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    let response = gateway
        .post(
            "/v1/models/via-openai:generateContent",
            &generate("v1 path"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(text_of(&answer), "v1 path");
    // An OpenAI request is unaffected.
    let response = gateway
        .post("/v1/chat/completions", &chat("via-gemini", "plain"))
        .await;
    assert_eq!(response.status(), 200);
}

/// Embedding models behind every vendor API.
const EMBEDDING_MODELS: &str =
    "  - { vendor: openai, model: text-embedding-3-small, name: embed-openai, kind: embedding }
  - { vendor: gemini, model: gemini-embedding-001, name: embed-gemini, kind: embedding }
  - { vendor: anthropic, model: claude-embed-1, name: embed-anthropic, kind: embedding }
";

fn embed_body(text: &str) -> Value {
    json!({"content": {"parts": [{"text": text}]}})
}

fn values(embedding: &Value) -> Vec<f64> {
    embedding["values"]
        .as_array()
        .unwrap_or_else(|| panic!("no values in {embedding}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn embed_content_and_batch_on_an_openai_embedding_model() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, EMBEDDING_MODELS)).await;
    let mut body = embed_body("hello embeddings");
    body["taskType"] = json!("RETRIEVAL_QUERY");
    body["outputDimensionality"] = json!(16);
    let response = gateway
        .post("/v1beta/models/embed-openai:embedContent", &body)
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let single = values(&answer["embedding"]);
    assert_eq!(single.len(), 16, "{answer}");
    let norm: f64 = single.iter().map(|x| x * x).sum();
    assert!(
        (norm - 1.0).abs() < 1e-3,
        "the mock's unit vector: {answer}"
    );
    let call = mock.calls().pop().unwrap();
    assert_eq!(call.path, "/v1/embeddings");
    assert_eq!(
        call.body,
        json!({"model": "text-embedding-3-small", "input": ["hello embeddings"], "dimensions": 16})
    );

    // The batch shape the google-genai SDK sends (each request names the model), on /v1.
    let batch = json!({"requests": [
        {"model": "models/embed-openai", "content": {"parts": [{"text": "hello embeddings"}]}},
        {"model": "models/embed-openai", "content": {"role": "user", "parts": [{"text": "second"}]}},
    ]});
    let response = gateway
        .post("/v1/models/embed-openai:batchEmbedContents", &batch)
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let embeddings = answer["embeddings"].as_array().unwrap();
    assert_eq!(embeddings.len(), 2, "{answer}");
    assert_eq!(values(&embeddings[0]).len(), 8, "the mock's default size");
    assert_ne!(values(&embeddings[0]), values(&embeddings[1]));
    let call = mock.calls().pop().unwrap();
    assert_eq!(call.body["input"], json!(["hello embeddings", "second"]));

    // A batch naming another model, and an unknown member, are refused in Google's envelope.
    for (path, body) in [
        (
            "/v1beta/models/embed-openai:batchEmbedContents",
            json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]}),
        ),
        (
            "/v1beta/models/embed-openai:embedContent",
            json!({"content": {"parts": [{"text": "x"}]}, "nonsense": true}),
        ),
    ] {
        let response = gateway.post(path, &body).await;
        let status = response.status();
        let error: Value = response.json().await.unwrap();
        assert!(status.is_client_error(), "{path}: {status} {error}");
        assert!(error["error"]["status"].is_string(), "{path}: {error}");
    }
}

#[tokio::test]
async fn embeddings_on_anthropic_are_a_clear_400_and_gemini_gets_its_own_method() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, EMBEDDING_MODELS)).await;
    let response = gateway
        .post(
            "/v1beta/models/embed-anthropic:embedContent",
            &embed_body("x"),
        )
        .await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["status"], "INVALID_ARGUMENT", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic"),
        "{error}"
    );

    // The mock's Gemini serves no embedContent (it answers 404), so this checks what llmux sent:
    // the vendor's method and model in the URL, the body with only the models rewritten, and
    // the vendor's error relayed in Google's envelope.
    let batch = json!({"requests": [
        {"model": "models/embed-gemini", "content": {"parts": [{"text": "a"}]}, "taskType": "RETRIEVAL_DOCUMENT"},
    ]});
    let response = gateway
        .post("/v1beta/models/embed-gemini:batchEmbedContents", &batch)
        .await;
    let status = response.status();
    let error: Value = response.json().await.unwrap();
    assert_eq!(status, 404, "{error}");
    assert_eq!(error["error"]["status"], "NOT_FOUND", "{error}");
    let call = mock
        .calls()
        .into_iter()
        .find(|c| c.credential.starts_with("AIza"))
        .unwrap();
    assert_eq!(
        call.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(
        call.body,
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "taskType": "RETRIEVAL_DOCUMENT"},
        ]})
    );
    gateway
        .post("/v1beta/models/embed-gemini:embedContent", &embed_body("b"))
        .await;
    let call = mock.calls().pop().unwrap();
    assert_eq!(
        call.path,
        "/v1beta/models/gemini-embedding-001:embedContent"
    );
    assert_eq!(call.body, embed_body("b"));

    // The model list offers the embedding methods on embedding models.
    let list: Value = gateway.get("/v1beta/models").await.json().await.unwrap();
    let entry = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "models/embed-openai")
        .unwrap();
    assert_eq!(
        entry["supportedGenerationMethods"],
        json!(["embedContent", "batchEmbedContents"])
    );
}
