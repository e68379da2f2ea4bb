//! e2e: `wordstream upload` against the local stack (versitygw S3).
//! Every test uses its own bucket; every object is read back and compared
//! byte for byte with its source file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use testkit::cli::{cmd, run, run_with_closed_stdout, wordstream};
use testkit::corpus::{self, temp_file, test_bytes};
use testkit::names::unique_name;
use testkit::stack::shared;

/// The three demo files of the corpus.
fn demo_files() -> Vec<PathBuf> {
    let files = corpus::files_under(&corpus::root().join("demo"));
    assert_eq!(files.len(), 3, "three demo files: {files:?}");
    files
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The summary row of `key`: its cells, trimmed.
fn summary_row(stdout: &str, key: &str) -> Vec<String> {
    stdout
        .lines()
        .find_map(|l| {
            let cells: Vec<String> = l
                .trim_matches('│')
                .split('┆')
                .map(|c| c.trim().to_string())
                .collect();
            (cells.first().map(String::as_str) == Some(key)).then_some(cells)
        })
        .unwrap_or_else(|| panic!("no summary row for {key} in\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_the_three_demo_files() {
    let st = shared().await;
    let bucket = st.new_bucket("up-demo").await;
    let files = demo_files();
    let mut args = vec!["upload", "--bucket", &bucket];
    args.extend(files.iter().map(|p| s(p)));
    let run = wordstream(&st, &args).await.ok();

    let listed = st.list(&bucket).await;
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        ["A1.headed.txt", "A2.headed.txt", "A3.headed.txt"]
    );
    for f in &files {
        let key = f.file_name().unwrap().to_str().unwrap();
        let want = std::fs::read(f).unwrap();
        assert!(st.get(&bucket, key).await == want, "{key} differs");
        let row = summary_row(&run.stdout, key);
        // key, bytes, parts, seconds, MB/s, ETag
        assert_eq!(row[1], want.len().to_string(), "{row:?}");
        assert_eq!(row[2], "1", "{row:?}");
        let head = st
            .s3_client()
            .head_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(row[5], head.e_tag().unwrap(), "the summary shows the ETag");
        assert_eq!(head.content_type(), Some("text/plain; charset=utf-8"));
    }
    assert!(run.stdout.contains("total: 3 objects"), "{}", run.stdout);
    assert!(st.uploads_in_progress(&bucket).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_a_directory_of_200_papers_recursively() {
    let st = shared().await;
    let bucket = st.new_bucket("up-papers").await;
    let src = corpus::root().join("papers");
    let mut papers: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    papers.sort();
    assert!(papers.len() >= 200, "need 200 papers in {}", src.display());
    // 150 at the top, 50 one level down: keys are relative paths
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("batch");
    std::fs::create_dir_all(root.join("more")).unwrap();
    let mut want = BTreeMap::new();
    for (i, p) in papers.iter().take(200).enumerate() {
        let name = p.file_name().unwrap().to_str().unwrap();
        let rel = if i < 150 {
            name.to_string()
        } else {
            format!("more/{name}")
        };
        std::fs::copy(p, root.join(&rel)).unwrap();
        want.insert(format!("papers/{rel}"), root.join(&rel));
    }

    let run = wordstream(
        &st,
        &[
            "upload",
            "-r",
            s(&root),
            "--prefix",
            "papers",
            "--concurrency",
            "8",
            "--bucket",
            &bucket,
        ],
    )
    .await
    .ok();
    assert!(run.stdout.contains("total: 200 objects"), "{}", run.stdout);

    let listed = st.list(&bucket).await;
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (key, path) in &want {
        let data = std::fs::read(path).unwrap();
        assert_eq!(listed[key], data.len() as i64, "{key}");
        assert!(st.get(&bucket, key).await == data, "{key} differs");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_a_40mb_file_in_parts() {
    let st = shared().await;
    let bucket = st.new_bucket("up-big").await;
    let data = test_bytes(40 * 1024 * 1024 + 12_345, 40);
    let (_tmp, path) = temp_file("big.bin", &data);

    // default threshold 16 MiB, parts of 8 MiB: 6 parts, the last one short
    let run = wordstream(
        &st,
        &["upload", s(&path), "--bucket", &bucket, "--prefix", "big/"],
    )
    .await
    .ok();
    let row = summary_row(&run.stdout, "big/big.bin");
    assert_eq!(row[1], data.len().to_string());
    assert_eq!(row[2], "6", "{row:?}");
    assert!(row[5].ends_with("-6\""), "a multipart ETag: {row:?}");
    let got = st.get(&bucket, "big/big.bin").await;
    assert_eq!(got.len(), data.len());
    assert!(got == data, "multipart object differs from the file");
    assert!(st.uploads_in_progress(&bucket).await.is_empty());

    // smaller parts, more of them in flight: same bytes
    let run = wordstream(
        &st,
        &[
            "upload",
            s(&path),
            "--bucket",
            &bucket,
            "--prefix",
            "small-parts",
            "--part-size",
            "5MiB",
            "--concurrency",
            "6",
        ],
    )
    .await
    .ok();
    assert_eq!(summary_row(&run.stdout, "small-parts/big.bin")[2], "9");
    assert!(st.get(&bucket, "small-parts/big.bin").await == data);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_multipart_upload_is_aborted() {
    let st = shared().await;
    let bucket = st.new_bucket("up-abort").await;
    let (_tmp, path) = temp_file("doomed.bin", &test_bytes(42 * 1024 * 1024, 9));

    // 9 parts of 5 MiB; part 5 fails once parts 1-4 are stored
    let mut c = cmd(
        &st,
        &[
            "upload",
            s(&path),
            "--bucket",
            &bucket,
            "--part-size",
            "5MiB",
            "--concurrency",
            "3",
        ],
    );
    c.env("WORDSTREAM_TEST_FAIL_AFTER_PARTS", "4");
    run(c).await.fails_with(&format!(
        "wordstream: error: multipart upload to s3://{bucket}/doomed.bin aborted: \
         injected failure after 4 parts (WORDSTREAM_TEST_FAIL_AFTER_PARTS)"
    ));
    assert_eq!(st.uploads_in_progress(&bucket).await, Vec::<String>::new());
    assert!(st.list(&bucket).await.is_empty(), "no object was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_lists_and_writes_nothing() {
    let st = shared().await;
    let bucket = st.new_bucket("up-dry").await;
    let files = demo_files();
    let run = wordstream(
        &st,
        &[
            "upload",
            "--dry-run",
            "--prefix",
            "in",
            "--bucket",
            &bucket,
            s(&files[0]),
            s(&files[1]),
        ],
    )
    .await
    .ok();
    let size = std::fs::metadata(&files[0]).unwrap().len();
    assert_eq!(
        run.stdout,
        format!(
            "would upload {} -> s3://{bucket}/in/A1.headed.txt ({size} bytes, 1 PUT)\n\
             would upload {} -> s3://{bucket}/in/A2.headed.txt ({size} bytes, 1 PUT)\n\
             dry run: 2 files, {} bytes; nothing uploaded\n",
            files[0].display(),
            files[1].display(),
            2 * size
        )
    );
    assert!(st.list(&bucket).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn create_bucket_creates_a_missing_bucket() {
    let st = shared().await;
    let bucket = unique_name("up-create");
    let files = demo_files();
    let args = [
        "upload",
        "--create-bucket",
        "-q",
        "--bucket",
        &bucket,
        s(&files[2]),
    ];
    let run = wordstream(&st, &args).await.ok();
    assert_eq!(run.stdout, "", "--quiet prints no summary");
    assert!(st.get(&bucket, "A3.headed.txt").await == std::fs::read(&files[2]).unwrap());
    // again: the bucket exists now, and that is fine too
    wordstream(&st, &args).await.ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stdout_is_not_an_error() {
    let st = shared().await;
    let bucket = st.new_bucket("up-pipe").await;
    let files = demo_files();
    for extra in [None, Some("--dry-run")] {
        let mut args = vec!["upload", "--bucket", &bucket, s(&files[0])];
        args.extend(extra);
        let (code, stderr) = run_with_closed_stdout(cmd(&st, &args)).await;
        assert_eq!(code, Some(0), "{extra:?}: {stderr}");
        assert_eq!(stderr, "", "{extra:?}");
    }
}
