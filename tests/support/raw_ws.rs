//! A WebSocket client written by hand over a plain TCP socket, for tests
//! that must send what client libraries refuse to (unmasked frames, reserved
//! opcodes, bad UTF-8, broken fragmentation) and see exactly how the server
//! ends the connection: with a close frame and its code, or without one.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A guard against a test hanging forever; never what a test waits for.
const PATIENCE: Duration = Duration::from_secs(10);

/// Opcodes.
pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;

/// One frame as a client sends it.
#[derive(Debug, Clone)]
pub struct Frame {
    pub fin: bool,
    /// The three reserved bits, as the low bits of this value.
    pub rsv: u8,
    pub opcode: u8,
    pub payload: Vec<u8>,
    pub masked: bool,
}

impl Frame {
    /// A final, masked frame.
    pub fn new(opcode: u8, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            fin: true,
            rsv: 0,
            opcode,
            payload: payload.into(),
            masked: true,
        }
    }

    /// A text frame.
    pub fn text(text: impl Into<Vec<u8>>) -> Self {
        Self::new(TEXT, text)
    }

    /// A close frame with this code (and no reason).
    pub fn close(code: u16) -> Self {
        Self::new(CLOSE, code.to_be_bytes().to_vec())
    }

    /// This frame with `fin` cleared (the start or middle of a fragmented message).
    pub fn unfinished(mut self) -> Self {
        self.fin = false;
        self
    }

    /// The bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            vec![(u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | (self.opcode & 0xf)];
        let mask_bit = if self.masked { 0x80 } else { 0 };
        let len = self.payload.len();
        if len < 126 {
            out.push(mask_bit | len as u8);
        } else if len <= usize::from(u16::MAX) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        if self.masked {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            out.extend_from_slice(&key);
            out.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(&self.payload);
        }
        out
    }
}

/// What the server sent, frame by frame, until the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A text frame.
    Text(String),
    /// A close frame: its code (`None` when empty) and reason.
    Close(Option<u16>, String),
    /// Any other frame.
    Other(u8),
}

/// How the connection ended after the last frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The server ended its side cleanly (FIN) after its close frame.
    Clean,
    /// The connection was reset, or ended mid-frame.
    Broken(String),
}

/// A hand-driven WebSocket connection.
pub struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The head of the server's answer to the upgrade request.
    pub head: String,
}

impl RawWs {
    /// Connects to `addr` and upgrades `path` (query included) with these
    /// extra request headers; panics unless the answer is 101.
    pub async fn connect(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> Self {
        let (status, ws) = Self::handshake(addr, path, headers).await;
        assert_eq!(status, 101, "upgrade of {path}");
        ws
    }

    /// Connects and sends the upgrade request; the answer's status code and
    /// the connection (with anything after the answer's head still unread).
    pub async fn handshake(
        addr: std::net::SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Self) {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.expect("request");
        let mut ws = Self {
            stream,
            buf: Vec::new(),
            head: String::new(),
        };
        ws.head = loop {
            if let Some(end) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&ws.buf[..end]).into_owned();
                ws.buf.drain(..end + 4);
                break head;
            }
            assert!(
                ws.fill().await.expect("answer head") > 0,
                "closed before answering"
            );
        };
        let status = ws
            .head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        (status, ws)
    }

    /// The body of an answer that was not an upgrade (as its
    /// `Content-Length` says).
    pub async fn body(&mut self) -> String {
        let len: usize = self
            .head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .and_then(|v| v.trim().parse().ok())
            .expect("a Content-Length");
        while self.buf.len() < len {
            assert!(self.fill().await.expect("body") > 0, "closed mid-body");
        }
        String::from_utf8(self.buf.drain(..len).collect()).expect("UTF-8 body")
    }

    /// The value of a header of the answer to the upgrade request.
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}: ", name.to_ascii_lowercase());
        self.head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with(&prefix)
                .then(|| l[prefix.len()..].trim().to_owned())
        })
    }

    /// Writes these frames in one write.
    pub async fn send(&mut self, frames: &[Frame]) {
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        self.send_bytes(&bytes).await;
    }

    /// Writes raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Ends the client's sending side (TCP FIN) without a close frame.
    pub async fn half_close(&mut self) {
        self.stream.shutdown().await.expect("shutdown");
    }

    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
            .await
            .expect("the server answers in time")?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The next frame, or how the connection ended.
    pub async fn next(&mut self) -> Result<Received, End> {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return Ok(frame);
            }
            match self.fill().await {
                Ok(0) if self.buf.is_empty() => return Err(End::Clean),
                Ok(0) => return Err(End::Broken("ended mid-frame".into())),
                Ok(_) => {}
                Err(e) => return Err(End::Broken(e.to_string())),
            }
        }
    }

    /// The next text frame; panics on anything else.
    pub async fn text(&mut self) -> String {
        match self.next().await {
            Ok(Received::Text(text)) => text,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Reads to the end: the close frame's code (skipping text frames before
    /// it), after asserting that a close frame came and that the server then
    /// ended the TCP connection cleanly.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.next().await {
                Ok(Received::Close(code, _)) => {
                    let end = self.next().await;
                    assert_eq!(
                        end,
                        Err(End::Clean),
                        "a clean TCP end after the close frame"
                    );
                    return code;
                }
                Ok(_) => continue,
                Err(end) => panic!("the connection ended without a close frame: {end:?}"),
            }
        }
    }
}

/// One server frame from the front of `buf`, with the bytes it took.
fn parse(buf: &[u8]) -> Option<(Received, usize)> {
    let b0 = *buf.first()?;
    let b1 = *buf.get(1)?;
    assert_eq!(b1 & 0x80, 0, "server frames are never masked");
    let (len, mut at) = match b1 & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (usize::try_from(u64::from_be_bytes(bytes)).ok()?, 10)
        }
        n => (usize::from(n), 2),
    };
    let payload = buf.get(at..at + len)?;
    at += len;
    let frame = match b0 & 0x0f {
        TEXT => Received::Text(String::from_utf8(payload.to_vec()).expect("server text is UTF-8")),
        CLOSE if payload.is_empty() => Received::Close(None, String::new()),
        CLOSE => Received::Close(
            Some(u16::from_be_bytes([payload[0], payload[1]])),
            String::from_utf8_lossy(&payload[2..]).into_owned(),
        ),
        other => Received::Other(other),
    };
    Some((frame, at))
}
