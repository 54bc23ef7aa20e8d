//! Two things the binary carries from its build:
//! - the build id `/api/about` reports: the commit the binary was built from, when git knows it;
//! - in a release build by cargo-leptos, the compiled console (`site.rs` in `OUT_DIR`, read by
//!   `server::site`): cargo-leptos builds the wasm, hashes and precompresses the site before it
//!   builds the server and names the site in `LEPTOS_SITE_ROOT`, so `tollgate` runs from any
//!   directory with only its config. Any other build embeds nothing (tests, `cargo check`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    build_id(&root);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let site = embed_site(&root, &out);
    std::fs::write(out.join("site.rs"), site).expect("write site.rs");
}

fn build_id(root: &Path) {
    let git = root.join(".git");
    println!("cargo:rerun-if-changed={}", git.join("HEAD").display());
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD"))
        && let Some(r) = head.trim().strip_prefix("ref: ")
    {
        println!("cargo:rerun-if-changed={}", git.join(r).display());
    }
    println!("cargo:rerun-if-env-changed=TOLLGATE_BUILD");
    let id = std::env::var("TOLLGATE_BUILD").ok().or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
    });
    println!(
        "cargo:rustc-env=TOLLGATE_BUILD={}",
        id.unwrap_or_else(|| "unknown".into())
    );
}

/// The Rust expression of the embedded files: `&[(relative path, bytes)]`, empty unless this is
/// cargo-leptos's release build of the server. The `.gz` variants are written again at the
/// highest level (cargo-leptos writes a faster one); `hash.txt`, which cargo-leptos writes
/// beside the binary, goes in at the site's root, where the server looks for it.
fn embed_site(root: &Path, out: &Path) -> String {
    println!("cargo:rerun-if-env-changed=LEPTOS_SITE_ROOT");
    println!("cargo:rerun-if-env-changed=LEPTOS_HASH_FILE_NAME");
    let empty = "&[]".to_string();
    let Some(site) = std::env::var_os("LEPTOS_SITE_ROOT").map(|s| root.join(s)) else {
        return empty;
    };
    if std::env::var("PROFILE").as_deref() != Ok("release") || !site.join("pkg").is_dir() {
        return empty;
    }
    println!("cargo:rerun-if-changed={}", site.display());
    let mut files = Vec::new();
    walk(&site, &site, &mut files);
    files.sort();
    let gz_dir = out.join("site-gz");
    let _ = std::fs::remove_dir_all(&gz_dir);
    let mut list = String::from("&[\n");
    for rel in &files {
        let name = rel.to_string_lossy().replace('\\', "/");
        if name == "hash.txt" || (name.ends_with(".gz") && files.contains(&rel.with_extension("")))
        {
            continue;
        }
        let path = site.join(rel);
        writeln!(
            list,
            "    ({name:?}, include_bytes!({:?})),",
            path.display()
        )
        .expect("fmt");
        if files.contains(&PathBuf::from(format!("{name}.gz"))) {
            let gz = gz_dir.join(format!("{name}.gz"));
            std::fs::create_dir_all(gz.parent().expect("a file's folder")).expect("mkdir");
            let raw = std::fs::read(&path).expect("read a site file");
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(&raw).expect("gzip");
            std::fs::write(&gz, enc.finish().expect("gzip")).expect("write gz");
            writeln!(
                list,
                "    (\"{name}.gz\", include_bytes!({:?})),",
                gz.display()
            )
            .expect("fmt");
        }
    }
    // cargo-leptos writes the hash file in the profile's folder: OUT_DIR is
    // <target>/<profile>/build/server-<hash>/out.
    let hash_name = std::env::var("LEPTOS_HASH_FILE_NAME").unwrap_or_else(|_| "hash.txt".into());
    if let Some(hash) = out.ancestors().nth(3).map(|d| d.join(&hash_name))
        && hash.is_file()
    {
        println!("cargo:rerun-if-changed={}", hash.display());
        writeln!(
            list,
            "    (\"hash.txt\", include_bytes!({:?})),",
            hash.display()
        )
        .expect("fmt");
    }
    list.push(']');
    list
}

fn walk(base: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read the site") {
        let path = entry.expect("a site entry").path();
        if path.is_dir() {
            walk(base, &path, files);
        } else {
            files.push(
                path.strip_prefix(base)
                    .expect("under the site")
                    .to_path_buf(),
            );
        }
    }
}
