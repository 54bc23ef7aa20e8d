//! Where the console's compiled files (wasm, js, css, their `.br`/`.gz`, `hash.txt`) are served
//! from. `server.site_root`, when set, wins (development, or a site shipped beside the binary).
//! Otherwise a release binary serves the site it carries (`build.rs`): at start it writes the
//! files into a private folder of its own under the system's temporary folder (mode 0700, a
//! fresh name, never an existing path), removed again when the server stops; folders left by a
//! process that died are removed by the next start. Leptos reads the hash file and the wasm
//! split manifest from the site root, and the file server answers conditional and range
//! requests from it, so a folder serves the embedded site exactly as it serves a built one.
//! A build that carries nothing (tests, debug builds) falls back to `target/site`.

use std::io;
use std::path::{Component, Path, PathBuf};

/// The site this binary carries: `(path relative to the site root, contents)`.
static EMBEDDED: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/site.rs"));

/// Where a development build finds the site cargo-leptos wrote.
const DEV_ROOT: &str = "target/site";
const PREFIX: &str = "tollgate-site-";

/// The site's root folder, for as long as the server runs.
pub struct Site {
    root: PathBuf,
    _extracted: Option<Extracted>,
}

impl Site {
    /// The configured folder, else the embedded site, else `target/site`.
    pub fn open(configured: &Path) -> io::Result<Site> {
        if !configured.as_os_str().is_empty() {
            if !configured.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "server.site_root {}: not a directory (leave it empty to serve the console this binary carries)",
                        configured.display()
                    ),
                ));
            }
            return Ok(Site {
                root: configured.to_path_buf(),
                _extracted: None,
            });
        }
        if EMBEDDED.is_empty() {
            if !Path::new(DEV_ROOT).is_dir() {
                tracing::warn!(
                    "this build carries no console and {DEV_ROOT} does not exist: pages will load without their scripts and styles; build with `make build` or set server.site_root"
                );
            }
            return Ok(Site {
                root: PathBuf::from(DEV_ROOT),
                _extracted: None,
            });
        }
        let extracted = Extracted::write(&std::env::temp_dir(), EMBEDDED)?;
        tracing::debug!(root = %extracted.0.display(), files = EMBEDDED.len(), "serving the embedded console");
        Ok(Site {
            root: extracted.0.clone(),
            _extracted: Some(extracted),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// A private folder holding the embedded files; removed on drop.
struct Extracted(PathBuf);

impl Extracted {
    fn write(parent: &Path, files: &[(&str, &[u8])]) -> io::Result<Extracted> {
        sweep(parent);
        let dir = private_dir(parent)?;
        let extracted = Extracted(dir);
        for (name, bytes) in files {
            let rel = Path::new(name);
            if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("embedded site file {name:?}: not a plain relative path"),
                ));
            }
            let path = extracted.0.join(rel);
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder)?;
            }
            std::fs::write(&path, bytes)?;
        }
        Ok(extracted)
    }
}

impl Drop for Extracted {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::debug!(error = %e, root = %self.0.display(), "could not remove the console's folder");
        }
    }
}

/// `tollgate-site-<pid>-<n>`, created by this call (an existing path is never reused).
fn private_dir(parent: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    for n in 0..100u32 {
        let dir = parent.join(format!("{PREFIX}{pid}-{}", nanos.wrapping_add(n)));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot write the console into {}: {e} (set TMPDIR to a writable folder, or server.site_root)",
                        parent.display()
                    ),
                ));
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "no free folder name for the console in {}",
            parent.display()
        ),
    ))
}

/// Removes the folders of processes that are gone (Linux: no `/proc/<pid>`).
fn sweep(parent: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tollgate-site-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch");
        dir
    }

    #[test]
    fn embedded_files_are_written_privately_and_removed() {
        let parent = scratch("write");
        let files: &[(&str, &[u8])] = &[
            ("pkg/tollgate.abc.wasm", b"\0asm"),
            ("pkg/tollgate.abc.wasm.br", b"br"),
            ("hash.txt", b"wasm: abc\n"),
        ];
        let extracted = Extracted::write(&parent, files).expect("written");
        let root = extracted.0.clone();
        assert!(root.starts_with(&parent));
        let mode = std::fs::metadata(&root).expect("root").permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "private folder");
        for (name, bytes) in files {
            assert_eq!(std::fs::read(root.join(name)).expect("file"), *bytes);
        }
        let second = Extracted::write(&parent, files).expect("a second process");
        assert_ne!(second.0, root, "a fresh folder each time");
        drop(extracted);
        assert!(!root.exists(), "removed when the server stops");
        drop(second);
        let _ = std::fs::remove_dir_all(&parent);
    }

    #[test]
    fn a_path_out_of_the_folder_is_refused() {
        let parent = scratch("escape");
        for bad in ["../x", "/etc/x", "pkg/../../x"] {
            let files: &[(&str, &[u8])] = &[(bad, b"x")];
            let err = Extracted::write(&parent, files).err().expect(bad);
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{bad}");
        }
        assert!(!parent.parent().expect("tmp").join("x").exists());
        let _ = std::fs::remove_dir_all(&parent);
    }

    #[test]
    fn folders_of_dead_processes_are_swept() {
        let parent = scratch("sweep");
        // pid_max is at most 2^22 on Linux: this pid cannot be running.
        let dead = parent.join(format!("{PREFIX}{}-1", 1u32 << 30));
        let mine = parent.join(format!("{PREFIX}{}-1", std::process::id()));
        let other = parent.join("tollgate-site-notapid");
        for d in [&dead, &mine, &other] {
            std::fs::create_dir_all(d.join("pkg")).expect("mkdir");
        }
        sweep(&parent);
        assert!(!dead.exists(), "a dead process's folder goes");
        assert!(mine.exists(), "a live process's folder stays");
        assert!(other.exists(), "a folder not named by a pid stays");
        let _ = std::fs::remove_dir_all(&parent);
    }

    #[test]
    fn a_configured_root_wins_and_must_exist() {
        let parent = scratch("configured");
        let site = Site::open(&parent).expect("a folder");
        assert_eq!(site.root(), parent);
        let missing = parent.join("missing");
        let err = Site::open(&missing).err().expect("missing folder refused");
        assert!(err.to_string().contains("server.site_root"), "{err}");
        let _ = std::fs::remove_dir_all(&parent);
    }
}
