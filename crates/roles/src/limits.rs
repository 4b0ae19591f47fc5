//! Bounded reads of what providers and miners send back: every byte from them is hostile until
//! bounded, so a body is read up to a limit and no further, and a stream's events and total
//! size are capped.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

/// Largest answer body read from a provider or miner (an embeddings answer for the largest
/// request is about 8 MiB of JSON).
pub const MAX_ANSWER_BYTES: usize = 32 << 20;
/// Largest health or metadata answer read from a provider or miner.
pub const MAX_HEALTH_BYTES: usize = 64 << 10;
/// Largest single server-sent event relayed from a provider.
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// Largest streamed answer relayed from a provider, in all.
pub const MAX_STREAM_BYTES: usize = 64 << 20;

/// Reads a response body of at most `limit` bytes; a larger one is an error, and nothing past
/// the limit is read.
pub async fn read_body(resp: reqwest::Response, limit: usize) -> Result<Bytes, String> {
    if let Some(len) = resp.content_length()
        && len > limit as u64
    {
        return Err(format!(
            "the answer is {len} bytes, more than the {limit} read"
        ));
    }
    let mut stream = resp.bytes_stream();
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("reading the answer: {e}"))?;
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(format!("the answer is more than the {limit} bytes read"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// [`read_body`], then JSON.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    limit: usize,
) -> Result<T, String> {
    let body = read_body(resp, limit).await?;
    serde_json::from_slice(&body).map_err(|e| format!("the answer is not the JSON expected: {e}"))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server that answers once with `head` and then `body_len` bytes, closing after.
    async fn serve(head: String, body_len: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&vec![b'x'; body_len]).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_the_limit_and_no_further() {
        let http = reqwest::Client::new();
        // Announced too large: refused before reading.
        let url = serve(
            "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n".into(),
            0,
        )
        .await;
        let err = read_body(http.get(&url).send().await.unwrap(), 1000)
            .await
            .unwrap_err();
        assert!(err.contains("100000 bytes"), "{err}");
        // No length announced (read until close): stops at the limit.
        let url = serve("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".into(), 5000).await;
        let err = read_body(http.get(&url).send().await.unwrap(), 1000)
            .await
            .unwrap_err();
        assert!(err.contains("more than the 1000 bytes"), "{err}");
        // Within the limit: the body.
        let url = serve("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n".into(), 10).await;
        let body = read_body(http.get(&url).send().await.unwrap(), 1000)
            .await
            .unwrap();
        assert_eq!(body.len(), 10);
    }
}
