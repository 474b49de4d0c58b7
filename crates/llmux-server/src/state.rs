//! What every request reads: the current configuration snapshot and the shared services.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use llmux_config::Config;
use llmux_router::RoutingTable;
use llmux_telemetry::metrics::Metrics;
use llmux_upstream::images::ImageFetcher;
use llmux_upstream::{Endpoints, UpstreamClient};

/// A config compiled for serving: routing table and prepared upstream endpoints. Immutable;
/// replaced as a whole on reload.
#[derive(Debug)]
pub struct Snapshot {
    /// The validated config.
    pub config: Config,
    /// Combinations and indexes.
    pub table: RoutingTable,
    /// Per-credential URLs and auth headers, in `table.credentials()` order.
    pub endpoints: Endpoints,
    /// Every credential value, to scrub from anything shown or logged.
    pub(crate) secrets: Vec<String>,
}

/// A config that cannot be served.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SnapshotError(#[from] llmux_upstream::Error);

impl Snapshot {
    /// Compiles `config` into a servable snapshot.
    pub fn compile(config: Config) -> Result<Self, SnapshotError> {
        let table = RoutingTable::compile(&config);
        let endpoints = Endpoints::prepare(table.credentials())?;
        let secrets = table
            .credentials()
            .iter()
            .map(|c| c.secret.expose().to_owned())
            .collect();
        Ok(Self {
            config,
            table,
            endpoints,
            secrets,
        })
    }

    pub(crate) fn secret_refs(&self) -> Vec<&str> {
        self.secrets.iter().map(String::as_str).collect()
    }
}

/// Shared state of the running gateway.
#[derive(Debug)]
pub struct Gateway {
    /// The current snapshot; swapped atomically on reload.
    pub snapshot: ArcSwap<Snapshot>,
    /// Pooled upstream client.
    pub client: UpstreamClient,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Image URL downloads for vendors that need inline data.
    pub images: ImageFetcher,
    /// Unix time the process started (the `created` of listed models).
    pub started_unix: u64,
}

impl Gateway {
    /// A gateway serving `snapshot`.
    pub fn new(snapshot: Snapshot) -> Result<Arc<Self>, SnapshotError> {
        let client = UpstreamClient::new(&snapshot.config.timeouts)?;
        let images = ImageFetcher::new(&snapshot.config.images)?;
        Ok(Arc::new(Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            client,
            metrics: Metrics::default(),
            images,
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }))
    }
}
