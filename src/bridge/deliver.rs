//! The HTTP side of a delivery: one call to an agent service in one of the two protocols of
//! `docs/agent-protocol.md`, classified into what the run does next. Thin: what to send is built by
//! the caller ([`super::prompt`]), how an answer reads is [`super::sse`]'s.
//!
//! Every call sends `Idempotency-Key: <run id>` (a redelivery after a bridge crash carries the same
//! key, so an agent can drop the duplicate), `traceparent` when the event had one, and the service
//! token when one is configured. Classification:
//! - connection error, 429, 5xx, a stream cut before its result → [`Delivered::Retry`] (with the
//!   agent's `Retry-After` when it gave one);
//! - another 4xx (or a 2xx that is not the protocol's answer) → [`Delivered::Refused`];
//! - no outcome before the run's deadline → [`Delivered::Timeout`].

use super::sse::{AnswerReader, Outcome};
use std::time::Duration;

/// What a call to an agent came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// `investigate`: the agent's result (`success` as it said) or its error event.
    Finished {
        success: bool,
        text: Option<String>,
        error: Option<String>,
    },
    /// `ifox`: the agent accepted the run (202); it reports the outcome itself.
    Accepted,
    /// No outcome before the deadline.
    Timeout,
    /// Try again later: after the agent's `Retry-After` when it gave one.
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// The agent refused the request; retrying the same request cannot help.
    Refused { why: String },
}

/// The request of one delivery.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// The agent service's base URL (already allowed by the SSRF guard).
    pub base: &'a str,
    pub run_id: &'a str,
    pub traceparent: Option<&'a str>,
    pub body: &'a serde_json::Value,
    /// How long the whole call may take (the run's remaining time).
    pub deadline: Duration,
}

/// The agent client (a pool of connections per agent service).
#[derive(Clone)]
pub struct Agents {
    client: reqwest::Client,
    service_token: Option<String>,
    result_limit: usize,
}

impl Agents {
    pub fn new(
        connect_timeout: Duration,
        service_token: Option<String>,
        result_limit: usize,
    ) -> Agents {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            // An agent URL is checked before the call; a redirect would leave the allowed set.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Agents {
            client,
            service_token,
            result_limit,
        }
    }

    fn request(&self, url: String, call: &Call<'_>) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .post(url)
            .header("Idempotency-Key", call.run_id)
            .json(call.body);
        if let Some(tp) = call.traceparent {
            req = req.header(crate::domain::headers::TRACEPARENT, tp);
        }
        if let Some(token) = &self.service_token {
            req = req.bearer_auth(token);
        }
        req
    }

    /// `POST {base}/v1/runs`, answered 2xx (202) at once.
    pub async fn submit(&self, call: &Call<'_>) -> Delivered {
        let url = join(call.base, "v1/runs");
        let sent = tokio::time::timeout(call.deadline, self.request(url, call).send()).await;
        match sent {
            Err(_) => Delivered::Timeout,
            Ok(Err(e)) => Delivered::Retry {
                after: None,
                why: describe(&e),
            },
            Ok(Ok(res)) if res.status().is_success() => Delivered::Accepted,
            Ok(Ok(res)) => refusal(&res),
        }
    }

    /// `POST {base}/investigate`. `accepted` is called once the agent answered 200 (the run is
    /// then `running`); the answer's events are read until its result or error, the end of the
    /// stream, or the deadline.
    pub async fn investigate<F, Fut>(&self, call: &Call<'_>, accepted: F) -> Delivered
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let url = join(call.base, "investigate");
        let exchange = async {
            let mut res = match self.request(url, call).send().await {
                Ok(res) => res,
                Err(e) => {
                    return Delivered::Retry {
                        after: None,
                        why: describe(&e),
                    };
                }
            };
            if !res.status().is_success() {
                return refusal(&res);
            }
            accepted().await;
            let mut reader = AnswerReader::with_limit(super::sse::MAX_EVENT_BYTES);
            loop {
                match res.chunk().await {
                    Ok(Some(chunk)) => {
                        if let Err(e) = reader.feed(&chunk) {
                            return Delivered::Refused {
                                why: format!("unreadable answer: {e}"),
                            };
                        }
                        if reader.is_done() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Delivered::Retry {
                            after: None,
                            why: format!("answer cut: {}", describe(&e)),
                        };
                    }
                }
            }
            match reader.finish() {
                Outcome::Completed { text, success, .. } => Delivered::Finished {
                    success,
                    text: Some(bounded(text, self.result_limit)),
                    error: (!success).then(|| "the agent reported failure".to_owned()),
                },
                Outcome::AgentError { message } => Delivered::Finished {
                    success: false,
                    text: None,
                    error: Some(message),
                },
                Outcome::Cut => Delivered::Retry {
                    after: None,
                    why: "the answer ended without a result".to_owned(),
                },
            }
        };
        tokio::time::timeout(call.deadline, exchange)
            .await
            .unwrap_or(Delivered::Timeout)
    }
}

/// `base` + `/` + `path`, whatever trailing slash `base` has.
fn join(base: &str, path: &str) -> String {
    format!("{}/{path}", base.trim_end_matches('/'))
}

/// A connection-level failure, without the URL (which `reqwest` prints with its query).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    let mut detail = match std::error::Error::source(e) {
        Some(source) => source.to_string(),
        None => e.to_string(),
    };
    detail.truncate(300);
    format!("{kind}: {detail}")
}

/// A non-2xx answer: 429 and 5xx are retried (honouring `Retry-After` in seconds), the rest refused.
fn refusal(res: &reqwest::Response) -> Delivered {
    let status = res.status();
    if status.as_u16() == 429 || status.is_server_error() {
        let after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(3600)));
        Delivered::Retry {
            after,
            why: format!("agent answered {status}"),
        }
    } else {
        Delivered::Refused {
            why: format!("agent answered {status}"),
        }
    }
}

/// `text` cut to at most `limit` bytes, on a character boundary.
fn bounded(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_whatever_the_base_ends_with() {
        assert_eq!(
            join("http://a:8080", "investigate"),
            "http://a:8080/investigate"
        );
        assert_eq!(join("http://a:8080/", "v1/runs"), "http://a:8080/v1/runs");
    }

    #[test]
    fn results_are_cut_on_a_character_boundary() {
        assert_eq!(bounded("héllo".into(), 2), "h");
        assert_eq!(bounded("hello".into(), 10), "hello");
    }
}
