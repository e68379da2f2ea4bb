
use builtin;
use str;

set edit:completion:arg-completer[wordstream] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'wordstream'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'wordstream'= {
            cand -l 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --loglevel 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --log-format 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand count-local 'Count words of local files or stdin with the pipeline''s exact semantics'
            cand upload 'Upload local files to the bucket (multipart for big ones)'
            cand consume 'Print the word counts of the changelog topic (or any topic)'
            cand worker 'Run the pipeline: poll S3, count new objects, publish totals (exactly once)'
            cand completions 'Print a shell completion script'
            cand top 'Live top words, rates, backlog and workers from a worker''s web server'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wordstream;count-local'= {
            cand --encoding 'How object bytes decode (latin1 is what the original app did)'
            cand --format 'How bytes are read: `auto` detects gzip, zstd, bzip2, tar, XML, HTML, PDF (magic bytes, then Content-Type, then extension) and counts their text; `text` counts every byte as text'
            cand --max-expansion 'Decompressed bytes may be at most N times the compressed bytes read (plus 1 MiB); past that the input fails as a decompression bomb'
            cand --pdf-max-mib 'A PDF larger than this many MiB fails (a PDF is read whole into memory; its extractor may use 8 times as much plus 512 MiB)'
            cand --pdf-timeout 'A PDF whose text takes longer than this many seconds to extract fails'
            cand -o 'Output format [default: table on a terminal, tsv otherwise]'
            cand --output 'Output format [default: table on a terminal, tsv otherwise]'
            cand --top 'Print only the N most frequent words (with --verify: at most N differences; default all, 20 in a table)'
            cand --threads 'Counting threads, 1 to 256 [default: all cores; never more than the input has 1 MiB batches]'
            cand --serde 'Wire format of the changelog read by --verify'
            cand --topic 'Topic read by --verify [default: the app''s changelog]'
            cand --brokers 'Bootstrap brokers, comma-separated'
            cand -X 'Any librdkafka property, like kcat (repeatable): -X key=value'
            cand --app-id 'Application id: names the topics and the consumer group (as in Faust)'
            cand --table 'Table name: the changelog is `<app-id>-<table>-changelog`'
            cand --connect-timeout 'Seconds to wait for the Kafka brokers before giving up (1 to 3600)'
            cand --kafka-security-protocol 'Security protocol of the Kafka connections [default: PLAINTEXT; SASL_SSL with --sasl-mechanism or --kafka-auth msk-iam]'
            cand --sasl-mechanism 'SASL mechanism (with SASL_PLAINTEXT or SASL_SSL). PLAIN and SCRAM take --sasl-username and the password from KAFKA_SASL_PASSWORD (environment or .env only)'
            cand --sasl-username 'SASL user name (PLAIN, SCRAM)'
            cand --sasl-password 'SASL password: from KAFKA_SASL_PASSWORD (a flag would show in `ps`)'
            cand --ca-location 'CA certificate(s), PEM, to verify the brokers'' TLS certificates [default: the system''s trust store]'
            cand --kafka-auth 'Authentication: `msk-iam` signs OAUTHBEARER tokens with the AWS credential chain (AWS MSK IAM; implies SASL_SSL + OAUTHBEARER)'
            cand --msk-region 'AWS region of the MSK cluster, for --kafka-auth msk-iam [default: from the broker host names, else the AWS chain''s]'
            cand -l 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --loglevel 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --log-format 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)'
            cand --lowercase 'Fold case with Python''s `str.lower()` (default: case preserved)'
            cand -v 'Name what a directory walk skips (FIFOs, sockets, devices) and the format found in each input'
            cand --verbose 'Name what a directory walk skips (FIFOs, sockets, devices) and the format found in each input'
            cand --keep-going 'Warn about unreadable paths and count the rest (still exits 1)'
            cand -q 'No summary line on stderr'
            cand --quiet 'No summary line on stderr'
            cand --verify 'Compare the counts with the changelog topic instead of printing them; exit 1 on any difference. The differences are printed as --output says (word, local, changelog)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wordstream;upload'= {
            cand --bucket 'The bucket'
            cand --endpoint-url 'S3 endpoint for S3-compatible servers (path-style addressing)'
            cand --region 'AWS region [default: the AWS chain''s, else us-east-1]'
            cand --s3-timeout 'Seconds to wait for the S3 endpoint: to connect, and for each answer (a request that sends data gets one more second per 64 KiB)'
            cand --prefix 'Key prefix ("folder"); a `/` is added when missing. Keys are the prefix plus the file name, or the path relative to a directory argument. It may not start with `/` or hold `//`, `.` or `..` segments'
            cand --multipart-threshold 'Files larger than this go up in parts (bytes, or with KiB/MiB/GiB)'
            cand --part-size 'Part size of multipart uploads (at least 5 MiB)'
            cand --concurrency 'Requests in flight (whole files and parts together)'
            cand --content-type 'Content-Type of the objects'
            cand -l 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --loglevel 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --log-format 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)'
            cand -r 'Upload the files of directories, recursively'
            cand --recursive 'Upload the files of directories, recursively'
            cand --dry-run 'List what would be uploaded; send nothing to S3'
            cand --create-bucket 'Create the bucket if it does not exist'
            cand -q 'No progress bars and no summary table'
            cand --quiet 'No progress bars and no summary table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wordstream;consume'= {
            cand --brokers 'Bootstrap brokers, comma-separated'
            cand -X 'Any librdkafka property, like kcat (repeatable): -X key=value'
            cand --app-id 'Application id: names the topics and the consumer group (as in Faust)'
            cand --table 'Table name: the changelog is `<app-id>-<table>-changelog`'
            cand --connect-timeout 'Seconds to wait for the Kafka brokers before giving up (1 to 3600)'
            cand --kafka-security-protocol 'Security protocol of the Kafka connections [default: PLAINTEXT; SASL_SSL with --sasl-mechanism or --kafka-auth msk-iam]'
            cand --sasl-mechanism 'SASL mechanism (with SASL_PLAINTEXT or SASL_SSL). PLAIN and SCRAM take --sasl-username and the password from KAFKA_SASL_PASSWORD (environment or .env only)'
            cand --sasl-username 'SASL user name (PLAIN, SCRAM)'
            cand --sasl-password 'SASL password: from KAFKA_SASL_PASSWORD (a flag would show in `ps`)'
            cand --ca-location 'CA certificate(s), PEM, to verify the brokers'' TLS certificates [default: the system''s trust store]'
            cand --kafka-auth 'Authentication: `msk-iam` signs OAUTHBEARER tokens with the AWS credential chain (AWS MSK IAM; implies SASL_SSL + OAUTHBEARER)'
            cand --msk-region 'AWS region of the MSK cluster, for --kafka-auth msk-iam [default: from the broker host names, else the AWS chain''s]'
            cand -t 'Topic to read [default: the changelog, <app-id>-<table>-changelog]'
            cand --topic 'Topic to read [default: the changelog, <app-id>-<table>-changelog]'
            cand --serde 'Wire format of keys and values'
            cand --max-messages 'Exit after printing this many records (undecodable ones, skipped with a warning, do not count)'
            cand -o 'Output format'
            cand --output 'Output format'
            cand --top 'With --output table: only the N most frequent words [default: all; 25 when redrawing on a terminal]'
            cand -f 'Print each record with this format, like kcat: %k key, %s value, %t topic, %p partition, %o offset, %T timestamp (ms), %% a percent sign; \n newline, \t tab, \\ backslash'
            cand --format-string 'Print each record with this format, like kcat: %k key, %s value, %t topic, %p partition, %o offset, %T timestamp (ms), %% a percent sign; \n newline, \t tab, \\ backslash'
            cand -g 'Consume as this consumer group and commit its offsets (default: no group offsets are read or committed)'
            cand --group 'Consume as this consumer group and commit its offsets (default: no group offsets are read or committed)'
            cand -l 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --loglevel 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --log-format 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)'
            cand --from-beginning 'Start at the oldest record (default: only records written from now on)'
            cand -e 'Exit once every partition''s end (as of the start) is reached'
            cand --exit-at-end 'Exit once every partition''s end (as of the start) is reached'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wordstream;worker'= {
            cand --brokers 'Bootstrap brokers, comma-separated'
            cand -X 'Any librdkafka property, like kcat (repeatable): -X key=value'
            cand --app-id 'Application id: names the topics and the consumer group (as in Faust)'
            cand --table 'Table name: the changelog is `<app-id>-<table>-changelog`'
            cand --connect-timeout 'Seconds to wait for the Kafka brokers before giving up (1 to 3600)'
            cand --kafka-security-protocol 'Security protocol of the Kafka connections [default: PLAINTEXT; SASL_SSL with --sasl-mechanism or --kafka-auth msk-iam]'
            cand --sasl-mechanism 'SASL mechanism (with SASL_PLAINTEXT or SASL_SSL). PLAIN and SCRAM take --sasl-username and the password from KAFKA_SASL_PASSWORD (environment or .env only)'
            cand --sasl-username 'SASL user name (PLAIN, SCRAM)'
            cand --sasl-password 'SASL password: from KAFKA_SASL_PASSWORD (a flag would show in `ps`)'
            cand --ca-location 'CA certificate(s), PEM, to verify the brokers'' TLS certificates [default: the system''s trust store]'
            cand --kafka-auth 'Authentication: `msk-iam` signs OAUTHBEARER tokens with the AWS credential chain (AWS MSK IAM; implies SASL_SSL + OAUTHBEARER)'
            cand --msk-region 'AWS region of the MSK cluster, for --kafka-auth msk-iam [default: from the broker host names, else the AWS chain''s]'
            cand --bucket 'The bucket'
            cand --endpoint-url 'S3 endpoint for S3-compatible servers (path-style addressing)'
            cand --region 'AWS region [default: the AWS chain''s, else us-east-1]'
            cand --s3-timeout 'Seconds to wait for the S3 endpoint: to connect, and for each answer (a request that sends data gets one more second per 64 KiB)'
            cand --encoding 'How object bytes decode (latin1 is what the original app did)'
            cand --format 'How bytes are read: `auto` detects gzip, zstd, bzip2, tar, XML, HTML, PDF (magic bytes, then Content-Type, then extension) and counts their text; `text` counts every byte as text'
            cand --max-expansion 'Decompressed bytes may be at most N times the compressed bytes read (plus 1 MiB); past that the input fails as a decompression bomb'
            cand --pdf-max-mib 'A PDF larger than this many MiB fails (a PDF is read whole into memory; its extractor may use 8 times as much plus 512 MiB)'
            cand --pdf-timeout 'A PDF whose text takes longer than this many seconds to extract fails'
            cand --prefix 'Only count objects whose key starts with this'
            cand --interval 'Seconds between bucket listings (0.1 to 86400). A new key that sorts after the keys already seen is found at the next listing; one that sorts before them (random keys) waits for the next full pass (--reconcile-interval)'
            cand --serde 'Changelog wire format'
            cand --worker-id 'This worker''s id: names its transactional id, so a restarted worker with the same id fences its zombie. Given explicitly, it also makes the worker a static group member: restarted with the same id it takes its partitions back at once, without a rebalance; stopped for good, its partitions move to other workers after the session timeout (10 s). The default id is hostname-pid, with dynamic membership'
            cand --tally 'Print the top N words after each committed batch ("$$ TALLY $$")'
            cand --partitions 'Partitions of topics the worker creates (an existing changelog''s count wins)'
            cand --replication 'Replication factor of topics the worker creates'
            cand --status-interval 'Seconds between status lines (1 to 86400)'
            cand --purge-interval 'Seconds between purges of consumed records of the repartition topic'
            cand --max-table-memory 'Warn (in the status line) when the worker''s local state (tables, done sets, known objects) is estimated above this many bytes'
            cand --range-size 'Plain-text objects larger than this are read as byte ranges of this size, several ranged GETs at a time (e.g. 64MiB, 512KiB; 0: never split). Compressed files, archives, PDF and markup are read whole'
            cand --range-concurrency 'Ranges of big objects this worker reads and counts at the same time (1 to 64); the ranges of one object are shared by the whole group'
            cand --reconcile-interval 'Seconds from the end of one full listing of the bucket to the start of the next (reconciliation passes: they find keys that sort before the keys already seen, e.g. random names, and retry failed objects). A pass lists one page (1,000 keys) per loop iteration and resumes where it stood after a restart or a hand-over. Its LIST cost per hour is about objects / 1000 × 3600 / (this + the pass''s duration): 6,000 calls an hour on a bucket of 1 M objects at the default'
            cand --events 'Event-driven discovery, next to the listing: S3 Event Notifications from an SQS queue (sqs:QUEUE_URL; endpoint AWS_ENDPOINT_URL_SQS, else the queue URL''s) or a Kafka topic of the same cluster that an S3 server publishes them to (kafka:TOPIC; offsets of the group <app-id>-events). New objects are found within a loop iteration, whatever their keys; the listing stays the safety net for lost events. An event is acknowledged once its objects are in the ledger'
            cand --list-page-size 'Keys per ListObjectsV2 page (tests: many pages on a small bucket)'
            cand --on-change 'What an overwritten or deleted object does to the totals: `recount` replaces its contribution with the new version''s (a delete takes it out; a word at 0 leaves the table, a tombstone in the changelog); `ignore` counts each key once, ever (the original''s behaviour)'
            cand --web-port 'Port of the web server (/metrics, /health, /ready, /table/word_counts/WORD, /top, /objects, the dashboard at /); 0 picks a free port (announced in the log)'
            cand --web-bind 'Address the web server listens on (loopback by default: it has no authentication; bind 0.0.0.0 only behind a firewall or a proxy)'
            cand --web-advertise 'The URL other workers reach this one at (default: http://BIND:PORT, or the host name when bound to all interfaces)'
            cand -l 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --loglevel 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --log-format 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)'
            cand --lowercase 'Fold case with Python''s `str.lower()` (default: case preserved)'
            cand --retry-failed 'Retry every object the ledger says failed (e.g. after fixing a permission) at the first listing; otherwise a failed object is retried 10 minutes after it failed, or once replaced. Takes effect on the worker that lists the bucket'
            cand --no-web 'No web server (no metrics, no queries)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wordstream;completions'= {
            cand --write-dir 'Write the scripts for every shell into this directory instead'
            cand -l 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --loglevel 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --log-format 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wordstream;top'= {
            cand --url 'Base URL of any worker''s web server'
            cand -n 'How many words (1 to 1000)'
            cand --top 'How many words (1 to 1000)'
            cand --interval 'Seconds between refreshes'
            cand -l 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --loglevel 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence'
            cand --log-format 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)'
            cand --once 'Print one frame and exit'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wordstream;help'= {
            cand count-local 'Count words of local files or stdin with the pipeline''s exact semantics'
            cand upload 'Upload local files to the bucket (multipart for big ones)'
            cand consume 'Print the word counts of the changelog topic (or any topic)'
            cand worker 'Run the pipeline: poll S3, count new objects, publish totals (exactly once)'
            cand completions 'Print a shell completion script'
            cand top 'Live top words, rates, backlog and workers from a worker''s web server'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wordstream;help;count-local'= {
        }
        &'wordstream;help;upload'= {
        }
        &'wordstream;help;consume'= {
        }
        &'wordstream;help;worker'= {
        }
        &'wordstream;help;completions'= {
        }
        &'wordstream;help;top'= {
        }
        &'wordstream;help;help'= {
        }
    ]
    $completions[$command]
}
