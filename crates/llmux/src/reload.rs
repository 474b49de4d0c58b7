//! Hot reload: on SIGHUP or when a config file changes, load and validate the config again and
//! swap it in atomically. An invalid config is logged and the running one keeps serving.
//! Files are polled (every second, by modification time and size) rather than watched, which
//! also works for Kubernetes ConfigMap symlink swaps and network filesystems.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use llmux_config::Source;
use llmux_server::Gateway;

/// The paths a source reads.
fn paths(source: &Source) -> Vec<PathBuf> {
    match source {
        Source::File(path) => vec![path.clone()],
        Source::Seed {
            credentials,
            models,
        } => vec![credentials.clone(), models.clone()],
        Source::Demo => Vec::new(),
    }
}

fn fingerprint(paths: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    paths
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

/// Reloads `gateway` from `source` whenever asked; runs until the process ends.
///
/// The SIGHUP handler is installed when this is called, not when the future first runs: a
/// SIGHUP that arrives before the task is polled must reload, not terminate the process.
pub fn watch(source: Source, gateway: Arc<Gateway>) -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    async move {
        let paths = paths(&source);
        let mut seen = fingerprint(&paths);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            #[cfg(unix)]
            let signalled = async {
                match hangup.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let signalled = std::future::pending::<()>();
            let reason = tokio::select! {
                () = signalled => "SIGHUP",
                _ = tick.tick() => {
                    let now = fingerprint(&paths);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    "config file changed"
                }
            };
            reload(&source, &gateway, reason);
        }
    }
}

fn reload(source: &Source, gateway: &Gateway, reason: &str) {
    let env = |name: &str| std::env::var(name).ok();
    match llmux_config::load(source, &env) {
        Ok(config) => {
            let combinations = config.combination_table().lines().count().saturating_sub(2);
            match gateway.reload(config) {
                Ok(()) => tracing::info!(reason, combinations, "configuration reloaded"),
                Err(err) => {
                    tracing::error!(reason, error = %err, "reload rejected; the previous configuration keeps serving")
                }
            }
        }
        Err(errors) => {
            for error in &errors {
                tracing::error!(reason, error = %error, "reload rejected; the previous configuration keeps serving");
            }
        }
    }
}
