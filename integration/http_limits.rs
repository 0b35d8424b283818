//! The public listener's limits against slow and greedy clients, over raw TCP on loopback: header
//! read timeout, body timeout (a stalled body and a dripping one), the connection limit, and
//! `/metrics` on its own listener. Margins are wide (seconds against a 1 s timeout) so that two busy
//! cores cannot make them flake.

use crate::support::app::ADMIN_TOKEN;
use crate::support::{DbKind, TestApp, TestDb};
use ifox::app::Role;
use reqwest::StatusCode;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An admin-only app (no NATS needed) with extra `IFOX__HTTP__…` settings.
async fn app(extra: &[(&str, &str)]) -> TestApp {
    let db = TestDb::new(DbKind::Sqlite).await;
    TestApp::spawn_roles(db, extra, &[Role::Admin]).await
}

async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.base.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connect")
}

/// Reads one answer (head and `Content-Length` body); `None` if the server closed first or
/// nothing complete came within `wait`.
async fn answer(tcp: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return None;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + length {
                    return Some(text);
                }
            }
        }
    };
    tokio::time::timeout(wait, read).await.ok().flatten()
}

/// Waits until the server closes `tcp` (EOF or reset); what it sent before, if anything.
async fn closed_by_server(tcp: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&got).to_string(),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(wait, read).await.ok()
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: ifox\r\n\r\n";

#[tokio::test]
async fn a_client_sending_headers_slower_than_the_timeout_is_disconnected_while_another_is_served()
{
    let app = app(&[("IFOX__HTTP__HEADER_READ_TIMEOUT", "1s")]).await;
    let mut slow = connect(&app).await;
    let started = Instant::now();
    // One byte every 200 ms: the whole head would take over a minute.
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: ifox\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(300)
    );
    let (mut reader, mut writer) = slow.split();
    let drip = async {
        for byte in head.as_bytes() {
            if writer.write_all(&[*byte]).await.is_err() {
                // Closed: the reader side reports it.
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let closed = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&got).to_string(),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    let served_meanwhile = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.client
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .expect("healthz")
            .status()
    };
    let (sent, status) = tokio::join!(
        async {
            tokio::select! {
                sent = closed => Some(sent),
                () = drip => None,
            }
        },
        served_meanwhile
    );
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::OK, "another client is served meanwhile");
    let sent = sent.expect("the server closed the slow connection before its head was complete");
    assert!(
        !sent.contains("200 OK"),
        "no answer to an incomplete head: {sent:?}"
    );
    assert!(
        elapsed >= Duration::from_secs(1),
        "not before the timeout: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(40),
        "well before the head was complete: {elapsed:?}"
    );
    drop(slow);
    app.stop().await;
}

#[tokio::test]
async fn a_stalled_or_dripping_body_is_answered_408_after_the_body_timeout() {
    let app = app(&[("IFOX__HTTP__BODY_TIMEOUT", "1s")]).await;
    let head = format!(
        "POST /api/v1/admin/orgs HTTP/1.1\r\nHost: ifox\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    );
    // Stalled: part of the body, then nothing.
    let mut stalled = connect(&app).await;
    stalled.write_all(head.as_bytes()).await.expect("head");
    stalled.write_all(br#"{"org_id": "#).await.expect("part");
    let started = Instant::now();
    let got = answer(&mut stalled, Duration::from_secs(30))
        .await
        .expect("an answer");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("body_timeout"), "{got}");
    assert!(
        got.to_ascii_lowercase().contains("connection: close"),
        "{got}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // Dripping: a byte every 200 ms never lets the body complete in time, though data keeps coming
    // (the deadline is for the whole body, not between bytes).
    let mut drip = connect(&app).await;
    drip.write_all(head.as_bytes()).await.expect("head");
    let (mut reader, mut writer) = drip.split();
    let send = async {
        for _ in 0..200 {
            if writer.write_all(b" ").await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let read = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&got).contains("body_timeout") {
                break;
            }
        }
        String::from_utf8_lossy(&got).to_string()
    };
    let got = tokio::select! {
        got = read => got,
        () = send => panic!("the dripping body (40 s) was never cut"),
    };
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    // The listener still serves, and the timeouts are counted.
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(text.contains("ifox_http_body_timeouts_total"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn past_the_connection_limit_a_new_connection_waits_until_one_closes() {
    let app = app(&[
        ("IFOX__HTTP__MAX_CONNECTIONS", "2"),
        ("IFOX__HTTP__HEADER_READ_TIMEOUT", "120s"),
    ])
    .await;
    // Two keep-alive connections, each answered once and then held open, idle.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = connect(&app).await;
        tcp.write_all(HEALTHZ).await.expect("request");
        let got = answer(&mut tcp, Duration::from_secs(30))
            .await
            .expect("served");
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        held.push(tcp);
    }
    // A third: the kernel completes the handshake, but ifox does not take it while both are open.
    let mut third = connect(&app).await;
    third.write_all(HEALTHZ).await.expect("request");
    assert_eq!(
        answer(&mut third, Duration::from_secs(2)).await,
        None,
        "not served while the limit is reached"
    );
    // One closes: the waiting connection is taken and served.
    drop(held.pop());
    let got = answer(&mut third, Duration::from_secs(30))
        .await
        .expect("served after a slot freed");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // The limit holds for every client, including the metrics scrape: free the slots first.
    drop(held);
    drop(third);
    let text = crate::support::eventually("a free slot", Duration::from_secs(30), || async {
        let res = app
            .client
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .ok()?;
        res.text().await.ok()
    })
    .await;
    assert!(
        text.contains(r#"ifox_http_connection_limit_reached_total{listener="main"}"#),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn after_max_requests_a_connection_is_closed_by_the_server() {
    let app = app(&[("IFOX__HTTP__MAX_REQUESTS_PER_CONNECTION", "2")]).await;
    let mut tcp = connect(&app).await;
    tcp.write_all(HEALTHZ).await.expect("first");
    let first = answer(&mut tcp, Duration::from_secs(30))
        .await
        .expect("first answer");
    assert!(
        !first.to_ascii_lowercase().contains("connection: close"),
        "{first}"
    );
    tcp.write_all(HEALTHZ).await.expect("second");
    let second = answer(&mut tcp, Duration::from_secs(30))
        .await
        .expect("second answer");
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(
        second.to_ascii_lowercase().contains("connection: close"),
        "{second}"
    );
    assert!(
        closed_by_server(&mut tcp, Duration::from_secs(30))
            .await
            .is_some()
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_on_their_own_listener_are_absent_from_the_main_one() {
    let app = app(&[("IFOX__HTTP__METRICS_LISTEN", "127.0.0.1:0")]).await;
    let metrics_base = app.metrics_base.clone().expect("a metrics listener");
    assert_ne!(metrics_base, app.base);
    let get = |url: String| {
        let client = app.client.clone();
        async move {
            let res = client.get(url).send().await.expect("get");
            (res.status(), res.text().await.unwrap_or_default())
        }
    };
    // Something to count first: one request on the main listener.
    assert_eq!(get(format!("{}/healthz", app.base)).await.0, StatusCode::OK);
    let (status, text) = get(format!("{metrics_base}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("ifox_"), "{text}");
    let (status, text) = get(format!("{}/metrics", app.base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(!text.contains("ifox_http"), "{text}");
    // The metrics listener serves nothing else.
    assert_eq!(
        get(format!("{metrics_base}/healthz")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(format!("{metrics_base}/api/v1/admin/orgs")).await.0,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}
