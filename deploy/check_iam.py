#!/usr/bin/env python3
"""IAM wildcard check for CloudFormation templates (deploy/check runs it).

Fails (exit 1, one line per finding) when any IAM policy document in the
template's resources has an Allow statement that
  - grants a wildcard action: "*", "s3:*", "kafka-cluster:*", or any action
    with "*" in it ("s3:Get*"), or uses NotAction;
  - applies to a wildcard resource: "*", an ARN whose resource part is only
    "*" ("arn:aws:s3:::*", "arn:...:kafka:region:acct:*"), or uses NotResource;
  - names the "*" principal (public access);
and it checks the least privilege of S3 event notifications to SQS:
  - a queue policy (AWS::SQS::QueuePolicy) may only let the S3 service send
    (Principal {"Service": "s3.amazonaws.com"}, Action sqs:SendMessage), and
    only for one bucket of this account (aws:SourceArn with ArnEquals or
    ArnLike, no wildcard, and aws:SourceAccount with StringEquals);
  - any other policy may grant only the SQS actions a consumer needs:
    sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes,
    sqs:ChangeMessageVisibility.
Deny statements grant nothing and are not checked. Resources built with
Fn::Sub are checked on their template string; other intrinsics (Ref,
GetAtt, ...) name one resource and pass.

usage: check_iam.py TEMPLATE...
"""
import sys

import yaml


class CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation's short tags into their long form."""


def _tag(tag):
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"

    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _t in ["Ref", "Sub", "GetAtt", "Join", "Select", "Split", "If", "Equals", "Not",
           "And", "Or", "FindInMap", "Base64", "Cidr", "ImportValue", "GetAZs",
           "Condition", "Transform", "ToJsonString", "Length"]:
    CfnLoader.add_constructor(f"!{_t}", _tag(_t))


def as_list(v):
    return v if isinstance(v, list) else [v]


def template_string(v):
    """The literal text of a string or Fn::Sub value, else None."""
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and "Fn::Sub" in v:
        sub = v["Fn::Sub"]
        return sub[0] if isinstance(sub, list) else sub
    return None


def wildcard_resource(v):
    s = template_string(v)
    if s is None:
        return False
    s = s.strip()
    return s == "*" or s.endswith(":*") or s.endswith(":*/*")


# What the worker does with its queue (and nothing else).
SQS_CONSUMER_ACTIONS = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
}


def check_queue_statement(at, st, findings):
    """An Allow statement of a queue policy: only S3 of one bucket sends."""
    if st.get("Principal") != {"Service": "s3.amazonaws.com"}:
        findings.append(f"{at}: least privilege: only the principal "
                        f"{{Service: s3.amazonaws.com}} may send, not {st.get('Principal')!r}")
    actions = [template_string(a) for a in as_list(st.get("Action", []))]
    if actions != ["sqs:SendMessage"]:
        findings.append(f"{at}: least privilege: the S3 service needs sqs:SendMessage only, not {actions!r}")
    cond = st.get("Condition") or {}
    source_arn = None
    for op in ("ArnEquals", "ArnLike"):
        if isinstance(cond.get(op), dict) and "aws:SourceArn" in cond[op]:
            source_arn = cond[op]["aws:SourceArn"]
    if source_arn is None:
        findings.append(f"{at}: least privilege: no aws:SourceArn condition (any bucket may send)")
    elif "*" in (template_string(source_arn) or ""):
        findings.append(f"{at}: least privilege: wildcard aws:SourceArn {template_string(source_arn)!r}")
    account = cond.get("StringEquals") if isinstance(cond.get("StringEquals"), dict) else {}
    if "aws:SourceAccount" not in account:
        findings.append(f"{at}: least privilege: no aws:SourceAccount condition (another account's bucket may send)")


def check_statement(where, st, findings, queue_policy=False):
    if not isinstance(st, dict) or st.get("Effect") != "Allow":
        return
    sid = st.get("Sid", "?")
    at = f"{where} statement {sid}"
    if "NotAction" in st:
        findings.append(f"{at}: NotAction grants every other action")
    if "NotResource" in st:
        findings.append(f"{at}: NotResource applies to every other resource")
    for a in as_list(st.get("Action", [])):
        s = template_string(a)
        if s is None or "*" in s:
            findings.append(f"{at}: wildcard action {s if s is not None else a!r}")
    for r in as_list(st.get("Resource", [])):
        if wildcard_resource(r):
            findings.append(f"{at}: wildcard resource {template_string(r)!r}")
    principal = st.get("Principal")
    if principal == "*" or (isinstance(principal, dict)
                            and "*" in as_list(principal.get("AWS", []))):
        findings.append(f"{at}: the '*' principal")
    if queue_policy:
        check_queue_statement(at, st, findings)
        return
    for a in as_list(st.get("Action", [])):
        s = template_string(a)
        if s and s.startswith("sqs:") and "*" not in s and s not in SQS_CONSUMER_ACTIONS:
            findings.append(f"{at}: least privilege: {s} is more than a queue consumer needs "
                            f"({', '.join(sorted(SQS_CONSUMER_ACTIONS))})")


def walk(where, node, findings, count, queue_policy=False):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("PolicyDocument", "AssumeRolePolicyDocument") and isinstance(v, dict):
                count[0] += 1
                for st in as_list(v.get("Statement", [])):
                    check_statement(f"{where} {k}", st, findings, queue_policy)
            else:
                walk(where, v, findings, count, queue_policy)
    elif isinstance(node, list):
        for v in node:
            walk(where, v, findings, count, queue_policy)


def check(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=CfnLoader)  # noqa: S506 (SafeLoader subclass)
    findings, count = [], [0]
    for name, res in (doc.get("Resources") or {}).items():
        queue_policy = isinstance(res, dict) and res.get("Type") == "AWS::SQS::QueuePolicy"
        walk(f"{path}: {name}", res, findings, count, queue_policy)
    return findings, count[0]


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    bad = 0
    for path in argv[1:]:
        findings, docs = check(path)
        for f in findings:
            print(f"check_iam: {f}")
        if findings:
            bad += 1
        else:
            print(f"check_iam: {path}: {docs} policy documents, no wildcard grant")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
