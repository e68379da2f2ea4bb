//! The deployment template: `deploy/check` (cfn-lint, the IAM wildcard
//! checker, the checker's negative fixtures) passes, and the checker rejects
//! the real template once any of its grants is widened to a wildcard.
//! Needs python3 and PyPI on first run (cfn-lint goes into .cache/venv-cfn).

use std::path::Path;
use std::process::Command;
use testkit::repo;

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("running a deploy check");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn check_iam(python: &Path, template: &Path) -> (bool, String) {
    run(Command::new(python)
        .arg(repo().join("deploy/check_iam.py"))
        .arg(template))
}

#[test]
fn template_lints_clean_and_grants_no_wildcard() {
    let (ok, out) = run(Command::new(repo().join("deploy/check")).current_dir(repo()));
    assert!(ok, "deploy/check failed:\n{out}");
    assert!(out.contains("no wildcard grant"), "{out}");
    assert!(out.contains("deploy/check: ok"), "{out}");

    // Widen each grant of the real template in turn: the checker must fail.
    let python = repo().join(".cache/venv-cfn/bin/python");
    let template = std::fs::read_to_string(repo().join("deploy/cloudformation.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mutations: &[(&str, &str, &str)] = &[
        (
            "Action: s3:GetObject",
            "Action: \"s3:*\"",
            "wildcard action 's3:*'",
        ),
        (
            "- kafka-cluster:Connect\n",
            "- kafka-cluster:*\n",
            "wildcard action 'kafka-cluster:*'",
        ),
        (
            "Action: s3:ListBucket",
            "Action: \"*\"",
            "wildcard action '*'",
        ),
        (
            "Resource: !GetAtt Bucket.Arn\n",
            "Resource: \"*\"\n",
            "wildcard resource '*'",
        ),
        (
            "Action: kafka:GetBootstrapBrokers\n                Resource: !Ref MskCluster",
            "Action: kafka:GetBootstrapBrokers\n                Resource: !Sub \"arn:${AWS::Partition}:kafka:${AWS::Region}:${AWS::AccountId}:*\"",
            "wildcard resource",
        ),
        // S3 event notifications: only this bucket sends, the worker only
        // receives and deletes
        (
            "- sqs:DeleteMessage\n",
            "- sqs:PurgeQueue\n",
            "least privilege: sqs:PurgeQueue",
        ),
        (
            "Principal: { Service: s3.amazonaws.com }",
            "Principal: { AWS: !Ref AWS::AccountId }",
            "least privilege: only the principal",
        ),
        (
            "aws:SourceAccount: !Ref AWS::AccountId",
            "aws:PrincipalAccount: !Ref AWS::AccountId",
            "no aws:SourceAccount condition",
        ),
        (
            "\"arn:${AWS::Partition}:s3:::${Name}\"",
            "\"arn:${AWS::Partition}:s3:::*\"",
            "wildcard aws:SourceArn",
        ),
    ];
    for (i, (from, to, want)) in mutations.iter().enumerate() {
        assert!(
            template.contains(from),
            "the template no longer has {from:?}"
        );
        let bad = template.replacen(from, to, 1);
        let path = dir.path().join(format!("mutated-{i}.yaml"));
        std::fs::write(&path, bad).unwrap();
        let (ok, out) = check_iam(&python, &path);
        assert!(!ok, "the checker accepted {to:?}:\n{out}");
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
    // and the untouched template passes
    let (ok, out) = check_iam(&python, &repo().join("deploy/cloudformation.yaml"));
    assert!(ok, "{out}");
}
