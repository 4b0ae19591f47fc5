//! Pages a node serves beside its API on the same port (the web dashboard): `GET` and `HEAD`
//! requests that are not WebSocket upgrades are answered from a [`Site`] (404 when it lacks
//! the path); everything else (JSON-RPC posts, subscriptions) passes on untouched.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use jsonrpsee::server::{HttpRequest, HttpResponse};

/// One page: its media type and bytes.
#[derive(Debug, Clone)]
pub struct Page {
    /// The `Content-Type` it is served with.
    pub content_type: &'static str,
    /// The bytes.
    pub body: Vec<u8>,
}

/// The pages a node serves: the dashboard's files, compiled into the binary by its owner.
pub trait Site: Send + Sync + std::fmt::Debug + 'static {
    /// The page at `path` (`/` is the index), or `None` to let the API answer.
    fn page(&self, path: &str) -> Option<Page>;
}

/// What a browser may do with the pages: scripts and styles only from the node itself (no
/// inline code, so text from the chain can never run), connections to the node and to the
/// gateway and analytics endpoints it names.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' http: https: ws: wss:; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

#[derive(Debug, Clone)]
pub(crate) struct SiteLayer {
    pub(crate) site: Option<Arc<dyn Site>>,
}

impl<S> tower::Layer<S> for SiteLayer {
    type Service = SiteService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SiteService {
            inner,
            site: self.site.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SiteService<S> {
    inner: S,
    site: Option<Arc<dyn Site>>,
}

fn page_response(page: Page, head: bool) -> HttpResponse {
    let length = page.body.len();
    let body = if head { Vec::new() } else { page.body };
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, page.content_type)
        .header(http::header::CONTENT_LENGTH, length)
        .header(http::header::CACHE_CONTROL, "no-cache")
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .body(body.into())
        .unwrap_or_else(|_| http::Response::new(String::new().into()))
}

impl<S, B> tower::Service<HttpRequest<B>> for SiteService<S>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, S::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        let head = req.method() == http::Method::HEAD;
        let upgrade = req.headers().contains_key(http::header::UPGRADE);
        if let Some(site) = &self.site
            && (head || req.method() == http::Method::GET)
            && !upgrade
        {
            // The API answers no plain GET (metrics and blobs are served before this layer),
            // so a page the site lacks is a 404, not the API's 405.
            let response = match site.page(req.uri().path()) {
                Some(page) => page_response(page, head),
                None => http::Response::builder()
                    .status(404)
                    .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body("no such page\n".to_string().into())
                    .unwrap_or_else(|_| http::Response::new(String::new().into())),
            };
            return Box::pin(async move { Ok(response) });
        }
        Box::pin(self.inner.call(req))
    }
}
