use super::*;

const STREAM: &str = concat!(
    ": keep-alive\r\n",
    "data: {\"type\":\"thought\",\"data\":{\"text\":\"looking… ✓\"}}\r\n\r\n",
    "event: progress\n",
    "data: {\"type\":\"tool_call\",\n",
    "data: \"data\":{\"name\":\"logs\"}}\n\n",
    "data: {\"type\":\"result\",\"data\":{\"text\":\"root cause: ünïcode\",\"success\":true}}\n\n",
);

fn read_in_chunks(bytes: &[u8], size: usize) -> (Outcome, u64, Option<String>) {
    let mut r = AnswerReader::default();
    for chunk in bytes.chunks(size) {
        r.feed(chunk).unwrap();
    }
    let out = r.finish();
    (out, r.progress(), r.last_kind().map(str::to_owned))
}

#[test]
fn any_chunking_even_inside_characters_and_crlf_gives_the_same_events() {
    let whole = read_in_chunks(STREAM.as_bytes(), STREAM.len());
    assert_eq!(
        whole.0,
        Outcome::Completed {
            text: "root cause: ünïcode".into(),
            success: true,
            truncated: false
        }
    );
    assert_eq!(whole.1, 2, "two progress events");
    assert_eq!(
        whole.2.as_deref(),
        Some("tool_call"),
        "multi-line data joined"
    );
    for size in 1..40 {
        assert_eq!(
            read_in_chunks(STREAM.as_bytes(), size),
            whole,
            "chunks of {size}"
        );
    }
}

#[test]
fn lone_cr_line_endings_and_a_bom_are_understood() {
    let s = "\u{feff}data: {\"type\":\"a\"}\r\rdata: {\"type\":\"error\",\"data\":{\"message\":\"boom\"}}\r\r";
    for size in [1, 2, 3, s.len()] {
        let (out, progress, _) = read_in_chunks(s.as_bytes(), size);
        assert_eq!(
            out,
            Outcome::AgentError {
                message: "boom".into()
            }
        );
        assert_eq!(progress, 1);
    }
}

#[test]
fn the_parser_joins_data_lines_per_the_spec() {
    let mut p = SseParser::default();
    let events = p
        .feed(b"data:a\ndata: b\ndata\n\nid: 1\nretry: 5\n\n:comment\ndata:  c\n\n")
        .unwrap();
    assert_eq!(events, vec!["a\nb\n".to_owned(), " c".to_owned()]);
    assert_eq!(p.finish(), None);
}

#[test]
fn an_error_event_ends_the_answer_and_later_events_do_not_change_it() {
    let s = "data: {\"type\":\"error\",\"data\":{\"message\":\"quota\"}}\n\ndata: {\"type\":\"result\",\"data\":{\"text\":\"late\"}}\n\n";
    let mut r = AnswerReader::default();
    r.feed(s.as_bytes()).unwrap();
    assert!(r.is_done());
    assert_eq!(
        r.finish(),
        Outcome::AgentError {
            message: "quota".into()
        }
    );
}

#[test]
fn a_stream_cut_mid_way_is_cut_not_a_result() {
    let s = "data: {\"type\":\"thought\"}\n\ndata: {\"type\":\"result\",\"data\":{\"te";
    let (out, progress, kind) = read_in_chunks(s.as_bytes(), 7);
    assert_eq!(out, Outcome::Cut);
    assert_eq!(progress, 1);
    assert_eq!(kind.as_deref(), Some("thought"));
    assert_eq!(read_in_chunks(b"", 1).0, Outcome::Cut, "an empty body");
}

#[test]
fn a_complete_result_line_without_the_final_blank_line_still_counts() {
    let s = "data: {\"type\":\"result\",\"data\":{\"text\":\"ok\",\"success\":false}}\n";
    assert_eq!(
        read_in_chunks(s.as_bytes(), 5).0,
        Outcome::Completed {
            text: "ok".into(),
            success: false,
            truncated: false
        }
    );
}

#[test]
fn data_lines_without_blank_lines_between_them_are_read_one_by_one() {
    let s =
        "data: {\"type\":\"thought\"}\ndata: {\"type\":\"result\",\"data\":{\"text\":\"x\"}}\n\n";
    let (out, progress, _) = read_in_chunks(s.as_bytes(), 4);
    assert_eq!(
        out,
        Outcome::Completed {
            text: "x".into(),
            success: true,
            truncated: false
        },
        "missing success reads as true, as the original"
    );
    assert_eq!(progress, 1);
}

#[test]
fn an_oversized_event_is_an_error_not_an_unbounded_buffer() {
    let mut p = SseParser::with_limit(64);
    p.feed(b"data: 0123456789\n").unwrap();
    let long = [b'x'; 100];
    assert_eq!(
        p.feed(&long),
        Err(SseError::EventTooLarge { limit: 64 }),
        "a line without an end"
    );
    let mut p = SseParser::with_limit(64);
    let mut err = None;
    for _ in 0..10 {
        if let Err(e) = p.feed(b"data: 0123456789\n") {
            err = Some(e);
            break;
        }
    }
    assert_eq!(
        err,
        Some(SseError::EventTooLarge { limit: 64 }),
        "many lines"
    );
    // Events that each fit pass however many there are.
    let mut p = SseParser::with_limit(64);
    for _ in 0..1000 {
        assert_eq!(p.feed(b"data: 0123456789\n\n").unwrap().len(), 1);
    }
}

#[test]
fn a_long_result_text_is_truncated_at_a_character_boundary() {
    let text = "é".repeat(MAX_RESULT_TEXT);
    let s = format!(
        "data: {}\n\n",
        serde_json::json!({"type": "result", "data": {"text": text}})
    );
    let (out, _, _) = read_in_chunks(s.as_bytes(), 4096);
    let Outcome::Completed {
        text, truncated, ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert!(truncated);
    assert_eq!(text.len(), MAX_RESULT_TEXT);
    assert!(text.chars().all(|c| c == 'é'));
}

#[test]
fn events_are_classified_by_type() {
    assert_eq!(
        classify("not json"),
        vec![AgentEvent::Progress {
            kind: "(not json)".into()
        }]
    );
    assert_eq!(
        classify("{\"x\":1}"),
        vec![AgentEvent::Progress {
            kind: "(none)".into()
        }]
    );
    assert_eq!(
        classify("{\"type\":\"error\"}"),
        vec![AgentEvent::Error {
            message: "the agent sent an error event without a message".into()
        }]
    );
    assert_eq!(
        classify("{\"type\":\"result\",\"data\":{\"text\":{\"k\":1}}}"),
        vec![AgentEvent::Result {
            text: "{\"k\":1}".into(),
            success: true,
            truncated: false
        }]
    );
}
