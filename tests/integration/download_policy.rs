//! Result downloads go only where results live: link-local, private, unique-local and loopback
//! addresses are refused — as literals, as names that resolve to them, and as redirect targets —
//! and the refused URL is still listed, with why it was not downloaded.
//!
//! These tests never open a connection to anything but 127.0.0.1, even if the policy under test
//! were broken: names are resolved by a test resolver that maps them to the addresses under test
//! and sends any dial it is allowed to make to a recorder on loopback, and requests to address
//! literals are routed (as a proxy would be) to that same recorder. The recorder counts what
//! reaches it, so "refused before any dial" is asserted, not assumed.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use crate::common::{eventually, fast_config, simulator, Control};
use runcomfy_mcp::media::{
    self,
    address::{Lookup, Resolver},
    AddressPolicy, Downloader, MediaOptions, OutputReport,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A listener on loopback that records every connection and the first line sent on it, then
/// closes it without an answer.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        let mut first = vec![0u8; 512];
                        let n = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut first))
                            .await
                            .ok()
                            .and_then(Result::ok)
                            .unwrap_or(0);
                        let line = String::from_utf8_lossy(&first[..n])
                            .lines()
                            .next()
                            .unwrap_or("")
                            .to_owned();
                        seen.lock().unwrap().push(line);
                        let _ = stream.shutdown().await;
                    });
                }
            }
        });
        Self { addr, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Test names → the addresses under test; every allowed dial → the recorder.
struct TestResolver {
    names: HashMap<&'static str, Vec<IpAddr>>,
    recorder: SocketAddr,
    dialled: Mutex<Vec<IpAddr>>,
}

impl Resolver for TestResolver {
    fn lookup(&self, host: &str) -> Lookup {
        let found = self.names.get(host).cloned();
        let host = host.to_owned();
        Box::pin(async move {
            found.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host}: not a test name")))
        })
    }

    fn dial(&self, address: SocketAddr) -> SocketAddr {
        self.dialled.lock().unwrap().push(address.ip());
        self.recorder
    }
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

struct Harness {
    recorder: Recorder,
    resolver: Arc<TestResolver>,
    downloader: Downloader,
}

async fn harness(policy: AddressPolicy) -> Harness {
    let recorder = Recorder::start().await;
    let names = HashMap::from([
        ("metadata.test", ips(&["169.254.169.254"])),
        ("private.test", ips(&["10.0.0.1"])),
        ("ula.test", ips(&["fd00::1"])),
        ("loopback.test", ips(&["127.0.0.1"])),
        // One public address and one private one: refused whole.
        ("rebind.test", ips(&["93.184.216.34", "192.168.0.10"])),
        ("public.test", ips(&["93.184.216.34"])),
    ]);
    let resolver = Arc::new(TestResolver {
        names,
        recorder: recorder.addr,
        dialled: Mutex::new(Vec::new()),
    });
    // Address literals never reach a resolver: any request to one that is not loopback goes to
    // the recorder (as an HTTP proxy), so even a broken check dials nothing else.
    let proxy_url = format!("http://{}", recorder.addr);
    let proxy = reqwest::Proxy::custom(move |url| {
        let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = host.parse().ok()?;
        (!ip.is_loopback()).then(|| proxy_url.clone())
    });
    let downloader = Downloader::builder(policy)
        .resolver(resolver.clone())
        .proxy(proxy)
        .build()
        .unwrap();
    Harness {
        recorder,
        resolver,
        downloader,
    }
}

/// Collects `urls` as a result's images (previews on, so each is fetched).
async fn collect(downloader: &Downloader, urls: &[String]) -> Vec<OutputReport> {
    let options = MediaOptions::default();
    let urls = media::OutputUrls {
        images: urls.to_vec(),
        ..media::OutputUrls::default()
    };
    let request = media::Request {
        name_stem: "policy-test",
        urls: &urls,
        full_size: false,
    };
    media::collect(downloader, &options, request).await.outputs
}

fn problem(report: &OutputReport) -> &str {
    report
        .problem
        .as_deref()
        .unwrap_or_else(|| panic!("no problem noted for {}", report.url))
}

#[tokio::test]
async fn link_local_private_and_local_urls_are_listed_but_never_fetched() {
    let h = harness(AddressPolicy::public_only()).await;
    let cases = [
        (
            "https://169.254.169.254/latest/meta-data/iam",
            "169.254.169.254 is a link-local address",
        ),
        ("https://[fe80::1]/a.png", "fe80::1 is a link-local address"),
        ("https://10.0.0.1/a.png", "10.0.0.1 is a private address"),
        ("https://[fd00::1]/a.png", "fd00::1 is a unique-local address"),
        ("https://[::ffff:169.254.169.254]/a.png", "a link-local address"),
        ("https://127.0.0.1/a.png", "127.0.0.1 is a loopback address"),
        (
            "https://metadata.test/a.png",
            "metadata.test resolves to 169.254.169.254, a link-local address",
        ),
        (
            "https://private.test/a.png",
            "private.test resolves to 10.0.0.1, a private address",
        ),
        (
            "https://ula.test/a.png",
            "ula.test resolves to fd00::1, a unique-local address",
        ),
        ("https://loopback.test/a.png", "a loopback address"),
        (
            "https://rebind.test/a.png",
            "rebind.test resolves to 192.168.0.10, a private address",
        ),
        ("http://public.test/a.png", "only https URLs are fetched"),
    ];
    let urls: Vec<String> = cases.iter().map(|(url, _)| url.to_string()).collect();
    let reports = collect(&h.downloader, &urls).await;
    assert_eq!(reports.len(), cases.len(), "every refused URL is still listed");
    for ((url, why), report) in cases.iter().zip(&reports) {
        assert_eq!(report.url, *url);
        let problem = problem(report);
        assert!(problem.starts_with("not downloaded: refused: "), "{url}: {problem}");
        assert!(problem.contains(why), "{url}: {problem}");
        assert!(report.bytes.is_none() && report.inline.is_none());
    }
    assert!(
        h.resolver.dialled.lock().unwrap().is_empty(),
        "refused before any dial: {:?}",
        h.resolver.dialled.lock().unwrap()
    );
    assert!(
        h.recorder.seen().is_empty(),
        "nothing connected: {:?}",
        h.recorder.seen()
    );

    // The control: a public name is dialled (to the recorder, which hangs up on the TLS hello).
    let reports = collect(&h.downloader, &["https://public.test/a.png".to_owned()]).await;
    assert!(!problem(&reports[0]).contains("refused"), "{}", problem(&reports[0]));
    assert_eq!(*h.resolver.dialled.lock().unwrap(), ips(&["93.184.216.34"]));
    assert_eq!(h.recorder.seen().len(), 1, "{:?}", h.recorder.seen());
}

#[tokio::test]
async fn a_redirect_to_a_private_address_is_refused_before_it_is_followed() {
    // The simulator is the (loopback) upstream, whose own origin is allowed: its image URL
    // answers with a redirect.
    let sim = simulator(fast_config()).await;
    let control = Control::new(&sim);
    let h = harness(AddressPolicy::for_upstream(&sim.base_url())).await;
    let image = format!("{}/files/none/0.png", sim.base_url());
    for (target, why) in [
        (
            "https://private.test/x.png",
            "private.test resolves to 10.0.0.1, a private address",
        ),
        ("https://metadata.test/x.png", "a link-local address"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a link-local address",
        ),
        ("https://[fd00::2]/x.png", "a unique-local address"),
        // Another port on loopback is not the upstream.
        ("http://127.0.0.1:9/x.png", "only https URLs are fetched"),
        ("https://127.0.0.1:9/x.png", "127.0.0.1 is a loopback address"),
    ] {
        control
            .fault(json!({"endpoint": "image", "status": 302, "location": target, "body": ""}))
            .await;
        let reports = collect(&h.downloader, std::slice::from_ref(&image)).await;
        let problem = problem(&reports[0]);
        assert!(problem.starts_with("not downloaded: refused: "), "{target}: {problem}");
        assert!(problem.contains(why), "{target}: {problem}");
    }
    assert_eq!(sim.stats().image_calls, 6, "each first hop reached the upstream");
    assert!(h.resolver.dialled.lock().unwrap().is_empty());
    assert!(h.recorder.seen().is_empty(), "{:?}", h.recorder.seen());

    // A redirect chain longer than the limit is refused too, even between allowed URLs.
    control
        .fault(json!({"endpoint": "image", "status": 302, "location": image, "body": "", "times": 10}))
        .await;
    let reports = collect(&h.downloader, std::slice::from_ref(&image)).await;
    assert!(
        problem(&reports[0]).contains("more than 5 redirects"),
        "{}",
        problem(&reports[0])
    );
}

#[tokio::test]
async fn the_local_upstream_serves_its_own_results() {
    // With --simulate or a loopback --base-url, results come from the upstream itself.
    let sim = simulator(fast_config()).await;
    let downloader = Downloader::new(AddressPolicy::for_upstream(&sim.base_url())).unwrap();
    let client = runcomfy_mcp::runcomfy::Client::new(runcomfy_mcp::runcomfy::ClientConfig {
        base_url: sim.base_url(),
        token: runcomfy_mcp::runcomfy::ApiToken::new(crate::common::TOKEN),
        model: "bytedance/dreamina-4-0/text-to-image".into(),
        timeout: std::time::Duration::from_secs(30),
        retry: runcomfy_mcp::runcomfy::RetryPolicy::default(),
    })
    .unwrap();
    let id = client
        .submit(&json!({"prompt": "x", "width\u{d7}height": "1024x1024(1:1)", "force_single": true}))
        .await
        .unwrap();
    let urls = eventually(
        async || {
            let answer = client.result(None, &id).await.unwrap();
            match answer.status {
                runcomfy_mcp::runcomfy::JobStatus::Succeeded => Ok(answer.output.unwrap().image_urls()),
                other => Err(other),
            }
        },
        "the job to succeed",
    )
    .await;
    let reports = collect(&downloader, &urls).await;
    assert!(reports[0].problem.is_none(), "{:?}", reports[0].problem);
    assert_eq!((reports[0].width, reports[0].height), (Some(1024), Some(1024)));
    // The same URL is refused by a server talking to a remote upstream.
    let remote = Downloader::new(AddressPolicy::public_only()).unwrap();
    let reports = collect(&remote, &urls).await;
    assert!(problem(&reports[0]).contains("only https"), "{}", problem(&reports[0]));
}

/// The on-demand path (result resources, the app view's Save) goes through the same policy.
#[tokio::test]
async fn resource_reads_and_saves_are_refused_the_same_way() {
    use runcomfy_mcp::media::{
        on_demand::{self, Form},
        OutputDir,
    };
    let h = harness(AddressPolicy::public_only()).await;
    let out = tempfile::tempdir().unwrap();
    let options = MediaOptions {
        output_dir: Some(OutputDir::prepare(out.path().to_str().unwrap()).unwrap()),
        ..MediaOptions::default()
    };
    for url in [
        "https://169.254.169.254/latest/meta-data/iam",
        "https://private.test/a.png",
    ] {
        for form in [Form::Preview, Form::Original { max_bytes: 1 << 20 }] {
            let refused = on_demand::fetch(&h.downloader, &options, url, form).await.unwrap_err();
            assert!(refused.contains("refused"), "{url} {form:?}: {refused}");
        }
        let refused = on_demand::save(&h.downloader, &options, url, "job", 1)
            .await
            .unwrap_err();
        assert!(refused.contains("refused"), "{url}: {refused}");
    }
    assert!(h.resolver.dialled.lock().unwrap().is_empty(), "refused before any dial");
    assert!(
        h.recorder.seen().is_empty(),
        "nothing connected: {:?}",
        h.recorder.seen()
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "nothing saved");
}
