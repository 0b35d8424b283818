//! The load generator's HTTP/1.1 connection.

use crate::AnyResult;

/// A minimal HTTP/1.1 keep-alive client connection (what `wrk` does): the load generator shares the
/// machine with the app and nats-server, so it must cost as little as possible. The request is built
/// once per connection; each request only rewrites the digits of its delivery id.
pub struct Conn {
    stream: tokio::net::TcpStream,
    request: Vec<u8>,
    /// Where the 20 digits of the delivery id sit in `request`.
    id_at: usize,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: &str, signature: &str, body: &[u8]) -> AnyResult<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let head = format!(
            "POST /webhooks/github HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             x-github-event: issues\r\nx-hub-signature-256: {signature}\r\n\
             content-length: {}\r\nx-github-delivery: bench-",
            body.len()
        );
        let id_at = head.len();
        let mut request = head.into_bytes();
        request.extend_from_slice(b"00000000000000000000\r\n\r\n");
        request.extend_from_slice(body);
        Ok(Conn {
            stream,
            request,
            id_at,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends request `n` (one write) and reads the whole answer; returns its status.
    pub async fn exchange(&mut self, mut n: u64) -> AnyResult<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for digit in self.request[self.id_at..self.id_at + 20].iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.stream.write_all(&self.request).await?;
        self.buf.clear();
        let mut chunk = [0u8; 2048];
        loop {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
            let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = &self.buf[..end];
            let status = std::str::from_utf8(head.get(9..12).ok_or("bad status line")?)?.parse()?;
            let length: usize = head
                .split(|&b| b == b'\n')
                .find_map(|line| {
                    let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
                    name.eq_ignore_ascii_case(b"content-length")
                        .then(|| std::str::from_utf8(&value[1..]).ok()?.trim().parse().ok())?
                })
                .ok_or("no content-length")?;
            while self.buf.len() < end + 4 + length {
                let n = self.stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err("connection closed".into());
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(status);
        }
    }
}
