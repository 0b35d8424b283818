//! The pipeline of one webhook request: org → secrets → body → provider (verify, read) → publish →
//! answer after the PubAck. Every outcome is counted; nothing rejected is published.

use super::error::IngestError;
use super::metrics::SourceMetrics;
use super::payload::{self, Incoming, Outcome};
use super::{Ingest, Provider, event};
use crate::domain::OrgId;
use crate::http::error::ApiError;
use crate::http::serve::BodyTimedOut;
use crate::settings::SecretList;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tracing::Instrument;

impl Ingest {
    /// Runs the pipeline and turns a rejection into its answer (and its count and log line).
    pub(super) async fn receive(
        &self,
        provider: Provider,
        org: Option<String>,
        req: Request,
    ) -> Response {
        // Until a generic source is known to be configured, its name stays out of metric labels.
        let mut metrics = match &provider {
            Provider::Generic(_) => self.inner.metrics.source("generic"),
            known => self.inner.metrics.source(known.source()),
        };
        // One span per webhook: its log lines carry the source, the org of the URL, the event id
        // (once read) and the trace id, so one id finds the event in the logs of every stage.
        let span = tracing::info_span!(
            "webhook",
            source = provider.source(),
            org = org.as_deref().unwrap_or(""),
            event_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        // A caller's trace context becomes the parent of the span (when spans are exported).
        let incoming = req
            .headers()
            .get(crate::domain::headers::TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .filter(|t| event::valid_traceparent(t));
        crate::telemetry::trace::parent_on(&span, incoming);
        let outcome = self
            .pipeline(&provider, org, req, &mut metrics)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        match outcome {
            Ok(response) => response,
            Err(e) => {
                let reason = e.reason();
                metrics.rejected(reason);
                let source = provider.source();
                match e.status() {
                    StatusCode::SERVICE_UNAVAILABLE => {
                        tracing::warn!(source, reason, error = %e, "webhook not stored")
                    }
                    _ if reason == "no_secret" => {
                        tracing::warn!(source, "webhook refused: no secret configured for it")
                    }
                    _ => tracing::debug!(source, reason, error = %e, "webhook rejected"),
                }
                ApiError::from(e).into_response()
            }
        }
    }

    async fn pipeline(
        &self,
        provider: &Provider,
        org: Option<String>,
        req: Request,
        metrics: &mut Arc<SourceMetrics>,
    ) -> Result<Response, IngestError> {
        let org = match org {
            None => None,
            // The catalog is in memory: an org it does not know costs no database read.
            Some(raw) => {
                let known = OrgId::parse(raw.as_str()).ok().and_then(|id| {
                    let incarnation = self.inner.tenancy.catalog().org_incarnation(&id)?;
                    Some((id, incarnation))
                });
                match known {
                    Some(known) => Some(known),
                    None => {
                        self.inner.org_secrets.unknown_org();
                        return Err(IngestError::UnknownOrg(raw));
                    }
                }
            }
        };
        let secrets = self.secrets(provider, org.as_ref()).await?;
        // Configured global sources are the operator's (bounded); an org's own generic sources
        // are the tenant's and stay under the one label `generic`.
        if let (Provider::Generic(source), None) = (provider, &org) {
            *metrics = self.inner.metrics.source(source);
        }
        metrics.received.increment(1);
        let (parts, body) = req.into_parts();
        let headers = &parts.headers;
        let body = read_body(headers, body, self.inner.body_limit).await?;
        let now = SystemTime::now();
        let now_unix = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let inc = Incoming {
            headers,
            body: &body,
            now_unix: i64::try_from(now_unix).unwrap_or(i64::MAX),
        };
        let signal = match provider.accept(&secrets.exposed(), &inc)? {
            Outcome::Reply(answer) => {
                metrics.handshake.increment(1);
                return Ok((StatusCode::OK, axum::Json(answer)).into_response());
            }
            Outcome::Publish(signal) => signal,
        };
        let trace = (
            payload::header(&inc, crate::domain::headers::TRACEPARENT),
            payload::header(&inc, crate::domain::headers::TRACESTATE),
        );
        let span = tracing::Span::current();
        // With spans exported, the event carries this span's context, so the router's and the
        // bridge's spans of the event are its children in the same trace.
        let own = crate::telemetry::trace::outgoing(&span);
        let trace = match own.as_deref() {
            Some(tp) => (
                Some(tp),
                trace
                    .1
                    .filter(|_| trace.0.is_some_and(event::valid_traceparent)),
            ),
            None => trace,
        };
        span.record("event_id", signal.id.as_str());
        if let Some(trace_id) = trace.0.and_then(|t| t.split('-').nth(1)) {
            span.record("trace_id", trace_id);
        }
        let envelope = event::envelope(
            provider.source(),
            org.as_ref().map(|(id, _)| id),
            &signal,
            trace,
            now,
        );
        let started = Instant::now();
        let published = self
            .inner
            .bus
            .publish(envelope.subject, envelope.headers, body)
            .await;
        metrics
            .publish_seconds
            .record(started.elapsed().as_secs_f64());
        let published = published?;
        let status = if published.duplicate {
            metrics.duplicate.increment(1);
            "duplicate"
        } else {
            metrics.accepted.increment(1);
            "accepted"
        };
        let answer = Accepted {
            status,
            id: &signal.id,
            stream: &published.stream,
            seq: published.sequence,
        };
        Ok((StatusCode::OK, axum::Json(answer)).into_response())
    }

    /// The secrets to verify with: the org's own on an org-scoped URL (through the cache), else the
    /// settings'. An unknown generic source is 404; a known provider without secrets fails
    /// verification with `no_secret`.
    async fn secrets(
        &self,
        provider: &Provider,
        org: Option<&(OrgId, i64)>,
    ) -> Result<Cow<'_, SecretList>, IngestError> {
        let found = match org {
            Some((org, incarnation)) => self
                .inner
                .org_secrets
                .get(
                    self.inner.tenancy.store(),
                    org,
                    *incarnation,
                    &provider.secret_key(),
                )
                .await
                .map_err(IngestError::Secrets)?
                .map(Cow::Owned),
            None => provider
                .global_secrets(&self.inner.secrets)
                .map(Cow::Borrowed),
        };
        match (found, provider) {
            (Some(list), _) => Ok(list),
            (None, Provider::Generic(source)) => Err(IngestError::UnknownSource(source.clone())),
            (None, _) => Ok(Cow::Owned(SecretList::default())),
        }
    }
}

/// The answer to a stored (or already stored) webhook.
#[derive(serde::Serialize)]
struct Accepted<'a> {
    status: &'static str,
    id: &'a str,
    stream: &'a str,
    seq: u64,
}

/// The whole body, at most `limit` bytes (413 beyond; refused early when Content-Length says so).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, IngestError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(IngestError::TooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(IngestError::TooLarge { limit })
        }
        Err(e) if BodyTimedOut::is_in(e.as_ref()) => Err(IngestError::BodyTimeout),
        Err(e) => Err(IngestError::malformed(
            "webhook",
            format!("the body could not be read: {e}"),
        )),
    }
}
