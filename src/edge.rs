//! The edge of every request, around the router: before routing, an over-long URI (414) or
//! header block (431) is refused readably; after it, the refusals the framework writes itself
//! (405, 413, a path that is not UTF-8 …) get onyx-id's error page or JSON body, and an https
//! issuer's answers carry `Strict-Transport-Security`.
//!
//! It is a plain tower service with a future of its own, not `middleware::from_fn` in a second
//! router: that way a request is routed once and no future is boxed for it (measured with
//! `bench/callgrind.sh`: the nested router and `from_fn` cost about 6,000 instructions per
//! request, a quarter of the whole discovery request).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::error::{Form, refuse_early, rewrite_framework_refusal};

/// One year, this host and the names under it (RFC 6797). An http issuer (loopback development)
/// sends none: it would pin localhost to https.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Wraps a service in [`Edge`].
#[derive(Clone, Copy, Debug)]
pub struct EdgeLayer {
    /// Whether answers carry `Strict-Transport-Security` (an https issuer).
    pub hsts: bool,
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            hsts: self.hsts,
        }
    }
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct Edge<S> {
    inner: S,
    hsts: bool,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let hsts = self.hsts;
        if let Some(refused) = refuse_early(&req) {
            return EdgeFuture::Refused {
                answer: Some(refused),
                hsts,
            };
        }
        let method = req.method().clone();
        let form = Form::for_path(req.uri().path());
        EdgeFuture::Routed {
            inner: self.inner.call(req),
            method,
            form,
            hsts,
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`Edge`]: refused before routing, or the router's, rewritten if the
    /// framework wrote it.
    #[project = EdgeProjection]
    pub enum EdgeFuture<F> {
        Refused { answer: Option<Response>, hsts: bool },
        Routed { #[pin] inner: F, method: Method, form: Form, hsts: bool },
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (answer, hsts) = match self.project() {
            EdgeProjection::Refused { answer, hsts } => (
                // Polled again after it finished (a caller's bug): an empty 500, not a panic.
                answer.take().unwrap_or_else(|| {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }),
                *hsts,
            ),
            EdgeProjection::Routed {
                inner,
                method,
                form,
                hsts,
            } => {
                let Ok(res) = std::task::ready!(inner.poll(cx));
                (rewrite_framework_refusal(res, method, *form), *hsts)
            }
        };
        Poll::Ready(Ok(with_hsts(answer, hsts)))
    }
}

/// `Strict-Transport-Security` on an https issuer's answer: after one visit a browser goes to
/// this host (and names under it) only over https for a year, so a network attacker cannot strip
/// TLS from the sign-in page or read the session cookie off a plain-http request.
fn with_hsts(mut res: Response, hsts: bool) -> Response {
    if hsts {
        res.headers_mut()
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(HSTS));
    }
    res
}
