//! The worker's web server (issue 17) on the single-node stack:
//!
//! - `/metrics` scraped all through a run and parsed with a Prometheus text
//!   parser; at the end its counters equal what the ledger says (objects
//!   counted = `counted` entries, words, bytes), and every metric the
//!   worker declares is exported;
//! - `/table/word_counts/{word}`, `/top` and `/objects` answered correctly
//!   by each of three workers, words owned by another worker included, and
//!   503 + `Retry-After` while a fourth worker restores;
//! - bad requests (unknown word, a 1 MB path, invalid UTF-8, `../`, odd
//!   parameters) get 4xx JSON and the worker lives on; idle and slow
//!   connections do not hold the server;
//! - the dashboard rendered by headless Chromium (`web_dashboard`), with a
//!   screenshot in `target/artifacts/dashboard.png`;
//! - the Grafana dashboard's expressions use only exported metrics;
//! - a taken port fails the start in one line; `--no-web` serves nothing;
//! - `wordstream top --once` prints the dashboard's numbers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use testkit::app::App;
use testkit::corpus::papers;
use testkit::counts::{count_local, Counts};
use testkit::stack::shared;
use testkit::web::{self, get, get_raw, scrape, value};
use testkit::worker::Worker;
use tokio::io::AsyncWriteExt;
use wordstream::web::metrics as m;

const DONE: Duration = Duration::from_secs(240);

/// The expected top `n` (count descending, then word ascending).
fn expected_top(want: &Counts, n: usize) -> Vec<(String, i64)> {
    let mut all: Vec<(String, i64)> = want.iter().map(|(w, c)| (w.clone(), *c)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(n);
    all
}

/// `/top`'s words as (word, count).
fn top_words(v: &serde_json::Value) -> Vec<(String, i64)> {
    v["words"]
        .as_array()
        .expect("words")
        .iter()
        .map(|x| {
            (
                x["word"].as_str().unwrap().to_string(),
                x["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_scraped_during_a_run_match_the_ledger() {
    let _stack = shared().await;
    let (app, mut w) = App::with_worker("ws-web-metrics", "web-metrics-1", &[]).await;
    let addr = web::addr(&mut w).await;
    let health = get(&addr, "/health").await;
    assert_eq!(
        (health.status, health.json()["status"].clone()),
        (200, "ok".into())
    );
    let ready = get(&addr, "/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["ready"], true);

    let files = papers(0, 40);
    let upload = app.upload_gradually(files.clone(), 8, Duration::from_millis(400));
    let urls: Vec<String> = files.iter().map(|(k, _)| app.url(k)).collect();
    // Scrape every 300 ms while the worker counts: every scrape parses and
    // the counter never goes down.
    let (mut scrapes, mut last, mut seen_between) = (0, 0.0, false);
    let start = Instant::now();
    loop {
        let s = scrape(&addr).await;
        scrapes += 1;
        let counted = value(&s, m::OBJECTS_COUNTED, &[]).expect("objects counted");
        assert!(
            counted >= last,
            "{} went down: {last} → {counted}",
            m::OBJECTS_COUNTED
        );
        seen_between |= counted > 0.0 && counted < files.len() as f64;
        last = counted;
        if counted >= files.len() as f64 {
            break;
        }
        assert!(
            start.elapsed() < DONE,
            "not counted in {DONE:?}\n{}",
            w.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    upload.await.expect("uploads");
    app.wait_for_done(&urls, DONE, &[&w]).await;
    eprintln!("{scrapes} scrapes during the run (a partial count seen: {seen_between})");

    let ledger = app.ledger_latest().await;
    let counted: Vec<&serde_json::Value> = ledger
        .values()
        .filter(|v| v["state"] == "counted")
        .collect();
    let sum = |f: &str| counted.iter().map(|v| v[f].as_u64().unwrap()).sum::<u64>() as f64;
    let s = scrape(&addr).await;
    assert_eq!(
        value(&s, m::OBJECTS_COUNTED, &[]),
        Some(counted.len() as f64)
    );
    assert_eq!(counted.len(), files.len());
    assert_eq!(value(&s, m::WORDS, &[]), Some(sum("words")));
    assert_eq!(value(&s, m::BYTES, &[]), Some(sum("size")));
    assert_eq!(value(&s, m::OBJECTS_FAILED, &[]), Some(0.0));
    assert_eq!(value(&s, m::READY, &[]), Some(1.0));
    assert_eq!(value(&s, m::OWNED, &[("topic", "repartition")]), Some(8.0));
    let objects_timed = web::histogram_count(&s, m::OBJECT_SECONDS);
    assert_eq!(
        objects_timed,
        Some(files.len() as f64),
        "one timing per object"
    );
    let names = web::names(&s);
    for m::Metric { name, .. } in m::ALL {
        assert!(names.contains(*name), "{name} not exported: {names:?}");
    }
    // The Grafana dashboard uses only what a scrape shows (a histogram's
    // `_bucket` series are under its base name in the parser).
    let grafana = testkit::repo().join("deploy/grafana-dashboard.json");
    let exprs = web::grafana_exprs(&grafana);
    assert!(exprs.len() >= 15, "{exprs:?}");
    for e in &exprs {
        for name in web::metric_names_in(e) {
            let base = name.strip_suffix("_bucket").unwrap_or(&name);
            assert!(names.contains(base), "{name} of `{e}` is not exported");
        }
    }
    // The lag series come with the members heartbeat.
    web::wait_lag_zero(&addr).await;

    // The ledger's state of an object, and of one never seen.
    let (key, _) = &files[0];
    let o = get(&addr, &format!("/objects?key={key}")).await;
    assert_eq!(o.status, 200, "{}", o.text());
    let v = o.json();
    assert_eq!(v["state"], "done");
    assert_eq!(v["key"], app.url(key));
    assert_eq!(v["record"], ledger[&app.url(key)], "the ledger record: {v}");
    assert_eq!(v["record"]["state"], "counted");
    let o = get(&addr, "/objects?key=never/uploaded.txt").await;
    let v = o.json();
    assert_eq!((o.status, v["state"].clone()), (200, "pending".into()));
    assert_eq!(v["record"], serde_json::Value::Null);
    w.stop().await;
}

/// Three workers, one app: every worker answers every word (its own from
/// its table, the others' by forwarding) and the global top, exactly as
/// `count-local` says; while a fourth worker restores, the partitions it
/// takes answer 503 with `Retry-After`, and afterwards all four agree.
#[tokio::test(flavor = "multi_thread")]
async fn table_and_top_from_each_of_three_workers() {
    let _stack = shared().await;
    let app = App::new("ws-web-three").await;
    let files = papers(40, 24);
    let paths: Vec<_> = files.iter().map(|(_, p)| p.clone()).collect();
    let want = count_local(&paths);
    let mut ws: Vec<Worker> = (1..=3)
        .map(|i| app.member(&format!("w{i}"), Some(&format!("web3-w{i}")), &[]))
        .collect();
    for w in ws.iter_mut() {
        w.wait_ready(testkit::worker::READY).await;
    }
    let mut addrs = Vec::new();
    for w in ws.iter_mut() {
        addrs.push(web::addr(w).await);
    }
    app.put_files(&files, 8).await;
    let refs: Vec<&Worker> = ws.iter().collect();
    app.assert_exactly_once(&files, &[], DONE, &refs).await;
    testkit::group::wait_settled(&mut ws.iter_mut().collect::<Vec<_>>(), 8, DONE).await;
    web::wait_members(&addrs, 3).await;

    let top = expected_top(&want, 20);
    // Words of every partition: the top ones and a spread of the rest.
    let mut words: Vec<String> = top.iter().map(|(w, _)| w.clone()).collect();
    words.extend(want.keys().step_by((want.len() / 40).max(1)).cloned());
    let owner_of = owners(&ws);
    let mut answered_by: BTreeMap<String, usize> = BTreeMap::new();
    for (i, a) in addrs.iter().enumerate() {
        for word in &words {
            let r = get(a, &format!("/table/word_counts/{}", web::encode(word))).await;
            assert_eq!(r.status, 200, "w{} {word}: {}", i + 1, r.text());
            let v = r.json();
            assert_eq!(
                v["count"].as_i64(),
                Some(want[word]),
                "w{} {word}: {v}",
                i + 1
            );
            let p = v["partition"].as_i64().unwrap() as i32;
            assert_eq!(
                v["worker"].as_str(),
                owner_of.get(&p).map(String::as_str),
                "{v}"
            );
            if v["worker"] != ws[i].worker_id().unwrap().as_str() {
                *answered_by
                    .entry(format!("w{} via another", i + 1))
                    .or_default() += 1;
            }
        }
        let t = get(a, "/top?n=20").await;
        assert_eq!(t.status, 200, "{}", t.text());
        assert_eq!(t.json()["complete"], true, "{}", t.text());
        assert_eq!(top_words(&t.json()), top, "w{}'s /top", i + 1);
        // Objects of every ledger partition, from each worker.
        for (key, _) in files.iter().take(12) {
            let r = get(a, &format!("/objects?key={}", web::encode(key))).await;
            assert_eq!(r.status, 200, "w{} {key}: {}", i + 1, r.text());
            let v = r.json();
            assert_eq!(v["state"], "done", "{v}");
            assert_eq!(v["record"]["state"], "counted", "{v}");
        }
        let unknown = get(a, "/table/word_counts/zzqxjv-never-seen").await;
        assert_eq!(unknown.status, 404);
        assert_eq!(unknown.json()["error"], "unknown word");
    }
    eprintln!("answers from another worker's table: {answered_by:?}");
    assert_eq!(answered_by.len(), 3, "each worker forwarded some words");

    // A fourth worker whose restore takes 8 s: while it restores, the
    // partitions it takes have no ready owner.
    let mut cmd = app.worker_command(
        Some("web3-w4"),
        &["--interval", "1", "--status-interval", "1"],
    );
    cmd.env(wordstream::failpoint::VAR, "restore.slow=sleep(8000)");
    let mut w4 = Worker::spawn("w4", cmd);
    let a4 = web::addr(&mut w4).await;
    let (_, assigned) = w4
        .wait_event(0.0, testkit::worker::READY, "w4 assigned", |e| {
            matches!(e, wordstream::events::Event::Assigned { partitions } if !partitions.is_empty())
        })
        .await;
    let r = get(&a4, "/ready").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["restoring"], true);
    assert!(r.headers.contains_key("retry-after"));
    let taken = match assigned {
        wordstream::events::Event::Assigned { partitions } => partitions
            .get(&app.repartition_topic())
            .cloned()
            .unwrap_or_default(),
        _ => unreachable!(),
    };
    let word = words
        .iter()
        .find(|w| {
            let key = wordstream::wire::Serde::Faust.key(w);
            taken.contains(&wordstream::kafka::partition_for(&key, 8))
        })
        .expect("a word of a partition w4 takes");
    {
        for a in addrs.iter().chain([&a4]) {
            let r = get(a, &format!("/table/word_counts/{}", web::encode(word))).await;
            assert_eq!(r.status, 503, "{a} {word} while w4 restores: {}", r.text());
            assert!(r.headers.contains_key("retry-after"));
            let why = r.json()["error"].as_str().unwrap().to_string();
            assert!(
                why.contains("restoring") || why.contains("rebalancing"),
                "{why}"
            );
            eprintln!("{a} while w4 restores: 503 {why}");
        }
    }
    w4.wait_ready(testkit::worker::READY).await;
    ws.push(w4);
    testkit::group::wait_settled(&mut ws.iter_mut().collect::<Vec<_>>(), 8, DONE).await;
    addrs.push(a4);
    web::wait_members(&addrs, 4).await;
    for a in &addrs {
        for word in words.iter().take(10) {
            let r = get(a, &format!("/table/word_counts/{}", web::encode(word))).await;
            assert_eq!(r.status, 200, "{a} {word} after w4 joined: {}", r.text());
            assert_eq!(r.json()["count"].as_i64(), Some(want[word]));
        }
        let t = get(a, "/top?n=20").await;
        assert_eq!(top_words(&t.json()), top, "{a}'s /top after w4 joined");
    }
    for w in ws.iter_mut() {
        w.stop().await;
    }
}

/// Owner of each changelog partition, from the workers' latest statuses.
fn owners(ws: &[Worker]) -> BTreeMap<i32, String> {
    let mut out = BTreeMap::new();
    for w in ws {
        let (_, s) = w.latest_status().expect("a status");
        for p in s.repartition {
            out.insert(p, w.worker_id().unwrap());
        }
    }
    out
}

/// Bad requests get 4xx (JSON where the server answers at all), never a
/// crash; idle and slow connections do not hold the server or the worker.
#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_and_slow_clients() {
    let _stack = shared().await;
    let (app, mut w) = App::with_worker("ws-web-bad", "web-bad-1", &[]).await;
    let addr = web::addr(&mut w).await;
    let mut huge = b"/table/word_counts/".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 1 << 20));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown word", b"/table/word_counts/qqqnotaword".to_vec()),
        ("1 MB path", huge),
        (
            "invalid UTF-8, escaped",
            b"/table/word_counts/%FF%FEx".to_vec(),
        ),
        (
            "invalid UTF-8, raw",
            b"/table/word_counts/\xff\xfe".to_vec(),
        ),
        ("../", b"/table/word_counts/../../../etc/passwd".to_vec()),
        (
            "escaped ../",
            b"/table/word_counts/..%2F..%2Fetc%2Fpasswd".to_vec(),
        ),
        ("no such table", b"/table/other/word".to_vec()),
        ("n not a number", b"/top?n=abc".to_vec()),
        ("n too big", b"/top?n=100000".to_vec()),
        ("n zero", b"/top?n=0".to_vec()),
        ("objects without key", b"/objects".to_vec()),
        ("objects, invalid UTF-8", b"/objects?key=%FF".to_vec()),
        (
            "objects, huge key",
            format!("/objects?key={}", "k".repeat(5000)).into_bytes(),
        ),
        ("no such route", b"/nope".to_vec()),
    ];
    for (what, path) in &cases {
        let r = get_raw(&addr, path).await;
        match r {
            Some(r) => {
                assert!(
                    (400..500).contains(&r.status),
                    "{what}: HTTP {} {}",
                    r.status,
                    r.text()
                );
                // Ours are JSON; hyper's own refusals (431, 400 of an
                // unparsable request line) have no body.
                if !r.body.is_empty() {
                    r.json();
                }
                eprintln!(
                    "{what}: {} {}",
                    r.status,
                    r.text().chars().take(120).collect::<String>()
                );
            }
            // hyper may close a connection whose request line it cannot
            // parse (raw bytes) without an answer: a refusal, not a crash.
            None => eprintln!("{what}: connection closed without an answer"),
        }
        w.assert_running();
    }
    let unknown = get(&addr, "/table/word_counts/qqqnotaword").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"], "unknown word");

    // 100 idle connections and a slowloris: the server still answers at
    // once, and the worker still counts.
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect"),
        );
    }
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    slow.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    let t = Instant::now();
    let h = get(&addr, "/health").await;
    assert_eq!(h.status, 200);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let files = papers(64, 4);
    app.put_files(&files, 4).await;
    app.assert_exactly_once(&files, &[], DONE, &[&w]).await;
    // Headers not sent within the header timeout: the server closed them.
    tokio::time::sleep(wordstream::web::HEADER_TIMEOUT + Duration::from_secs(1)).await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::io::AsyncReadExt::read(&mut slow, &mut buf),
    )
    .await
    .expect("the slow connection is closed by the server");
    assert!(n.is_ok(), "{n:?}");
    drop(idle);
    w.assert_running();
    w.stop().await;
}

/// The dashboard in headless Chromium during a run: the page renders the
/// top words (the expected first one at the top) and a chart of at least
/// two samples with a non-zero rate; the screenshot is saved as
/// `target/artifacts/dashboard.png`.
#[tokio::test(flavor = "multi_thread")]
async fn dashboard_in_headless_chromium() {
    let _stack = shared().await;
    let (app, mut w) = App::with_worker("ws-web-dash", "web-dash-1", &[]).await;
    let addr = web::addr(&mut w).await;
    let files = papers(70, 30);
    let paths: Vec<_> = files.iter().map(|(_, p)| p.clone()).collect();
    let want = count_local(&paths);
    let upload = app.upload_gradually(files.clone(), 3, Duration::from_millis(700));
    // Loaded while the worker counts (the page polls every 2 s).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let url = format!("http://{addr}/");
    let during = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || web::chromium_run(&url, 5000, &["--dump-dom"]))
            .await
            .unwrap()
    };
    assert!(during.contains("data-loaded=\"1\""), "{during}");
    upload.await.expect("uploads");
    app.assert_exactly_once(&files, &[], DONE, &[&w]).await;
    tokio::time::sleep(Duration::from_secs(3)).await; // a few more samples
    let api = get(&addr, "/api/dashboard").await.json();
    let series = api["series"].as_array().expect("series");
    assert!(series.len() >= 2, "{api}");
    assert!(
        series.iter().any(|s| s["words"].as_f64() > Some(0.0)),
        "a non-zero words/s in {api}"
    );
    let (dom, shot) = tokio::task::spawn_blocking(move || {
        let dom = web::chromium_run(&url, 5000, &["--dump-dom"]);
        let dir = testkit::repo().join("target/artifacts");
        std::fs::create_dir_all(&dir).expect("artifacts folder");
        let shot = dir.join("dashboard.png");
        let _ = std::fs::remove_file(&shot);
        web::chromium_run(&url, 5000, &[&format!("--screenshot={}", shot.display())]);
        (dom, shot)
    })
    .await
    .unwrap();
    let first = &expected_top(&want, 1)[0];
    let row = format!("<td>1</td><td>{}</td>", first.0);
    assert!(
        dom.contains(&row),
        "top word {first:?} not rendered first:\n{dom}"
    );
    let points = dom
        .split("data-points=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    assert!(points >= 2, "the chart has {points} points:\n{dom}");
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!(
        "screenshot: {} ({} bytes), chart of {points} points",
        shot.display(),
        png.len()
    );

    // The same numbers in a terminal: `wordstream top --once`.
    let url = format!("http://{addr}");
    let frame = testkit::cli::run(testkit::cli::offline_cmd(&[
        "top", "--once", "-n", "5", "--url", &url,
    ]))
    .await
    .ok()
    .stdout;
    eprintln!("{frame}");
    assert!(frame.contains("served by web-dash-1"), "{frame}");
    let first_row = frame
        .lines()
        .find(|l| l.contains(&format!(" {} ", first.0)))
        .unwrap_or_else(|| panic!("{} not in:\n{frame}", first.0));
    assert!(first_row.contains(&first.1.to_string()), "{first_row}");
    w.stop().await;
}

/// A web port already taken fails the start with one line naming it; with
/// `--no-web` the worker announces no web server and counts all the same.
#[tokio::test(flavor = "multi_thread")]
async fn port_taken_fails_the_start_and_no_web_serves_nothing() {
    let _stack = shared().await;
    let app = App::new("ws-web-port").await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().unwrap().port().to_string();
    let r = testkit::cli::run_for(
        app.worker_command(None, &["--web-port", &port]),
        Some(Duration::from_secs(30)),
    )
    .await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let want =
        format!("wordstream: error: cannot listen on 127.0.0.1:{port} (--web-bind, --web-port)");
    assert!(
        r.stderr.lines().any(|l| l.starts_with(&want)),
        "{want}\nnot in:\n{}",
        r.stderr
    );

    let mut w = app.worker("web-port-1", &["--no-web"]);
    w.wait_ready(testkit::worker::READY).await;
    let files = papers(100, 3);
    app.put_files(&files, 3).await;
    app.assert_exactly_once(&files, &[], DONE, &[&w]).await;
    assert!(
        w.find_event(0.0, |e| matches!(
            e,
            wordstream::events::Event::WebListening { .. }
        ))
        .is_none(),
        "--no-web announced a web server"
    );
    w.stop().await;
}
