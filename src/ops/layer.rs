//! The request metrics, as a layer of the router (inside it, where the matched route is known):
//! each answer counted by route template, method and status, and its latency recorded. A plain
//! tower service with its own future: no boxing on the path of every request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use ::metrics::SharedString;
use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response};

use super::metrics::Metrics;

/// The label of requests no route matched (the fallback): never the path itself, which a
/// client chooses.
const UNMATCHED: &str = "unmatched";

#[derive(Clone)]
pub struct RequestMetricsLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RequestMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl<S, B, ResBody> tower::Service<Request<B>> for RequestMetrics<S>
where
    S: tower::Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Counted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let route = match req.extensions().get::<MatchedPath>() {
            Some(p) => SharedString::from(p.as_str().to_owned()),
            None => SharedString::const_str(UNMATCHED),
        };
        let method = method_label(req.method());
        Counted {
            inner: self.inner.call(req),
            record: Some(Record {
                metrics: self.metrics.clone(),
                route,
                method,
                started: Instant::now(),
            }),
        }
    }
}

struct Record {
    metrics: Arc<Metrics>,
    route: SharedString,
    method: &'static str,
    started: Instant,
}

pin_project_lite::pin_project! {
    pub struct Counted<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }
}

impl<F, ResBody, E> Future for Counted<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let (Ok(res), Some(r)) = (&out, this.record.take()) {
            r.metrics.request(
                r.route,
                r.method,
                res.status().as_u16(),
                r.started.elapsed(),
            );
        }
        Poll::Ready(out)
    }
}
