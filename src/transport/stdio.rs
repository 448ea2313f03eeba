//! MCP over stdin/stdout, the transport desktop clients start us with. stdout carries JSON-RPC
//! and nothing else (logs go to stderr); the server exits cleanly when stdin closes.
//!
//! Lines are read here rather than by rmcp's codec so that a request the SDK cannot parse (bad
//! params, a wrong `jsonrpc` version) still gets an error answer carrying its own `id`: rmcp
//! answers those without an id, or not at all, which leaves the client waiting forever.

use std::sync::Arc;

use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    service::ServerInitializeError,
    transport::io::StdioWriter,
    ServiceExt,
};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    sync::Mutex,
};

use super::jsonrpc_errors;
use crate::mcp::RunComfyServer;

/// One line is one message; a larger one is refused, and dropped as it streams in rather than
/// buffered, so whatever a client sends costs at most this much memory (plus one read chunk).
/// Four times the HTTP transport's default body limit: a tool call here is a prompt and a few
/// settings, far below it.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

pub async fn serve(server: RunComfyServer) -> anyhow::Result<()> {
    // `stdio_pipes` drives the pipes a client launches us with on the IO reactor instead of
    // tokio's blocking pool: no thread hand-off per message (it falls back to plain stdio when
    // stdin/stdout are not pipes, e.g. a terminal).
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    // rmcp reads our stream and writes our sink from its own tasks (each answer is sent from a
    // task of its own), so neither needs a task of ours between it and the pipe: that was two
    // more task wake-ups and channel hand-offs per message. One writer serves rmcp's answers and
    // the errors answered here, a whole line under the lock at a time.
    let out = Arc::new(Mutex::new(stdout));
    let sink = futures::sink::unfold(out.clone(), |out, message: ServerJsonRpcMessage| async move {
        let mut line = serde_json::to_vec(&message).map_err(std::io::Error::other)?;
        line.push(b'\n');
        write_line(&out, &line).await?;
        Ok::<_, std::io::Error>(out)
    });
    let lines = Lines::new(stdin, MAX_LINE_BYTES);
    let stream = futures::stream::unfold((lines, out), |(mut lines, out)| async move {
        let message = next_message(&mut lines, &out).await?;
        Some((message, (lines, out)))
    });
    // rmcp sends every answer it has before `waiting` returns, and each is flushed as written.
    match server.serve((Box::pin(sink), Box::pin(stream))).await {
        Ok(running) => {
            let reason = running.waiting().await?;
            tracing::info!(?reason, "stdio session ended");
            Ok(())
        }
        // A client that probes (`server/discover`) or gives up before `initialize` and then
        // closes stdin has simply left: that is a normal end, not a failure.
        Err(ServerInitializeError::ConnectionClosed(during)) => {
            tracing::info!(%during, "stdin closed before the session was initialized");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// One line out, flushed (a no-op on a pipe; the blocking fallback's stdout buffers).
async fn write_line(out: &Mutex<StdioWriter>, line: &[u8]) -> std::io::Result<()> {
    let mut out = out.lock().await;
    out.write_all(line).await?;
    out.flush().await
}

/// The next message for rmcp. A line it could not read well (too long, not JSON, a request
/// with bad params) is answered here with an error carrying its `id`, and skipped. `None` at the
/// end of stdin, or once stdin or stdout fails.
async fn next_message(
    lines: &mut Lines<impl tokio::io::AsyncRead + Unpin>,
    out: &Mutex<StdioWriter>,
) -> Option<ClientJsonRpcMessage> {
    loop {
        let reply = match lines.next().await {
            Ok(None) => return None,
            Ok(Some(Line::TooLong { head, len })) => {
                // The id, when the line starts with it, lets the client match the error to its
                // request; otherwise it waits for an answer that never comes.
                let id = leading_id(&head).unwrap_or(Value::Null);
                tracing::error!(max = MAX_LINE_BYTES, len, %id, "a message longer than the limit was discarded");
                let message = format!("Message too large: {len} bytes, over the limit of {MAX_LINE_BYTES}");
                error_line(id, -32600, &message)
            }
            Ok(Some(Line::Complete(line))) => match parse(&line) {
                Parsed::Message(message) => return Some(*message),
                Parsed::Reply(reply) => reply,
                Parsed::Nothing => continue,
            },
            Err(e) => {
                tracing::error!(error = %e, "reading stdin failed");
                return None;
            }
        };
        let mut reply = reply.into_bytes();
        reply.push(b'\n');
        if let Err(e) = write_line(out, &reply).await {
            tracing::error!(error = %e, "writing stdout failed");
            return None;
        }
    }
}

/// Bytes of an oversized line kept to read its `id` from: enough for the `jsonrpc`, `id` and
/// `method` members that clients write first.
const HEAD_BYTES: usize = 4096;
/// stdin is read in pieces of at most this size.
const READ_CHUNK: usize = 64 * 1024;

/// What [`Lines::next`] read.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A line within the limit (its newline included, if it had one).
    Complete(Vec<u8>),
    /// A line over the limit, discarded as it streamed in: its first [`HEAD_BYTES`] and length.
    TooLong { head: Vec<u8>, len: usize },
}

/// Newline-delimited messages, read in chunks. A line is collected only while it is within
/// `max` bytes; past that, the rest of it is dropped as it arrives, so an oversized line costs
/// one chunk of memory however long it is.
struct Lines<R> {
    reader: BufReader<R>,
    max: usize,
    line: Vec<u8>,
}

impl<R: tokio::io::AsyncRead + Unpin> Lines<R> {
    fn new(reader: R, max: usize) -> Self {
        Self {
            reader: BufReader::with_capacity(READ_CHUNK, reader),
            max,
            line: Vec::new(),
        }
    }

    /// The next line; `None` at the end of input.
    async fn next(&mut self) -> std::io::Result<Option<Line>> {
        self.line.clear();
        // Bytes of the current line seen so far, including those dropped.
        let mut len = 0usize;
        loop {
            let chunk = self.reader.fill_buf().await?;
            if chunk.is_empty() {
                // The end of input: a last line without a newline is still a line.
                return Ok(match len {
                    0 => None,
                    _ => Some(self.finish(len)),
                });
            }
            let (take, ends) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (chunk.len(), false),
            };
            if len + take <= self.max {
                self.line.extend_from_slice(&chunk[..take]);
            } else {
                // Over the limit: from here on only the head is kept.
                if self.line.len() > HEAD_BYTES {
                    self.line.truncate(HEAD_BYTES);
                    self.line.shrink_to_fit();
                }
                let room = HEAD_BYTES - self.line.len();
                self.line.extend_from_slice(&chunk[..take.min(room)]);
            }
            len += take;
            self.reader.consume(take);
            if ends {
                return Ok(Some(self.finish(len)));
            }
        }
    }

    fn finish(&mut self, len: usize) -> Line {
        let line = std::mem::take(&mut self.line);
        if len > self.max {
            Line::TooLong { head: line, len }
        } else {
            Line::Complete(line)
        }
    }
}

/// The `id` of a JSON-RPC request from the first bytes of its line, when it comes before
/// anything that does not fit in them (a string or number id only, as JSON-RPC allows).
fn leading_id(head: &[u8]) -> Option<Value> {
    struct Probe<'a>(&'a mut Option<Value>);

    impl<'de> serde::de::Visitor<'de> for Probe<'_> {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON-RPC object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if key == "id" {
                    *self.0 = Some(map.next_value::<Value>()?);
                    return Ok(());
                }
                map.next_value::<serde::de::IgnoredAny>()?;
            }
            Ok(())
        }
    }

    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let mut id = None;
    // The rest of the line is missing, so reading the object always ends in an error; what
    // matters is whether the id was read before it.
    let _ = serde::Deserializer::deserialize_map(&mut serde_json::Deserializer::from_slice(head), Probe(&mut id));
    id.filter(|id| id.is_string() || id.is_number())
}

enum Parsed {
    Message(Box<ClientJsonRpcMessage>),
    /// An error answer to send back instead.
    Reply(String),
    Nothing,
}

fn parse(line: &[u8]) -> Parsed {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    // A valid line, the usual case, is checked by the standard library's word-at-a-time check;
    // `from_utf8_lossy` alone goes through its chunk iterator, several times slower.
    let text = match std::str::from_utf8(line) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(line),
    };
    let text = text.trim();
    if text.is_empty() {
        return Parsed::Nothing;
    }
    let error = match serde_json::from_str::<ClientJsonRpcMessage>(text) {
        Ok(message) => return Parsed::Message(Box::new(message)),
        Err(e) => e,
    };
    match jsonrpc_errors::unreadable(text.as_bytes(), &error) {
        Some(reply) => {
            tracing::debug!(id = %reply["id"], %error, "a message the server cannot read");
            Parsed::Reply(reply.to_string())
        }
        // An unreadable notification gets no answer (JSON-RPC forbids one); it is only logged.
        None => {
            tracing::debug!(%error, "ignored a notification the server cannot read");
            Parsed::Nothing
        }
    }
}

fn error_line(id: Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(line: &str) -> Value {
        match parse(line.as_bytes()) {
            Parsed::Reply(r) => serde_json::from_str(&r).unwrap(),
            _ => panic!("expected an error reply to {line}"),
        }
    }

    #[test]
    fn unreadable_requests_are_answered_with_their_own_id() {
        assert_eq!(
            reply(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":"x"}"#)["id"],
            2
        );
        assert_eq!(reply(r#"{"jsonrpc":"1.0","id":"a","method":"tools/list"}"#)["id"], "a");
        assert_eq!(reply("not json")["error"]["code"], -32700);
        // An id MCP does not allow: answered, with a null id, not ignored as a notification.
        for id in ["null", "false", "{}", "[2]"] {
            let answer = reply(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#));
            assert_eq!(
                (answer["id"].clone(), answer["error"]["code"].clone()),
                (Value::Null, json!(-32600))
            );
        }
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/bogus","params":7}"#),
            Parsed::Nothing
        ));
        assert!(matches!(
            parse(b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n"),
            Parsed::Message(_)
        ));
    }

    #[test]
    fn a_line_that_is_not_valid_utf8_is_still_read_with_replacement_characters() {
        let line = b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":{\"prompt\":\"a \xff b\"}}}\n";
        let Parsed::Message(message) = parse(line) else {
            panic!("not read");
        };
        let message = serde_json::to_value(&*message).unwrap();
        assert_eq!(message["id"], 4);
        assert_eq!(message["params"]["arguments"]["prompt"], "a \u{FFFD} b");
    }

    /// Hands out its bytes a few at a time, as a pipe may.
    struct Trickle(std::io::Cursor<Vec<u8>>, usize);

    impl tokio::io::AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let step = self.1.min(buf.remaining());
            let mut piece = vec![0; step];
            let n = std::io::Read::read(&mut self.0, &mut piece)?;
            buf.put_slice(&piece[..n]);
            std::task::Poll::Ready(Ok(()))
        }
    }

    async fn all_lines(input: &[u8], max: usize, step: usize) -> Vec<Line> {
        let mut lines = Lines::new(Trickle(std::io::Cursor::new(input.to_vec()), step), max);
        let mut out = Vec::new();
        while let Some(line) = lines.next().await.unwrap() {
            out.push(line);
        }
        out
    }

    #[tokio::test]
    async fn oversized_lines_keep_only_their_head_and_the_next_line_is_whole() {
        let long = format!("{{\"id\":7,\"x\":\"{}\"}}\n", "y".repeat(20_000));
        let input = format!("{{\"id\":1}}\n{long}{{\"id\":2}}\nlast");
        for step in [1, 7, 4096, 1 << 20] {
            let lines = all_lines(input.as_bytes(), 100, step).await;
            assert_eq!(lines.len(), 4, "step {step}");
            assert_eq!(lines[0], Line::Complete(b"{\"id\":1}\n".to_vec()));
            match &lines[1] {
                Line::TooLong { head, len } => {
                    assert_eq!(*len, long.len());
                    assert_eq!(head.len(), HEAD_BYTES);
                    assert_eq!(leading_id(head), Some(json!(7)));
                }
                other => panic!("step {step}: {other:?}"),
            }
            assert_eq!(lines[2], Line::Complete(b"{\"id\":2}\n".to_vec()));
            assert_eq!(
                lines[3],
                Line::Complete(b"last".to_vec()),
                "a last line without a newline"
            );
        }
        // Exactly at the limit is still a line.
        let at_limit = format!("{}\n", "z".repeat(99));
        assert!(matches!(
            &all_lines(at_limit.as_bytes(), 100, 3).await[..],
            [Line::Complete(_)]
        ));
    }

    #[test]
    fn the_id_is_read_from_the_head_when_it_comes_first() {
        let head = |s: &str| leading_id(s.as_bytes());
        assert_eq!(
            head(r#"{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"x":"yyyy"#),
            Some(json!("a-1"))
        );
        assert_eq!(head(r#"  {"id": 12, "jsonrpc"#), Some(json!(12)));
        assert_eq!(head("\u{feff}{\"id\":3,\"p\":\"…"), Some(json!(3)));
        // After the part that is cut off, or not an id JSON-RPC allows: none.
        assert_eq!(head(r#"{"jsonrpc":"2.0","params":{"x":"yyyy"#), None);
        assert_eq!(head(r#"{"id":{"a":1},"p":"#), None);
        assert_eq!(head(r#"{"id":nu"#), None);
        assert_eq!(head("[[[[[[[[[[[[[[[[[[["), None);
        assert_eq!(head(&"[".repeat(4096)), None);
    }
}
