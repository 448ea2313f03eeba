//! One HTTP exchange with RunComfy: a request out, its status, `Retry-After` and body (capped)
//! back, within one deadline. Two stacks behind one call:
//!
//! - **Direct** (the usual case): hyper's pooled client with rustls, as reqwest configures them
//!   (webpki roots, TLS 1.2 and 1.3, ALPN `http/1.1`, `TCP_NODELAY`, keep-alive probes, 90 s idle
//!   connections). reqwest's own layers cost more than the exchange they carry: measured with
//!   callgrind, a status call spent 58 k instructions in the upstream client, 18 k of them
//!   parsing the request's URL twice (reqwest's redirect layer turns the URI back into a `Url`
//!   on every request, whatever the redirect policy) and more in its tower layers.
//! - **Proxied**: reqwest, when the proxy settings (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, …,
//!   read as reqwest reads them) send the API's host through a proxy: reqwest knows every kind of
//!   proxy and its authentication, which is not worth writing again for the few who need it.
//!
//! Neither follows redirects: an API answer that points elsewhere is an answer to report, and a
//! redirected submit must not be sent again (reqwest would resend a POST as a GET).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::{
    legacy::{connect::HttpConnector, Client as Pool},
    proxy::matcher::Matcher,
};
use reqwest::{
    header::{self, HeaderValue},
    Method, Url,
};

/// What goes out.
pub struct Call<'a> {
    pub method: Method,
    pub url: &'a str,
    pub authorization: HeaderValue,
    /// JSON, sent as `application/json`.
    pub body: Option<Vec<u8>>,
    /// The whole exchange's deadline, when not the settings' own (a large body takes longer).
    pub timeout: Option<Duration>,
}

/// What came back.
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// Why no whole answer came back.
pub enum Failure {
    /// Nothing was sent: the connection (TCP, TLS, or the proxy's) was never made.
    Connect(String),
    /// The deadline passed; the request may have been sent.
    Timeout,
    /// The connection failed after the request may have been sent.
    Lost(String),
    /// The answer's body is over the cap (its status).
    TooLarge(u16),
}

type Direct = Pool<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

#[derive(Clone, Debug)]
pub struct Http {
    stack: Stack,
    settings: std::sync::Arc<Settings>,
}

#[derive(Clone, Debug)]
enum Stack {
    Direct(Direct),
    Proxied(reqwest::Client),
}

#[derive(Debug)]
pub struct Settings {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub user_agent: &'static str,
    pub max_answer_bytes: usize,
}

impl Http {
    /// The stack for calls to `base`: reqwest if a proxy applies to it, hyper directly otherwise.
    pub fn for_base(base: &Url, settings: Settings) -> Result<Self, String> {
        Self::choose(base, settings, &Matcher::from_system())
    }

    fn choose(base: &Url, settings: Settings, proxies: &Matcher) -> Result<Self, String> {
        let uri: http::Uri = base
            .as_str()
            .parse()
            .map_err(|e| format!("the base URL {base} is not a URI: {e}"))?;
        let stack = match proxies.intercept(&uri) {
            Some(_) => Stack::Proxied(proxied(&settings)?),
            None => Stack::Direct(direct(&settings)),
        };
        Ok(Self {
            stack,
            settings: std::sync::Arc::new(settings),
        })
    }

    /// One exchange, the whole of it (connect, send, answer and body) within the timeout.
    pub async fn send(&self, call: Call<'_>) -> Result<Answer, Failure> {
        let settings = &*self.settings;
        let timeout = call.timeout.unwrap_or(settings.timeout);
        match &self.stack {
            Stack::Direct(pool) => tokio::time::timeout(timeout, send_direct(pool, settings, call))
                .await
                .unwrap_or(Err(Failure::Timeout)),
            Stack::Proxied(client) => send_proxied(client, settings, call).await,
        }
    }
}

fn direct(settings: &Settings) -> Direct {
    let mut tcp = HttpConnector::new();
    // TLS is the next layer's: this one must let https URLs through.
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(settings.connect_timeout));
    // reqwest's defaults: a peer that vanished is noticed within a minute, not hours.
    tcp.set_keepalive(Some(Duration::from_secs(15)));
    tcp.set_keepalive_interval(Some(Duration::from_secs(15)));
    tcp.set_keepalive_retries(Some(3));
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    tcp.set_tcp_user_timeout(Some(Duration::from_secs(30)));
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        // Offers ALPN `http/1.1`, as reqwest does without HTTP/2.
        .enable_http1()
        .wrap_connector(tcp);
    Pool::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .build(https)
}

fn proxied(settings: &Settings) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.connect_timeout)
        .user_agent(settings.user_agent)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

async fn send_direct(
    pool: &Direct,
    settings: &Settings,
    Call {
        method,
        url,
        authorization,
        body,
        timeout: _,
    }: Call<'_>,
) -> Result<Answer, Failure> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| Failure::Connect(format!("{url} is not a URI: {e}")))?;
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(header::USER_AGENT, settings.user_agent)
        .header(header::ACCEPT, "application/json")
        .header(header::AUTHORIZATION, authorization);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| Failure::Connect(format!("cannot build the request: {e}")))?;
    let response = pool.request(request).await.map_err(|e| {
        let text = crate::text::cause_chain(&e);
        if e.is_connect() {
            Failure::Connect(text)
        } else {
            Failure::Lost(text)
        }
    })?;
    let (head, mut body) = response.into_parts();
    let status = head.status.as_u16();
    let declared = head
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut bytes = Capped::new(status, declared, settings)?;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::Lost(crate::text::cause_chain(&e)))?;
        if let Ok(data) = frame.into_data() {
            bytes.push(&data)?;
        }
    }
    Ok(Answer {
        status,
        retry_after: retry_after(&head.headers),
        body: bytes.0,
    })
}

async fn send_proxied(
    client: &reqwest::Client,
    settings: &Settings,
    Call {
        method,
        url,
        authorization,
        body,
        timeout,
    }: Call<'_>,
) -> Result<Answer, Failure> {
    let failure = |e: reqwest::Error| {
        let text = crate::text::cause_chain(&e);
        if e.is_connect() {
            Failure::Connect(text)
        } else if e.is_timeout() {
            Failure::Timeout
        } else {
            Failure::Lost(text)
        }
    };
    let mut request = client
        .request(method, url)
        .header(header::AUTHORIZATION, authorization)
        .header(header::ACCEPT, "application/json");
    if let Some(body) = body {
        request = request.header(header::CONTENT_TYPE, "application/json").body(body);
    }
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    let mut response = request.send().await.map_err(failure)?;
    let status = response.status().as_u16();
    let mut bytes = Capped::new(status, response.content_length(), settings)?;
    let retry_after = retry_after(response.headers());
    while let Some(chunk) = response.chunk().await.map_err(failure)? {
        bytes.push(&chunk)?;
    }
    Ok(Answer {
        status,
        retry_after,
        body: bytes.0,
    })
}

/// An answer's body as it arrives, refused once it is over the cap (or declared to be).
struct Capped(Vec<u8>, u16, usize);

impl Capped {
    fn new(status: u16, declared: Option<u64>, settings: &Settings) -> Result<Self, Failure> {
        let cap = settings.max_answer_bytes;
        match declared {
            Some(n) if n > cap as u64 => Err(Failure::TooLarge(status)),
            _ => Ok(Self(Vec::new(), status, cap)),
        }
    }

    fn push(&mut self, chunk: &[u8]) -> Result<(), Failure> {
        if self.0.len() + chunk.len() > self.2 {
            return Err(Failure::TooLarge(self.1));
        }
        self.0.extend_from_slice(chunk);
        Ok(())
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and is ignored).
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    fn settings(max_answer_bytes: usize) -> Settings {
        Settings {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            user_agent: "runcomfy-mcp/test",
            max_answer_bytes,
        }
    }

    fn direct_http(settings: Settings) -> Http {
        Http::choose(
            &Url::parse("http://127.0.0.1").unwrap(),
            settings,
            &Matcher::builder().build(),
        )
        .unwrap()
    }

    fn get(url: &Url) -> Call<'_> {
        Call {
            method: Method::GET,
            url: url.as_str(),
            authorization: HeaderValue::from_static("Bearer test"),
            body: None,
            timeout: None,
        }
    }

    /// Serves each connection `answer` after reading a request head, and hands back what it read.
    async fn plain_server(answer: &'static [u8]) -> (Url, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!(
            "http://{}/v1/requests/x/status",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1 {
                        head.push(byte[0]);
                    }
                    let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                    let _ = socket.write_all(answer).await;
                });
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn an_exchange_carries_the_headers_and_reads_status_retry_after_and_body() {
        let (url, mut seen) =
            plain_server(b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 2\r\n\r\n{}").await;
        let http = direct_http(settings(1024));
        let answer = match http.send(get(&url)).await {
            Ok(answer) => answer,
            Err(_) => panic!("the exchange failed"),
        };
        assert_eq!(
            (answer.status, answer.retry_after, &answer.body[..]),
            (429, Some(Duration::from_secs(7)), &b"{}"[..])
        );
        let head = seen.recv().await.unwrap().to_ascii_lowercase();
        for line in [
            "get /v1/requests/x/status http/1.1",
            "authorization: bearer test",
            "accept: application/json",
            "user-agent: runcomfy-mcp/test",
        ] {
            assert!(head.contains(line), "{line:?} not in {head}");
        }
    }

    #[tokio::test]
    async fn an_answer_over_the_cap_is_refused_whether_its_length_is_declared_or_not() {
        let http = direct_http(settings(8));
        for answer in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n123456789"[..],
            &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n12345\r\n5\r\n67890\r\n0\r\n\r\n"[..],
        ] {
            let answer: &'static [u8] = answer;
            let (url, _seen) = plain_server(answer).await;
            assert!(matches!(http.send(get(&url)).await, Err(Failure::TooLarge(200))));
        }
    }

    /// The TLS layer is there and verifies: a server whose certificate no public root signed is
    /// refused during the handshake, as a connect failure (nothing was sent).
    #[tokio::test]
    async fn an_untrusted_certificate_is_refused_before_anything_is_sent() {
        use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
        let cert = CertificateDer::from_pem_slice(include_bytes!("testdata/self-signed.crt.pem")).unwrap();
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("testdata/self-signed.key.pem")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!(
            "https://{}/v1/requests/x/status",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let (got_request, mut requests) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                if let Ok(mut tls) = acceptor.accept(socket).await {
                    let mut buf = [0u8; 64];
                    if tls.read(&mut buf).await.unwrap_or(0) > 0 {
                        let _ = got_request.send(());
                    }
                }
            }
        });
        let http = direct_http(settings(1024));
        match http.send(get(&url)).await {
            Err(Failure::Connect(detail)) => assert!(detail.to_lowercase().contains("certificate"), "{detail}"),
            Err(_) => panic!("not refused as a connect failure"),
            Ok(answer) => panic!("answered {}", answer.status),
        }
        assert!(requests.try_recv().is_err(), "the request reached the server");
    }

    #[test]
    fn a_proxy_for_the_api_host_sends_its_calls_through_reqwest_and_no_proxy_does_not() {
        let base = Url::parse("https://model-api.runcomfy.net").unwrap();
        let proxy = || Matcher::builder().https("http://proxy.internal:3128");
        let chosen = |proxies: Matcher| Http::choose(&base, settings(1024), &proxies).unwrap().stack;
        assert!(matches!(chosen(proxy().build()), Stack::Proxied(_)));
        assert!(matches!(chosen(proxy().no("runcomfy.net").build()), Stack::Direct(_)));
        assert!(matches!(
            chosen(Matcher::builder().http("http://proxy.internal:3128").build()),
            Stack::Direct(_)
        ));
        assert!(matches!(chosen(Matcher::builder().build()), Stack::Direct(_)));
    }
}
