//! Pages a node serves beside its API on the same port (the web dashboard): `GET` and `HEAD`
//! requests that are not WebSocket upgrades are answered from a [`Site`] (404 when it lacks
//! the path); everything else (JSON-RPC posts, subscriptions) passes on untouched.

use std::sync::Arc;

use jsonrpsee::server::{HttpRequest, HttpResponse};

use crate::intercept::{Answer, Intercept, respond};

/// One page: its media type and bytes.
#[derive(Debug, Clone)]
pub struct Page {
    /// The `Content-Type` it is served with.
    pub content_type: &'static str,
    /// The bytes.
    pub body: Vec<u8>,
    /// Whether `body` is gzip-compressed (only when the request accepted it).
    pub gzip: bool,
}

/// What a browser asked for.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    /// The path (`/` is the index).
    pub path: &'a str,
    /// Whether the `Host` header names this machine (`127.0.0.1`, `localhost`, `[::1]`): a
    /// page reached under another name may come from a site that rebound its name to it.
    pub local_host: bool,
    /// Whether the browser accepts gzip.
    pub gzip: bool,
}

/// The pages a node serves: the dashboard's files, compiled into the binary by its owner.
pub trait Site: Send + Sync + std::fmt::Debug + 'static {
    /// The page asked for, or `None` for a 404.
    fn page(&self, request: PageRequest<'_>) -> Option<Page>;
}

/// Whether a `Host` header value names the loopback interface.
fn is_local_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    matches!(name, "127.0.0.1" | "localhost" | "::1")
}

/// What a browser may do with the pages: scripts and styles only from the node itself (no
/// inline code, so text from the chain can never run), connections to the node and to the
/// gateway and analytics endpoints it names.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' http: https: ws: wss:; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Serves a [`Site`]'s pages.
#[derive(Debug, Clone)]
pub(crate) struct Pages {
    pub(crate) site: Option<Arc<dyn Site>>,
}

fn page_response(page: Page, head: bool) -> HttpResponse {
    let length = page.body.len();
    let body = if head { Vec::new() } else { page.body };
    let mut response = http::Response::builder().status(200);
    if page.gzip {
        response = response.header(http::header::CONTENT_ENCODING, "gzip");
    }
    response
        .header(http::header::VARY, "accept-encoding")
        .header(http::header::CONTENT_TYPE, page.content_type)
        .header(http::header::CONTENT_LENGTH, length)
        .header(http::header::CACHE_CONTROL, "no-cache")
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .body(body.into())
        .unwrap_or_else(|_| http::Response::new(String::new().into()))
}

impl Intercept for Pages {
    fn intercept<B>(&self, req: HttpRequest<B>) -> Result<Answer, HttpRequest<B>> {
        let head = req.method() == http::Method::HEAD;
        let upgrade = req.headers().contains_key(http::header::UPGRADE);
        let Some(site) = &self.site else {
            return Err(req);
        };
        if upgrade || !(head || req.method() == http::Method::GET) {
            return Err(req);
        }
        // The API answers no plain GET (metrics and blobs are served before this layer), so
        // a page the site lacks is a 404, not the API's 405.
        let header = |name| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        let request = PageRequest {
            path: req.uri().path(),
            local_host: is_local_host(header(http::header::HOST)),
            gzip: header(http::header::ACCEPT_ENCODING)
                .split(',')
                .any(|e| e.split(';').next().unwrap_or_default().trim() == "gzip"),
        };
        let response = match site.page(request) {
            Some(page) => page_response(page, head),
            None => respond(404, "text/plain; charset=utf-8", b"no such page\n".to_vec()),
        };
        Ok(Box::pin(async move { response }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_are_local() {
        for host in [
            "127.0.0.1:26657",
            "localhost:80",
            "localhost",
            "[::1]:26657",
        ] {
            assert!(is_local_host(host), "{host}");
        }
        for host in [
            "evil.example:26657",
            "127.0.0.1.evil.example",
            "10.0.0.2:26657",
            "",
        ] {
            assert!(!is_local_host(host), "{host}");
        }
    }
}
