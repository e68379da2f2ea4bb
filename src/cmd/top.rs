//! `wordstream top`: the dashboard's numbers in a terminal, for people
//! without a browser. Polls a worker's web server (`/top?n=N` and
//! `/api/dashboard`: any worker answers for the whole group) and redraws a
//! table of the top words, the group's words/s and objects/s, the backlog
//! and each worker's partitions and lag. `--once` prints one frame and
//! exits (scripts, tests); off a terminal each frame is printed after the
//! last instead of over it.

use crate::output::tally_table;
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use comfy_table::{presets, Table};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Flags of `top`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base URL of any worker's web server.
    #[arg(
        long,
        default_value = "http://127.0.0.1:6066",
        env = "WORDSTREAM_WEB_URL"
    )]
    pub url: String,
    /// How many words (1 to 1000).
    #[arg(short = 'n', long = "top", default_value_t = 20,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub n: u16,
    /// Seconds between refreshes.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub interval: f64,
    /// Print one frame and exit.
    #[arg(long)]
    pub once: bool,
}

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    if !(0.2..=3600.0).contains(&args.interval) {
        bail!("--interval must be between 0.2 and 3600 seconds");
    }
    let base = args.url.trim_end_matches('/').to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let live = !args.once && std::io::stdout().is_terminal();
    loop {
        let frame = rt.block_on(frame(&http, &base, args.n))?;
        let mut out = std::io::stdout().lock();
        let written = if live {
            write!(out, "\x1b[2J\x1b[H{frame}")
        } else {
            writeln!(out, "{frame}")
        };
        if written.and_then(|()| out.flush()).is_err() || args.once {
            return Ok(()); // a closed stdout ends the view
        }
        drop(out);
        std::thread::sleep(Duration::from_secs_f64(args.interval));
    }
}

/// GET `base``path` as JSON.
async fn get(http: &Http, base: &str, path: &str) -> Result<serde_json::Value> {
    let url = format!("{base}{path}");
    let uri: hyper::Uri = url.parse().with_context(|| format!("bad --url {base}"))?;
    let work = async {
        let resp = http
            .get(uri)
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body)
            .with_context(|| format!("{url}: the answer is not JSON (HTTP {status})"))?;
        if !status.is_success() {
            bail!(
                "{url}: HTTP {status}: {}",
                v["error"].as_str().unwrap_or("")
            );
        }
        Ok(v)
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .map_err(|_| anyhow!("{url}: no answer within 10 s"))?
}

/// One screen.
async fn frame(http: &Http, base: &str, n: u16) -> Result<String> {
    let top = get(http, base, &format!("/top?n={n}")).await?;
    let dash = get(http, base, "/api/dashboard").await?;
    let words: Vec<(String, i64)> = top["words"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|w| {
                    (
                        w["word"].as_str().unwrap_or("").to_string(),
                        w["count"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<(&str, i64)> = words.iter().map(|(w, c)| (w.as_str(), *c)).collect();
    let last = dash["series"].as_array().and_then(|s| s.last().cloned());
    let rate = |k: &str| last.as_ref().and_then(|l| l[k].as_f64()).unwrap_or(0.0);
    let mut s = format!(
        "wordstream top — {base} (served by {})\nwords/s {:.0}   objects/s {:.1}   backlog {}{}\n",
        dash["worker"].as_str().unwrap_or("?"),
        rate("words"),
        rate("objects"),
        dash["backlog"].as_i64().unwrap_or(0),
        if top["complete"] == true {
            String::new()
        } else {
            format!(
                "   (partial: partitions {} restoring or rebalancing)",
                top["missing_partitions"]
            )
        }
    );
    s.push_str(&format!("{}\n", tally_table(&rows)));
    let mut workers = Table::new();
    workers
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_header(vec![
            "worker",
            "ready",
            "changelog partitions",
            "lag",
            "backlog",
        ]);
    for m in dash["members"].as_array().into_iter().flatten() {
        let parts = |k: &str| {
            m[k].as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default()
        };
        workers.add_row(vec![
            format!(
                "{}{}",
                m["worker"].as_str().unwrap_or("?"),
                if m["lister"] == true { " (lister)" } else { "" }
            ),
            if m["ready"] == true { "yes" } else { "no" }.to_string(),
            parts("repartition"),
            m["lag"].to_string(),
            m["backlog"].to_string(),
        ]);
    }
    s.push_str(&workers.to_string());
    Ok(s)
}
