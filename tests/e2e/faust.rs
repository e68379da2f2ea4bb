//! Faust compatibility: a real Faust app (faust-streaming, in a virtualenv
//! made on first use in the git-ignored `.venv-faust/`) with the worker's
//! app id and table name recovers its table from the changelog our worker
//! wrote, and gets exactly our counts (including non-ASCII words, which
//! travel as Python's `\uXXXX`-escaped JSON keys).
//!
//! Needs `python3` with `venv` and PyPI (first run only: `pip install`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testkit::app::App;
use testkit::corpus;
use testkit::counts::{add_counts, count_bytes, diff_counts, Counts};
use testkit::repo;
use testkit::stack::shared;

/// The Faust release the test is pinned to.
const FAUST: &str = "faust-streaming==0.15.3";

/// The virtualenv's python, with faust-streaming installed.
fn faust_python() -> PathBuf {
    let venv = repo().join(".venv-faust");
    let python = venv.join("bin/python");
    let has_faust = || {
        Command::new(&python)
            .args(["-c", "import faust, sys; sys.exit(0)"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_faust() {
        return python;
    }
    if !python.exists() {
        let st = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv");
        assert!(st.success(), "python3 -m venv {} failed", venv.display());
    }
    let st = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", FAUST])
        .status()
        .expect("pip install");
    assert!(st.success(), "pip install {FAUST} failed");
    assert!(has_faust(), "faust not importable after pip install");
    python
}

#[tokio::test(flavor = "multi_thread")]
async fn faust_recovers_its_table_from_our_changelog() {
    let stack = shared().await;
    // The venv first (slow only on the first run), then the pipeline.
    let python = tokio::task::spawn_blocking(faust_python)
        .await
        .expect("venv");

    let app = App::new("ws-faust").await;
    // The default worker id: dynamic membership, so the worker leaves the
    // group when stopped and the Faust app (same app id, so same group) can
    // join at once.
    let mut w = app.worker("", &[]);
    w.wait_ready(Duration::from_secs(60)).await;
    let a1 = corpus::read("demo/A1.headed.txt");
    let odd = "naïve Ωmega 文字 café Zoë 𐍈x \"quoted\" back\\slash the the".as_bytes();
    let mut want = Counts::new();
    add_counts(&mut want, &count_bytes(&a1), 2);
    add_counts(&mut want, &count_bytes(odd), 1);
    app.put("A1.headed.txt", a1.clone()).await;
    app.put("A2.headed.txt", a1.clone()).await;
    app.put("odd.txt", odd.to_vec()).await;
    app.wait_for_totals(&want, Duration::from_secs(90), &[&w])
        .await;
    w.stop().await;

    let out = std::env::temp_dir().join(format!("{}-faust.json", app.app_id));
    let _ = std::fs::remove_file(&out);
    let log = testkit::scratch_dir().join(format!("{}-faust.log", app.app_id));
    let started = Instant::now();
    let status = tokio::task::spawn_blocking({
        let (python, out, log) = (python.clone(), out.clone(), log.clone());
        let (app_id, brokers) = (app.app_id.clone(), stack.brokers.clone());
        move || {
            let mut child = Command::new(python)
                .arg(repo().join("tests/faust/recover_table.py"))
                .args([&app_id, &brokers])
                .arg(&out)
                .arg("8")
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
                .spawn()
                .expect("running the Faust app");
            let t = Instant::now();
            loop {
                if let Some(st) = child.try_wait().unwrap() {
                    return Some(st);
                }
                if t.elapsed() > Duration::from_secs(180) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    })
    .await
    .unwrap();
    let faust_log = || {
        std::fs::read_to_string(log.with_extension("err")).unwrap_or_default()
            + &std::fs::read_to_string(&log).unwrap_or_default()
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "Faust app: {status:?} after {:?}\n{}",
        started.elapsed(),
        faust_log()
    );
    let table: Counts = serde_json::from_slice(&std::fs::read(&out).expect("Faust's dump"))
        .expect("Faust's dump is a JSON object of counts");
    let diff = diff_counts(&table, &want);
    assert!(diff.is_empty(), "Faust's table differs: {diff}");
    assert_eq!(table["the"], 2 * 119 + 2);
    assert_eq!(table["naïve"], 1);
    assert_eq!(table["𐍈x"], 1);
    eprintln!(
        "Faust recovered {} words in {:.1} s",
        table.len(),
        started.elapsed().as_secs_f64()
    );
}
