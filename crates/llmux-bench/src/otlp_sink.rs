//! `--tracing`: an OTLP/HTTP sink for the gateways' trace exports. It reads each export and
//! answers 200 without decoding it, so the gateway's export work (encoding, the HTTP post) is
//! counted and the sink's is not (it runs in the bench process).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Starts the sink on a free port; returns its base URL.
pub async fn start() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    crate::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            crate::spawn(serve(socket));
        }
    });
    Ok(url)
}

/// Answers every request on one keep-alive connection with an empty 200.
async fn serve(mut socket: tokio::net::TcpStream) {
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // Read a head, then its content-length body.
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..head_end + length);
        let answer =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if socket.write_all(answer).await.is_err() {
            return;
        }
    }
}
