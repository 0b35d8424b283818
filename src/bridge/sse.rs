//! Reading an `investigate` answer: an incremental Server-Sent Events parser fed with byte chunks as
//! they come off the HTTP body, and the classification of the agent's JSON events into an outcome.
//! Pure: the caller owns the connection and the clock.
//!
//! Parsing follows the SSE spec (WHATWG HTML, "event stream interpretation"): lines end with `\n`,
//! `\r\n` or `\r` (a chunk may end between `\r` and `\n`, or inside a UTF-8 character: lines are cut
//! on bytes and decoded whole); `data:` lines of one event are joined with `\n`; a blank line
//! dispatches; `:` lines are comments; other fields (`event`, `id`, `retry`) are ignored.
//! Two leniencies, because agents in the wild write `data:` lines without blank lines between
//! them and get away with it against line-by-line readers: a joined payload that is not JSON is
//! read line by line, and an event still pending when the stream ends is read too (a cut inside
//! its JSON fails to parse and is ignored).
//!
//! Memory is bounded: an event (its pending line plus its data) above the parser's limit
//! ([`MAX_EVENT_BYTES`] by default) is an error, not a growing buffer; a result text is cut to
//! [`MAX_RESULT_TEXT`] bytes and an error message to [`MAX_MESSAGE`] bytes (at a character
//! boundary; `truncated` says so), which is what a run record keeps.

use serde_json::Value;

/// The largest single event (bytes) a parser accepts by default.
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// The longest result text kept (bytes).
pub const MAX_RESULT_TEXT: usize = 64 * 1024;
/// The longest error message kept (bytes).
pub const MAX_MESSAGE: usize = 4 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    #[error("an event stream event is larger than {limit} bytes")]
    EventTooLarge { limit: usize },
}

/// Incremental SSE parser: feed chunks, get the `data` of each completed event.
#[derive(Debug)]
pub struct SseParser {
    line: Vec<u8>,
    data: String,
    has_data: bool,
    /// The last chunk ended with `\r`: a `\n` at the start of the next one belongs to it.
    after_cr: bool,
    /// The first line may start with a byte order mark, which is dropped.
    first_line: bool,
    limit: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::with_limit(MAX_EVENT_BYTES)
    }
}

impl SseParser {
    pub fn with_limit(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            data: String::new(),
            has_data: false,
            after_cr: false,
            first_line: true,
            limit,
        }
    }

    /// Consumes a chunk; returns the data of every event it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<String>, SseError> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.push_line_bytes(&rest[..end])?;
            self.end_line(&mut out);
            if rest[end] == b'\r' {
                match rest.get(end + 1) {
                    Some(b'\n') => rest = &rest[end + 2..],
                    Some(_) => rest = &rest[end + 1..],
                    None => {
                        self.after_cr = true;
                        rest = &[];
                    }
                }
            } else {
                rest = &rest[end + 1..];
            }
        }
        self.push_line_bytes(rest)?;
        Ok(out)
    }

    /// The stream ended: the data of an event still pending (see the module doc), if any.
    pub fn finish(&mut self) -> Option<String> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut out);
        }
        self.end_line(&mut out);
        out.pop()
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() + self.data.len() > self.limit {
            return Err(SseError::EventTooLarge { limit: self.limit });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<String>) {
        let raw = std::mem::take(&mut self.line);
        let mut line = String::from_utf8_lossy(&raw);
        if std::mem::take(&mut self.first_line)
            && let Some(rest) = line.strip_prefix('\u{feff}')
        {
            line = rest.to_owned().into();
        }
        if line.is_empty() {
            if std::mem::take(&mut self.has_data) {
                out.push(std::mem::take(&mut self.data));
            }
            self.data.clear();
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        if field == "data" {
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(value);
            self.has_data = true;
        }
    }
}

/// One of the agent's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    Result {
        text: String,
        success: bool,
        truncated: bool,
    },
    Error {
        message: String,
    },
    /// Any other event; `kind` is its `type` (or `(none)`, or `(not json)`).
    Progress {
        kind: String,
    },
}

/// The events in one `data` payload: one JSON object, or (leniency) one per line.
pub fn classify(data: &str) -> Vec<AgentEvent> {
    if let Ok(v) = serde_json::from_str::<Value>(data) {
        return vec![event_of(&v)];
    }
    let lines: Vec<_> = data.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() > 1 {
        return lines
            .into_iter()
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(v) => event_of(&v),
                Err(_) => not_json(),
            })
            .collect();
    }
    vec![not_json()]
}

fn not_json() -> AgentEvent {
    AgentEvent::Progress {
        kind: "(not json)".into(),
    }
}

fn event_of(v: &Value) -> AgentEvent {
    let text = |v: Option<&Value>| match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    match v.get("type").and_then(Value::as_str) {
        Some("result") => {
            let data = v.get("data");
            let (text, truncated) = cut(text(data.and_then(|d| d.get("text"))), MAX_RESULT_TEXT);
            // The original read a missing `success` as true.
            let success = data
                .and_then(|d| d.get("success"))
                .and_then(Value::as_bool)
                .unwrap_or(true);
            AgentEvent::Result {
                text,
                success,
                truncated,
            }
        }
        Some("error") => {
            let mut message = text(v.pointer("/data/message"));
            if message.is_empty() {
                message = "the agent sent an error event without a message".into();
            }
            AgentEvent::Error {
                message: cut(message, MAX_MESSAGE).0,
            }
        }
        Some(kind) => AgentEvent::Progress { kind: kind.into() },
        None => AgentEvent::Progress {
            kind: "(none)".into(),
        },
    }
}

/// `s` cut to at most `max` bytes at a character boundary; whether it was cut.
pub fn cut(mut s: String, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    (s, true)
}

/// How an `investigate` answer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed {
        text: String,
        success: bool,
        truncated: bool,
    },
    AgentError {
        message: String,
    },
    /// The stream ended with neither a result nor an error event.
    Cut,
}

/// A whole answer read incrementally: the first `result` or `error` event decides; progress is
/// counted. After [`AnswerReader::is_done`] the caller may stop reading.
#[derive(Debug, Default)]
pub struct AnswerReader {
    parser: SseParser,
    progress: u64,
    last_kind: Option<String>,
    decided: Option<Outcome>,
}

impl AnswerReader {
    pub fn with_limit(limit: usize) -> Self {
        Self {
            parser: SseParser::with_limit(limit),
            ..Self::default()
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), SseError> {
        for data in self.parser.feed(chunk)? {
            self.take(&data, false);
        }
        Ok(())
    }

    pub fn is_done(&self) -> bool {
        self.decided.is_some()
    }

    /// Progress events seen so far.
    pub fn progress(&self) -> u64 {
        self.progress
    }

    /// The type of the last progress event.
    pub fn last_kind(&self) -> Option<&str> {
        self.last_kind.as_deref()
    }

    /// The stream ended (or the caller stopped reading): the outcome.
    pub fn finish(&mut self) -> Outcome {
        if self.decided.is_none()
            && let Some(data) = self.parser.finish()
        {
            // Unterminated: a payload that does not parse was cut, not sent; it is not progress.
            self.take(&data, true);
        }
        self.decided.clone().unwrap_or(Outcome::Cut)
    }

    fn take(&mut self, data: &str, skip_unparsable: bool) {
        for event in classify(data) {
            if self.decided.is_some() {
                return;
            }
            if skip_unparsable && event == not_json() {
                continue;
            }
            match event {
                AgentEvent::Result {
                    text,
                    success,
                    truncated,
                } => {
                    self.decided = Some(Outcome::Completed {
                        text,
                        success,
                        truncated,
                    })
                }
                AgentEvent::Error { message } => {
                    self.decided = Some(Outcome::AgentError { message })
                }
                AgentEvent::Progress { kind } => {
                    self.progress += 1;
                    self.last_kind = Some(kind);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
