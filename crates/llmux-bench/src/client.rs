//! Small HTTP/1.1 client pieces for the hardening modes (`--soak`, `--overload`): a connection
//! whose socket closes when it is dropped (so a client "hanging up" really hangs up), one-shot
//! calls for the mock's admin API and `/metrics`, a Prometheus line reader and a tiny PRNG.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

/// One keep-alive connection. Dropping it aborts its connection task, which closes the socket
/// at once, even in the middle of a response.
pub struct Conn {
    pub sender: http1::SendRequest<Full<Bytes>>,
    task: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn open(addr: SocketAddr) -> Result<Conn, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (sender, conn) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let task = crate::spawn(async move {
        // The connection ends with the peer or when this task is aborted; either is fine.
        let _ = conn.await;
    });
    Ok(Conn { sender, task })
}

/// Sends one request on a fresh connection and returns the status and the whole body.
pub async fn call(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    body: &str,
) -> Result<(u16, Bytes), String> {
    let mut conn = open(addr).await?;
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "bench")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let exchange = async {
        conn.sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let response = conn
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| format!("{path}: no answer within 30 s"))?
}

/// Sends a JSON body to the mock's admin API and expects a 2xx.
pub async fn mock_admin(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    body: &str,
) -> anyhow::Result<()> {
    let (status, answer) = call(addr, method, path, body)
        .await
        .map_err(anyhow::Error::msg)?;
    if !(200..300).contains(&status) {
        anyhow::bail!(
            "mock {path} answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    Ok(())
}

/// The gateway's `/metrics` text.
pub async fn metrics(addr: SocketAddr) -> Result<String, String> {
    let (status, body) = call(addr, http::Method::GET, "/metrics", "").await?;
    if status != 200 {
        return Err(format!("/metrics answered {status}"));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The sum of every sample of metric `name` (any labels) in a Prometheus text exposition;
/// `None` when there is no such sample.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // `name 3` or `name{labels} 3`, not `name_other 3`.
        let value = if rest.starts_with(' ') {
            rest
        } else if rest.starts_with('{') {
            match rest.rsplit_once('}') {
                Some((_, value)) => value,
                None => continue,
            }
        } else {
            continue;
        };
        if let Some(v) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// splitmix64: enough randomness to choose requests, faults and delays, with no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn seeded(salt: u64) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self(now ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index in `[0, n)` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::{Rng, metric};

    #[test]
    fn metric_sums_labelled_samples_and_ignores_longer_names() {
        let text = "# HELP llmux_panics Caught panics\n# TYPE llmux_panics counter\n\
                    llmux_panics_total 2\nllmux_panics_total_other 7\n\
                    llmux_requests_total{route=\"chat\",status=\"200\"} 10\n\
                    llmux_requests_total{route=\"chat\",status=\"503\"} 5\n";
        assert_eq!(metric(text, "llmux_panics_total"), Some(2.0));
        assert_eq!(metric(text, "llmux_requests_total"), Some(15.0));
        assert_eq!(metric(text, "llmux_missing_total"), None);
    }

    #[test]
    fn rng_stays_in_range() {
        let mut rng = Rng::seeded(1);
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(rng.below(18) < 18);
        }
    }
}
