//! Writes the inputs of `scripts/bench-formats`: about MB megabytes of
//! corpus text as plain text and in every format the format layer reads.
//!
//!     cargo run --example gen_formats -- OUT_DIR MB
//!
//! OUT_DIR gets `plain.txt`, `text.txt.gz`, `text.txt.zst`, `text.txt.bz2`,
//! `papers.tar`, `papers.tar.gz`, `articles/*.xml` and `pages/*.html` (one
//! per corpus text, repeated to the size).

use std::path::PathBuf;
use testkit::corpus;
use testkit::formats as fmt;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() == 3, "usage: gen_formats OUT_DIR MB");
    let out = PathBuf::from(&args[1]);
    let want: usize = args[2].parse::<usize>()? << 20;
    let texts: Vec<Vec<u8>> = corpus::objects(&["books", "papers"])
        .into_iter()
        .map(|(_, p)| std::fs::read(p))
        .collect::<Result<_, _>>()?;
    // Texts repeated to the size.
    let mut picked: Vec<&Vec<u8>> = Vec::new();
    let mut size = 0;
    while size < want {
        for t in &texts {
            picked.push(t);
            size += t.len();
            if size >= want {
                break;
            }
        }
    }
    std::fs::create_dir_all(out.join("articles"))?;
    std::fs::create_dir_all(out.join("pages"))?;
    let plain: Vec<u8> = picked
        .iter()
        .flat_map(|t| t.iter().copied().chain([b'\n']))
        .collect();
    std::fs::write(out.join("plain.txt"), &plain)?;
    std::fs::write(out.join("text.txt.gz"), fmt::gzip(&plain))?;
    std::fs::write(out.join("text.txt.zst"), fmt::zstd(&plain))?;
    std::fs::write(out.join("text.txt.bz2"), fmt::bzip2(&plain))?;
    let names: Vec<String> = (0..picked.len()).map(|i| format!("p{i:05}.txt")).collect();
    let members: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&picked)
        .map(|(n, t)| (n.as_str(), t.as_slice()))
        .collect();
    let tar = fmt::tar(&members);
    std::fs::write(out.join("papers.tar"), &tar)?;
    std::fs::write(out.join("papers.tar.gz"), fmt::gzip(&tar))?;
    for (i, t) in picked.iter().enumerate() {
        let text = String::from_utf8_lossy(t);
        std::fs::write(out.join(format!("articles/a{i:05}.xml")), fmt::jats(&text))?;
        std::fs::write(out.join(format!("pages/p{i:05}.html")), fmt::html(&text))?;
    }
    Ok(())
}
