//! Peak memory of translating large requests, measured from the kernel's peak-RSS counter.
//!
//! A 1.5 MB body of 10,000 tools or 100,000 one-character messages must not need hundreds of
//! megabytes to decode into the neutral model and encode for another vendor. The crate forbids
//! `unsafe`, so there is no counting allocator: this binary resets `VmHWM` through
//! `/proc/self/clear_refs` before each translation and reads it after. It holds this one test, so
//! no other test thread allocates meanwhile. Linux only; elsewhere it measures nothing.

// The helpers below run only inside tests, where a failed decode should fail the test.
#![allow(clippy::expect_used)]

use llmux_protocol::neutral::Request;
use llmux_protocol::{anthropic, gemini, openai_chat, responses};

/// Peak memory a translation may use beyond its input, as a multiple of the body's size.
///
/// Conversations stay near 20×: the neutral messages and the vendor body are serialized from
/// borrowed structs. Tools are worse: each schema is a `serde_json::Value` tree in the neutral
/// model (a small object costs a B-tree node of several hundred bytes), the Responses echo keeps
/// a second tree, and the Gemini encoder a cleaned third one; keeping schemas as raw JSON text
/// in `neutral::Tool` would bring them down to the conversations' level.
const MAX_RATIO: f64 = 42.0;

fn status_kib(field: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak RSS growth while `work` runs, in bytes; `None` where the kernel cannot tell.
fn peak_growth(work: impl FnOnce()) -> Option<usize> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    let base = status_kib("VmRSS:")?;
    work();
    let peak = status_kib("VmHWM:")?;
    Some(peak.saturating_sub(base) * 1024)
}

#[derive(Clone, Copy, Debug)]
enum Ingress {
    Chat,
    Responses,
    Messages,
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// 10,000 tools with a small schema each, and one message.
    Tools,
    /// 100,000 one-character messages.
    Messages,
}

fn body(ingress: Ingress, shape: Shape) -> Vec<u8> {
    let schema = r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#;
    let mut items = Vec::new();
    let count = match shape {
        Shape::Tools => 10_000,
        Shape::Messages => 100_000,
    };
    for i in 0..count {
        items.push(match (ingress, shape) {
            (Ingress::Chat, Shape::Tools) => format!(
                r#"{{"type":"function","function":{{"name":"tool_{i}","description":"does {i}","parameters":{schema}}}}}"#
            ),
            (Ingress::Responses, Shape::Tools) => format!(
                r#"{{"type":"function","name":"tool_{i}","description":"does {i}","parameters":{schema}}}"#
            ),
            (Ingress::Messages, Shape::Tools) => format!(
                r#"{{"name":"tool_{i}","description":"does {i}","input_schema":{schema}}}"#
            ),
            (_, Shape::Messages) => {
                let role = if i % 2 == 0 { "user" } else { "assistant" };
                format!(r#"{{"role":"{role}","content":"a"}}"#)
            }
        });
    }
    let list = items.join(",");
    let text = match (ingress, shape) {
        (Ingress::Chat, Shape::Tools) => {
            format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"tools":[{list}]}}"#
            )
        }
        (Ingress::Chat, Shape::Messages) => format!(r#"{{"model":"m","messages":[{list}]}}"#),
        (Ingress::Responses, Shape::Tools) => {
            format!(r#"{{"model":"m","input":"hi","tools":[{list}]}}"#)
        }
        (Ingress::Responses, Shape::Messages) => format!(r#"{{"model":"m","input":[{list}]}}"#),
        (Ingress::Messages, Shape::Tools) => format!(
            r#"{{"model":"m","max_tokens":10,"messages":[{{"role":"user","content":"hi"}}],"tools":[{list}]}}"#
        ),
        (Ingress::Messages, Shape::Messages) => {
            format!(r#"{{"model":"m","max_tokens":10,"messages":[{list}]}}"#)
        }
    };
    text.into_bytes()
}

fn decode(ingress: Ingress, body: &[u8]) -> Request {
    match ingress {
        Ingress::Chat => openai_chat::decode_neutral_request(body).expect("chat decodes"),
        Ingress::Responses => {
            responses::decode_request(body)
                .expect("responses decode")
                .request
        }
        Ingress::Messages => anthropic::decode_request(body).expect("messages decode"),
    }
}

#[derive(Clone, Copy, Debug)]
enum Egress {
    OpenAi,
    Anthropic,
    Gemini,
}

fn encode(egress: Egress, request: &Request) -> Vec<u8> {
    match egress {
        Egress::OpenAi => openai_chat::encode_neutral_request(request),
        Egress::Anthropic => anthropic::encode_request(request, 4096),
        Egress::Gemini => gemini::encode_request(request).expect("gemini encodes"),
    }
}

/// Set in a child process: the scenario it measures (`shape/ingress/egress`).
const SCENARIO_VAR: &str = "LLMUX_AMPLIFICATION_SCENARIO";

/// Runs one scenario in this process and prints its peak growth; does nothing unless the parent
/// test started this process for it.
#[test]
fn measure_one_scenario() {
    let Ok(scenario) = std::env::var(SCENARIO_VAR) else {
        return;
    };
    let mut parts = scenario.split('/');
    let shape = match parts.next() {
        Some("Tools") => Shape::Tools,
        _ => Shape::Messages,
    };
    let ingress = match parts.next() {
        Some("Chat") => Ingress::Chat,
        Some("Responses") => Ingress::Responses,
        _ => Ingress::Messages,
    };
    let egress = match parts.next() {
        Some("OpenAi") => Some(Egress::OpenAi),
        Some("Anthropic") => Some(Egress::Anthropic),
        Some("Gemini") => Some(Egress::Gemini),
        _ => None,
    };
    let body = body(ingress, shape);
    // The decoded request is dropped before the encoded body, as in the gateway.
    let growth = peak_growth(|| {
        let request = decode(ingress, &body);
        if let Some(egress) = egress {
            let encoded = encode(egress, &request);
            drop(request);
            assert!(!encoded.is_empty());
        }
    });
    println!(
        "\nBODY={} GROWTH={}",
        body.len(),
        growth.unwrap_or(usize::MAX)
    );
}

/// Each scenario runs in a fresh process: memory freed by one would otherwise be reused by the
/// next without showing in the peak.
fn measure(shape: Shape, ingress: Ingress, egress: Option<Egress>) -> Option<(usize, usize)> {
    let scenario = format!(
        "{shape:?}/{ingress:?}/{}",
        egress.map_or("decode".to_owned(), |e| format!("{e:?}"))
    );
    let output = std::process::Command::new(std::env::current_exe().ok()?)
        .args([
            "--exact",
            "measure_one_scenario",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO_VAR, &scenario)
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = &stdout[stdout.find("BODY=")?..];
    let mut numbers = line
        .split_whitespace()
        .filter_map(|field| field.split_once('=')?.1.parse::<usize>().ok());
    let body = numbers.next()?;
    let growth = numbers.next().filter(|g| *g != usize::MAX)?;
    Some((body, growth))
}

#[test]
fn translating_large_requests_needs_memory_proportional_to_the_body() {
    if std::env::var(SCENARIO_VAR).is_ok() {
        return;
    }
    let mut report = Vec::new();
    let mut worst: f64 = 0.0;
    for shape in [Shape::Tools, Shape::Messages] {
        for ingress in [Ingress::Chat, Ingress::Responses, Ingress::Messages] {
            let mut row = format!("{shape:?}\t{ingress:?}");
            for egress in [
                None,
                Some(Egress::OpenAi),
                Some(Egress::Anthropic),
                Some(Egress::Gemini),
            ] {
                let label = egress.map_or("decode".to_owned(), |e| format!("→{e:?}"));
                let cell = match measure(shape, ingress, egress) {
                    Some((body, growth)) => {
                        let ratio = growth as f64 / body as f64;
                        worst = worst.max(ratio);
                        format!(
                            "{label} {:.1} MB/{:.2} MB ({ratio:.1}×)",
                            growth as f64 / 1e6,
                            body as f64 / 1e6
                        )
                    }
                    None => format!("{label} n/a"),
                };
                row.push('\t');
                row.push_str(&cell);
            }
            report.push(row);
        }
    }
    println!("{}", report.join("\n"));
    assert!(
        worst <= MAX_RATIO,
        "peak memory up to {worst:.1}× the body:\n{}",
        report.join("\n")
    );
}
