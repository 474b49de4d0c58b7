use super::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn keys(json: &str) -> Vec<String> {
    let bytes = json.as_bytes();
    members(bytes)
        .unwrap()
        .iter()
        .map(|m| String::from_utf8(bytes[m.key.clone()].to_vec()).unwrap())
        .collect()
}

#[test]
fn lists_top_level_members_only() {
    let body = r#" { "model" : "gpt-4o", "messages": [{"model":"inner","content":"a}\"]{"}], "n":1 ,"x":null} "#;
    assert_eq!(keys(body), vec!["model", "messages", "n", "x"]);
    let m = members(body.as_bytes()).unwrap();
    assert_eq!(&body[m[0].value.clone()], "\"gpt-4o\"");
    assert_eq!(&body[m[2].value.clone()], "1");
}

#[test]
fn rejects_non_objects_and_truncated_input() {
    for bad in [
        "",
        "[]",
        "{",
        "{\"a\"",
        "{\"a\":",
        "{\"a\":1",
        "{\"a\":\"x}",
        "{\"a\":1} x",
        "{\"a\" 1}",
    ] {
        assert!(members(bad.as_bytes()).is_err(), "{bad:?}");
    }
    assert_eq!(members(b"{}").unwrap(), vec![]);
}

#[test]
fn edit_sets_removes_and_appends() {
    let body = br#"{"model":"a","provider":"openai","temperature":0.2,"messages":[]}"#;
    let m = members(body).unwrap();
    let out = edit(
        body,
        &m,
        &[
            Edit::Set("model", b"\"b\""),
            Edit::Remove("provider"),
            Edit::Set("stream_options", br#"{"include_usage":true}"#),
        ],
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v,
        json!({"model":"b","temperature":0.2,"messages":[],"stream_options":{"include_usage":true}})
    );
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[ -~]{0,8}".prop_map(Value::String),
        "\\PC{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z\"\\\\{}]{1,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Replacing `model` changes `model` and nothing else, whatever surrounds it.
    #[test]
    fn rewriting_model_changes_only_model(
        fields in proptest::collection::btree_map("[a-z]{1,6}", arb_json(), 0..6),
        pretty in any::<bool>(),
        new_model in "\\PC{0,10}",
    ) {
        let mut object: serde_json::Map<String, Value> = fields.into_iter().collect();
        object.insert("model".into(), json!("original"));
        let original = Value::Object(object.clone());
        let text = if pretty { serde_json::to_vec_pretty(&original).unwrap() } else { serde_json::to_vec(&original).unwrap() };
        let m = members(&text).unwrap();
        prop_assert_eq!(m.len(), object.len());
        let model = find(&text, &m, "model").unwrap();
        let replacement = serde_json::to_vec(&new_model).unwrap();
        let out = splice(&text, model.value.clone(), &replacement);
        let mut expected = object;
        expected.insert("model".into(), json!(new_model));
        prop_assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), Value::Object(expected));
    }

    /// Arbitrary bytes never panic the scanner.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = members(&bytes);
    }
}
