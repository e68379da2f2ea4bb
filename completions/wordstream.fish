# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_wordstream_global_optspecs
    string join \n l/loglevel= log-format= h/help V/version
end

function __fish_wordstream_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_wordstream_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_wordstream_using_subcommand
    set -l cmd (__fish_wordstream_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c wordstream -n "__fish_wordstream_needs_command" -s l -l loglevel -d 'Log level: error, warn, info, debug, trace (like Faust\'s `-l info`). RUST_LOG, when set, takes precedence' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c wordstream -n "__fish_wordstream_needs_command" -l log-format -d 'Log lines as text for people, or one JSON object per line (with the worker\'s typed events: `"event": "ready"`, …)' -r -f -a "human\t'Lines for people'
json\t'One JSON object per line, typed events included'"
complete -c wordstream -n "__fish_wordstream_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wordstream -n "__fish_wordstream_needs_command" -s V -l version -d 'Print version'
complete -c wordstream -n "__fish_wordstream_needs_command" -f -a "count-local" -d 'Count words of local files or stdin with the pipeline\'s exact semantics'
complete -c wordstream -n "__fish_wordstream_needs_command" -f -a "upload" -d 'Upload local files to the bucket (multipart for big ones)'
complete -c wordstream -n "__fish_wordstream_needs_command" -f -a "consume" -d 'Print the word counts of the changelog topic (or any topic)'
complete -c wordstream -n "__fish_wordstream_needs_command" -f -a "worker" -d 'Run the pipeline: poll S3, count new objects, publish totals (exactly once)'
complete -c wordstream -n "__fish_wordstream_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c wordstream -n "__fish_wordstream_needs_command" -f -a "top" -d 'Live top words, rates, backlog and workers from a worker\'s web server'
complete -c wordstream -n "__fish_wordstream_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l encoding -d 'How object bytes decode (latin1 is what the original app did)' -r -f -a "utf8\t'UTF-8; invalid bytes are separators and are counted'
latin1\t'ISO-8859-1 (every byte is one character), what the original app used'"
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l format -d 'How bytes are read: `auto` detects gzip, zstd, bzip2, tar, XML, HTML, PDF (magic bytes, then Content-Type, then extension) and counts their text; `text` counts every byte as text' -r -f -a "auto\t'Detect compression, archives, markup (magic bytes, then Content-Type, then extension)'
text\t'Every byte is text (no detection)'"
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l max-expansion -d 'Decompressed bytes may be at most N times the compressed bytes read (plus 1 MiB); past that the input fails as a decompression bomb' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l pdf-max-mib -d 'A PDF larger than this many MiB fails (a PDF is read whole into memory; its extractor may use 8 times as much plus 512 MiB)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l pdf-timeout -d 'A PDF whose text takes longer than this many seconds to extract fails' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -s o -l output -d 'Output format [default: table on a terminal, tsv otherwise]' -r -f -a "table\t'A table for people (default on a terminal)'
tsv\t'`word<TAB>count` lines (default when stdout is not a terminal)'
json\t'A JSON array of `{"word": ..., "count": ...}`'"
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l top -d 'Print only the N most frequent words (with --verify: at most N differences; default all, 20 in a table)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l threads -d 'Counting threads, 1 to 256 [default: all cores; never more than the input has 1 MiB batches]' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l serde -d 'Wire format of the changelog read by --verify' -r -f -a "faust\t'JSON key and value, byte-compatible with a Faust table (`"the"` → `120`)'
kstreams\t'UTF-8 key, 8-byte big-endian signed value (Kafka Streams `Serdes.Long()`)'
text\t'UTF-8 key, decimal ASCII value'"
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l topic -d 'Topic read by --verify [default: the app\'s changelog]' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l brokers -d 'Bootstrap brokers, comma-separated' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -s X -d 'Any librdkafka property, like kcat (repeatable): -X key=value' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l app-id -d 'Application id: names the topics and the consumer group (as in Faust)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l table -d 'Table name: the changelog is `<app-id>-<table>-changelog`' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l connect-timeout -d 'Seconds to wait for the Kafka brokers before giving up (1 to 3600)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l kafka-security-protocol -d 'Security protocol of the Kafka connections [default: PLAINTEXT; SASL_SSL with --sasl-mechanism or --kafka-auth msk-iam]' -r -f -a "PLAINTEXT\t'No TLS, no SASL'
SSL\t'TLS'
SASL_PLAINTEXT\t'SASL without TLS'
SASL_SSL\t'SASL over TLS'"
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l sasl-mechanism -d 'SASL mechanism (with SASL_PLAINTEXT or SASL_SSL). PLAIN and SCRAM take --sasl-username and the password from KAFKA_SASL_PASSWORD (environment or .env only)' -r -f -a "PLAIN\t'User name and password in clear (use with SASL_SSL)'
SCRAM-SHA-256\t'SCRAM with SHA-256'
SCRAM-SHA-512\t'SCRAM with SHA-512'
OAUTHBEARER\t'OAuth bearer tokens (with --kafka-auth msk-iam, or -X sasl.oauthbearer.* for OIDC)'"
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l sasl-username -d 'SASL user name (PLAIN, SCRAM)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l sasl-password -d 'SASL password: from KAFKA_SASL_PASSWORD (a flag would show in `ps`)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l ca-location -d 'CA certificate(s), PEM, to verify the brokers\' TLS certificates [default: the system\'s trust store]' -r -F
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l kafka-auth -d 'Authentication: `msk-iam` signs OAUTHBEARER tokens with the AWS credential chain (AWS MSK IAM; implies SASL_SSL + OAUTHBEARER)' -r -f -a "none\t'Whatever --kafka-security-protocol and --sasl-mechanism say'
msk-iam\t'AWS MSK IAM: SASL_SSL + OAUTHBEARER tokens signed with the AWS chain'"
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l msk-region -d 'AWS region of the MSK cluster, for --kafka-auth msk-iam [default: from the broker host names, else the AWS chain\'s]' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -s l -l loglevel -d 'Log level: error, warn, info, debug, trace (like Faust\'s `-l info`). RUST_LOG, when set, takes precedence' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l log-format -d 'Log lines as text for people, or one JSON object per line (with the worker\'s typed events: `"event": "ready"`, …)' -r -f -a "human\t'Lines for people'
json\t'One JSON object per line, typed events included'"
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l lowercase -d 'Fold case with Python\'s `str.lower()` (default: case preserved)'
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -s v -l verbose -d 'Name what a directory walk skips (FIFOs, sockets, devices) and the format found in each input'
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l keep-going -d 'Warn about unreadable paths and count the rest (still exits 1)'
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -s q -l quiet -d 'No summary line on stderr'
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -l verify -d 'Compare the counts with the changelog topic instead of printing them; exit 1 on any difference. The differences are printed as --output says (word, local, changelog)'
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wordstream -n "__fish_wordstream_using_subcommand count-local" -s V -l version -d 'Print version'
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -l bucket -d 'The bucket' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -l endpoint-url -d 'S3 endpoint for S3-compatible servers (path-style addressing)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -l region -d 'AWS region [default: the AWS chain\'s, else us-east-1]' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -l s3-timeout -d 'Seconds to wait for the S3 endpoint: to connect, and for each answer (a request that sends data gets one more second per 64 KiB)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -l prefix -d 'Key prefix ("folder"); a `/` is added when missing. Keys are the prefix plus the file name, or the path relative to a directory argument. It may not start with `/` or hold `//`, `.` or `..` segments' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -l multipart-threshold -d 'Files larger than this go up in parts (bytes, or with KiB/MiB/GiB)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -l part-size -d 'Part size of multipart uploads (at least 5 MiB)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -l concurrency -d 'Requests in flight (whole files and parts together)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -l content-type -d 'Content-Type of the objects' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -s l -l loglevel -d 'Log level: error, warn, info, debug, trace (like Faust\'s `-l info`). RUST_LOG, when set, takes precedence' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -l log-format -d 'Log lines as text for people, or one JSON object per line (with the worker\'s typed events: `"event": "ready"`, …)' -r -f -a "human\t'Lines for people'
json\t'One JSON object per line, typed events included'"
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -s r -l recursive -d 'Upload the files of directories, recursively'
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -l dry-run -d 'List what would be uploaded; send nothing to S3'
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -l create-bucket -d 'Create the bucket if it does not exist'
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -s q -l quiet -d 'No progress bars and no summary table'
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wordstream -n "__fish_wordstream_using_subcommand upload" -s V -l version -d 'Print version'
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l brokers -d 'Bootstrap brokers, comma-separated' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -s X -d 'Any librdkafka property, like kcat (repeatable): -X key=value' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l app-id -d 'Application id: names the topics and the consumer group (as in Faust)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l table -d 'Table name: the changelog is `<app-id>-<table>-changelog`' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l connect-timeout -d 'Seconds to wait for the Kafka brokers before giving up (1 to 3600)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l kafka-security-protocol -d 'Security protocol of the Kafka connections [default: PLAINTEXT; SASL_SSL with --sasl-mechanism or --kafka-auth msk-iam]' -r -f -a "PLAINTEXT\t'No TLS, no SASL'
SSL\t'TLS'
SASL_PLAINTEXT\t'SASL without TLS'
SASL_SSL\t'SASL over TLS'"
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l sasl-mechanism -d 'SASL mechanism (with SASL_PLAINTEXT or SASL_SSL). PLAIN and SCRAM take --sasl-username and the password from KAFKA_SASL_PASSWORD (environment or .env only)' -r -f -a "PLAIN\t'User name and password in clear (use with SASL_SSL)'
SCRAM-SHA-256\t'SCRAM with SHA-256'
SCRAM-SHA-512\t'SCRAM with SHA-512'
OAUTHBEARER\t'OAuth bearer tokens (with --kafka-auth msk-iam, or -X sasl.oauthbearer.* for OIDC)'"
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l sasl-username -d 'SASL user name (PLAIN, SCRAM)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l sasl-password -d 'SASL password: from KAFKA_SASL_PASSWORD (a flag would show in `ps`)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l ca-location -d 'CA certificate(s), PEM, to verify the brokers\' TLS certificates [default: the system\'s trust store]' -r -F
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l kafka-auth -d 'Authentication: `msk-iam` signs OAUTHBEARER tokens with the AWS credential chain (AWS MSK IAM; implies SASL_SSL + OAUTHBEARER)' -r -f -a "none\t'Whatever --kafka-security-protocol and --sasl-mechanism say'
msk-iam\t'AWS MSK IAM: SASL_SSL + OAUTHBEARER tokens signed with the AWS chain'"
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l msk-region -d 'AWS region of the MSK cluster, for --kafka-auth msk-iam [default: from the broker host names, else the AWS chain\'s]' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -s t -l topic -d 'Topic to read [default: the changelog, <app-id>-<table>-changelog]' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l serde -d 'Wire format of keys and values' -r -f -a "faust\t'JSON key and value, byte-compatible with a Faust table (`"the"` → `120`)'
kstreams\t'UTF-8 key, 8-byte big-endian signed value (Kafka Streams `Serdes.Long()`)'
text\t'UTF-8 key, decimal ASCII value'"
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l max-messages -d 'Exit after printing this many records (undecodable ones, skipped with a warning, do not count)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -s o -l output -d 'Output format' -r -f -a "lines\t'`word<TAB>count` per record'
json\t'One JSON object per record: topic, partition, offset, timestamp, key, value'
table\t'The latest count per word as a table, sorted by count'"
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l top -d 'With --output table: only the N most frequent words [default: all; 25 when redrawing on a terminal]' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -s f -l format-string -d 'Print each record with this format, like kcat: %k key, %s value, %t topic, %p partition, %o offset, %T timestamp (ms), %% a percent sign; \\n newline, \\t tab, \\\\ backslash' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -s g -l group -d 'Consume as this consumer group and commit its offsets (default: no group offsets are read or committed)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -s l -l loglevel -d 'Log level: error, warn, info, debug, trace (like Faust\'s `-l info`). RUST_LOG, when set, takes precedence' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l log-format -d 'Log lines as text for people, or one JSON object per line (with the worker\'s typed events: `"event": "ready"`, …)' -r -f -a "human\t'Lines for people'
json\t'One JSON object per line, typed events included'"
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -l from-beginning -d 'Start at the oldest record (default: only records written from now on)'
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -s e -l exit-at-end -d 'Exit once every partition\'s end (as of the start) is reached'
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wordstream -n "__fish_wordstream_using_subcommand consume" -s V -l version -d 'Print version'
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l brokers -d 'Bootstrap brokers, comma-separated' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -s X -d 'Any librdkafka property, like kcat (repeatable): -X key=value' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l app-id -d 'Application id: names the topics and the consumer group (as in Faust)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l table -d 'Table name: the changelog is `<app-id>-<table>-changelog`' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l connect-timeout -d 'Seconds to wait for the Kafka brokers before giving up (1 to 3600)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l kafka-security-protocol -d 'Security protocol of the Kafka connections [default: PLAINTEXT; SASL_SSL with --sasl-mechanism or --kafka-auth msk-iam]' -r -f -a "PLAINTEXT\t'No TLS, no SASL'
SSL\t'TLS'
SASL_PLAINTEXT\t'SASL without TLS'
SASL_SSL\t'SASL over TLS'"
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l sasl-mechanism -d 'SASL mechanism (with SASL_PLAINTEXT or SASL_SSL). PLAIN and SCRAM take --sasl-username and the password from KAFKA_SASL_PASSWORD (environment or .env only)' -r -f -a "PLAIN\t'User name and password in clear (use with SASL_SSL)'
SCRAM-SHA-256\t'SCRAM with SHA-256'
SCRAM-SHA-512\t'SCRAM with SHA-512'
OAUTHBEARER\t'OAuth bearer tokens (with --kafka-auth msk-iam, or -X sasl.oauthbearer.* for OIDC)'"
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l sasl-username -d 'SASL user name (PLAIN, SCRAM)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l sasl-password -d 'SASL password: from KAFKA_SASL_PASSWORD (a flag would show in `ps`)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l ca-location -d 'CA certificate(s), PEM, to verify the brokers\' TLS certificates [default: the system\'s trust store]' -r -F
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l kafka-auth -d 'Authentication: `msk-iam` signs OAUTHBEARER tokens with the AWS credential chain (AWS MSK IAM; implies SASL_SSL + OAUTHBEARER)' -r -f -a "none\t'Whatever --kafka-security-protocol and --sasl-mechanism say'
msk-iam\t'AWS MSK IAM: SASL_SSL + OAUTHBEARER tokens signed with the AWS chain'"
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l msk-region -d 'AWS region of the MSK cluster, for --kafka-auth msk-iam [default: from the broker host names, else the AWS chain\'s]' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l bucket -d 'The bucket' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l endpoint-url -d 'S3 endpoint for S3-compatible servers (path-style addressing)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l region -d 'AWS region [default: the AWS chain\'s, else us-east-1]' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l s3-timeout -d 'Seconds to wait for the S3 endpoint: to connect, and for each answer (a request that sends data gets one more second per 64 KiB)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l encoding -d 'How object bytes decode (latin1 is what the original app did)' -r -f -a "utf8\t'UTF-8; invalid bytes are separators and are counted'
latin1\t'ISO-8859-1 (every byte is one character), what the original app used'"
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l format -d 'How bytes are read: `auto` detects gzip, zstd, bzip2, tar, XML, HTML, PDF (magic bytes, then Content-Type, then extension) and counts their text; `text` counts every byte as text' -r -f -a "auto\t'Detect compression, archives, markup (magic bytes, then Content-Type, then extension)'
text\t'Every byte is text (no detection)'"
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l max-expansion -d 'Decompressed bytes may be at most N times the compressed bytes read (plus 1 MiB); past that the input fails as a decompression bomb' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l pdf-max-mib -d 'A PDF larger than this many MiB fails (a PDF is read whole into memory; its extractor may use 8 times as much plus 512 MiB)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l pdf-timeout -d 'A PDF whose text takes longer than this many seconds to extract fails' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l prefix -d 'Only count objects whose key starts with this' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l interval -d 'Seconds between bucket listings (0.1 to 86400). A new key that sorts after the keys already seen is found at the next listing; one that sorts before them (random keys) waits for the next full pass (--reconcile-interval)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l serde -d 'Changelog wire format' -r -f -a "faust\t'JSON key and value, byte-compatible with a Faust table (`"the"` → `120`)'
kstreams\t'UTF-8 key, 8-byte big-endian signed value (Kafka Streams `Serdes.Long()`)'
text\t'UTF-8 key, decimal ASCII value'"
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l worker-id -d 'This worker\'s id: names its transactional id, so a restarted worker with the same id fences its zombie. Given explicitly, it also makes the worker a static group member: restarted with the same id it takes its partitions back at once, without a rebalance; stopped for good, its partitions move to other workers after the session timeout (10 s). The default id is hostname-pid, with dynamic membership' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l tally -d 'Print the top N words after each committed batch ("$$ TALLY $$")' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l partitions -d 'Partitions of topics the worker creates (an existing changelog\'s count wins)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l replication -d 'Replication factor of topics the worker creates' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l status-interval -d 'Seconds between status lines (1 to 86400)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l purge-interval -d 'Seconds between purges of consumed records of the repartition topic' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l max-table-memory -d 'Warn (in the status line) when the worker\'s local state (tables, done sets, known objects) is estimated above this many bytes' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l range-size -d 'Plain-text objects larger than this are read as byte ranges of this size, several ranged GETs at a time (e.g. 64MiB, 512KiB; 0: never split). Compressed files, archives, PDF and markup are read whole' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l range-concurrency -d 'Ranges of big objects this worker reads and counts at the same time (1 to 64); the ranges of one object are shared by the whole group' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l reconcile-interval -d 'Seconds from the end of one full listing of the bucket to the start of the next (reconciliation passes: they find keys that sort before the keys already seen, e.g. random names, and retry failed objects). A pass lists one page (1,000 keys) per loop iteration and resumes where it stood after a restart or a hand-over. Its LIST cost per hour is about objects / 1000 × 3600 / (this + the pass\'s duration): 6,000 calls an hour on a bucket of 1 M objects at the default' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l events -d 'Event-driven discovery, next to the listing: S3 Event Notifications from an SQS queue (sqs:QUEUE_URL; endpoint AWS_ENDPOINT_URL_SQS, else the queue URL\'s) or a Kafka topic of the same cluster that an S3 server publishes them to (kafka:TOPIC; offsets of the group <app-id>-events). New objects are found within a loop iteration, whatever their keys; the listing stays the safety net for lost events. An event is acknowledged once its objects are in the ledger' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l list-page-size -d 'Keys per ListObjectsV2 page (tests: many pages on a small bucket)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l on-change -d 'What an overwritten or deleted object does to the totals: `recount` replaces its contribution with the new version\'s (a delete takes it out; a word at 0 leaves the table, a tombstone in the changelog); `ignore` counts each key once, ever (the original\'s behaviour)' -r -f -a "recount\t'Overwrites recount, deletes retract'
ignore\t'Each key is counted once (its first version), ever'"
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l web-port -d 'Port of the web server (/metrics, /health, /ready, /table/word_counts/WORD, /top, /objects, the dashboard at /); 0 picks a free port (announced in the log)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l web-bind -d 'Address the web server listens on (loopback by default: it has no authentication; bind 0.0.0.0 only behind a firewall or a proxy)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l web-advertise -d 'The URL other workers reach this one at (default: http://BIND:PORT, or the host name when bound to all interfaces)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -s l -l loglevel -d 'Log level: error, warn, info, debug, trace (like Faust\'s `-l info`). RUST_LOG, when set, takes precedence' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l log-format -d 'Log lines as text for people, or one JSON object per line (with the worker\'s typed events: `"event": "ready"`, …)' -r -f -a "human\t'Lines for people'
json\t'One JSON object per line, typed events included'"
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l lowercase -d 'Fold case with Python\'s `str.lower()` (default: case preserved)'
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l retry-failed -d 'Retry every object the ledger says failed (e.g. after fixing a permission) at the first listing; otherwise a failed object is retried 10 minutes after it failed, or once replaced. Takes effect on the worker that lists the bucket'
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -l no-web -d 'No web server (no metrics, no queries)'
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wordstream -n "__fish_wordstream_using_subcommand worker" -s V -l version -d 'Print version'
complete -c wordstream -n "__fish_wordstream_using_subcommand completions" -l write-dir -d 'Write the scripts for every shell into this directory instead' -r -F
complete -c wordstream -n "__fish_wordstream_using_subcommand completions" -s l -l loglevel -d 'Log level: error, warn, info, debug, trace (like Faust\'s `-l info`). RUST_LOG, when set, takes precedence' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c wordstream -n "__fish_wordstream_using_subcommand completions" -l log-format -d 'Log lines as text for people, or one JSON object per line (with the worker\'s typed events: `"event": "ready"`, …)' -r -f -a "human\t'Lines for people'
json\t'One JSON object per line, typed events included'"
complete -c wordstream -n "__fish_wordstream_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wordstream -n "__fish_wordstream_using_subcommand completions" -s V -l version -d 'Print version'
complete -c wordstream -n "__fish_wordstream_using_subcommand top" -l url -d 'Base URL of any worker\'s web server' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand top" -s n -l top -d 'How many words (1 to 1000)' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand top" -l interval -d 'Seconds between refreshes' -r
complete -c wordstream -n "__fish_wordstream_using_subcommand top" -s l -l loglevel -d 'Log level: error, warn, info, debug, trace (like Faust\'s `-l info`). RUST_LOG, when set, takes precedence' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c wordstream -n "__fish_wordstream_using_subcommand top" -l log-format -d 'Log lines as text for people, or one JSON object per line (with the worker\'s typed events: `"event": "ready"`, …)' -r -f -a "human\t'Lines for people'
json\t'One JSON object per line, typed events included'"
complete -c wordstream -n "__fish_wordstream_using_subcommand top" -l once -d 'Print one frame and exit'
complete -c wordstream -n "__fish_wordstream_using_subcommand top" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wordstream -n "__fish_wordstream_using_subcommand top" -s V -l version -d 'Print version'
complete -c wordstream -n "__fish_wordstream_using_subcommand help; and not __fish_seen_subcommand_from count-local upload consume worker completions top help" -f -a "count-local" -d 'Count words of local files or stdin with the pipeline\'s exact semantics'
complete -c wordstream -n "__fish_wordstream_using_subcommand help; and not __fish_seen_subcommand_from count-local upload consume worker completions top help" -f -a "upload" -d 'Upload local files to the bucket (multipart for big ones)'
complete -c wordstream -n "__fish_wordstream_using_subcommand help; and not __fish_seen_subcommand_from count-local upload consume worker completions top help" -f -a "consume" -d 'Print the word counts of the changelog topic (or any topic)'
complete -c wordstream -n "__fish_wordstream_using_subcommand help; and not __fish_seen_subcommand_from count-local upload consume worker completions top help" -f -a "worker" -d 'Run the pipeline: poll S3, count new objects, publish totals (exactly once)'
complete -c wordstream -n "__fish_wordstream_using_subcommand help; and not __fish_seen_subcommand_from count-local upload consume worker completions top help" -f -a "completions" -d 'Print a shell completion script'
complete -c wordstream -n "__fish_wordstream_using_subcommand help; and not __fish_seen_subcommand_from count-local upload consume worker completions top help" -f -a "top" -d 'Live top words, rates, backlog and workers from a worker\'s web server'
complete -c wordstream -n "__fish_wordstream_using_subcommand help; and not __fish_seen_subcommand_from count-local upload consume worker completions top help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
