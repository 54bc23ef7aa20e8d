//! Extracts the ordinary tokens of OpenAI's encodings from tiktoken-rs, in rank order, into
//! `$OUT_DIR/<name>.bytes` (every token's bytes, concatenated) and `$OUT_DIR/<name>.ends` (each
//! token's end offset, little-endian u32). `proxy::tokens` counts with them straight from the
//! binary, so tiktoken-rs's `CoreBPE` (about 28 MB of heap for o200k) is never built at run time.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=build.rs");
    // `sqlx::migrate!` reads the migrations at compile time but cannot tell cargo so on stable
    // Rust: a new migration file must rebuild this crate.
    println!("cargo::rerun-if-changed=../migrations");
    let out = std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?;
    // (name, encoder, number of ordinary tokens: ranks 0..n; special tokens come after a gap)
    let encodings = [
        ("cl100k", tiktoken_rs::cl100k_base()?, 100_256u32),
        ("o200k", tiktoken_rs::o200k_base()?, 199_998u32),
    ];
    for (name, bpe, n) in encodings {
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(4 * n as usize);
        for token in bpe._decode_native_and_split((0..n).collect()) {
            bytes.extend_from_slice(&token);
            ends.extend_from_slice(&u32::try_from(bytes.len())?.to_le_bytes());
        }
        std::fs::write(Path::new(&out).join(format!("{name}.bytes")), bytes)?;
        std::fs::write(Path::new(&out).join(format!("{name}.ends")), ends)?;
    }
    Ok(())
}
