//! Issue 16 through the worker: objects in real publication formats count
//! exactly as `count-local` counts the same files, and bad ones fail with
//! a one-line reason while the rest of their batch counts exactly.

use std::path::PathBuf;
use std::time::Duration;
use testkit::app::App;
use testkit::corpus;
use testkit::counts::{count_bytes, count_local};
use testkit::formats as fmt;
use testkit::stack::shared;
use testkit::worker::READY;

/// A committed fixture of `tests/fixtures/formats`.
fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(testkit::repo().join("tests/fixtures/formats").join(name)).expect("fixture")
}

/// An HTML page without doctype or `<html>`: only its Content-Type (or a
/// `.html` name) makes it HTML.
fn bare_html(text: &str) -> String {
    let page = fmt::html(text);
    let at = page.find("<head>").expect("a head");
    page[at..].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn formats_count_as_count_local_and_bad_objects_fail_alone() {
    let _stack = shared().await;
    let app = App::new("ws-formats").await;
    let mut w = app.worker("formats-1", &["--pdf-timeout", "5"]);
    w.wait_ready(READY).await;

    let a1 = corpus::read("demo/A1.headed.txt");
    let papers: Vec<(String, Vec<u8>)> = corpus::papers(20, 4)
        .into_iter()
        .map(|(k, p)| (k.replace('/', "_"), std::fs::read(p).expect("paper")))
        .collect();
    let paper = String::from_utf8_lossy(&papers[0].1).into_owned();
    let members: Vec<(&str, &[u8])> = papers
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let tar = fmt::tar(&members);
    let page = bare_html(&paper);

    // (key, bytes, Content-Type, Content-Encoding, local name for count-local)
    type Object<'a> = (&'a str, Vec<u8>, Option<&'a str>, Option<&'a str>, &'a str);
    let good: Vec<Object> = vec![
        ("A1.txt", a1.clone(), None, None, "A1.txt"),
        ("A1.txt.gz", fmt::gzip(&a1), None, None, "A1.txt.gz"),
        ("A1-zstd", fmt::zstd(&a1), None, None, "A1-zstd"),
        ("A1.txt.bz2", fmt::bzip2(&a1), None, None, "A1.txt.bz2"),
        (
            "papers.tar.gz",
            fmt::gzip(&tar),
            None,
            None,
            "papers.tar.gz",
        ),
        (
            "article.xml",
            fmt::jats(&paper).into_bytes(),
            None,
            None,
            "article.xml",
        ),
        (
            "page.html",
            fmt::html(&paper).into_bytes(),
            None,
            None,
            "page.html",
        ),
        (
            "paper.pdf",
            fmt::text_pdf(&["A portable document", "with two lines of words"]),
            None,
            None,
            "paper.pdf",
        ),
        (
            "typeset.pdf",
            fixture("typeset.pdf"),
            Some("application/pdf"),
            None,
            "typeset.pdf",
        ),
        // Hints: a Content-Type makes markup of a key without extension,
        // and applies under a Content-Encoding.
        (
            "typed",
            page.clone().into_bytes(),
            Some("text/html"),
            None,
            "typed.html",
        ),
        (
            "encoded",
            fmt::gzip(page.as_bytes()),
            Some("text/html; charset=utf-8"),
            Some("gzip"),
            "encoded.html.gz",
        ),
    ];
    let gz = fmt::gzip(&a1);
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.txt.gz",
            gz[..gz.len() / 2].to_vec(),
            "gzip: truncated",
        ),
        (
            "bomb.gz",
            fmt::gzip_bomb(10 << 30),
            "over the expansion limit",
        ),
        (
            "climb.tar",
            fmt::tar_with_parent_path(&a1),
            "its path leaves the archive",
        ),
        ("link.tar", fmt::tar_with_symlink(&a1), "is a symbolic link"),
        ("encrypted.pdf", fixture("encrypted.pdf"), "pdf: encrypted"),
        ("image-only.pdf", fmt::image_only_pdf(), "pdf: no text"),
        (
            "looping.pdf",
            fmt::looping_pdf(),
            "pdf: the extractor overflowed its stack",
        ),
        (
            "broken.xml",
            b"<?xml version=\"1.0\"?><article><p>x</sec></article>".to_vec(),
            "xml: malformed",
        ),
    ];

    let local = tempfile::tempdir().expect("temp dir");
    let mut paths: Vec<PathBuf> = Vec::new();
    for (key, data, ct, ce, name) in &good {
        let p = local.path().join(name);
        std::fs::write(&p, data).expect("local copy");
        paths.push(p);
        app.put_typed(key, data.clone(), *ct, *ce).await;
    }
    for (key, data, _) in &bad {
        app.put(key, data.clone()).await;
    }
    let want = count_local(&paths);
    let urls: Vec<String> = good
        .iter()
        .map(|o| o.0)
        .chain(bad.iter().map(|b| b.0))
        .map(|k| app.url(k))
        .collect();
    let latest = app
        .wait_settled(&urls, &want, Duration::from_secs(120), &mut w)
        .await;
    let a1_words = count_bytes(&a1).values().sum::<i64>();
    let record = |key: &str| latest[&app.url(key)].clone();
    for (key, format) in [
        ("A1.txt", "text"),
        ("A1.txt.gz", "gzip+text"),
        ("A1-zstd", "zstd+text"),
        ("A1.txt.bz2", "bzip2+text"),
    ] {
        let r = record(key);
        assert_eq!(r["state"], "counted", "{key}: {r}");
        assert_eq!(r["format"], format, "{key}: {r}");
        assert_eq!(r["words"], a1_words, "{key}: the plain text's words: {r}");
        assert_eq!(r["text_bytes"], a1.len() as u64, "{key}: {r}");
    }
    let t = record("papers.tar.gz");
    assert_eq!(t["format"], "gzip+tar", "{t}");
    assert_eq!(t["member_count"], papers.len() as u64, "{t}");
    for (m, (name, data)) in t["members"]
        .as_array()
        .expect("members")
        .iter()
        .zip(&papers)
    {
        assert_eq!(m["name"], name.as_str(), "{t}");
        assert_eq!(m["format"], "text", "{t}");
        assert_eq!(m["text_bytes"], data.len() as u64, "{t}");
        assert_eq!(m["words"], count_bytes(data).values().sum::<i64>(), "{t}");
    }
    assert_eq!(record("article.xml")["format"], "xml");
    assert_eq!(record("typeset.pdf")["format"], "pdf");
    assert_eq!(record("page.html")["format"], "html");
    assert_eq!(record("typed")["format"], "html");
    assert_eq!(record("encoded")["format"], "gzip+html");
    for (key, _, reason) in &bad {
        let r = record(key);
        assert_eq!(r["state"], "failed", "{key}: {r}");
        let got = r["reason"].as_str().expect("a reason");
        assert!(
            got.contains(reason) && !got.contains('\n'),
            "{key}: one line with {reason:?}: {got:?}"
        );
    }
    w.stop().await;
}
