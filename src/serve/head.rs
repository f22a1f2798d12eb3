//! Each request's head, read and checked before hyper sees it. hyper answers a head it
//! cannot take (too big, malformed, too slow) by itself, without the security headers every
//! response of ours carries, and a slow one it cuts off without a 408; reading the head here
//! first lets every answer, whoever refuses the request, go out with them.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Why a head was refused, and the answer it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 431: longer than `MAX_HEADER_BYTES`, or more than `MAX_HEADERS` fields.
    TooLarge,
    /// 400: not an HTTP/1.x request head, or one whose length is ambiguous.
    Malformed,
    /// 408: not all there within `HEADER_TIMEOUT`.
    TooSlow,
    /// The client left before sending a whole head: nobody to answer.
    Gone,
}

impl Refusal {
    fn status(self) -> Option<(u16, &'static str, &'static str)> {
        match self {
            Refusal::TooLarge => Some((
                431,
                "Request Header Fields Too Large",
                "Request headers too large.\n",
            )),
            Refusal::Malformed => Some((400, "Bad Request", "Bad request.\n")),
            Refusal::TooSlow => Some((408, "Request Timeout", "Request timed out.\n")),
            Refusal::Gone => None,
        }
    }
}

/// Reads the request head (and whatever of the body came with it) within the limits.
pub async fn read_head(
    stream: &mut TcpStream,
    max_bytes: usize,
    max_headers: usize,
    timeout: Duration,
) -> Result<Vec<u8>, Refusal> {
    let mut buffer = Vec::with_capacity(1024);
    let reading = async {
        loop {
            let mut chunk = [0u8; 2048];
            let read = stream.read(&mut chunk).await.map_err(|_| Refusal::Gone)?;
            if read == 0 {
                return Err(Refusal::Gone);
            }
            buffer.extend_from_slice(&chunk[..read]);
            if let Some(end) = find_end(&buffer) {
                if end > max_bytes {
                    return Err(Refusal::TooLarge);
                }
                check(&buffer[..end], max_headers)?;
                return Ok(());
            }
            if buffer.len() > max_bytes {
                return Err(Refusal::TooLarge);
            }
        }
    };
    match tokio::time::timeout(timeout, reading).await {
        Ok(Ok(())) => Ok(buffer),
        Ok(Err(refusal)) => Err(refusal),
        Err(_) if buffer.is_empty() => Err(Refusal::Gone),
        Err(_) => Err(Refusal::TooSlow),
    }
}

/// Where the head ends (just past its blank line), if it has.
fn find_end(buffer: &[u8]) -> Option<usize> {
    memchr::memmem::find(buffer, b"\r\n\r\n").map(|at| at + 4)
}

/// A whole head that hyper will take: parses, and says once how long its body is.
fn check(head: &[u8], max_headers: usize) -> Result<(), Refusal> {
    let mut fields = vec![httparse::EMPTY_HEADER; max_headers];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::TooLarge),
        Ok(httparse::Status::Partial) | Err(_) => return Err(Refusal::Malformed),
    }
    // A request that gives its length twice, differently, or both ways, is how requests are
    // smuggled past proxies: refused, as hyper would, but with our headers.
    let lengths: Vec<&[u8]> = request
        .headers
        .iter()
        .filter(|field| field.name.eq_ignore_ascii_case("content-length"))
        .map(|field| field.value)
        .collect();
    let chunked = request
        .headers
        .iter()
        .any(|field| field.name.eq_ignore_ascii_case("transfer-encoding"));
    if lengths.windows(2).any(|pair| pair[0] != pair[1]) || (chunked && !lengths.is_empty()) {
        return Err(Refusal::Malformed);
    }
    Ok(())
}

/// Answers a refused head with its status, the security headers, and a short text; then the
/// connection closes.
pub async fn refuse(stream: &mut TcpStream, refusal: Refusal) {
    let Some((code, reason, body)) = refusal.status() else {
        return;
    };
    // The headers every answer of ours has, these included: no caching, and the date.
    let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT");
    let mut response = format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\ndate: {date}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in super::security_headers() {
        response.push_str(&format!(
            "{}: {}\r\n",
            name.as_str(),
            value.to_str().unwrap_or_default()
        ));
    }
    response.push_str("\r\n");
    response.push_str(body);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// The connection with the bytes already read put back in front, for hyper.
pub struct Replayed {
    prefix: Vec<u8>,
    position: usize,
    inner: TcpStream,
}

impl Replayed {
    pub fn new(prefix: Vec<u8>, inner: TcpStream) -> Replayed {
        Replayed {
            prefix,
            position: 0,
            inner,
        }
    }
}

impl AsyncRead for Replayed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.position < self.prefix.len() {
            let rest = &self.prefix[self.position..];
            let taken = rest.len().min(buffer.remaining());
            buffer.put_slice(&rest[..taken]);
            self.position += taken;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(context, buffer)
    }
}

impl AsyncWrite for Replayed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, bytes)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_that_hyper_would_refuse_are_refused_here_first() {
        assert_eq!(check(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 64), Ok(()));
        assert_eq!(check(b"GARBAGE\r\n\r\n", 64), Err(Refusal::Malformed));
        assert_eq!(
            check(
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                64
            ),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            check(
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                64
            ),
            Err(Refusal::Malformed)
        );
        let many: String = (0..70).map(|n| format!("X-{n}: y\r\n")).collect();
        assert_eq!(
            check(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes(), 64),
            Err(Refusal::TooLarge)
        );
    }
}
