//! The floor: a byte relay with no HTTP in it, started where llmux runs (pinned to the gateway's
//! core) in front of the same mock. Each client connection gets one upstream connection and the
//! bytes are copied both ways as they arrive (`TCP_NODELAY` on both sockets).
//!
//! What the relay adds over the direct run is what any proxy process costs on this machine
//! before it does any work: two more loopback hops and waking a second process on another core.
//! The report subtracts it from llmux's added latency, so "llmux beyond the floor" is the part
//! that llmux's own code can change.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

/// Serves the relay until the process is killed. A current-thread runtime: the cheapest way
/// tokio can move bytes, so the floor is not raised by scheduling.
pub fn run(listen: SocketAddr, to: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(listen, to))
}

async fn serve(listen: SocketAddr, to: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (mut client, _) = listener.accept().await?;
        crate::spawn(async move {
            let Ok(mut upstream) = TcpStream::connect(to).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            // Ends when either side closes; errors only mean a side went away.
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// The relay carries bytes both ways, on one upstream connection per client connection.
    #[tokio::test]
    async fn copies_both_ways_until_the_client_closes() {
        // Upstream: answers every read with the bytes reversed.
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to = upstream.local_addr().unwrap();
        crate::spawn(async move {
            let (mut socket, _) = upstream.accept().await.unwrap();
            let mut buf = [0u8; 64];
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                buf[..n].reverse();
                socket.write_all(&buf[..n]).await.unwrap();
            }
        });
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        crate::spawn(super::serve(listen, to));
        let mut client = loop {
            match tokio::net::TcpStream::connect(listen).await {
                Ok(client) => break client,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        for message in [&b"hello"[..], b"relay"] {
            client.write_all(message).await.unwrap();
            let mut back = vec![0u8; message.len()];
            let read = client.read_exact(&mut back);
            tokio::time::timeout(std::time::Duration::from_secs(5), read)
                .await
                .expect("the relay sent nothing back within 5 s")
                .unwrap();
            let mut expected = message.to_vec();
            expected.reverse();
            assert_eq!(back, expected);
        }
    }
}
