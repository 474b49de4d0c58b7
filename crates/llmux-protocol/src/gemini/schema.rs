//! JSON Schema → the OpenAPI-3.0 subset Gemini accepts in `parameters` and `responseSchema`.
//!
//! Gemini rejects unknown keywords (`additionalProperties`, `$schema`, `default`…) with a 400
//! instead of ignoring them, so this keeps an allow-list and rewrites the common constructs it
//! cannot express: `$ref` is inlined, `["T","null"]` and `anyOf [T, null]` become
//! `nullable`, `const` becomes a one-value `enum`, `allOf` is merged and `oneOf` is read as
//! `anyOf`.

use serde_json::{Map, Value};

/// How many `$ref`s may be expanded along one path before the schema is cut off (recursive
/// definitions would otherwise expand forever).
const MAX_REF_DEPTH: usize = 8;

/// How deep the output may nest at all; deeper schemas are cut off the same way.
const MAX_NESTING: usize = 64;

/// Keywords copied unchanged when present.
const COPIED: &[&str] = &[
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
];

/// JSON Schema → the subset Gemini's `parameters`/`responseSchema` accepts.
///
/// Keeps `type`, `format` (only the formats Gemini knows for the type), `description`,
/// `nullable`, `enum`, `properties`, `required`, `items`, `minItems`, `maxItems`, `minimum`,
/// `maximum`, `minLength`, `maxLength`, `pattern`, `anyOf` and `propertyOrdering`, and drops
/// everything else. Local `$ref`s are inlined (up to 8 deep, then `{"type":"object"}`); a type
/// array or an `anyOf` with a `null` member becomes `nullable: true`; `const` and `enum` become
/// string enums (Gemini's enums are strings); `required` keeps only names present in
/// `properties`; empty `properties` are dropped (Gemini refuses them for an object).
pub fn clean_schema(schema: &Value) -> Value {
    Cleaner { root: schema }.clean(schema, 0, 0)
}

struct Cleaner<'a> {
    root: &'a Value,
}

/// What a cut-off or unresolvable branch becomes.
fn any_object() -> Value {
    let mut out = Map::new();
    out.insert("type".into(), Value::String("object".into()));
    Value::Object(out)
}

impl Cleaner<'_> {
    fn clean(&self, schema: &Value, refs: usize, depth: usize) -> Value {
        let Some(node) = schema.as_object() else {
            // `true` (anything) and other non-schemas: no constraint.
            return Value::Object(Map::new());
        };
        if depth > MAX_NESTING {
            return any_object();
        }
        if let Some(reference) = node.get("$ref") {
            return self.inline_ref(node, reference, refs, depth);
        }
        if let Some(Value::Array(types)) = node.get("type") {
            let mut nullable = false;
            let names: Vec<&str> = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| {
                    let null = t.eq_ignore_ascii_case("null");
                    nullable |= null;
                    !null
                })
                .collect();
            if names.len() > 1 {
                return self.split_types(node, &names, nullable, refs, depth);
            }
        }

        let mut out = Map::new();
        let mut nullable = node.get("nullable") == Some(&Value::Bool(true));
        let mut required: Vec<String> = string_list(node.get("required"));

        match node.get("type") {
            Some(Value::String(name)) if name.eq_ignore_ascii_case("null") => nullable = true,
            Some(Value::String(name)) => {
                out.insert("type".into(), Value::String(name.clone()));
            }
            Some(Value::Array(types)) => {
                for name in types.iter().filter_map(Value::as_str) {
                    if name.eq_ignore_ascii_case("null") {
                        nullable = true;
                    } else {
                        out.insert("type".into(), Value::String(name.to_owned()));
                    }
                }
            }
            _ => {}
        }
        if let Some(Value::String(description)) = node.get("description") {
            out.insert("description".into(), Value::String(description.clone()));
        }
        if let Some(Value::String(format)) = node.get("format") {
            out.insert("format".into(), Value::String(format.clone()));
        }
        if let Some(Value::String(pattern)) = node.get("pattern") {
            out.insert("pattern".into(), Value::String(pattern.clone()));
        }
        for key in COPIED {
            if let Some(value) = node.get(*key).filter(|v| v.is_number()) {
                out.insert((*key).into(), value.clone());
            }
        }
        let values = match (node.get("enum"), node.get("const")) {
            (Some(Value::Array(values)), _) => Some(values.clone()),
            (_, Some(value)) => Some(vec![value.clone()]),
            _ => None,
        };
        if let Some(values) = values {
            let mut strings = Vec::with_capacity(values.len());
            for value in values {
                match value {
                    Value::Null => nullable = true,
                    Value::String(s) => strings.push(Value::String(s)),
                    other => strings.push(Value::String(other.to_string())),
                }
            }
            if !strings.is_empty() {
                out.insert("type".into(), Value::String("string".into()));
                out.insert("enum".into(), Value::Array(strings));
            }
        }
        if let Some(Value::Object(properties)) = node.get("properties") {
            let cleaned: Map<String, Value> = properties
                .iter()
                .map(|(name, sub)| (name.clone(), self.clean(sub, refs, depth + 1)))
                .collect();
            out.insert("properties".into(), Value::Object(cleaned));
        }
        match node.get("items") {
            Some(items @ Value::Object(_)) => {
                out.insert("items".into(), self.clean(items, refs, depth + 1));
            }
            // Draft-4 tuple form: Gemini has one item schema, so the first one stands for all.
            Some(Value::Array(items)) => {
                if let Some(first) = items.first() {
                    out.insert("items".into(), self.clean(first, refs, depth + 1));
                }
            }
            _ => {}
        }
        if let Some(Value::Array(all)) = node.get("allOf") {
            for sub in all {
                let cleaned = self.clean(sub, refs, depth + 1);
                required.extend(string_list(cleaned.get("required")));
                merge(&mut out, cleaned);
            }
        }
        // Gemini has no `oneOf`; "exactly one" reads as "any of" for generation purposes.
        let branches = ["anyOf", "oneOf"]
            .iter()
            .filter_map(|key| node.get(*key).and_then(Value::as_array))
            .flatten();
        let mut kept = Vec::new();
        for branch in branches {
            if branch
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("null"))
            {
                nullable = true;
            } else {
                kept.push(self.clean(branch, refs, depth + 1));
            }
        }
        if kept.len() == 1 {
            if let Some(only) = kept.pop() {
                if only.get("nullable") == Some(&Value::Bool(true)) {
                    nullable = true;
                }
                required.extend(string_list(only.get("required")));
                merge(&mut out, only);
            }
        } else if !kept.is_empty() {
            out.insert("anyOf".into(), Value::Array(kept));
        }
        if nullable {
            out.insert("nullable".into(), Value::Bool(true));
        }
        finish(&mut out, node, required);
        Value::Object(out)
    }

    /// Inlines a local `$ref`; sibling `description` and `nullable` win over the target's.
    fn inline_ref(
        &self,
        node: &Map<String, Value>,
        reference: &Value,
        refs: usize,
        depth: usize,
    ) -> Value {
        let target = reference.as_str().and_then(|r| self.resolve(r));
        let mut out = match target {
            Some(target) if refs < MAX_REF_DEPTH => self.clean(target, refs + 1, depth + 1),
            _ => any_object(),
        };
        if let Some(out) = out.as_object_mut() {
            if let Some(Value::String(description)) = node.get("description") {
                out.insert("description".into(), Value::String(description.clone()));
            }
            if node.get("nullable") == Some(&Value::Bool(true)) {
                out.insert("nullable".into(), Value::Bool(true));
            }
        }
        out
    }

    /// A local JSON pointer (`#`, `#/$defs/X`, `#/definitions/X`…) into the root schema.
    fn resolve(&self, reference: &str) -> Option<&Value> {
        let pointer = reference.strip_prefix('#')?;
        if pointer.is_empty() {
            return Some(self.root);
        }
        self.root.pointer(pointer)
    }

    /// `type: [A, B(, null)]` → `anyOf: [{type: A, …}, {type: B, …}]`, each branch keeping the
    /// keywords that apply to it.
    fn split_types(
        &self,
        node: &Map<String, Value>,
        names: &[&str],
        nullable: bool,
        refs: usize,
        depth: usize,
    ) -> Value {
        let mut out = Map::new();
        if let Some(Value::String(description)) = node.get("description") {
            out.insert("description".into(), Value::String(description.clone()));
        }
        let branches = names
            .iter()
            .map(|name| {
                let mut branch = node.clone();
                branch.remove("description");
                branch.remove("nullable");
                branch.insert("type".into(), Value::String((*name).to_owned()));
                self.clean(&Value::Object(branch), refs, depth + 1)
            })
            .collect();
        out.insert("anyOf".into(), Value::Array(branches));
        if nullable || node.get("nullable") == Some(&Value::Bool(true)) {
            out.insert("nullable".into(), Value::Bool(true));
        }
        Value::Object(out)
    }
}

/// The strings of a JSON array (others skipped).
fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Merges a cleaned subschema into `out`: properties are united, other keywords are taken only
/// where `out` has none (`required` is handled by the caller).
fn merge(out: &mut Map<String, Value>, sub: Value) {
    let Value::Object(sub) = sub else {
        return;
    };
    for (key, value) in sub {
        match (key.as_str(), out.get_mut(&key), value) {
            ("required", _, _) => {}
            ("properties", Some(Value::Object(mine)), Value::Object(theirs)) => {
                for (name, schema) in theirs {
                    mine.entry(name).or_insert(schema);
                }
            }
            (_, Some(_), _) => {}
            (_, None, value) => {
                out.insert(key, value);
            }
        }
    }
}

/// Last pass over one node, once its type is known: formats Gemini does not know for the type,
/// empty `properties`, `required` names without a property and stale `propertyOrdering` go.
fn finish(out: &mut Map<String, Value>, node: &Map<String, Value>, required: Vec<String>) {
    let kind = out
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    if let Some(Value::String(format)) = out.get("format") {
        let known = match kind.as_deref() {
            Some("string") => matches!(format.as_str(), "enum" | "date-time"),
            Some("number") => matches!(format.as_str(), "float" | "double"),
            Some("integer") => matches!(format.as_str(), "int32" | "int64"),
            _ => false,
        };
        if !known {
            out.remove("format");
        }
    }
    if out
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        out.remove("properties");
    }
    let names: Vec<String> = out
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut kept: Vec<Value> = Vec::new();
    for name in required {
        if names.contains(&name) && !kept.iter().any(|k| k.as_str() == Some(name.as_str())) {
            kept.push(Value::String(name));
        }
    }
    if kept.is_empty() {
        out.remove("required");
    } else {
        out.insert("required".into(), Value::Array(kept));
    }
    let ordering: Vec<Value> = string_list(node.get("propertyOrdering"))
        .into_iter()
        .filter(|name| names.contains(name))
        .map(Value::String)
        .collect();
    if !ordering.is_empty() {
        out.insert("propertyOrdering".into(), Value::Array(ordering));
    }
}
