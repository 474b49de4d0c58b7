//! `clean_schema`, one rule per test.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::super::{
    MAX_SCHEMA_DEPTH, SchemaBudget, SchemaError, SchemaProblem, clean_schema, clean_schema_within,
    encode_request,
};
use crate::neutral::{Request, ResponseFormat, Tool};

#[track_caller]
fn check_schema(input: Value, expected: Value) {
    assert_eq!(clean_schema(&input).expect("cleans"), expected);
}

#[test]
fn keeps_the_supported_keywords() {
    let schema = json!({
        "type": "object",
        "description": "a person",
        "nullable": true,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 50, "pattern": "^[A-Z]"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
            "age": {"type": "integer", "minimum": 0, "maximum": 150, "format": "int32"},
            "born": {"type": "string", "format": "date-time"},
            "kind": {"type": "string", "format": "enum", "enum": ["a", "b"]}
        },
        "required": ["name"],
        "propertyOrdering": ["name", "age"]
    });
    check_schema(schema.clone(), schema);
}

#[test]
fn drops_unknown_and_unsupported_keywords() {
    check_schema(
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "urn:x",
            "$comment": "c",
            "title": "T",
            "type": "object",
            "additionalProperties": false,
            "patternProperties": {"^x": {"type": "string"}},
            "unevaluatedProperties": false,
            "strict": true,
            "default": {},
            "examples": [{}],
            "x-vendor": 1,
            "properties": {"a": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 2, "default": 1}}
        }),
        json!({"type": "object", "properties": {"a": {"type": "number"}}}),
    );
}

#[test]
fn keeps_only_formats_gemini_knows_for_the_type() {
    check_schema(
        json!({"type": "object", "properties": {
            "email": {"type": "string", "format": "email"},
            "uri": {"type": "string", "format": "uri"},
            "when": {"type": "string", "format": "date-time"},
            "ratio": {"type": "number", "format": "double"},
            "count": {"type": "integer", "format": "int64"},
            "odd": {"type": "integer", "format": "date-time"}
        }}),
        json!({"type": "object", "properties": {
            "email": {"type": "string"},
            "uri": {"type": "string"},
            "when": {"type": "string", "format": "date-time"},
            "ratio": {"type": "number", "format": "double"},
            "count": {"type": "integer", "format": "int64"},
            "odd": {"type": "integer"}
        }}),
    );
}

#[test]
fn inlines_local_refs() {
    check_schema(
        json!({
            "type": "object",
            "properties": {
                "home": {"$ref": "#/$defs/Address", "description": "where they live"},
                "work": {"$ref": "#/definitions/Address"}
            },
            "$defs": {"Address": {"type": "object", "title": "Address", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            "definitions": {"Address": {"type": "object", "properties": {"zip": {"type": "string"}}}}
        }),
        json!({
            "type": "object",
            "properties": {
                "home": {"type": "object", "description": "where they live", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                "work": {"type": "object", "properties": {"zip": {"type": "string"}}}
            }
        }),
    );
}

#[test]
fn recursive_refs_are_an_error_naming_the_path() {
    let schema = json!({
        "$ref": "#/$defs/Node",
        "$defs": {"Node": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/Node"}}}}
    });
    let err = clean_schema(&schema).expect_err("a cycle");
    assert_eq!(
        err,
        SchemaError {
            path: "properties.next".into(),
            problem: SchemaProblem::RefCycle("\"#/$defs/Node\"".into()),
        }
    );
    assert_eq!(
        err.to_string(),
        r##"properties.next: $ref "#/$defs/Node" is a cycle"##
    );
    assert_eq!(
        err.at("tools[2].parameters"),
        r##"tools[2].parameters.properties.next: $ref "#/$defs/Node" is a cycle"##
    );
    // The root refers to itself from inside; a ref to itself; two definitions refer to each
    // other.
    let root =
        json!({"type": "object", "properties": {"a": {"type": "array", "items": {"$ref": "#"}}}});
    assert_eq!(
        clean_schema(&root).expect_err("cycle").to_string(),
        r##"properties.a.items: $ref "#" is a cycle"##
    );
    let own = json!({"$ref": "#"});
    assert_eq!(
        clean_schema(&own).expect_err("cycle").to_string(),
        r##"$ref "#" is a cycle"##
    );
    let mutual = json!({
        "anyOf": [{"$ref": "#/$defs/A"}, {"type": "string"}],
        "$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"allOf": [{"$ref": "#/$defs/A"}]}}
    });
    assert_eq!(
        clean_schema(&mutual).expect_err("cycle").to_string(),
        r##"anyOf[0].allOf[0]: $ref "#/$defs/A" is a cycle"##
    );
    // Unresolvable references are no constraint.
    check_schema(
        json!({"$ref": "https://example.com/schema.json"}),
        json!({"type": "object"}),
    );
    check_schema(
        json!({"$ref": "#/$defs/Missing"}),
        json!({"type": "object"}),
    );
}

#[test]
fn a_definition_used_many_times_and_ref_chains_are_not_cycles() {
    // Each definition is used twice by the one before: not a cycle, just repetition.
    let mut defs = serde_json::Map::new();
    for level in 0..3 {
        let next = format!("#/$defs/L{}", level + 1);
        defs.insert(
            format!("L{level}"),
            json!({"type": "object", "properties": {"x": {"$ref": next}, "y": {"$ref": next}}}),
        );
    }
    defs.insert("L3".into(), json!({"type": "string"}));
    let schema = json!({"$ref": "#/$defs/L0", "$defs": defs});
    let cleaned = clean_schema(&schema).expect("no cycle");
    assert_eq!(
        cleaned["properties"]["y"]["properties"]["x"]["properties"]["y"],
        json!({"type": "string"})
    );
}

/// `a` uses `b` ten times, `b` uses `c` ten times…: `levels` levels expand to 10^levels nodes.
fn wide_bomb(levels: usize) -> Value {
    let mut defs = serde_json::Map::new();
    for level in 0..levels {
        let next = json!({"$ref": format!("#/$defs/d{}", level + 1)});
        let properties: serde_json::Map<String, Value> =
            (0..10).map(|i| (format!("p{i}"), next.clone())).collect();
        defs.insert(
            format!("d{level}"),
            json!({"type": "object", "properties": properties}),
        );
    }
    defs.insert(format!("d{levels}"), json!({"type": "string"}));
    json!({"$ref": "#/$defs/d0", "$defs": defs})
}

#[test]
fn expansion_bombs_are_over_budget_quickly() {
    let started = std::time::Instant::now();
    // Six `{"$ref":"#"}` properties: a 100-byte schema that used to expand to gigabytes.
    let six: serde_json::Map<String, Value> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|name| ((*name).to_owned(), json!({"$ref": "#"})))
        .collect();
    let schema = json!({"type": "object", "properties": six});
    let err = clean_schema(&schema).expect_err("a cycle");
    assert_eq!(err.path, "properties.a");
    assert!(matches!(err.problem, SchemaProblem::RefCycle(_)));

    // Not recursive, but 10^6 nodes once inlined.
    let err = clean_schema(&wide_bomb(6)).expect_err("over budget");
    assert_eq!(err.problem, SchemaProblem::OverBudget);
    assert!(err.path.starts_with("properties.p"), "{}", err.path);
    assert!(
        err.to_string()
            .ends_with(": schema expands past the conversion budget"),
        "{err}"
    );
    // Three levels (1,111 nodes) fit.
    assert!(clean_schema(&wide_bomb(3)).is_ok());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_budget_is_shared_and_counts_bytes_too() {
    let mut budget = SchemaBudget::new(1_000_000, 10_000);
    let big = json!({"type": "string", "description": "x".repeat(6_000)});
    assert!(clean_schema_within(&big, &mut budget).is_ok());
    assert!(budget.bytes() < 4_000);
    let err = clean_schema_within(&big, &mut budget).expect_err("bytes spent");
    assert_eq!(err.problem, SchemaProblem::OverBudget);
    // Once exhausted, it stays exhausted.
    assert_eq!(budget.nodes(), 0);
    assert!(clean_schema_within(&json!({}), &mut budget).is_err());
}

#[test]
fn the_encoder_refuses_a_bomb_with_the_schema_path() {
    let six: serde_json::Map<String, Value> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|name| ((*name).to_owned(), json!({"$ref": "#"})))
        .collect();
    let bomb = json!({"type": "object", "properties": six});
    let tool = |parameters: Value| Tool {
        name: "f".into(),
        description: None,
        parameters: Some(parameters),
        strict: None,
    };
    let request = Request {
        model: "gemini-2.5-flash".into(),
        tools: vec![tool(json!({"type": "object"})), tool(bomb.clone())],
        ..Request::default()
    };
    let err = encode_request(&request).expect_err("refused");
    assert_eq!(
        err.0,
        r##"tools[1].parameters.properties.a: $ref "#" is a cycle"##
    );
    let request = Request {
        model: "gemini-2.5-flash".into(),
        response_format: Some(ResponseFormat::JsonSchema {
            name: "r".into(),
            schema: wide_bomb(6),
            strict: None,
        }),
        ..Request::default()
    };
    let err = encode_request(&request).expect_err("refused");
    assert!(
        err.0.starts_with("response_format.schema.properties.p")
            && err.0.ends_with("schema expands past the conversion budget"),
        "{}",
        err.0
    );
    // Many tools share one budget: 2,000 tools of 100 nodes each are 200,000 nodes.
    let properties: serde_json::Map<String, Value> = (0..99)
        .map(|i| (format!("p{i}"), json!({"type": "string"})))
        .collect();
    let schema = json!({"type": "object", "properties": properties});
    let request = Request {
        model: "gemini-2.5-flash".into(),
        tools: vec![tool(schema); 2_000],
        ..Request::default()
    };
    let err = encode_request(&request).expect_err("over budget");
    assert!(err.0.starts_with("tools[1000].parameters"), "{}", err.0);
}

#[test]
fn long_required_and_ordering_lists_are_linear() {
    let n = 50_000;
    let properties: serde_json::Map<String, Value> = (0..n)
        .map(|i| (format!("p{i}"), json!({"type": "string"})))
        .collect();
    let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    let schema = json!({"type": "object", "properties": properties, "required": names, "propertyOrdering": names});
    let started = std::time::Instant::now();
    let cleaned = clean_schema(&schema).expect("cleans");
    assert_eq!(cleaned["required"].as_array().map(Vec::len), Some(n));
    assert_eq!(
        cleaned["propertyOrdering"].as_array().map(Vec::len),
        Some(n)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn const_becomes_a_one_value_enum() {
    check_schema(
        json!({"const": "fixed", "description": "d"}),
        json!({"type": "string", "enum": ["fixed"], "description": "d"}),
    );
}

#[test]
fn enum_values_become_strings() {
    check_schema(
        json!({"type": "integer", "format": "int32", "enum": [1, 2, 3]}),
        json!({"type": "string", "enum": ["1", "2", "3"]}),
    );
    check_schema(
        json!({"enum": ["a", true, null]}),
        json!({"type": "string", "enum": ["a", "true"], "nullable": true}),
    );
}

#[test]
fn type_arrays_with_null_become_nullable() {
    check_schema(
        json!({"type": ["string", "null"], "description": "maybe"}),
        json!({"type": "string", "nullable": true, "description": "maybe"}),
    );
    check_schema(
        json!({"type": ["null", "integer"]}),
        json!({"type": "integer", "nullable": true}),
    );
    check_schema(
        json!({"type": ["string", "integer", "null"], "description": "either"}),
        json!({
            "description": "either",
            "nullable": true,
            "anyOf": [{"type": "string"}, {"type": "integer"}]
        }),
    );
}

#[test]
fn any_of_with_null_becomes_the_others_plus_nullable() {
    check_schema(
        json!({"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}], "description": "opt"}),
        json!({"type": "string", "maxLength": 3, "nullable": true, "description": "opt"}),
    );
    check_schema(
        json!({"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}),
        json!({"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": true}),
    );
    // Pydantic's Optional[Model].
    check_schema(
        json!({
            "type": "object",
            "properties": {"pet": {"anyOf": [{"$ref": "#/$defs/Pet"}, {"type": "null"}], "default": null}},
            "$defs": {"Pet": {"type": "object", "properties": {"name": {"type": "string"}}}}
        }),
        json!({
            "type": "object",
            "properties": {"pet": {"type": "object", "properties": {"name": {"type": "string"}}, "nullable": true}}
        }),
    );
}

#[test]
fn one_of_reads_as_any_of_and_all_of_merges() {
    check_schema(
        json!({"oneOf": [{"type": "string"}, {"type": "number"}]}),
        json!({"anyOf": [{"type": "string"}, {"type": "number"}]}),
    );
    check_schema(
        json!({"allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer"}}, "required": ["b", "zz"]}
        ]}),
        json!({
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
            "required": ["a", "b"]
        }),
    );
}

#[test]
fn required_keeps_only_existing_properties() {
    check_schema(
        json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b", "a"]}),
        json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
    );
    check_schema(
        json!({"type": "object", "required": ["a"]}),
        json!({"type": "object"}),
    );
}

#[test]
fn empty_properties_are_dropped() {
    check_schema(
        json!({"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}),
        json!({"type": "object"}),
    );
}

#[test]
fn items_and_non_schemas() {
    check_schema(
        json!({"type": "array", "items": [{"type": "string"}, {"type": "number"}]}),
        json!({"type": "array", "items": {"type": "string"}}),
    );
    check_schema(json!(true), json!({}));
    check_schema(
        json!({"type": "array", "items": true}),
        json!({"type": "array"}),
    );
    check_schema(json!({"type": "STRING"}), json!({"type": "STRING"}));
}

#[test]
fn very_deep_schemas_are_an_error() {
    let nest = |levels: usize| {
        let mut schema = json!({"type": "string"});
        for _ in 0..levels {
            schema = json!({"type": "array", "items": schema});
        }
        schema
    };
    assert!(clean_schema(&nest(MAX_SCHEMA_DEPTH)).is_ok());
    let err = clean_schema(&nest(100)).expect_err("too deep");
    assert_eq!(err.problem, SchemaProblem::TooDeep);
    assert_eq!(err.path, vec!["items"; MAX_SCHEMA_DEPTH + 1].join("."));
    assert_eq!(
        err.to_string(),
        format!("{}: schema nested deeper than 64 levels", err.path)
    );
    // A chain of references nests too, even though the path does not grow.
    let mut defs = serde_json::Map::new();
    for i in 0..200 {
        defs.insert(
            format!("d{i}"),
            json!({"$ref": format!("#/$defs/d{}", i + 1)}),
        );
    }
    let chain = json!({"$ref": "#/$defs/d0", "$defs": defs});
    assert_eq!(
        clean_schema(&chain).expect_err("too deep").problem,
        SchemaProblem::TooDeep
    );
}

#[test]
fn odd_property_names_are_quoted_in_the_path() {
    let schema = json!({"properties": {"a b": {"properties": {"c": {"$ref": "#"}}}}});
    assert_eq!(
        clean_schema(&schema).expect_err("cycle").to_string(),
        r##"properties["a b"].properties.c: $ref "#" is a cycle"##
    );
}
