//! S3 Event Notification messages, parsed: what AWS sends to an SQS queue
//! (and S3-compatible servers such as versitygw, MinIO or Ceph publish to
//! Kafka): `{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket":
//! {"name"}, "object": {"key", "size", "eTag", "sequencer"}}}]}`, the
//! `s3:TestEvent` AWS sends once when a notification is set up, and the
//! same wrapped in an SNS envelope (`{"Type": "Notification", "Message":
//! "<the JSON above>"}`) for a bucket → SNS → SQS fan-out.
//!
//! Object keys come URL-encoded as a form (`+` for a space, `%XX` for other
//! bytes), as in AWS's documentation; they are decoded here. Pure: no I/O.

use crate::worker::discover::decode_key;
use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// What one record of a notification says about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The object was created (put, copied, multipart upload completed).
    Created {
        bucket: String,
        key: String,
        /// Its ETag, quoted as ListObjectsV2 shows it (AWS sends it bare).
        etag: String,
        size: u64,
        /// Orders the events of one key (hexadecimal, compare as such).
        sequencer: String,
    },
    /// The object was deleted (or a delete marker was created).
    Removed {
        bucket: String,
        key: String,
        sequencer: String,
    },
}

impl Notice {
    /// The bucket it names.
    pub fn bucket(&self) -> &str {
        match self {
            Notice::Created { bucket, .. } | Notice::Removed { bucket, .. } => bucket,
        }
    }

    /// The object key it names (decoded).
    pub fn key(&self) -> &str {
        match self {
            Notice::Created { key, .. } | Notice::Removed { key, .. } => key,
        }
    }
}

#[derive(Deserialize)]
struct Message {
    #[serde(rename = "Records", default)]
    records: Option<Vec<Record>>,
    /// `s3:TestEvent` (setup of a notification).
    #[serde(rename = "Event", default)]
    event: Option<String>,
    /// SNS envelope: `Notification`, with the S3 message in `Message`.
    #[serde(rename = "Type", default)]
    kind: Option<String>,
    #[serde(rename = "Message", default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3Data,
}

#[derive(Deserialize)]
struct S3Data {
    bucket: Bucket,
    object: Object,
}

#[derive(Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Deserialize)]
struct Object {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(rename = "eTag", default)]
    etag: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

/// The notices of one message, in its order. A test event or a record of
/// another kind (restore, replication, tagging, …) gives none. Fails on a
/// message that is not an S3 event notification, or names a key that is
/// not UTF-8 once decoded.
pub fn parse(body: &[u8]) -> Result<Vec<Notice>> {
    let message: Message =
        serde_json::from_slice(body).context("not an S3 event notification (JSON)")?;
    if message.kind.as_deref() == Some("Notification") {
        let Some(inner) = message.message else {
            bail!("an SNS notification without a Message");
        };
        return parse(inner.as_bytes()).context("in an SNS notification");
    }
    if message.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let Some(records) = message.records else {
        bail!("not an S3 event notification (no Records)");
    };
    let mut notices = Vec::with_capacity(records.len());
    for r in records {
        let key = decode_key(&r.s3.object.key)
            .with_context(|| format!("object key {:?} is not UTF-8 once decoded", r.s3.object.key))?
            .into_owned();
        let bucket = r.s3.bucket.name;
        let sequencer = r.s3.object.sequencer.unwrap_or_default();
        let name = r.event_name.strip_prefix("s3:").unwrap_or(&r.event_name);
        if name.starts_with("ObjectCreated:") {
            notices.push(Notice::Created {
                bucket,
                key,
                etag: quoted(r.s3.object.etag.as_deref().unwrap_or_default()),
                size: r.s3.object.size.unwrap_or(0),
                sequencer,
            });
        } else if name.starts_with("ObjectRemoved:") {
            notices.push(Notice::Removed {
                bucket,
                key,
                sequencer,
            });
        }
    }
    Ok(notices)
}

/// An ETag as listings show it: in double quotes (events carry it bare).
fn quoted(etag: &str) -> String {
    if etag.is_empty() || etag.starts_with('"') {
        etag.to_string()
    } else {
        format!("\"{etag}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notification as AWS documents it (event structure, version 2.1).
    const AWS_PUT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3",
      "awsRegion":"us-west-2","eventTime":"1970-01-01T00:00:00.000Z",
      "eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AIDAJDPLRKLG7UEXAMPLE"},
      "requestParameters":{"sourceIPAddress":"127.0.0.1"},
      "responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
      "s3":{"s3SchemaVersion":"1.0","configurationId":"testConfigRule",
        "bucket":{"name":"mybucket","ownerIdentity":{"principalId":"A3NL1KOZZKExample"},"arn":"arn:aws:s3:::mybucket"},
        "object":{"key":"HappyFace.jpg","size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e",
          "versionId":"096fKKXTRTtl3on89fVO.nfljtsv6qko","sequencer":"0055AED6DCD90281E5"}}}]}"#;

    #[test]
    fn an_aws_put_is_a_created_notice() {
        assert_eq!(
            parse(AWS_PUT.as_bytes()).unwrap(),
            [Notice::Created {
                bucket: "mybucket".into(),
                key: "HappyFace.jpg".into(),
                etag: "\"d41d8cd98f00b204e9800998ecf8427e\"".into(),
                size: 1024,
                sequencer: "0055AED6DCD90281E5".into(),
            }]
        );
    }

    #[test]
    fn keys_are_form_url_decoded() {
        let body = r#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},
          "object":{"key":"papers/a+b%2Bc/na%C3%AFve.txt","sequencer":"01"}}}]}"#;
        assert_eq!(
            parse(body.as_bytes()).unwrap(),
            [Notice::Removed {
                bucket: "b".into(),
                key: "papers/a b+c/naïve.txt".into(),
                sequencer: "01".into(),
            }]
        );
        let bad = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},
          "object":{"key":"bad%FF"}}}]}"#;
        assert!(format!("{:#}", parse(bad.as_bytes()).unwrap_err()).contains("bad%FF"));
    }

    #[test]
    fn every_created_and_removed_kind_and_nothing_else() {
        let record = |name: &str| {
            format!(
                r#"{{"eventName":"{name}","s3":{{"bucket":{{"name":"b"}},"object":{{"key":"k","size":3,"eTag":"\"e\""}}}}}}"#
            )
        };
        let names = [
            "ObjectCreated:Put",
            "ObjectCreated:CompleteMultipartUpload",
            "s3:ObjectCreated:Copy",
            "ObjectRemoved:DeleteMarkerCreated",
            "ObjectRestore:Completed",
            "ObjectTagging:Put",
        ];
        let body = format!(r#"{{"Records":[{}]}}"#, names.map(record).join(","));
        let notices = parse(body.as_bytes()).unwrap();
        let kinds: Vec<_> = notices
            .iter()
            .map(|n| matches!(n, Notice::Created { .. }))
            .collect();
        assert_eq!(kinds, [true, true, true, false]);
        // an ETag already quoted stays as it is
        assert!(matches!(&notices[0], Notice::Created { etag, .. } if etag == "\"e\""));
    }

    #[test]
    fn the_test_event_and_the_sns_envelope() {
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-30T01:00:00.000Z",
          "Bucket":"mybucket","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#;
        assert_eq!(parse(test.as_bytes()).unwrap(), []);
        let sns = serde_json::json!({
            "Type": "Notification",
            "MessageId": "m",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Message": AWS_PUT,
        })
        .to_string();
        assert_eq!(
            parse(sns.as_bytes()).unwrap(),
            parse(AWS_PUT.as_bytes()).unwrap()
        );
    }

    #[test]
    fn what_is_not_a_notification_is_an_error() {
        for body in ["", "[]", "{}", "{\"Records\": 3}", "not json"] {
            assert!(parse(body.as_bytes()).is_err(), "{body:?}");
        }
    }

    #[test]
    fn a_versitygw_notification() {
        // versitygw 1.7 (s3event/event.go): eTag and versionId may be null.
        let body = r#"{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","awsRegion":"us-east-1",
          "eventTime":"2026-11-30T01:00:00Z","eventName":"s3:ObjectCreated:Put",
          "userIdentity":{"PrincipalId":"wordstream"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},
          "responseElements":{"x-amz-request-id":"","x-amz-id-2":""},
          "s3":{"s3SchemaVersion":"1.0","configurationId":"kafka-global",
            "bucket":{"name":"wordstream","ownerIdentity":{"PrincipalId":"wordstream"},"arn":"arn:aws:s3:::wordstream"},
            "object":{"key":"t/x.txt","size":12,"eTag":null,"versionId":null,"sequencer":"1"}},
          "glacierEventData":{"restoreEventData":{"lifecycleRestorationExpiryTime":"","lifecycleRestoreStorageClass":""}}}]}"#;
        assert_eq!(
            parse(body.as_bytes()).unwrap(),
            [Notice::Created {
                bucket: "wordstream".into(),
                key: "t/x.txt".into(),
                etag: String::new(),
                size: 12,
                sequencer: "1".into(),
            }]
        );
    }
}
