//! MCP over stdin/stdout, the transport desktop clients start us with. stdout carries JSON-RPC
//! and nothing else (logs go to stderr); the server exits cleanly when stdin closes.
//!
//! Lines are read here rather than by rmcp's codec so that a request the SDK cannot parse (bad
//! params, a wrong `jsonrpc` version) still gets an error answer carrying its own `id`: rmcp
//! answers those without an id, or not at all, which leaves the client waiting forever.

use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    service::ServerInitializeError,
    ServiceExt,
};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    sync::mpsc,
};

use crate::mcp::RunComfyServer;

/// One line is one message; a larger one is refused, not buffered without end.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

pub async fn serve(server: RunComfyServer) -> anyhow::Result<()> {
    // `stdio_pipes` drives the pipes a client launches us with on the IO reactor instead of
    // tokio's blocking pool: no thread hand-off per message (it falls back to plain stdio when
    // stdin/stdout are not pipes, e.g. a terminal).
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    let (out_tx, out_rx) = mpsc::unbounded_channel::<String>();
    let (in_tx, in_rx) = mpsc::channel::<ClientJsonRpcMessage>(64);
    let writer = tokio::spawn(write_lines(stdout, out_rx));
    let reader = tokio::spawn(read_lines(stdin, in_tx, out_tx.clone()));

    let sink = futures::sink::unfold(out_tx, |tx, message: ServerJsonRpcMessage| async move {
        let line = serde_json::to_string(&message).map_err(std::io::Error::other)?;
        tx.send(line)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok::<_, std::io::Error>(tx)
    });
    let stream = futures::stream::unfold(in_rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let outcome = match server.serve((Box::pin(sink), Box::pin(stream))).await {
        Ok(running) => running
            .waiting()
            .await
            .map(|reason| tracing::info!(?reason, "stdio session ended")),
        // A client that probes (`server/discover`) or gives up before `initialize` and then
        // closes stdin has simply left: that is a normal end, not a failure.
        Err(ServerInitializeError::ConnectionClosed(during)) => {
            tracing::info!(%during, "stdin closed before the session was initialized");
            Ok(())
        }
        Err(e) => return Err(e.into()),
    };
    reader.abort();
    // Every answer queued before the end is written before the process exits.
    let _ = writer.await;
    Ok(outcome?)
}

async fn read_lines(
    stdin: impl tokio::io::AsyncRead + Unpin,
    to_server: mpsc::Sender<ClientJsonRpcMessage>,
    to_client: mpsc::UnboundedSender<String>,
) {
    let mut stdin = BufReader::new(stdin);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut stdin)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) => return,
            Ok(_) if line.len() > MAX_LINE_BYTES && !line.ends_with(b"\n") => {
                tracing::error!(max = MAX_LINE_BYTES, "a message longer than the limit was discarded");
                let _ = to_client.send(error_line(Value::Null, -32600, "Message too large"));
                // Skip the rest of the oversized line.
                let mut rest = Vec::new();
                if stdin.read_until(b'\n', &mut rest).await.unwrap_or(0) == 0 {
                    return;
                }
            }
            Ok(_) => match parse(&line) {
                Parsed::Message(message) => {
                    if to_server.send(*message).await.is_err() {
                        return;
                    }
                }
                Parsed::Reply(reply) => {
                    let _ = to_client.send(reply);
                }
                Parsed::Nothing => {}
            },
            Err(e) => {
                tracing::error!(error = %e, "reading stdin failed");
                return;
            }
        }
    }
}

enum Parsed {
    Message(Box<ClientJsonRpcMessage>),
    /// An error answer to send back instead.
    Reply(String),
    Nothing,
}

fn parse(line: &[u8]) -> Parsed {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return Parsed::Nothing;
    }
    let error = match serde_json::from_str::<ClientJsonRpcMessage>(text) {
        Ok(message) => return Parsed::Message(Box::new(message)),
        Err(e) => e,
    };
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Parsed::Reply(error_line(Value::Null, -32700, "Parse error: the line is not JSON"));
    };
    match value.get("id").filter(|id| id.is_string() || id.is_number()) {
        Some(id) => {
            tracing::debug!(%id, error = %error, "a request the server cannot read");
            Parsed::Reply(error_line(id.clone(), -32600, &format!("Invalid request: {error}")))
        }
        // An unreadable notification gets no answer (JSON-RPC forbids one); it is only logged.
        None if value.get("method").is_some() => {
            tracing::debug!(error = %error, "ignored a notification the server cannot read");
            Parsed::Nothing
        }
        None => Parsed::Reply(error_line(Value::Null, -32600, "Invalid request")),
    }
}

fn error_line(id: Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

async fn write_lines(stdout: impl tokio::io::AsyncWrite + Unpin, mut lines: mpsc::UnboundedReceiver<String>) {
    let mut stdout = tokio::io::BufWriter::new(stdout);
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        if stdout.write_all(line.as_bytes()).await.is_err() {
            return;
        }
        // Flush only when nothing else is waiting: a burst of answers goes out in one write.
        if lines.is_empty() && stdout.flush().await.is_err() {
            return;
        }
    }
    let _ = stdout.flush().await;
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
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/bogus","params":7}"#),
            Parsed::Nothing
        ));
        assert!(matches!(
            parse(b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n"),
            Parsed::Message(_)
        ));
    }
}
