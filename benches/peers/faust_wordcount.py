"""The original pipeline, as its users run it: a Faust app that polls an S3
bucket every second with boto3, splits each new object with
re.findall(r'\\w+') + isalpha(), sends every word to an agent, and keeps a
`word_counts` table (one changelog record per increment).

Run: faust -A faust_wordcount worker -l info
Configured by environment: KAFKA_BROKERS, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, S3_BUCKET, PEER_APP_ID (default word-count).
Used by benches/peers/run as the benchmark peer; nothing here is wordstream code.
"""
import os
import re

import boto3
import faust

BROKERS = os.environ.get("KAFKA_BROKERS", "localhost:9092")
BUCKET = os.environ["S3_BUCKET"]
APP_ID = os.environ.get("PEER_APP_ID", "word-count")

app = faust.App(
    APP_ID,
    broker=",".join("kafka://" + b for b in BROKERS.split(",")),
    store="memory://",
    topic_partitions=8,
    topic_replication_factor=1,
    web_enabled=False,
)

words_topic = app.topic(f"{APP_ID}-words", key_type=str, value_type=str, internal=True, partitions=8)
word_counts = app.Table("word_counts", default=int, partitions=8)

s3 = boto3.client(
    "s3",
    endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
    region_name=os.environ.get("AWS_REGION", "us-east-1"),
)
seen = set()


@app.timer(interval=1.0)
async def poll_bucket():
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key in seen:
                continue
            seen.add(key)
            # The text never goes through Kafka whole (objects can exceed 1 MB).
            text = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode("iso-8859-1")
            for word in re.findall(r"\w+", text):
                if word.isalpha():
                    await words_topic.send(key=word, value=word)
            print(f"read {key}", flush=True)


@app.agent(words_topic)
async def count_words(words):
    async for word in words:
        word_counts[word] += 1
