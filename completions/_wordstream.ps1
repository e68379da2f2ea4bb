
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'wordstream' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'wordstream'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'wordstream' {
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--loglevel', '--loglevel', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('count-local', 'count-local', [CompletionResultType]::ParameterValue, 'Count words of local files or stdin with the pipeline''s exact semantics')
            [CompletionResult]::new('upload', 'upload', [CompletionResultType]::ParameterValue, 'Upload local files to the bucket (multipart for big ones)')
            [CompletionResult]::new('consume', 'consume', [CompletionResultType]::ParameterValue, 'Print the word counts of the changelog topic (or any topic)')
            [CompletionResult]::new('worker', 'worker', [CompletionResultType]::ParameterValue, 'Run the pipeline: poll S3, count new objects, publish totals (exactly once)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('top', 'top', [CompletionResultType]::ParameterValue, 'Live top words, rates, backlog and workers from a worker''s web server')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wordstream;count-local' {
            [CompletionResult]::new('--encoding', '--encoding', [CompletionResultType]::ParameterName, 'How object bytes decode (latin1 is what the original app did)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'How bytes are read: `auto` detects gzip, zstd, bzip2, tar, XML, HTML, PDF (magic bytes, then Content-Type, then extension) and counts their text; `text` counts every byte as text')
            [CompletionResult]::new('--max-expansion', '--max-expansion', [CompletionResultType]::ParameterName, 'Decompressed bytes may be at most N times the compressed bytes read (plus 1 MiB); past that the input fails as a decompression bomb')
            [CompletionResult]::new('--pdf-max-mib', '--pdf-max-mib', [CompletionResultType]::ParameterName, 'A PDF larger than this many MiB fails (a PDF is read whole into memory; its extractor may use 8 times as much plus 512 MiB)')
            [CompletionResult]::new('--pdf-timeout', '--pdf-timeout', [CompletionResultType]::ParameterName, 'A PDF whose text takes longer than this many seconds to extract fails')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, tsv otherwise]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table on a terminal, tsv otherwise]')
            [CompletionResult]::new('--top', '--top', [CompletionResultType]::ParameterName, 'Print only the N most frequent words (with --verify: at most N differences; default all, 20 in a table)')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'Counting threads, 1 to 256 [default: all cores; never more than the input has 1 MiB batches]')
            [CompletionResult]::new('--serde', '--serde', [CompletionResultType]::ParameterName, 'Wire format of the changelog read by --verify')
            [CompletionResult]::new('--topic', '--topic', [CompletionResultType]::ParameterName, 'Topic read by --verify [default: the app''s changelog]')
            [CompletionResult]::new('--brokers', '--brokers', [CompletionResultType]::ParameterName, 'Bootstrap brokers, comma-separated')
            [CompletionResult]::new('-X', '-X ', [CompletionResultType]::ParameterName, 'Any librdkafka property, like kcat (repeatable): -X key=value')
            [CompletionResult]::new('--app-id', '--app-id', [CompletionResultType]::ParameterName, 'Application id: names the topics and the consumer group (as in Faust)')
            [CompletionResult]::new('--table', '--table', [CompletionResultType]::ParameterName, 'Table name: the changelog is `<app-id>-<table>-changelog`')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the Kafka brokers before giving up (1 to 3600)')
            [CompletionResult]::new('--kafka-security-protocol', '--kafka-security-protocol', [CompletionResultType]::ParameterName, 'Security protocol of the Kafka connections [default: PLAINTEXT; SASL_SSL with --sasl-mechanism or --kafka-auth msk-iam]')
            [CompletionResult]::new('--sasl-mechanism', '--sasl-mechanism', [CompletionResultType]::ParameterName, 'SASL mechanism (with SASL_PLAINTEXT or SASL_SSL). PLAIN and SCRAM take --sasl-username and the password from KAFKA_SASL_PASSWORD (environment or .env only)')
            [CompletionResult]::new('--sasl-username', '--sasl-username', [CompletionResultType]::ParameterName, 'SASL user name (PLAIN, SCRAM)')
            [CompletionResult]::new('--sasl-password', '--sasl-password', [CompletionResultType]::ParameterName, 'SASL password: from KAFKA_SASL_PASSWORD (a flag would show in `ps`)')
            [CompletionResult]::new('--ca-location', '--ca-location', [CompletionResultType]::ParameterName, 'CA certificate(s), PEM, to verify the brokers'' TLS certificates [default: the system''s trust store]')
            [CompletionResult]::new('--kafka-auth', '--kafka-auth', [CompletionResultType]::ParameterName, 'Authentication: `msk-iam` signs OAUTHBEARER tokens with the AWS credential chain (AWS MSK IAM; implies SASL_SSL + OAUTHBEARER)')
            [CompletionResult]::new('--msk-region', '--msk-region', [CompletionResultType]::ParameterName, 'AWS region of the MSK cluster, for --kafka-auth msk-iam [default: from the broker host names, else the AWS chain''s]')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--loglevel', '--loglevel', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)')
            [CompletionResult]::new('--lowercase', '--lowercase', [CompletionResultType]::ParameterName, 'Fold case with Python''s `str.lower()` (default: case preserved)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Name what a directory walk skips (FIFOs, sockets, devices) and the format found in each input')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Name what a directory walk skips (FIFOs, sockets, devices) and the format found in each input')
            [CompletionResult]::new('--keep-going', '--keep-going', [CompletionResultType]::ParameterName, 'Warn about unreadable paths and count the rest (still exits 1)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No summary line on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No summary line on stderr')
            [CompletionResult]::new('--verify', '--verify', [CompletionResultType]::ParameterName, 'Compare the counts with the changelog topic instead of printing them; exit 1 on any difference. The differences are printed as --output says (word, local, changelog)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wordstream;upload' {
            [CompletionResult]::new('--bucket', '--bucket', [CompletionResultType]::ParameterName, 'The bucket')
            [CompletionResult]::new('--endpoint-url', '--endpoint-url', [CompletionResultType]::ParameterName, 'S3 endpoint for S3-compatible servers (path-style addressing)')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region [default: the AWS chain''s, else us-east-1]')
            [CompletionResult]::new('--s3-timeout', '--s3-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the S3 endpoint: to connect, and for each answer (a request that sends data gets one more second per 64 KiB)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Key prefix ("folder"); a `/` is added when missing. Keys are the prefix plus the file name, or the path relative to a directory argument. It may not start with `/` or hold `//`, `.` or `..` segments')
            [CompletionResult]::new('--multipart-threshold', '--multipart-threshold', [CompletionResultType]::ParameterName, 'Files larger than this go up in parts (bytes, or with KiB/MiB/GiB)')
            [CompletionResult]::new('--part-size', '--part-size', [CompletionResultType]::ParameterName, 'Part size of multipart uploads (at least 5 MiB)')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Requests in flight (whole files and parts together)')
            [CompletionResult]::new('--content-type', '--content-type', [CompletionResultType]::ParameterName, 'Content-Type of the objects')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--loglevel', '--loglevel', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Upload the files of directories, recursively')
            [CompletionResult]::new('--recursive', '--recursive', [CompletionResultType]::ParameterName, 'Upload the files of directories, recursively')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'List what would be uploaded; send nothing to S3')
            [CompletionResult]::new('--create-bucket', '--create-bucket', [CompletionResultType]::ParameterName, 'Create the bucket if it does not exist')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress bars and no summary table')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress bars and no summary table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wordstream;consume' {
            [CompletionResult]::new('--brokers', '--brokers', [CompletionResultType]::ParameterName, 'Bootstrap brokers, comma-separated')
            [CompletionResult]::new('-X', '-X ', [CompletionResultType]::ParameterName, 'Any librdkafka property, like kcat (repeatable): -X key=value')
            [CompletionResult]::new('--app-id', '--app-id', [CompletionResultType]::ParameterName, 'Application id: names the topics and the consumer group (as in Faust)')
            [CompletionResult]::new('--table', '--table', [CompletionResultType]::ParameterName, 'Table name: the changelog is `<app-id>-<table>-changelog`')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the Kafka brokers before giving up (1 to 3600)')
            [CompletionResult]::new('--kafka-security-protocol', '--kafka-security-protocol', [CompletionResultType]::ParameterName, 'Security protocol of the Kafka connections [default: PLAINTEXT; SASL_SSL with --sasl-mechanism or --kafka-auth msk-iam]')
            [CompletionResult]::new('--sasl-mechanism', '--sasl-mechanism', [CompletionResultType]::ParameterName, 'SASL mechanism (with SASL_PLAINTEXT or SASL_SSL). PLAIN and SCRAM take --sasl-username and the password from KAFKA_SASL_PASSWORD (environment or .env only)')
            [CompletionResult]::new('--sasl-username', '--sasl-username', [CompletionResultType]::ParameterName, 'SASL user name (PLAIN, SCRAM)')
            [CompletionResult]::new('--sasl-password', '--sasl-password', [CompletionResultType]::ParameterName, 'SASL password: from KAFKA_SASL_PASSWORD (a flag would show in `ps`)')
            [CompletionResult]::new('--ca-location', '--ca-location', [CompletionResultType]::ParameterName, 'CA certificate(s), PEM, to verify the brokers'' TLS certificates [default: the system''s trust store]')
            [CompletionResult]::new('--kafka-auth', '--kafka-auth', [CompletionResultType]::ParameterName, 'Authentication: `msk-iam` signs OAUTHBEARER tokens with the AWS credential chain (AWS MSK IAM; implies SASL_SSL + OAUTHBEARER)')
            [CompletionResult]::new('--msk-region', '--msk-region', [CompletionResultType]::ParameterName, 'AWS region of the MSK cluster, for --kafka-auth msk-iam [default: from the broker host names, else the AWS chain''s]')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Topic to read [default: the changelog, <app-id>-<table>-changelog]')
            [CompletionResult]::new('--topic', '--topic', [CompletionResultType]::ParameterName, 'Topic to read [default: the changelog, <app-id>-<table>-changelog]')
            [CompletionResult]::new('--serde', '--serde', [CompletionResultType]::ParameterName, 'Wire format of keys and values')
            [CompletionResult]::new('--max-messages', '--max-messages', [CompletionResultType]::ParameterName, 'Exit after printing this many records (undecodable ones, skipped with a warning, do not count)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--top', '--top', [CompletionResultType]::ParameterName, 'With --output table: only the N most frequent words [default: all; 25 when redrawing on a terminal]')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Print each record with this format, like kcat: %k key, %s value, %t topic, %p partition, %o offset, %T timestamp (ms), %% a percent sign; \n newline, \t tab, \\ backslash')
            [CompletionResult]::new('--format-string', '--format-string', [CompletionResultType]::ParameterName, 'Print each record with this format, like kcat: %k key, %s value, %t topic, %p partition, %o offset, %T timestamp (ms), %% a percent sign; \n newline, \t tab, \\ backslash')
            [CompletionResult]::new('-g', '-g', [CompletionResultType]::ParameterName, 'Consume as this consumer group and commit its offsets (default: no group offsets are read or committed)')
            [CompletionResult]::new('--group', '--group', [CompletionResultType]::ParameterName, 'Consume as this consumer group and commit its offsets (default: no group offsets are read or committed)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--loglevel', '--loglevel', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)')
            [CompletionResult]::new('--from-beginning', '--from-beginning', [CompletionResultType]::ParameterName, 'Start at the oldest record (default: only records written from now on)')
            [CompletionResult]::new('-e', '-e', [CompletionResultType]::ParameterName, 'Exit once every partition''s end (as of the start) is reached')
            [CompletionResult]::new('--exit-at-end', '--exit-at-end', [CompletionResultType]::ParameterName, 'Exit once every partition''s end (as of the start) is reached')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wordstream;worker' {
            [CompletionResult]::new('--brokers', '--brokers', [CompletionResultType]::ParameterName, 'Bootstrap brokers, comma-separated')
            [CompletionResult]::new('-X', '-X ', [CompletionResultType]::ParameterName, 'Any librdkafka property, like kcat (repeatable): -X key=value')
            [CompletionResult]::new('--app-id', '--app-id', [CompletionResultType]::ParameterName, 'Application id: names the topics and the consumer group (as in Faust)')
            [CompletionResult]::new('--table', '--table', [CompletionResultType]::ParameterName, 'Table name: the changelog is `<app-id>-<table>-changelog`')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the Kafka brokers before giving up (1 to 3600)')
            [CompletionResult]::new('--kafka-security-protocol', '--kafka-security-protocol', [CompletionResultType]::ParameterName, 'Security protocol of the Kafka connections [default: PLAINTEXT; SASL_SSL with --sasl-mechanism or --kafka-auth msk-iam]')
            [CompletionResult]::new('--sasl-mechanism', '--sasl-mechanism', [CompletionResultType]::ParameterName, 'SASL mechanism (with SASL_PLAINTEXT or SASL_SSL). PLAIN and SCRAM take --sasl-username and the password from KAFKA_SASL_PASSWORD (environment or .env only)')
            [CompletionResult]::new('--sasl-username', '--sasl-username', [CompletionResultType]::ParameterName, 'SASL user name (PLAIN, SCRAM)')
            [CompletionResult]::new('--sasl-password', '--sasl-password', [CompletionResultType]::ParameterName, 'SASL password: from KAFKA_SASL_PASSWORD (a flag would show in `ps`)')
            [CompletionResult]::new('--ca-location', '--ca-location', [CompletionResultType]::ParameterName, 'CA certificate(s), PEM, to verify the brokers'' TLS certificates [default: the system''s trust store]')
            [CompletionResult]::new('--kafka-auth', '--kafka-auth', [CompletionResultType]::ParameterName, 'Authentication: `msk-iam` signs OAUTHBEARER tokens with the AWS credential chain (AWS MSK IAM; implies SASL_SSL + OAUTHBEARER)')
            [CompletionResult]::new('--msk-region', '--msk-region', [CompletionResultType]::ParameterName, 'AWS region of the MSK cluster, for --kafka-auth msk-iam [default: from the broker host names, else the AWS chain''s]')
            [CompletionResult]::new('--bucket', '--bucket', [CompletionResultType]::ParameterName, 'The bucket')
            [CompletionResult]::new('--endpoint-url', '--endpoint-url', [CompletionResultType]::ParameterName, 'S3 endpoint for S3-compatible servers (path-style addressing)')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region [default: the AWS chain''s, else us-east-1]')
            [CompletionResult]::new('--s3-timeout', '--s3-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the S3 endpoint: to connect, and for each answer (a request that sends data gets one more second per 64 KiB)')
            [CompletionResult]::new('--encoding', '--encoding', [CompletionResultType]::ParameterName, 'How object bytes decode (latin1 is what the original app did)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'How bytes are read: `auto` detects gzip, zstd, bzip2, tar, XML, HTML, PDF (magic bytes, then Content-Type, then extension) and counts their text; `text` counts every byte as text')
            [CompletionResult]::new('--max-expansion', '--max-expansion', [CompletionResultType]::ParameterName, 'Decompressed bytes may be at most N times the compressed bytes read (plus 1 MiB); past that the input fails as a decompression bomb')
            [CompletionResult]::new('--pdf-max-mib', '--pdf-max-mib', [CompletionResultType]::ParameterName, 'A PDF larger than this many MiB fails (a PDF is read whole into memory; its extractor may use 8 times as much plus 512 MiB)')
            [CompletionResult]::new('--pdf-timeout', '--pdf-timeout', [CompletionResultType]::ParameterName, 'A PDF whose text takes longer than this many seconds to extract fails')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Only count objects whose key starts with this')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Seconds between bucket listings (0.1 to 86400). A new key that sorts after the keys already seen is found at the next listing; one that sorts before them (random keys) waits for the next full pass (--reconcile-interval)')
            [CompletionResult]::new('--serde', '--serde', [CompletionResultType]::ParameterName, 'Changelog wire format')
            [CompletionResult]::new('--worker-id', '--worker-id', [CompletionResultType]::ParameterName, 'This worker''s id: names its transactional id, so a restarted worker with the same id fences its zombie. Given explicitly, it also makes the worker a static group member: restarted with the same id it takes its partitions back at once, without a rebalance; stopped for good, its partitions move to other workers after the session timeout (10 s). The default id is hostname-pid, with dynamic membership')
            [CompletionResult]::new('--tally', '--tally', [CompletionResultType]::ParameterName, 'Print the top N words after each committed batch ("$$ TALLY $$")')
            [CompletionResult]::new('--partitions', '--partitions', [CompletionResultType]::ParameterName, 'Partitions of topics the worker creates (an existing changelog''s count wins)')
            [CompletionResult]::new('--replication', '--replication', [CompletionResultType]::ParameterName, 'Replication factor of topics the worker creates')
            [CompletionResult]::new('--status-interval', '--status-interval', [CompletionResultType]::ParameterName, 'Seconds between status lines (1 to 86400)')
            [CompletionResult]::new('--purge-interval', '--purge-interval', [CompletionResultType]::ParameterName, 'Seconds between purges of consumed records of the repartition topic')
            [CompletionResult]::new('--max-table-memory', '--max-table-memory', [CompletionResultType]::ParameterName, 'Warn (in the status line) when the worker''s local state (tables, done sets, known objects) is estimated above this many bytes')
            [CompletionResult]::new('--range-size', '--range-size', [CompletionResultType]::ParameterName, 'Plain-text objects larger than this are read as byte ranges of this size, several ranged GETs at a time (e.g. 64MiB, 512KiB; 0: never split). Compressed files, archives, PDF and markup are read whole')
            [CompletionResult]::new('--range-concurrency', '--range-concurrency', [CompletionResultType]::ParameterName, 'Ranges of big objects this worker reads and counts at the same time (1 to 64); the ranges of one object are shared by the whole group')
            [CompletionResult]::new('--reconcile-interval', '--reconcile-interval', [CompletionResultType]::ParameterName, 'Seconds from the end of one full listing of the bucket to the start of the next (reconciliation passes: they find keys that sort before the keys already seen, e.g. random names, and retry failed objects). A pass lists one page (1,000 keys) per loop iteration and resumes where it stood after a restart or a hand-over. Its LIST cost per hour is about objects / 1000 × 3600 / (this + the pass''s duration): 6,000 calls an hour on a bucket of 1 M objects at the default')
            [CompletionResult]::new('--events', '--events', [CompletionResultType]::ParameterName, 'Event-driven discovery, next to the listing: S3 Event Notifications from an SQS queue (sqs:QUEUE_URL; endpoint AWS_ENDPOINT_URL_SQS, else the queue URL''s) or a Kafka topic of the same cluster that an S3 server publishes them to (kafka:TOPIC; offsets of the group <app-id>-events). New objects are found within a loop iteration, whatever their keys; the listing stays the safety net for lost events. An event is acknowledged once its objects are in the ledger')
            [CompletionResult]::new('--list-page-size', '--list-page-size', [CompletionResultType]::ParameterName, 'Keys per ListObjectsV2 page (tests: many pages on a small bucket)')
            [CompletionResult]::new('--on-change', '--on-change', [CompletionResultType]::ParameterName, 'What an overwritten or deleted object does to the totals: `recount` replaces its contribution with the new version''s (a delete takes it out; a word at 0 leaves the table, a tombstone in the changelog); `ignore` counts each key once, ever (the original''s behaviour)')
            [CompletionResult]::new('--web-port', '--web-port', [CompletionResultType]::ParameterName, 'Port of the web server (/metrics, /health, /ready, /table/word_counts/WORD, /top, /objects, the dashboard at /); 0 picks a free port (announced in the log)')
            [CompletionResult]::new('--web-bind', '--web-bind', [CompletionResultType]::ParameterName, 'Address the web server listens on (loopback by default: it has no authentication; bind 0.0.0.0 only behind a firewall or a proxy)')
            [CompletionResult]::new('--web-advertise', '--web-advertise', [CompletionResultType]::ParameterName, 'The URL other workers reach this one at (default: http://BIND:PORT, or the host name when bound to all interfaces)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--loglevel', '--loglevel', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)')
            [CompletionResult]::new('--lowercase', '--lowercase', [CompletionResultType]::ParameterName, 'Fold case with Python''s `str.lower()` (default: case preserved)')
            [CompletionResult]::new('--retry-failed', '--retry-failed', [CompletionResultType]::ParameterName, 'Retry every object the ledger says failed (e.g. after fixing a permission) at the first listing; otherwise a failed object is retried 10 minutes after it failed, or once replaced. Takes effect on the worker that lists the bucket')
            [CompletionResult]::new('--no-web', '--no-web', [CompletionResultType]::ParameterName, 'No web server (no metrics, no queries)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wordstream;completions' {
            [CompletionResult]::new('--write-dir', '--write-dir', [CompletionResultType]::ParameterName, 'Write the scripts for every shell into this directory instead')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--loglevel', '--loglevel', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wordstream;top' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Base URL of any worker''s web server')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'How many words (1 to 1000)')
            [CompletionResult]::new('--top', '--top', [CompletionResultType]::ParameterName, 'How many words (1 to 1000)')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Seconds between refreshes')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--loglevel', '--loglevel', [CompletionResultType]::ParameterName, 'Log level: error, warn, info, debug, trace (like Faust''s `-l info`). RUST_LOG, when set, takes precedence')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log lines as text for people, or one JSON object per line (with the worker''s typed events: `"event": "ready"`, …)')
            [CompletionResult]::new('--once', '--once', [CompletionResultType]::ParameterName, 'Print one frame and exit')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wordstream;help' {
            [CompletionResult]::new('count-local', 'count-local', [CompletionResultType]::ParameterValue, 'Count words of local files or stdin with the pipeline''s exact semantics')
            [CompletionResult]::new('upload', 'upload', [CompletionResultType]::ParameterValue, 'Upload local files to the bucket (multipart for big ones)')
            [CompletionResult]::new('consume', 'consume', [CompletionResultType]::ParameterValue, 'Print the word counts of the changelog topic (or any topic)')
            [CompletionResult]::new('worker', 'worker', [CompletionResultType]::ParameterValue, 'Run the pipeline: poll S3, count new objects, publish totals (exactly once)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('top', 'top', [CompletionResultType]::ParameterValue, 'Live top words, rates, backlog and workers from a worker''s web server')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wordstream;help;count-local' {
            break
        }
        'wordstream;help;upload' {
            break
        }
        'wordstream;help;consume' {
            break
        }
        'wordstream;help;worker' {
            break
        }
        'wordstream;help;completions' {
            break
        }
        'wordstream;help;top' {
            break
        }
        'wordstream;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
