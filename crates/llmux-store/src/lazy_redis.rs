//! [`LazyRedis`]: a Redis connection made on first use and remade by the connection manager,
//! so a gateway starts, and keeps serving without what Redis shares, while Redis is down.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::{StoreError, redact_url};

/// A client for one Redis URL and its connection, once made.
pub(crate) struct LazyRedis {
    client: ::redis::Client,
    conn: OnceCell<ConnectionManager>,
}

impl LazyRedis {
    /// A client for `url` (`redis://[user:password@]host[:port][/db]`); nothing is connected.
    pub(crate) fn new(url: &str) -> Result<Self, StoreError> {
        let client = ::redis::Client::open(url).map_err(|source| StoreError::InvalidUrl {
            url: redact_url(url),
            source: Box::new(source),
        })?;
        Ok(Self {
            client,
            conn: OnceCell::new(),
        })
    }

    /// The connection, made now if it was not yet (2 s to connect, 1 s per answer).
    pub(crate) async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(1)))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(self.client.clone(), config)
                    .await
                    .map_err(StoreError::redis("connect"))
            })
            .await?;
        Ok(conn.clone())
    }
}
