//! The worker's web server seen from a test: its address (from the
//! `web_listening` event), HTTP GETs of any bytes as a path (raw HTTP/1.1
//! over TCP, so a test can also send what no HTTP library would: invalid
//! UTF-8, a megabyte of path), JSON answers, and `/metrics` parsed with a
//! Prometheus text parser (`prometheus-parse`).

use crate::worker::Worker;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wordstream::events::Event;

/// One HTTP answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (panics, with the body, if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The worker's web address (`127.0.0.1:PORT`), from its `web_listening`
/// event.
pub async fn addr(w: &mut Worker) -> String {
    match w
        .wait_event(0.0, crate::worker::READY, "web_listening event", |e| {
            matches!(e, Event::WebListening { .. })
        })
        .await
    {
        (_, Event::WebListening { addr, .. }) => addr,
        _ => unreachable!(),
    }
}

/// GET `path` (any bytes) from `addr`; `None` when the connection fails or
/// the server closes it without an answer. At most 20 s.
pub async fn get_raw(addr: &str, path: &[u8]) -> Option<Response> {
    let work = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(path);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        // A server may answer (and close) before reading all of a huge
        // request: a failed write is not the end.
        let _ = s.write_all(&req).await;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        parse(&buf)
    };
    tokio::time::timeout(Duration::from_secs(20), work)
        .await
        .ok()
        .flatten()
}

/// GET `path`; panics when there is no answer.
pub async fn get(addr: &str, path: &str) -> Response {
    get_raw(addr, path.as_bytes())
        .await
        .unwrap_or_else(|| panic!("no HTTP answer from {addr}{path}"))
}

fn parse(buf: &[u8]) -> Option<Response> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t == "chunked")
    {
        body = unchunk(&body);
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

fn unchunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// `/metrics` of `addr`, parsed.
pub async fn scrape(addr: &str) -> prometheus_parse::Scrape {
    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, 200, "/metrics: {}", r.text());
    let lines = r
        .text()
        .lines()
        .map(|l| Ok(l.to_string()))
        .collect::<Vec<_>>();
    prometheus_parse::Scrape::parse(lines.into_iter()).expect("a valid Prometheus exposition")
}

/// The value of the sample `name` whose labels include `labels` (a
/// counter's or gauge's; summed over the matching series).
pub fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for sample in s.samples.iter().filter(|x| x.metric == name) {
        if labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v)) {
            let v = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => continue,
            };
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// The metric names of a scrape (histograms under their base name).
pub fn names(s: &prometheus_parse::Scrape) -> std::collections::BTreeSet<String> {
    s.samples.iter().map(|x| x.metric.clone()).collect()
}

/// The `_count` of histogram `name` (its observations).
pub fn histogram_count(s: &prometheus_parse::Scrape, name: &str) -> Option<f64> {
    let count = format!("{name}_count");
    s.samples
        .iter()
        .filter(|x| x.metric == count || x.metric == name)
        .find_map(|x| match &x.value {
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map(|b| b.count),
            prometheus_parse::Value::Untyped(v) | prometheus_parse::Value::Counter(v) => Some(*v),
            _ => None,
        })
}

/// `word` as one path segment.
pub fn encode(word: &str) -> String {
    percent_encoding::utf8_percent_encode(word, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Waits until every worker at `addrs` lists `n` ready members in
/// `/members` (each knows where the others are).
pub async fn wait_members(addrs: &[String], n: usize) {
    for a in addrs {
        let a = a.clone();
        crate::wait::wait_for(
            Duration::from_secs(60),
            &format!("{n} ready members seen by {a}"),
            || {
                let a = a.clone();
                async move {
                    let r = get(&a, "/members").await;
                    let v = r.json();
                    v.as_array().is_some_and(|m| {
                        m.len() == n
                            && m.iter()
                                .all(|x| x["ready"] == true && x["restoring"] == false)
                    })
                }
            },
        )
        .await;
    }
}

/// Waits until `/metrics` at `addr` shows lag series, all 0 (the worker is
/// idle and caught up).
pub async fn wait_lag_zero(addr: &str) {
    let addr = addr.to_string();
    crate::wait::wait_for(
        Duration::from_secs(30),
        "consumer lag series, all 0",
        || {
            let addr = addr.clone();
            async move {
                let s = scrape(&addr).await;
                let lags: Vec<f64> =
                    s.samples
                        .iter()
                        .filter(|x| x.metric == wordstream::web::metrics::LAG)
                        .filter_map(|x| match x.value {
                            prometheus_parse::Value::Gauge(v)
                            | prometheus_parse::Value::Untyped(v) => Some(v),
                            _ => None,
                        })
                        .collect();
                !lags.is_empty() && lags.iter().all(|&v| v == 0.0)
            }
        },
    )
    .await;
}

/// The headless browser: `WORDSTREAM_CHROMIUM`, else `chromium` or
/// `chromium-browser` on PATH (Debian's `chromium`, installed by
/// `scripts/deps`).
pub fn chromium() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("WORDSTREAM_CHROMIUM") {
        return Some(p.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| [d.join("chromium"), d.join("chromium-browser")])
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `args` (`--dump-dom`,
/// `--screenshot=…`), letting the page run its scripts for `budget_ms` of
/// virtual time; its stdout.
pub fn chromium_run(url: &str, budget_ms: u64, args: &[&str]) -> String {
    let bin = chromium().expect("chromium not found: run scripts/deps (Debian package chromium)");
    let profile = tempfile::tempdir().expect("a profile folder");
    let out = std::process::Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{} failed: {}\n{}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every PromQL expression of a Grafana dashboard (panel targets' `expr`,
/// templating queries).
pub fn grafana_exprs(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("expr" | "query", serde_json::Value::String(s)) => out.push(s.clone()),
                        _ => walk(x, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&v, &mut out);
    out.retain(|e| e.contains("wordstream_"));
    out
}

/// The metric names (`wordstream_…`) an expression uses.
pub fn metric_names_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("wordstream_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}
