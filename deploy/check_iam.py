#!/usr/bin/env python3
"""IAM wildcard check for CloudFormation templates (deploy/check runs it).

Fails (exit 1, one line per finding) when any IAM policy document in the
template's resources has an Allow statement that
  - grants a wildcard action: "*", "s3:*", "kafka-cluster:*", or any action
    with "*" in it ("s3:Get*"), or uses NotAction;
  - applies to a wildcard resource: "*", an ARN whose resource part is only
    "*" ("arn:aws:s3:::*", "arn:...:kafka:region:acct:*"), or uses NotResource;
  - names the "*" principal (public access).
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


def check_statement(where, st, findings):
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


def walk(where, node, findings, count):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("PolicyDocument", "AssumeRolePolicyDocument") and isinstance(v, dict):
                count[0] += 1
                for st in as_list(v.get("Statement", [])):
                    check_statement(f"{where} {k}", st, findings)
            else:
                walk(where, v, findings, count)
    elif isinstance(node, list):
        for v in node:
            walk(where, v, findings, count)


def check(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=CfnLoader)  # noqa: S506 (SafeLoader subclass)
    findings, count = [], [0]
    for name, res in (doc.get("Resources") or {}).items():
        walk(f"{path}: {name}", res, findings, count)
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
