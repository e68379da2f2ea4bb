//! Seeds a topic for `scripts/bench-consume`: N changelog records
//! (`--serde faust`: JSON word key, JSON count value), keyed over a
//! vocabulary of 50,000 words, partitioned with murmur2 as the worker does.
//!
//! `cargo run --release --example bench_produce -- BROKERS TOPIC N PARTITIONS`
//! creates TOPIC (compacted, like the changelog) if needed, then writes.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: bench_produce BROKERS TOPIC N PARTITIONS");
        std::process::exit(2);
    }
    let (brokers, topic) = (&args[1], &args[2]);
    let n: u64 = args[3].parse().expect("N");
    let partitions: i32 = args[4].parse().expect("PARTITIONS");
    let secs = testkit::kafka::fill_changelog(brokers, topic, partitions, n, |i| {
        (format!("word{}", i % 50_000), (i / 50_000 + 1) as i64)
    });
    eprintln!(
        "produced {n} records to {topic} ({partitions} partitions) in {secs:.2} s ({:.0} records/s)",
        n as f64 / secs
    );
}
