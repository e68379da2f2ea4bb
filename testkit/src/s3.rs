//! S3 helpers for the stack's versitygw: a client, buckets, put / get /
//! list / delete, and big objects, which go through `wordstream upload`
//! (the project's own multipart code) rather than a copy of it.

use crate::stack::Stack;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// An S3 client for `endpoint`: static credentials, path-style addressing
/// (`http://host:port/bucket/key`).
pub fn client_at(
    endpoint: &str,
    region: &str,
    access_key: &str,
    secret_key: &str,
) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "wordstream-tests",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

impl Stack {
    /// An S3 client for the local endpoint ([`client_at`]).
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        client_at(
            &self.s3_endpoint,
            &self.region,
            &self.access_key,
            &self.secret_key,
        )
    }

    /// Creates a bucket (fails the test if it exists already: use `unique_name`).
    pub async fn create_bucket(&self, name: &str) {
        self.s3_client()
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create_bucket({name}): {}", DisplayErrorContext(e)));
    }

    /// Creates a bucket of a unique name starting with `prefix`; returns
    /// the name.
    pub async fn new_bucket(&self, prefix: &str) -> String {
        let bucket = crate::names::unique_name(prefix);
        self.create_bucket(&bucket).await;
        bucket
    }

    /// One object's bytes.
    pub async fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.s3_client()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {bucket}/{key}: {}", DisplayErrorContext(e)))
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec()
    }

    /// Every key of the bucket with its size.
    pub async fn list(&self, bucket: &str) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        let mut pages = self
            .s3_client()
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.unwrap_or_else(|e| panic!("list {bucket}: {}", DisplayErrorContext(e)));
            for o in page.contents() {
                out.insert(o.key().expect("key").to_string(), o.size().unwrap_or(-1));
            }
        }
        out
    }

    /// Multipart uploads started and neither completed nor aborted, as
    /// "key upload-id".
    pub async fn uploads_in_progress(&self, bucket: &str) -> Vec<String> {
        let r = self
            .s3_client()
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("list uploads: {}", DisplayErrorContext(e)));
        r.uploads()
            .iter()
            .map(|u| format!("{} {}", u.key().unwrap_or(""), u.upload_id().unwrap_or("")))
            .collect()
    }

    /// Uploads one object with one PutObject.
    pub async fn put(&self, bucket: &str, key: &str, data: Vec<u8>) {
        put_with(&self.s3_client(), bucket, key, data).await
    }

    /// Uploads one object with a Content-Type and a Content-Encoding.
    pub async fn put_typed(
        &self,
        bucket: &str,
        key: &str,
        data: Vec<u8>,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) {
        self.s3_client()
            .put_object()
            .bucket(bucket)
            .key(key)
            .set_content_type(content_type.map(String::from))
            .set_content_encoding(content_encoding.map(String::from))
            .body(ByteStream::from(data))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {}", DisplayErrorContext(e)));
    }

    /// Uploads files (key, path), `concurrency` at a time.
    pub async fn put_files(&self, bucket: &str, files: &[(String, PathBuf)], concurrency: usize) {
        let client = self.s3_client();
        futures::stream::iter(files.iter().cloned().map(|(key, path)| {
            let client = client.clone();
            async move {
                let data = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                put_with(&client, bucket, &key, data).await
            }
        }))
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    }

    /// Uploads objects (key, bytes) held in memory, `concurrency` at a time.
    pub async fn put_objects(
        &self,
        bucket: &str,
        objects: &[(String, Vec<u8>)],
        concurrency: usize,
    ) {
        let client = self.s3_client();
        futures::stream::iter(
            objects
                .iter()
                .map(|(key, data)| put_with(&client, bucket, key, data.clone())),
        )
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    }

    /// Deletes an object (big test objects must not pile up in the stack's
    /// data folder); a missing key is no error.
    pub async fn delete(&self, bucket: &str, key: &str) {
        self.s3_client()
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete s3://{bucket}/{key}: {}", DisplayErrorContext(e)));
    }

    /// A big object made of `unit` repeated `times` times, without holding
    /// it in memory: written to a scratch file, then uploaded with
    /// `wordstream upload` (multipart above 16 MiB, parts of 8 MiB); the
    /// file is removed afterwards.
    pub async fn put_repeated(&self, bucket: &str, key: &str, unit: &[u8], times: usize) {
        let (dir, name) = match key.rsplit_once('/') {
            Some((d, n)) => (format!("{d}/"), n),
            None => (String::new(), key),
        };
        let folder = crate::scratch_dir().join(crate::names::unique_name("put-repeated"));
        std::fs::create_dir_all(&folder).expect("scratch folder");
        let path = folder.join(name);
        {
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(&path)
                    .unwrap_or_else(|e| panic!("creating {}: {e}", path.display())),
            );
            for _ in 0..times {
                f.write_all(unit).expect("writing a scratch file");
            }
            f.flush().expect("writing a scratch file");
        }
        let p = path.to_str().expect("UTF-8 scratch path");
        let run = crate::cli::wordstream(
            self,
            &["upload", "-q", "--bucket", bucket, "--prefix", &dir, p],
        )
        .await;
        let _ = std::fs::remove_dir_all(&folder);
        run.ok();
    }
}

async fn put_with(client: &aws_sdk_s3::Client, bucket: &str, key: &str, data: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {}", DisplayErrorContext(e)));
}

/// A local HTTP endpoint standing in for S3 in offline tests: it records
/// the head of every request and answers each with `200 OK` and a canned
/// XML body, or (silent) accepts connections and never answers.
pub struct FakeEndpoint {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeEndpoint {
    /// Starts answering every request with `body` (`None`: never answers).
    pub fn start(body: Option<String>) -> FakeEndpoint {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = heads.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (body, heads) = (body.clone(), recorded.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().expect("clone socket"));
                    let mut conn = conn;
                    loop {
                        let mut head = String::new();
                        loop {
                            let mut line = String::new();
                            match reader.read_line(&mut line) {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            let end = line == "\r\n";
                            head.push_str(&line);
                            if end {
                                break;
                            }
                        }
                        heads.lock().expect("heads").push(head);
                        let Some(body) = &body else {
                            // hold the connection open, silent, until the client goes
                            let mut sink = Vec::new();
                            let _ = std::io::Read::read_to_end(&mut reader, &mut sink);
                            return;
                        };
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n\
                             Content-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if conn.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeEndpoint { url, heads }
    }

    /// The request heads received so far (request line and headers).
    pub fn requests(&self) -> Vec<String> {
        self.heads.lock().expect("heads").clone()
    }
}
