"""Recover a Faust table from a wordstream changelog and dump it as JSON.

    python recover_table.py APP_ID BROKERS OUT.json [PARTITIONS] [TABLE]

A real Faust app (faust-streaming) with the same app id and table name as
the wordstream worker: `word_counts = app.Table('word_counts', default=int)`,
as the original word-count app declared it. At start-up Faust recovers the
table from `<app id>-<table>-changelog` (our topic, read_committed), then
this script writes the table as `{"word": count, ...}` to OUT.json and exits.
"""

import asyncio
import json
import os
import sys

import faust

app_id, brokers, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
partitions = int(sys.argv[4]) if len(sys.argv) > 4 else 8
table_name = sys.argv[5] if len(sys.argv) > 5 else "word_counts"

app = faust.App(
    app_id,
    broker=",".join(f"kafka://{b}" for b in brokers.split(",")),
    store="memory://",
    web_enabled=False,
    topic_partitions=partitions,
    # read_committed: see only what wordstream's transactions committed
    processing_guarantee="exactly_once",
)

word_counts = app.Table(table_name, default=int, partitions=partitions)

# The table is partitioned like the stream that updates it (as in the
# original app, where an agent counted the words of a topic).
words = app.topic(f"{app_id}-faust-words", value_type=str, partitions=partitions)


@app.agent(words)
async def count(stream):
    async for word in stream:
        word_counts[word] += 1


@app.task
async def dump():
    await app.tables.recovery.completed.wait()
    table = {k: v for k, v in word_counts.items()}
    with open(out_path + ".tmp", "w") as f:
        json.dump(table, f, ensure_ascii=False, sort_keys=True)
    os.replace(out_path + ".tmp", out_path)
    print(f"dumped {len(table)} words to {out_path}", flush=True)
    # Leave without committing anything.
    os._exit(0)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "info", "--without-web"]
    app.main()
