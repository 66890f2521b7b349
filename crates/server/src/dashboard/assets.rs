//! The dashboard's static files (`crates/server/assets/`), embedded in the binary and served
//! under content-hashed names: a name changes whenever its content does, so a browser may keep
//! each file for a year without ever running a stale one after an upgrade. Each file is
//! gzipped once, on first use, and sent compressed to browsers that accept it.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, HeaderValue, VARY,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file: its name in `assets/`, content type and bytes.
struct Source {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! source {
    ($name:literal, $content_type:expr) => {
        Source {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $name)),
        }
    };
}

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Every file the pages use.
const SOURCES: [Source; 8] = [
    source!("app.css", CSS),
    source!("app.js", JS),
    source!("logview.js", JS),
    source!("charts.js", JS),
    source!("vendor/htmx.min.js", JS),
    source!("vendor/sse.min.js", JS),
    source!("vendor/uPlot.iife.min.js", JS),
    source!("vendor/uPlot.min.css", CSS),
];

/// A file as served: its hashed name, its bytes plain and gzipped.
struct Served {
    file: String,
    content_type: &'static str,
    etag: String,
    plain: &'static [u8],
    gzipped: Vec<u8>,
}

/// The addresses pages link to, one per file of [`SOURCES`].
pub struct Urls {
    pub css: String,
    pub app_js: String,
    pub logview_js: String,
    pub charts_js: String,
    pub htmx_js: String,
    pub sse_js: String,
    pub uplot_js: String,
    pub uplot_css: String,
}

struct Assets {
    served: Vec<Served>,
    urls: Urls,
}

static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
    let served: Vec<Served> = SOURCES.iter().map(serve_source).collect();
    let url = |index: usize| format!("/assets/{}", served[index].file);
    let urls = Urls {
        css: url(0),
        app_js: url(1),
        logview_js: url(2),
        charts_js: url(3),
        htmx_js: url(4),
        sse_js: url(5),
        uplot_js: url(6),
        uplot_css: url(7),
    };
    Assets { served, urls }
});

fn serve_source(source: &Source) -> Served {
    let hash = hex::encode(&Sha256::digest(source.bytes)[..8]);
    let base = source.name.rsplit('/').next().unwrap_or(source.name);
    let file = match base.split_once('.') {
        Some((stem, extension)) => format!("{stem}.{hash}.{extension}"),
        None => format!("{base}.{hash}"),
    };
    Served {
        etag: format!("\"{hash}\""),
        file,
        content_type: source.content_type,
        plain: source.bytes,
        gzipped: gzip(source.bytes),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to memory cannot fail; an empty result only means the plain file is sent.
    if encoder.write_all(bytes).is_err() {
        return Vec::new();
    }
    encoder.finish().unwrap_or_default()
}

/// The addresses of the assets.
pub fn urls() -> &'static Urls {
    &ASSETS.urls
}

/// `GET /assets/{file}`: one file by its hashed name, cacheable for a year.
pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(served) = ASSETS.served.iter().find(|served| served.file == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let gzip_accepted = headers
        .get(ACCEPT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|coding| coding.trim().starts_with("gzip"))
        });
    let mut response = if gzip_accepted && !served.gzipped.is_empty() {
        let mut response = served.gzipped.as_slice().into_response();
        response
            .headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    } else {
        served.plain.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(served.content_type));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(etag) = HeaderValue::from_str(&served.etag) {
        headers.insert(ETAG, etag);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_a_hash_of_the_content_and_every_file_is_linked() {
        let urls = urls();
        assert!(urls.css.starts_with("/assets/app.") && urls.css.ends_with(".css"));
        assert!(
            urls.htmx_js.starts_with("/assets/htmx."),
            "{}",
            urls.htmx_js
        );
        let files: Vec<&str> = ASSETS.served.iter().map(|s| s.file.as_str()).collect();
        let mut unique = files.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), SOURCES.len(), "{files:?}");
        let again = serve_source(&SOURCES[0]);
        assert_eq!(again.file, ASSETS.served[0].file, "the name is stable");
        let changed = Source {
            bytes: b"body{}",
            ..SOURCES[0]
        };
        assert_ne!(
            serve_source(&changed).file,
            again.file,
            "new content, new name"
        );
    }

    #[test]
    fn files_unzip_to_what_is_embedded() {
        use std::io::Read;
        for served in &ASSETS.served {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(served.gzipped.as_slice())
                .read_to_end(&mut plain)
                .unwrap();
            assert_eq!(plain, served.plain, "{}", served.file);
        }
    }
}
