//! `GET /openapi.json` (issue 16): an OpenAPI 3.1 document of llmux's own routes, generated
//! from the route table. Checked here for what a client generator relies on, and against the
//! official OpenAPI 3.1 schema with `openapi-spec-validator` when that tool is installed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn their own peers and load on the test runtime, which ends with the test: nothing to drain"
)]

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::Value;

async fn document() -> Value {
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let response = gateway.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

#[tokio::test]
async fn openapi_json_describes_every_served_route() {
    let doc = document().await;

    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/chat/completions",
        "/v1/responses",
        "/v1/responses/{id}",
        "/v1/messages",
        "/v1/embeddings",
        "/v1/images/text",
        "/v1/models",
        "/v1beta/models/{model}",
        "/health",
        "/health/vendors",
        "/metrics",
        "/admin/keys",
        "/admin/keys/{id}",
        "/admin/requests",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert!(paths["/v1/chat/completions"]["post"]["requestBody"].is_object());
    assert!(paths["/v1/responses/{id}"]["delete"].is_object());
    assert!(paths["/admin/keys/{id}"]["patch"].is_object());

    let mut ids = HashSet::new();
    for (path, item) in paths {
        let declared: HashSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, operation) in item.as_object().unwrap() {
            assert!(
                ids.insert(operation["operationId"].as_str().unwrap().to_owned()),
                "operationId of {method} {path} is unique"
            );
            assert!(operation["responses"]["200"].is_object(), "{method} {path}");
            let in_path: HashSet<&str> = operation["parameters"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(in_path, declared, "path parameters of {method} {path}");
        }
    }
}

#[tokio::test]
async fn openapi_json_passes_the_official_schema_when_the_validator_is_installed() {
    let doc = document().await;
    let dir = temp_dir("openapi");
    let file = dir.join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let check = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output();
    match check {
        Ok(output) if output.status.success() => {
            let out = String::from_utf8_lossy(&output.stdout);
            assert!(out.contains("OK"), "{out}");
        }
        Ok(output) if String::from_utf8_lossy(&output.stderr).contains("No module named") => {
            eprintln!("openapi-spec-validator is not installed: structural checks only");
        }
        Ok(output) => panic!(
            "openapi-spec-validator refused the document:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(_) => eprintln!("python3 is not installed: structural checks only"),
    }
}
