//! MCP over stdio: one JSON-RPC message (object or batch) per line on stdin, one reply per line
//! on stdout. Nothing but protocol is ever written to stdout (logs go to stderr). The transport
//! stops cleanly at end of input, after every message already read has been answered.
//!
//! Messages are handled concurrently (a long `cortex_ledger_verify` does not hold up a `ping`);
//! a single writer task serializes replies and server notifications, so lines never interleave.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use cortex_core::ledger::anchor::BoxFuture;
use cortex_core::{Error, Result};
use cortex_mcp::protocol::{self, codes};
use cortex_mcp::transport::{Incoming, Outbound};
use cortex_mcp::{MessageHandler, Transport};
use std::fmt;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Longest accepted line (one message); longer lines are answered with a parse error.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The stdio transport.
pub struct StdioTransport {
    // Mutexes only to make the transport `Sync`; `serve` takes the streams out.
    reader: Mutex<Box<dyn AsyncRead + Unpin + Send>>,
    writer: Mutex<Box<dyn AsyncWrite + Unpin + Send>>,
    max_message_bytes: usize,
}

impl fmt::Debug for StdioTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdioTransport")
            .field("max_message_bytes", &self.max_message_bytes)
            .finish()
    }
}

impl Default for StdioTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl StdioTransport {
    /// Serves on the process's stdin and stdout.
    pub fn new() -> Self {
        Self::with_io(tokio::io::stdin(), tokio::io::stdout())
    }
    /// Serves on any byte streams (tests, pipes, sockets).
    pub fn with_io(
        reader: impl AsyncRead + Unpin + Send + 'static,
        writer: impl AsyncWrite + Unpin + Send + 'static,
    ) -> Self {
        StdioTransport {
            reader: Mutex::new(Box::new(reader)),
            writer: Mutex::new(Box::new(writer)),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
    /// Sets the longest accepted message.
    pub fn max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }
}

struct Lines(mpsc::UnboundedSender<String>);

impl Outbound for Lines {
    fn send(&self, message: String) -> Result<()> {
        self.0
            .send(message)
            .map_err(|_| Error::new(cortex_core::ErrorKind::Unavailable, "stdout is closed"))
    }
}

fn parse_error(why: &str) -> String {
    protocol::frame_error(codes::PARSE_ERROR, format!("Parse error: {why}"))
}

/// Reads one line into `buf` (without the newline). `Ok(None)` at end of input;
/// `Ok(Some(false))` if the line was longer than `max` (the rest of it is skipped).
async fn read_line<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(if buf.is_empty() && !too_long {
                None
            } else {
                Some(!too_long)
            });
        }
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !too_long {
            if buf.len() + part.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(!too_long));
        }
    }
}

impl Transport for StdioTransport {
    fn name(&self) -> &'static str {
        "stdio"
    }

    fn serve(
        self: Box<Self>,
        handler: Arc<dyn MessageHandler>,
        shutdown: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            let StdioTransport {
                reader,
                writer,
                max_message_bytes,
            } = *self;
            let reader = reader.into_inner().unwrap_or_else(|p| p.into_inner());
            let mut writer = writer.into_inner().unwrap_or_else(|p| p.into_inner());
            let (tx, mut rx) = mpsc::unbounded_channel::<String>();
            let write_task = tokio::spawn(async move {
                while let Some(mut line) = rx.recv().await {
                    line.push('\n');
                    if writer.write_all(line.as_bytes()).await.is_err()
                        || writer.flush().await.is_err()
                    {
                        return;
                    }
                }
            });
            let outbound: Arc<dyn Outbound> = Arc::new(Lines(tx.clone()));
            let mut reader = BufReader::new(reader);
            let mut tasks = JoinSet::new();
            let mut shutdown = shutdown;
            let mut buf = Vec::new();
            let result = loop {
                let read = tokio::select! {
                    r = read_line(&mut reader, &mut buf, max_message_bytes) => r,
                    _ = &mut shutdown => break Ok(()),
                };
                let ok = match read {
                    Ok(None) => break Ok(()),
                    Ok(Some(ok)) => ok,
                    Err(e) => break Err(Error::backend("cannot read stdin").with_source(e)),
                };
                if !ok {
                    let _ = tx.send(parse_error(&format!(
                        "the message is longer than {max_message_bytes} bytes"
                    )));
                    continue;
                }
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let message = match String::from_utf8(std::mem::take(&mut buf)) {
                    Ok(m) => m,
                    Err(_) => {
                        let _ = tx.send(parse_error("the message is not valid UTF-8"));
                        continue;
                    }
                };
                let (h, out, tx) = (handler.clone(), outbound.clone(), tx.clone());
                tasks.spawn(async move {
                    let incoming = Incoming {
                        message,
                        transport: "stdio",
                        ..Incoming::default()
                    };
                    if let Some(reply) = h.handle(incoming, out).await {
                        let _ = tx.send(reply);
                    }
                });
                // Reap finished tasks so a long session does not accumulate them.
                while tasks.try_join_next().is_some() {}
            };
            while tasks.join_next().await.is_some() {}
            drop(outbound);
            drop(tx);
            let _ = write_task.await;
            result
        })
    }
}
