//! `clean_schema`, one rule per test.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::super::clean_schema;

#[track_caller]
fn check_schema(input: Value, expected: Value) {
    assert_eq!(clean_schema(&input), expected);
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
fn recursive_refs_stop_at_the_depth_limit() {
    let schema = json!({
        "$ref": "#/$defs/Node",
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}, "v": {"type": "integer"}}}}
    });
    let cleaned = clean_schema(&schema);
    let mut depth = 0;
    let mut node = &cleaned;
    while let Some(next) = node.get("properties").and_then(|p| p.get("next")) {
        depth += 1;
        node = next;
    }
    assert_eq!(depth, 8);
    assert_eq!(node, &json!({"type": "object"}));
    // Unresolvable references are cut off the same way.
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
fn very_deep_schemas_are_cut_off() {
    let mut schema = json!({"type": "string"});
    for _ in 0..100 {
        schema = json!({"type": "array", "items": schema});
    }
    let cleaned = clean_schema(&schema);
    let mut depth = 0;
    let mut node = &cleaned;
    while let Some(items) = node.get("items") {
        depth += 1;
        node = items;
    }
    assert!(depth <= 66, "{depth}");
    assert_eq!(node, &json!({"type": "object"}));
}
