//! The one tower layer through which the RPC port answers HTTP requests beside the JSON-RPC
//! API (metrics, blobs, the dashboard's pages): an [`Intercept`] answers the requests it
//! owns and hands every other back, to go on to the API.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use jsonrpsee::server::{HttpRequest, HttpResponse};

/// An answer to an intercepted request.
pub(crate) type Answer = Pin<Box<dyn Future<Output = HttpResponse> + Send + 'static>>;

/// Answers some HTTP requests on the RPC port.
pub(crate) trait Intercept: Clone + Send + 'static {
    /// The answer to `req`, or `req` itself to pass it on.
    // Handing the request back moves it once; boxing it would allocate for every API call.
    #[allow(clippy::result_large_err)]
    fn intercept<B>(&self, req: HttpRequest<B>) -> Result<Answer, HttpRequest<B>>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>;
}

/// A response with `status`, `content_type` and `body`.
pub(crate) fn respond(status: u16, content_type: &str, body: Vec<u8>) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(body.into())
        .unwrap_or_else(|_| http::Response::new(String::new().into()))
}

/// Puts an [`Intercept`] in front of the service it wraps.
#[derive(Debug, Clone)]
pub(crate) struct InterceptLayer<I>(pub(crate) I);

impl<S, I: Clone> tower::Layer<S> for InterceptLayer<I> {
    type Service = InterceptService<S, I>;

    fn layer(&self, inner: S) -> Self::Service {
        InterceptService {
            inner,
            handler: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct InterceptService<S, I> {
    inner: S,
    handler: I,
}

impl<S, B, I> tower::Service<HttpRequest<B>> for InterceptService<S, I>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse>,
    S::Future: Send + 'static,
    I: Intercept,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, S::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        match self.handler.intercept(req) {
            Ok(answer) => Box::pin(async move { Ok(answer.await) }),
            Err(req) => Box::pin(self.inner.call(req)),
        }
    }
}
