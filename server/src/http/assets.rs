//! The console's static files (`target/site`): precompressed variants (`.br`, `.gz`, written
//! by `cargo leptos build --precompress`) sent to browsers that accept them, and cache headers
//! by name. The build names what it writes under `/pkg/` by content hash (`hash-files`: the
//! wasm, its chunks, the JS glue, the stylesheet; the hashes of the first-load files listed in
//! the site's `hash.txt` for the pages' links): those are cached for a year, immutable; any other
//! file is revalidated on each use (`no-cache`, with `Last-Modified`). A path that is no file
//! goes to the console (its 404 page).

use super::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::Response;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use tower::ServiceExt as _;
use tower_http::services::ServeDir;

/// The list of hashed names the build writes into the site root.
pub const HASH_FILE: &str = "hash.txt";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The site's files.
#[derive(Clone)]
pub struct Site {
    dir: ServeDir,
}

impl Site {
    pub fn new(root: &Path) -> Site {
        Site {
            dir: ServeDir::new(root)
                .precompressed_br()
                .precompressed_gzip()
                .append_index_html_on_directories(false),
        }
    }
}

/// Whether a path names a file the build named by its content: under `/pkg/`, with a dot-
/// separated part that is a cargo-leptos hash (an MD5 in unpadded base64url, 22 characters),
/// as in `tollgate.1FA5DjZEbvGsAlVrFpEIDg.wasm` or `chunk_9.I519j66FK4YD6QUXzfA_0A.wasm`.
pub fn is_hashed(path: &str) -> bool {
    let Some(name) = path.strip_prefix("/pkg/").filter(|n| !n.contains('/')) else {
        return false;
    };
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 3
        && parts[1..parts.len() - 1].iter().any(|p| {
            p.len() == 22
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

type Fallback = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// A static file when the path names one, else `console` (the app, which renders its 404).
pub async fn serve(
    site: Site,
    uri: Uri,
    state: State<AppState>,
    req: Request,
    console: impl FnOnce(Uri, State<AppState>, Request) -> Fallback,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) && !uri.path().ends_with('/') {
        let mut probe = Request::new(Body::empty());
        *probe.method_mut() = req.method().clone();
        *probe.uri_mut() = uri.clone();
        for name in [
            header::ACCEPT_ENCODING,
            header::IF_MODIFIED_SINCE,
            header::IF_UNMODIFIED_SINCE,
            header::RANGE,
        ] {
            if let Some(v) = req.headers().get(&name) {
                probe.headers_mut().insert(name, v.clone());
            }
        }
        let Ok(res) = site.dir.clone().oneshot(probe).await;
        if res.status() != axum::http::StatusCode::NOT_FOUND {
            let cache = if is_hashed(uri.path()) {
                IMMUTABLE
            } else {
                REVALIDATE
            };
            let mut res = res.map(Body::new);
            let headers = res.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            // The body depends on Accept-Encoding: a shared cache must key on it.
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            return res;
        }
    }
    console(uri, state, req).await
}

#[cfg(test)]
mod tests {
    use super::is_hashed;

    #[test]
    fn hashed_names_are_the_builds() {
        assert!(is_hashed("/pkg/tollgate.1FA5DjZEbvGsAlVrFpEIDg.wasm"));
        assert!(is_hashed("/pkg/chunk_9.I519j66FK4YD6QUXzfA_0A.wasm"));
        assert!(is_hashed("/pkg/__wasm_split.gVakaudV2N1pJPReBRGWrg.js"));
        assert!(is_hashed("/pkg/tollgate.d.wLgmyZM2Rfaplc-mAK4ylg.ts"));
        assert!(!is_hashed("/pkg/tollgate.wasm"));
        assert!(!is_hashed("/pkg/tollgate.js"));
        assert!(!is_hashed("/pkg/1FA5DjZEbvGsAlVrFpEIDg.wasm"));
        assert!(!is_hashed("/favicon.1FA5DjZEbvGsAlVrFpEIDg.ico"));
        assert!(!is_hashed("/pkg/sub/tollgate.1FA5DjZEbvGsAlVrFpEIDg.wasm"));
        assert!(!is_hashed("/pkg/tollgate.1FA5DjZEbvGsAlVrFpEIDg!.wasm"));
    }
}
