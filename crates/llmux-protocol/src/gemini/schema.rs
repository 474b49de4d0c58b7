//! JSON Schema → the OpenAPI-3.0 subset Gemini accepts in `parameters` and `responseSchema`.
//!
//! Gemini rejects unknown keywords (`additionalProperties`, `$schema`, `default`…) with a 400
//! instead of ignoring them, so this keeps an allow-list and rewrites the common constructs it
//! cannot express: `$ref` is inlined, `["T","null"]` and `anyOf [T, null]` become
//! `nullable`, `const` becomes a one-value `enum`, `allOf` is merged and `oneOf` is read as
//! `anyOf`.
//!
//! The conversion is bounded: inlining `$ref`s and splitting type arrays can multiply a small
//! schema into a huge one, so the output is charged against a [`SchemaBudget`] (nodes and bytes,
//! shared by every schema of one request), nesting is limited to [`MAX_SCHEMA_DEPTH`], and a
//! recursive `$ref` is refused. Each of these is a [`SchemaError`] naming the path at fault,
//! never a silent cut-off.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};

/// How deep the output may nest (objects, items, branches and `$ref` hops all count). Deeper
/// schemas are refused: Gemini would not take them, and the converter recurses.
pub const MAX_SCHEMA_DEPTH: usize = 64;

/// The default [`SchemaBudget`] in output nodes (schema objects) for one request.
pub const DEFAULT_SCHEMA_NODES: usize = 100_000;

/// The default [`SchemaBudget`] in output bytes (about the JSON text's size) for one request.
pub const DEFAULT_SCHEMA_BYTES: usize = 8 << 20;

/// Longest property name or `$ref` quoted in an error message, in characters.
const MAX_QUOTED: usize = 64;

/// Keywords copied unchanged when present.
const COPIED: &[&str] = &[
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
];

/// What the conversions of one request may still produce: output schema objects and (roughly)
/// output JSON bytes. Every [`clean_schema_within`] call spends from it, so several schemas of one
/// request (its tools and its response format) share one budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaBudget {
    nodes: usize,
    bytes: usize,
}

impl SchemaBudget {
    /// A budget of `nodes` output schema objects and `bytes` output bytes.
    pub fn new(nodes: usize, bytes: usize) -> Self {
        Self { nodes, bytes }
    }

    /// Output schema objects still allowed.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Output bytes still allowed.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn charge(&mut self, nodes: usize, bytes: usize) -> Result<(), SchemaProblem> {
        match (self.nodes.checked_sub(nodes), self.bytes.checked_sub(bytes)) {
            (Some(n), Some(b)) => {
                self.nodes = n;
                self.bytes = b;
                Ok(())
            }
            _ => {
                // Stays exhausted: a later schema of the same request fails too.
                self.nodes = 0;
                self.bytes = 0;
                Err(SchemaProblem::OverBudget)
            }
        }
    }
}

impl Default for SchemaBudget {
    /// [`DEFAULT_SCHEMA_NODES`] and [`DEFAULT_SCHEMA_BYTES`].
    fn default() -> Self {
        Self::new(DEFAULT_SCHEMA_NODES, DEFAULT_SCHEMA_BYTES)
    }
}

/// Why a schema cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaProblem {
    /// A `$ref` (the string, shortened) points at a schema already being expanded on the same
    /// path: inlining it would never end.
    RefCycle(String),
    /// The output would nest deeper than [`MAX_SCHEMA_DEPTH`].
    TooDeep,
    /// The output would exceed the [`SchemaBudget`].
    OverBudget,
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RefCycle(reference) => write!(f, "$ref {reference} is a cycle"),
            Self::TooDeep => write!(f, "schema nested deeper than {MAX_SCHEMA_DEPTH} levels"),
            Self::OverBudget => f.write_str("schema expands past the conversion budget"),
        }
    }
}

/// A schema that cannot be converted, and where.
///
/// `path` is the location in the *expanded* schema, relative to the schema's root, as dotted
/// keywords: `properties.a.items`, `anyOf[1]`, `type[0]` (a branch of a type array); a property
/// name that is not a plain identifier is quoted (`properties["a b"]`). It is empty at the root.
/// Displayed as `PATH: PROBLEM` (`PROBLEM` alone at the root); [`SchemaError::at`] prefixes the
/// request location, e.g. `tools[0].parameters.properties.a: $ref "#" is a cycle`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SchemaError {
    /// Where, relative to the schema root (empty: the root).
    pub path: String,
    /// What.
    pub problem: SchemaProblem,
}

impl SchemaError {
    /// The message with the schema's own location in the request in front: `at("tools[0]
    /// .parameters")` gives `tools[0].parameters.properties.a: $ref "#" is a cycle`.
    pub fn at(&self, location: &str) -> String {
        match (location.is_empty(), self.path.is_empty()) {
            (true, _) => self.to_string(),
            (false, true) => format!("{location}: {}", self.problem),
            (false, false) if self.path.starts_with('[') => {
                format!("{location}{}: {}", self.path, self.problem)
            }
            (false, false) => format!("{location}.{}: {}", self.path, self.problem),
        }
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}: {}", self.path, self.problem)
        }
    }
}

/// JSON Schema → the subset Gemini's `parameters`/`responseSchema` accepts, with a fresh
/// default [`SchemaBudget`] (see [`clean_schema_within`] for the rules).
pub fn clean_schema(schema: &Value) -> Result<Value, SchemaError> {
    clean_schema_within(schema, &mut SchemaBudget::default())
}

/// JSON Schema → the subset Gemini's `parameters`/`responseSchema` accepts, spending from
/// `budget`.
///
/// Keeps `type`, `format` (only the formats Gemini knows for the type), `description`,
/// `nullable`, `enum`, `properties`, `required`, `items`, `minItems`, `maxItems`, `minimum`,
/// `maximum`, `minLength`, `maxLength`, `pattern`, `anyOf` and `propertyOrdering`, and drops
/// everything else. Local `$ref`s are inlined (an unresolvable one becomes `{"type":"object"}`);
/// a type array or an `anyOf` with a `null` member becomes `nullable: true`; `const` and `enum`
/// become string enums (Gemini's enums are strings); `required` keeps only names present in
/// `properties`; empty `properties` are dropped (Gemini refuses them for an object).
///
/// Fails, naming the path, on a recursive `$ref` (one whose target is already being expanded on
/// the same path, such as `#` anywhere inside the root), on output nested deeper than
/// [`MAX_SCHEMA_DEPTH`], and when the output would exceed `budget` (which is then exhausted).
pub fn clean_schema_within(
    schema: &Value,
    budget: &mut SchemaBudget,
) -> Result<Value, SchemaError> {
    let mut cleaner = Cleaner {
        root: schema,
        budget,
        expanding: vec![schema],
        path: Vec::new(),
    };
    cleaner.clean(schema, 0).map_err(|problem| SchemaError {
        path: render_path(&cleaner.path),
        problem,
    })
}

/// One step of the path to the node being cleaned.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    /// `properties.<name>`.
    Property(&'a str),
    /// A keyword holding one schema (`items`).
    Keyword(&'static str),
    /// A keyword holding an array of schemas (`anyOf[1]`, `items[0]`, `type[0]`).
    Index(&'static str, usize),
}

fn render_path(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in path {
        if !out.is_empty() {
            out.push('.');
        }
        match step {
            Step::Property(name) => {
                out.push_str("properties");
                let plain = !name.is_empty()
                    && name.len() <= MAX_QUOTED
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if plain {
                    out.push('.');
                    out.push_str(name);
                } else {
                    out.push('[');
                    out.push_str(&quote(name));
                    out.push(']');
                }
            }
            Step::Keyword(keyword) => out.push_str(keyword),
            Step::Index(keyword, index) => {
                out.push_str(keyword);
                out.push_str(&format!("[{index}]"));
            }
        }
    }
    out
}

/// `text` as a JSON string, shortened to [`MAX_QUOTED`] characters.
fn quote(text: &str) -> String {
    let short: String = text.chars().take(MAX_QUOTED).collect();
    let mut quoted = Value::String(short).to_string();
    if text.chars().nth(MAX_QUOTED).is_some() {
        quoted.insert(quoted.len() - 1, '…');
    }
    quoted
}

struct Cleaner<'a, 'b> {
    root: &'a Value,
    budget: &'b mut SchemaBudget,
    /// The schemas being expanded on the current path: the root and each `$ref` target.
    expanding: Vec<&'a Value>,
    /// Where the node being cleaned is; left as it was when an error returns.
    path: Vec<Step<'a>>,
}

/// What an unresolvable reference becomes.
fn any_object() -> Value {
    let mut out = Map::new();
    out.insert("type".into(), Value::String("object".into()));
    Value::Object(out)
}

/// About the JSON size of `out`'s own members (nested schemas are charged on their own).
fn shallow_bytes(out: &Map<String, Value>) -> usize {
    let member = |(key, value): (&String, &Value)| {
        key.len()
            + 4
            + match value {
                Value::String(s) => s.len() + 2,
                Value::Array(items) => items
                    .iter()
                    .map(|item| item.as_str().map_or(1, |s| s.len() + 3))
                    .sum(),
                Value::Object(map) if key == "properties" => {
                    map.keys().map(|name| name.len() + 4).sum()
                }
                _ => 8,
            }
    };
    2 + out.iter().map(member).sum::<usize>()
}

impl<'a> Cleaner<'a, '_> {
    fn clean(&mut self, schema: &'a Value, depth: usize) -> Result<Value, SchemaProblem> {
        if depth > MAX_SCHEMA_DEPTH {
            return Err(SchemaProblem::TooDeep);
        }
        let Some(node) = schema.as_object() else {
            // `true` (anything) and other non-schemas: no constraint.
            self.budget.charge(1, 2)?;
            return Ok(Value::Object(Map::new()));
        };
        if let Some(reference) = node.get("$ref") {
            return self.inline_ref(node, reference, depth);
        }
        if let Some(Value::Array(types)) = node.get("type") {
            let mut nullable = false;
            let names: Vec<&'a str> = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| {
                    let null = t.eq_ignore_ascii_case("null");
                    nullable |= null;
                    !null
                })
                .collect();
            if names.len() > 1 {
                return self.split_types(node, &names, nullable, depth);
            }
        }
        self.clean_node(node, None, depth)
    }

    /// Cleans one schema object. With `only_type`, this is one branch of a split type array:
    /// that type stands for the node's `type`, and `description` and `nullable` stay on the
    /// parent.
    fn clean_node(
        &mut self,
        node: &'a Map<String, Value>,
        only_type: Option<&str>,
        depth: usize,
    ) -> Result<Value, SchemaProblem> {
        self.budget.charge(1, 0)?;
        let mut out = Map::new();
        let mut nullable = only_type.is_none() && node.get("nullable") == Some(&Value::Bool(true));
        let mut required: Vec<String> = string_list(node.get("required"));

        match (only_type, node.get("type")) {
            (Some(name), _) => {
                out.insert("type".into(), Value::String(name.to_owned()));
            }
            (None, Some(Value::String(name))) if name.eq_ignore_ascii_case("null") => {
                nullable = true;
            }
            (None, Some(Value::String(name))) => {
                out.insert("type".into(), Value::String(name.clone()));
            }
            (None, Some(Value::Array(types))) => {
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
        if only_type.is_none()
            && let Some(Value::String(description)) = node.get("description")
        {
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
        let values: Option<&[Value]> = match (node.get("enum"), node.get("const")) {
            (Some(Value::Array(values)), _) => Some(values),
            (_, Some(value)) => Some(std::slice::from_ref(value)),
            _ => None,
        };
        if let Some(values) = values {
            let mut strings = Vec::with_capacity(values.len());
            for value in values {
                match value {
                    Value::Null => nullable = true,
                    Value::String(s) => strings.push(Value::String(s.clone())),
                    other => strings.push(Value::String(other.to_string())),
                }
            }
            if !strings.is_empty() {
                out.insert("type".into(), Value::String("string".into()));
                out.insert("enum".into(), Value::Array(strings));
            }
        }
        if let Some(Value::Object(properties)) = node.get("properties") {
            let mut cleaned = Map::new();
            for (name, sub) in properties {
                self.path.push(Step::Property(name));
                let sub = self.clean(sub, depth + 1)?;
                self.path.pop();
                cleaned.insert(name.clone(), sub);
            }
            out.insert("properties".into(), Value::Object(cleaned));
        }
        match node.get("items") {
            Some(items @ Value::Object(_)) => {
                self.path.push(Step::Keyword("items"));
                let items = self.clean(items, depth + 1)?;
                self.path.pop();
                out.insert("items".into(), items);
            }
            // Draft-4 tuple form: Gemini has one item schema, so the first one stands for all.
            Some(Value::Array(items)) => {
                if let Some(first) = items.first() {
                    self.path.push(Step::Index("items", 0));
                    let first = self.clean(first, depth + 1)?;
                    self.path.pop();
                    out.insert("items".into(), first);
                }
            }
            _ => {}
        }
        if let Some(Value::Array(all)) = node.get("allOf") {
            for (index, sub) in all.iter().enumerate() {
                self.path.push(Step::Index("allOf", index));
                let cleaned = self.clean(sub, depth + 1)?;
                self.path.pop();
                required.extend(string_list(cleaned.get("required")));
                merge(&mut out, cleaned);
            }
        }
        // Gemini has no `oneOf`; "exactly one" reads as "any of" for generation purposes.
        let mut kept = Vec::new();
        for key in ["anyOf", "oneOf"] {
            let Some(branches) = node.get(key).and_then(Value::as_array) else {
                continue;
            };
            for (index, branch) in branches.iter().enumerate() {
                if branch
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("null"))
                {
                    nullable = true;
                } else {
                    self.path.push(Step::Index(key, index));
                    kept.push(self.clean(branch, depth + 1)?);
                    self.path.pop();
                }
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
        self.budget.charge(0, shallow_bytes(&out))?;
        Ok(Value::Object(out))
    }

    /// Inlines a local `$ref`; sibling `description` and `nullable` win over the target's.
    fn inline_ref(
        &mut self,
        node: &'a Map<String, Value>,
        reference: &'a Value,
        depth: usize,
    ) -> Result<Value, SchemaProblem> {
        let target = reference.as_str().and_then(|r| self.resolve(r));
        let mut out = match target {
            Some(target) => {
                if self.expanding.iter().any(|t| std::ptr::eq(*t, target)) {
                    let text = reference.as_str().unwrap_or_default();
                    return Err(SchemaProblem::RefCycle(quote(text)));
                }
                self.expanding.push(target);
                let out = self.clean(target, depth + 1)?;
                self.expanding.pop();
                out
            }
            None => {
                self.budget.charge(1, 20)?;
                any_object()
            }
        };
        if let Some(out) = out.as_object_mut() {
            if let Some(Value::String(description)) = node.get("description") {
                self.budget.charge(0, description.len() + 16)?;
                out.insert("description".into(), Value::String(description.clone()));
            }
            if node.get("nullable") == Some(&Value::Bool(true)) {
                out.insert("nullable".into(), Value::Bool(true));
            }
        }
        Ok(out)
    }

    /// A local JSON pointer (`#`, `#/$defs/X`, `#/definitions/X`…) into the root schema.
    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        if pointer.is_empty() {
            return Some(self.root);
        }
        self.root.pointer(pointer)
    }

    /// `type: [A, B(, null)]` → `anyOf: [{type: A, …}, {type: B, …}]`, each branch keeping the
    /// keywords that apply to it.
    fn split_types(
        &mut self,
        node: &'a Map<String, Value>,
        names: &[&str],
        nullable: bool,
        depth: usize,
    ) -> Result<Value, SchemaProblem> {
        self.budget.charge(1, 0)?;
        let mut out = Map::new();
        if let Some(Value::String(description)) = node.get("description") {
            out.insert("description".into(), Value::String(description.clone()));
        }
        let mut branches = Vec::with_capacity(names.len());
        for (index, name) in names.iter().enumerate() {
            self.path.push(Step::Index("type", index));
            branches.push(self.clean_node(node, Some(name), depth + 1)?);
            self.path.pop();
        }
        out.insert("anyOf".into(), Value::Array(branches));
        if nullable || node.get("nullable") == Some(&Value::Bool(true)) {
            out.insert("nullable".into(), Value::Bool(true));
        }
        self.budget.charge(0, shallow_bytes(&out))?;
        Ok(Value::Object(out))
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
    // Map lookups and a set, not list scans: `required` and `properties` may be long.
    let empty = Map::new();
    let properties = out
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut seen: HashSet<&str> = HashSet::new();
    let kept: Vec<Value> = required
        .iter()
        .filter(|name| properties.contains_key(name.as_str()) && seen.insert(name.as_str()))
        .map(|name| Value::String(name.clone()))
        .collect();
    let ordering: Vec<Value> = node
        .get("propertyOrdering")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|name| properties.contains_key(*name))
        .map(|name| Value::String(name.to_owned()))
        .collect();
    if kept.is_empty() {
        out.remove("required");
    } else {
        out.insert("required".into(), Value::Array(kept));
    }
    if !ordering.is_empty() {
        out.insert("propertyOrdering".into(), Value::Array(ordering));
    }
}
