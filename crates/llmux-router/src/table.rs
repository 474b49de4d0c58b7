//! Compiling a config into indexes, and answering "which combinations may serve this request".

use std::collections::HashMap;
use std::sync::Arc;

use llmux_config::{
    Config, Credential, Model, ModelKind, Price, Pricing, Routing, RoutingPolicy,
    UnknownModelPolicy,
};

use crate::{Pick, Stats, StatsTable, infer_vendor};

/// One (credential, model) pair.
#[derive(Debug)]
pub struct Combination {
    /// Index into [`RoutingTable::credentials`].
    pub credential: usize,
    /// The model entry.
    pub model: Arc<Model>,
}

/// Which API the request came in on: chat pools never contain embedding models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Chat (and later responses/messages) requests.
    Chat,
    /// Embeddings requests.
    Embeddings,
}

/// Capabilities a request needs, as a bit set over the seed's `support_*` flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Image input.
    pub image: bool,
    /// Video input.
    pub video: bool,
    /// Tool definitions.
    pub tools: bool,
    /// Streaming.
    pub streaming: bool,
}

impl Needs {
    fn mask(self) -> usize {
        usize::from(self.image)
            | usize::from(self.video) << 1
            | usize::from(self.tools) << 2
            | usize::from(self.streaming) << 3
    }
}

/// What the request asks of routing.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// Chat or embeddings.
    pub endpoint: Endpoint,
    /// The requested model, if any.
    pub model: Option<&'a str>,
    /// `?vendor=` or the body's `provider`.
    pub vendor: Option<&'a str>,
    /// Capabilities needed.
    pub needs: Needs,
}

/// Why no combination can serve a request. Messages are safe for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// `?vendor=` names a vendor without credentials.
    #[error("unknown vendor '{vendor}'; known vendors: {}", known.join(", "))]
    UnknownVendor {
        /// The vendor asked for.
        vendor: String,
        /// Vendors with at least one credential.
        known: Vec<String>,
    },
    /// The model is not configured and the policy does not allow passing it through.
    #[error("model '{model}' is not configured{}", hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    ModelNotFound {
        /// The model asked for.
        model: String,
        /// What the client can do instead.
        hint: Option<String>,
    },
    /// Models exist, but none combines the filters and capabilities asked for.
    #[error("no model {scope} supports the required capabilities ({needs})")]
    NoCapableModel {
        /// Which pool was searched.
        scope: String,
        /// The capabilities asked for.
        needs: String,
    },
    /// Nothing at all matches (e.g. embeddings with no embedding model configured).
    #[error("no combination available {0}")]
    Empty(String),
}

/// Combinations of one scope, by needed-capability mask: `lists[mask]` holds the combinations
/// whose model supports every capability in `mask`. Lists equal to the unfiltered one share it.
#[derive(Debug, Clone)]
struct CapabilityIndex {
    lists: [Arc<[u32]>; 16],
}

impl CapabilityIndex {
    fn build(members: &[u32], combinations: &[Combination]) -> Self {
        let all: Arc<[u32]> = members.into();
        let lists = std::array::from_fn(|mask| {
            if mask == 0 {
                return all.clone();
            }
            let filtered: Vec<u32> = members
                .iter()
                .copied()
                .filter(|&i| supports(&combinations[i as usize].model, mask))
                .collect();
            if filtered.len() == all.len() {
                all.clone()
            } else {
                filtered.into()
            }
        });
        Self { lists }
    }

    fn get(&self, needs: Needs) -> &[u32] {
        &self.lists[needs.mask()]
    }

    fn is_empty(&self) -> bool {
        self.lists[0].is_empty()
    }
}

fn supports(model: &Model, mask: usize) -> bool {
    let caps = model.capabilities;
    (mask & 1 == 0 || caps.image)
        && (mask & 2 == 0 || caps.video)
        && (mask & 4 == 0 || caps.tools)
        && (mask & 8 == 0 || caps.streaming)
}

#[derive(Debug, Default)]
struct Scope {
    all: Option<CapabilityIndex>,
    by_vendor: HashMap<String, CapabilityIndex>,
}

/// The compiled, immutable routing table.
#[derive(Debug)]
pub struct RoutingTable {
    credentials: Vec<Credential>,
    combinations: Vec<Combination>,
    /// Vendors that have credentials, sorted.
    vendors: Vec<String>,
    credentials_by_vendor: HashMap<String, Vec<u32>>,
    chat_pool: Scope,
    embedding_pool: Scope,
    /// Keyed by configured `model` and by `name`.
    by_model: HashMap<String, Scope>,
    policy: UnknownModelPolicy,
    /// Policies and fallback chains (`routing:`).
    pub(crate) routing: Routing,
    /// Prices for models passed through unchanged.
    pub(crate) pricing: Pricing,
    /// Each combination's price, looked up once (prefix match) at compile time.
    pub(crate) prices: Vec<Option<Price>>,
}

/// The combinations that may serve one request; pick one with [`Candidates::pick`].
#[derive(Debug, Clone, Copy)]
pub enum Candidates<'t> {
    /// Configured combinations (indexes into the table).
    Configured(&'t RoutingTable, &'t [u32]),
    /// A model passed through unchanged to an inferred vendor, over that vendor's credentials.
    PassThrough {
        /// The table.
        table: &'t RoutingTable,
        /// The vendor's credentials.
        credentials: &'t [u32],
        /// The model, as requested.
        model: &'t str,
    },
}

/// The chosen upstream for one attempt.
#[derive(Debug, Clone, Copy)]
pub struct Target<'t> {
    /// Index of the combination in [`RoutingTable::combinations`]; `None` for a model passed
    /// through to an inferred vendor.
    pub combination: Option<usize>,
    /// Index of the credential in [`RoutingTable::credentials`].
    pub credential_index: usize,
    /// The credential to use.
    pub credential: &'t Credential,
    /// The model to send upstream.
    pub upstream_model: &'t str,
    /// The public name for metrics: the alias, the configured model, or "passthrough".
    pub public_name: &'t str,
}

impl<'t> Candidates<'t> {
    /// How many candidates there are.
    pub fn len(&self) -> usize {
        match self {
            Self::Configured(_, list) => list.len(),
            Self::PassThrough { credentials, .. } => credentials.len(),
        }
    }

    /// Whether there is no candidate.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th candidate.
    pub fn get(&self, i: usize) -> Option<Target<'t>> {
        match *self {
            Self::Configured(table, list) => {
                let index = *list.get(i)? as usize;
                let c = &table.combinations[index];
                Some(Target {
                    combination: Some(index),
                    credential_index: c.credential,
                    credential: &table.credentials[c.credential],
                    upstream_model: &c.model.model,
                    public_name: c.model.public_name(),
                })
            }
            Self::PassThrough {
                table,
                credentials,
                model,
            } => {
                let credential_index = *credentials.get(i)? as usize;
                Some(Target {
                    combination: None,
                    credential_index,
                    credential: &table.credentials[credential_index],
                    upstream_model: model,
                    public_name: "passthrough",
                })
            }
        }
    }

    /// The `i`-th candidate's model (`None` for a model passed through).
    pub(crate) fn model(&self, i: usize) -> Option<&'t Model> {
        match *self {
            Self::Configured(table, list) => {
                Some(&table.combinations.get(*list.get(i)? as usize)?.model)
            }
            Self::PassThrough { .. } => None,
        }
    }

    /// The `i`-th candidate's price per million tokens, if the pricing table knows its model.
    pub(crate) fn price(&self, i: usize) -> Option<Price> {
        match *self {
            Self::Configured(table, list) => *table.prices.get(*list.get(i)? as usize)?,
            Self::PassThrough { table, model, .. } => table.pricing.price(model),
        }
    }

    /// The `i`-th candidate's live statistics in `stats`.
    pub(crate) fn stats<'s>(&self, stats: &'s StatsTable, i: usize) -> Option<&'s Stats> {
        match *self {
            Self::Configured(_, list) => stats.combination(*list.get(i)? as usize),
            Self::PassThrough { credentials, .. } => {
                stats.credential(*credentials.get(i)? as usize)
            }
        }
        .map(AsRef::as_ref)
    }

    /// Chooses one candidate uniformly at random: O(1). The attempt loop uses
    /// [`choose`](crate::choose), which also knows availability, tried candidates and policies.
    pub fn pick(&self, rng: &mut impl Pick) -> Option<Target<'t>> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        self.get(rng.index(len))
    }
}

impl RoutingTable {
    /// Compiles a validated config. Combinations are every (credential, model) pair whose
    /// vendors match, in config order (credentials outer, models inner).
    pub fn compile(config: &Config) -> Self {
        let models: Vec<Arc<Model>> = config.models.iter().cloned().map(Arc::new).collect();
        let mut combinations = Vec::new();
        let mut credentials_by_vendor: HashMap<String, Vec<u32>> = HashMap::new();
        for (ci, credential) in config.credentials.iter().enumerate() {
            credentials_by_vendor
                .entry(credential.vendor.clone())
                .or_default()
                .push(index(ci));
            for model in models.iter().filter(|m| m.vendor == credential.vendor) {
                combinations.push(Combination {
                    credential: ci,
                    model: model.clone(),
                });
            }
        }
        let mut vendors: Vec<String> = credentials_by_vendor.keys().cloned().collect();
        vendors.sort();

        let chat: Vec<u32> = filter(&combinations, |c| c.model.kind == ModelKind::Chat);
        let embedding: Vec<u32> = filter(&combinations, |c| c.model.kind == ModelKind::Embedding);
        let chat_pool = build_scope(&chat, &combinations);
        let embedding_pool = build_scope(&embedding, &combinations);

        let mut keyed: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, c) in combinations.iter().enumerate() {
            keyed
                .entry(c.model.model.clone())
                .or_default()
                .push(index(i));
            if let Some(name) = &c.model.name
                && name != &c.model.model
            {
                keyed.entry(name.clone()).or_default().push(index(i));
            }
        }
        let by_model = keyed
            .into_iter()
            .map(|(key, members)| (key, build_scope(&members, &combinations)))
            .collect();

        let prices = combinations
            .iter()
            .map(|c| config.pricing.price(&c.model.model))
            .collect();
        Self {
            credentials: config.credentials.clone(),
            prices,
            pricing: config.pricing.clone(),
            routing: config.routing.clone(),
            combinations,
            vendors,
            credentials_by_vendor,
            chat_pool,
            embedding_pool,
            by_model,
            policy: config.routing.unknown_model,
        }
    }

    /// Every combination, in config order.
    pub fn combinations(&self) -> &[Combination] {
        &self.combinations
    }

    /// Every credential, in config order.
    pub fn credentials(&self) -> &[Credential] {
        &self.credentials
    }

    /// Vendors with at least one credential, sorted.
    pub fn vendors(&self) -> &[String] {
        &self.vendors
    }

    /// The routing options the table was compiled with: policies and fallback chains.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// The policy for a request that asked for `model`: the `routing.groups` entry of that
    /// name, else `routing.policy` (also for a request without a model, or one served by the
    /// pool or passed through).
    pub fn policy_for(&self, model: Option<&str>) -> RoutingPolicy {
        match model {
            Some(name) => self.routing.policy_for(name),
            None => self.routing.policy,
        }
    }

    /// The combinations that may serve `query` (DESIGN.md routing rules 1–4).
    pub fn candidates<'t>(&'t self, query: &Query<'t>) -> Result<Candidates<'t>, RouteError> {
        if let Some(vendor) = query.vendor
            && !self.credentials_by_vendor.contains_key(vendor)
        {
            return Err(RouteError::UnknownVendor {
                vendor: vendor.to_owned(),
                known: self.vendors.clone(),
            });
        }
        if let Some(model) = query.model
            && let Some(scope) = self.by_model.get(model)
        {
            // The description is only formatted for an error (not per request).
            return self.scope_candidates(scope, query, || format!("named '{model}'"));
        }
        self.unknown_model(query)
    }

    fn unknown_model<'t>(&'t self, query: &Query<'t>) -> Result<Candidates<'t>, RouteError> {
        let inferred = query.model.and_then(infer_vendor);
        let pass_through = |vendor: &str, model: &'t str| {
            self.credentials_by_vendor
                .get(vendor)
                .map(|credentials| Candidates::PassThrough {
                    table: self,
                    credentials,
                    model,
                })
        };
        let pool = || {
            let pool = match query.endpoint {
                Endpoint::Chat => &self.chat_pool,
                Endpoint::Embeddings => &self.embedding_pool,
            };
            self.scope_candidates(pool, query, || "in the pool".to_owned())
        };
        let not_found = |hint: &str| RouteError::ModelNotFound {
            model: query.model.unwrap_or_default().to_owned(),
            hint: Some(hint.to_owned()),
        };
        match (self.policy, query.model) {
            (UnknownModelPolicy::Reject, None) => Err(RouteError::ModelNotFound {
                model: String::new(),
                hint: Some("a 'model' is required".into()),
            }),
            (UnknownModelPolicy::Reject, Some(_)) => {
                Err(not_found("GET /v1/models lists the configured models"))
            }
            (UnknownModelPolicy::Pool, _) | (UnknownModelPolicy::InferThenPool, None) => pool(),
            (UnknownModelPolicy::Infer, None) => Err(RouteError::ModelNotFound {
                model: String::new(),
                hint: Some("a 'model' is required".into()),
            }),
            (UnknownModelPolicy::Infer, Some(model)) => {
                // An explicit vendor filter says where the model belongs.
                let vendor = query.vendor.or(inferred);
                match vendor.and_then(|v| pass_through(v, model)) {
                    Some(candidates) => Ok(candidates),
                    None => Err(not_found(
                        "its vendor cannot be inferred from the name; pass ?vendor= or configure it",
                    )),
                }
            }
            (UnknownModelPolicy::InferThenPool, Some(model)) => {
                let usable = inferred.filter(|v| query.vendor.is_none_or(|f| f == *v));
                match usable.and_then(|v| pass_through(v, model)) {
                    Some(candidates) => Ok(candidates),
                    None => pool(),
                }
            }
        }
    }

    fn scope_candidates<'t>(
        &'t self,
        scope: &'t Scope,
        query: &Query<'t>,
        what: impl Fn() -> String,
    ) -> Result<Candidates<'t>, RouteError> {
        let index = match query.vendor {
            Some(vendor) => scope.by_vendor.get(vendor),
            None => scope.all.as_ref(),
        };
        let Some(index) = index.filter(|i| !i.is_empty()) else {
            let vendor = query
                .vendor
                .map(|v| format!(" for vendor '{v}'"))
                .unwrap_or_default();
            let kind = match query.endpoint {
                Endpoint::Chat => "chat",
                Endpoint::Embeddings => "embedding",
            };
            return Err(RouteError::Empty(format!(
                "{}{vendor} (no {kind} model)",
                what()
            )));
        };
        let list = index.get(query.needs);
        if list.is_empty() {
            return Err(RouteError::NoCapableModel {
                scope: format!(
                    "{}{}",
                    what(),
                    query
                        .vendor
                        .map(|v| format!(" for vendor '{v}'"))
                        .unwrap_or_default()
                ),
                needs: describe(query.needs),
            });
        }
        Ok(Candidates::Configured(self, list))
    }
}

fn describe(needs: Needs) -> String {
    let mut parts = Vec::new();
    for (on, name) in [
        (needs.image, "images"),
        (needs.video, "video"),
        (needs.tools, "tools"),
        (needs.streaming, "streaming"),
    ] {
        if on {
            parts.push(name);
        }
    }
    parts.join(", ")
}

fn filter(combinations: &[Combination], keep: impl Fn(&Combination) -> bool) -> Vec<u32> {
    combinations
        .iter()
        .enumerate()
        .filter(|(_, c)| keep(c))
        .map(|(i, _)| index(i))
        .collect()
}

fn build_scope(members: &[u32], combinations: &[Combination]) -> Scope {
    let mut by_vendor: HashMap<String, Vec<u32>> = HashMap::new();
    for &i in members {
        by_vendor
            .entry(combinations[i as usize].model.vendor.clone())
            .or_default()
            .push(i);
    }
    Scope {
        all: Some(CapabilityIndex::build(members, combinations)),
        by_vendor: by_vendor
            .into_iter()
            .map(|(v, m)| (v, CapabilityIndex::build(&m, combinations)))
            .collect(),
    }
}

/// Tables hold at most u32::MAX combinations; indexes are stored as u32 to halve the memory.
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
