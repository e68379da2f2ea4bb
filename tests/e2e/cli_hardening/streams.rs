//! Issue 18, the worker and the no-panic matrix: a worker whose stderr or
//! stdout goes away, human log lines with odd keys, and every subcommand
//! with closed or full streams and extreme flags.

use super::{faust_changelog, s};
use std::time::{Duration, Instant};
use testkit::app::App;
use testkit::cli::{cmd, run_for, shell, under_bash};
use testkit::counts::count_bytes;
use testkit::stack::{shared, stack};
use testkit::worker::Worker;

/// Item 4: a worker whose stderr pipe closes (`… 2>&1 | tee w.log`, then
/// tee dies: here a `sed` that quits after the ready line) stops on SIGINT,
/// in bounded time, exit 0: no panic, no hang in the Kafka client's close.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_whose_stderr_closes_stops_on_sigint() {
    let _st = shared().await;
    let app = App::new("clih-stderr").await;
    let c = app.worker_command(None, &["--interval", "0.5"]);
    let mut w = Worker::spawn(
        "stderr-closes",
        under_bash(&c, "exec \"$@\" 2> >(sed '/\"event\":\"ready\"/q' >&2)"),
    );
    w.wait_ready(Duration::from_secs(60)).await;
    // the worker logs what it counts: into the closed pipe
    app.put("a.txt", b"one two\n".to_vec()).await;
    app.wait_for_done(&[app.url("a.txt")], Duration::from_secs(60), &[&w])
        .await;
    w.assert_running();
    w.signal(libc::SIGINT);
    let status = w.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "exit after SIGINT (None: still running after 30 s)"
    );
}

/// Item 9: `worker --tally 3 | true`: the tally has nowhere to go; the
/// worker counts on and stops cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_with_a_tally_and_a_closed_stdout_counts_on() {
    let _st = shared().await;
    let app = App::new("clih-tally").await;
    let c = app.worker_command(None, &["--interval", "0.5", "--tally", "3"]);
    let mut w = Worker::spawn("tally", under_bash(&c, "exec \"$@\" > >(true)"));
    w.wait_ready(Duration::from_secs(60)).await;
    let files = [("a.txt", &b"one two two\n"[..]), ("b.txt", b"three\n")];
    let mut more = Vec::new();
    for (k, data) in files {
        app.put(k, data.to_vec()).await;
        more.push((k.to_string(), count_bytes(data)));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    app.assert_exactly_once(&[], &more, Duration::from_secs(60), &[&w])
        .await;
    w.assert_running();
    w.stop().await;
}

/// Cosmetic (worker logs): a newline in a key does not split a human log
/// line (JSON lines keep keys exact).
#[tokio::test(flavor = "multi_thread")]
async fn worker_log_lines_escape_keys() {
    let _st = shared().await;
    let app = App::new("clih-log").await;
    let key = "evil\n2026-01-01T00:00:00Z  INFO forged.txt";
    app.put(key, b"word\n".to_vec()).await;
    let c = cmd(
        stack(),
        &[
            "worker",
            "--bucket",
            &app.bucket,
            "--app-id",
            &app.app_id,
            "--interval",
            "0.5",
        ],
    );
    let mut w = Worker::spawn("human-log", c);
    let start = Instant::now();
    while !w
        .lines()
        .iter()
        .any(|l| l.message.ends_with("INFO Worker ready"))
    {
        w.assert_running();
        assert!(start.elapsed() < Duration::from_secs(60), "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.wait_for_done(&[app.url(key)], Duration::from_secs(60), &[&w])
        .await;
    w.stop().await;
    let lines: Vec<String> = w.lines().into_iter().map(|l| l.message).collect();
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("2026-01-01T00:00:00Z  INFO forged")),
        "a forged line:\n{}",
        lines.join("\n")
    );
    let escaped = format!(
        "\"s3://{}/evil\\n2026-01-01T00:00:00Z  INFO forged.txt\"",
        app.bucket
    );
    assert!(
        lines.iter().any(|l| l.contains(&escaped)),
        "{escaped} in:\n{}",
        lines.join("\n")
    );
}

/// One subcommand run (its arguments) for the no-panic matrix.
type Case = Vec<String>;

/// Every subcommand, with stdout and stderr closed (`| true`, `2>&-`,
/// `>&- 2>&-`), full (`>/dev/full`), or on a pipe whose reader goes
/// (`2>&1 | head -c 10`), and extreme numeric flags: never exit 101 (a
/// panic) or 134 (an abort); always 0, 1 or 2.
#[tokio::test(flavor = "multi_thread")]
async fn no_subcommand_panics_on_closed_streams_or_extreme_flags() {
    let st = shared().await;
    let app = App::new("clih-matrix").await;
    let topic = faust_changelog(&[("a", 2), ("b", 1)]).await;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f.txt");
    std::fs::write(&f, "a b a\n").unwrap();
    let f = s(&f).to_string();
    let max = u64::MAX.to_string();
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Case>();
    // consume of the whole topic, and `extra`
    let all = |extra: &[&str]| {
        let head = ["consume", "-t", &topic, "--from-beginning", "-e"];
        v(&[&head[..], extra].concat())
    };
    let cases: Vec<Case> = vec![
        v(&["count-local", &f]),
        v(&[
            "count-local",
            "--top",
            &max,
            "--threads",
            "256",
            "-o",
            "table",
            &f,
        ]),
        v(&["count-local", "--threads", "20000", &f]),
        v(&["count-local", "--verify", "--topic", &topic, &f]),
        v(&[
            "count-local",
            "--verify",
            "--topic",
            &topic,
            "-o",
            "json",
            "--top",
            &max,
            "-",
        ]),
        v(&["count-local", "--verify", "--connect-timeout", &max, &f]),
        v(&["upload", "--bucket", &app.bucket, "--dry-run", &f]),
        v(&[
            "upload",
            "--bucket",
            &app.bucket,
            "--concurrency",
            "256",
            "--multipart-threshold",
            "0",
            "--part-size",
            "5GiB",
            &f,
        ]),
        v(&[
            "upload",
            "--bucket",
            &app.bucket,
            "--multipart-threshold",
            &max,
            &f,
        ]),
        all(&[]),
        all(&["-o", "table", "--top", &max]),
        all(&["--max-messages", &max, "-o", "json"]),
        v(&["consume", "--connect-timeout", &max]),
        v(&["completions", "bash"]),
        v(&["completions", "zsh", "--write-dir", "/nonexistent"]),
        v(&["worker", "--bucket", &app.bucket, "--interval", "1e20"]),
        v(&["worker", "--bucket", &app.bucket, "--status-interval", &max]),
    ];
    let streams = [
        "| true",
        "2>&-",
        ">&- 2>&-",
        ">/dev/full",
        "2>&1 | head -c 10",
    ];
    let mut bad = Vec::new();
    for case in &cases {
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        for redir in streams {
            // (a run that hangs is killed: exit 137)
            let script = format!("timeout -s KILL 60 \"$@\" {redir}; exit ${{PIPESTATUS[0]}}");
            let r = testkit::cli::run(under_bash(&cmd(&st, &args), &script)).await;
            if !matches!(r.code, Some(0..=2)) {
                bad.push(format!(
                    "{args:?} {redir}: exit {:?}\n{}{}",
                    r.code, r.stdout, r.stderr
                ));
            }
        }
    }
    // the worker itself: a few seconds with closed or full streams and
    // extreme flags, then SIGTERM: a clean exit 0
    for redir in streams {
        let app = App::new("clih-matrix-w").await;
        app.put("m.txt", b"one two two\n".to_vec()).await;
        let w = app.worker_command(
            None,
            &[
                "--interval",
                "86400",
                "--status-interval",
                "86400",
                "--tally",
                &max,
                "--connect-timeout",
                "3600",
            ],
        );
        let r = run_for(
            under_bash(
                &w,
                &format!(
                    "timeout --preserve-status -k 20 -s TERM 10 \"$@\" {redir}; exit ${{PIPESTATUS[0]}}"
                ),
            ),
            Some(Duration::from_secs(90)),
        )
        .await;
        if r.code != Some(0) {
            bad.push(format!(
                "worker {redir}: exit {:?}\n{}{}",
                r.code, r.stdout, r.stderr
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The top-level error line to a stderr whose reader is gone (`2>&1 |
/// true` on a failing command) is lost, not a panic: exit 1.
#[tokio::test(flavor = "multi_thread")]
async fn an_error_line_to_a_closed_stderr_pipe_is_not_a_panic() {
    let st = shared().await;
    let topic = faust_changelog(&[("a", 5)]).await;
    let c = cmd(
        &st,
        &["count-local", "-q", "--verify", "--topic", &topic, "-"],
    );
    let r = shell(&c, "2>&1 | true").await;
    assert_eq!(r.code, Some(1), "{}", r.stderr);
}
