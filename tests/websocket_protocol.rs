//! RFC 6455 on every path out: whatever a client sends (close frames of any
//! kind, bad UTF-8, protocol violations, a half-closed socket), the server
//! ends the connection with a close frame whose code says why, then a clean
//! TCP end. Frames are written by hand over a raw socket.

mod support;

use serde_json::Value;
use support::raw_ws::{Frame, RawWs, BINARY, CLOSE, CONTINUATION, PING, TEXT};
use support::{example, TestServer};

/// Where a connection is when the test's frames arrive.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// `/ws/publish`, right after the handshake.
    Publisher,
    /// `/ws/subscribe`, before the filter message.
    BeforeFilter,
    /// `/ws/subscribe`, subscribed to everything.
    Subscribed,
}

const PHASES: [Phase; 3] = [Phase::Publisher, Phase::BeforeFilter, Phase::Subscribed];

async fn open(server: &TestServer, phase: Phase) -> RawWs {
    let addr = server.running().local_addr();
    match phase {
        Phase::Publisher => RawWs::connect(addr, "/ws/publish", &[]).await,
        Phase::BeforeFilter => RawWs::connect(addr, "/ws/subscribe", &[]).await,
        Phase::Subscribed => {
            let mut ws = RawWs::connect(addr, "/ws/subscribe", &[]).await;
            ws.send(&[Frame::text("{}")]).await;
            let ack: Value = serde_json::from_str(&ws.text().await).expect("JSON ack");
            assert_eq!(ack["status"], "subscribed", "{ack}");
            ws
        }
    }
}

fn event_text() -> String {
    example("timer_tick").to_string()
}

/// Sends `frames` in one write in `phase` and returns the close code received.
async fn close_code_after(server: &TestServer, phase: Phase, frames: &[Frame]) -> Option<u16> {
    let mut ws = open(server, phase).await;
    ws.send(frames).await;
    ws.close_code().await
}

#[tokio::test]
async fn a_client_close_is_answered_with_its_code_or_1002_when_that_code_may_not_be_sent() {
    let server = TestServer::start(&[]).await;
    let cases: [(Frame, Option<u16>); 13] = [
        (Frame::close(1000), Some(1000)),
        (Frame::close(1001), Some(1001)),
        (Frame::close(1011), Some(1011)),
        (Frame::close(3000), Some(3000)),
        (Frame::close(4999), Some(4999)),
        // Codes no endpoint may send: answered with 1002.
        (Frame::close(0), Some(1002)),
        (Frame::close(999), Some(1002)),
        (Frame::close(1005), Some(1002)),
        (Frame::close(1006), Some(1002)),
        (Frame::close(1016), Some(1002)),
        (Frame::close(5000), Some(1002)),
        // A one-byte close payload is malformed.
        (Frame::new(CLOSE, vec![3]), Some(1002)),
        // A close without a code is echoed without one.
        (Frame::new(CLOSE, Vec::new()), None),
    ];
    for phase in PHASES {
        for (frame, expected) in &cases {
            assert_eq!(
                close_code_after(&server, phase, std::slice::from_ref(frame)).await,
                *expected,
                "{phase:?}: {frame:?}"
            );
        }
        let mut bad_reason = 1000u16.to_be_bytes().to_vec();
        bad_reason.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(
            close_code_after(&server, phase, &[Frame::new(CLOSE, bad_reason)]).await,
            Some(1007),
            "{phase:?}: a close reason that is not UTF-8"
        );
    }
}

#[tokio::test]
async fn a_close_is_answered_after_data_in_the_same_write_mid_message_or_with_data_after_it() {
    let server = TestServer::start(&[]).await;
    for phase in PHASES {
        let cases = [
            vec![Frame::text(event_text()), Frame::close(1000)],
            vec![
                Frame::text(&b"{\"event_type\":"[..]).unfinished(),
                Frame::close(1000),
            ],
            vec![Frame::close(1000), Frame::text(event_text())],
            vec![Frame::close(1000), Frame::new(BINARY, vec![0; 300_000])],
        ];
        for frames in cases {
            assert_eq!(
                close_code_after(&server, phase, &frames).await,
                Some(1000),
                "{phase:?}: {frames:?}"
            );
        }
    }
}

#[tokio::test]
async fn text_that_is_not_utf8_closes_with_1007_first_or_later_whole_or_fragmented() {
    let server = TestServer::start(&[]).await;
    let bad = b"{\"event_type\":\"timer_tick\xff\"}".to_vec();
    for phase in PHASES {
        assert_eq!(
            close_code_after(&server, phase, &[Frame::text(bad.clone())]).await,
            Some(1007),
            "{phase:?}"
        );
        let split = [
            Frame::text(&b"{\"a\":\"\xe2"[..]).unfinished(),
            Frame::new(CONTINUATION, &b"\x28\"}"[..]),
        ];
        assert_eq!(
            close_code_after(&server, phase, &split).await,
            Some(1007),
            "{phase:?}: split across fragments"
        );
    }
    // After good messages, on the publisher: their replies, then 1007.
    let mut ws = open(&server, Phase::Publisher).await;
    ws.send(&[Frame::text(event_text())]).await;
    let reply: Value = serde_json::from_str(&ws.text().await).expect("JSON reply");
    assert_eq!(reply["status"], "ok", "{reply}");
    ws.send(&[Frame::text(bad)]).await;
    assert_eq!(ws.close_code().await, Some(1007));
}

#[tokio::test]
async fn protocol_violations_close_with_1002() {
    let server = TestServer::start(&[]).await;
    let unmasked = Frame {
        masked: false,
        ..Frame::text(event_text())
    };
    let reserved_bits = |rsv| Frame {
        rsv,
        ..Frame::text(event_text())
    };
    let cases: Vec<(&str, Vec<Frame>)> = vec![
        ("an unmasked frame", vec![unmasked]),
        ("reserved data opcode 3", vec![Frame::new(0x3, "x")]),
        ("reserved control opcode 11", vec![Frame::new(0xb, "")]),
        (
            "a continuation without a start",
            vec![Frame::new(CONTINUATION, "x")],
        ),
        (
            "a new data frame inside a fragmented message",
            vec![Frame::text("{").unfinished(), Frame::text("{}")],
        ),
        (
            "a control frame over 125 bytes",
            vec![Frame::new(PING, vec![b'p'; 126])],
        ),
        (
            "a fragmented control frame",
            vec![Frame::new(PING, "p").unfinished()],
        ),
        ("reserved bit 1", vec![reserved_bits(0b100)]),
        ("reserved bit 3", vec![reserved_bits(0b001)]),
    ];
    for phase in PHASES {
        for (what, frames) in &cases {
            assert_eq!(
                close_code_after(&server, phase, frames).await,
                Some(1002),
                "{phase:?}: {what}"
            );
        }
    }
}

#[tokio::test]
async fn a_publisher_that_half_closes_gets_every_reply_then_1000() {
    let server = TestServer::start(&[]).await;
    let mut ws = open(&server, Phase::Publisher).await;
    let frames: Vec<Frame> = (0..20).map(|_| Frame::text(event_text())).collect();
    ws.send(&frames).await;
    ws.half_close().await;
    for _ in 0..20 {
        let reply: Value = serde_json::from_str(&ws.text().await).expect("JSON reply");
        assert_eq!(reply["status"], "ok", "{reply}");
    }
    assert_eq!(ws.close_code().await, Some(1000));
    assert_eq!(server.get("/api/v1/stats").await.1["total_events"], 20);

    let mut subscriber = open(&server, Phase::Subscribed).await;
    subscriber.half_close().await;
    assert_eq!(subscriber.close_code().await, Some(1000));
}

#[tokio::test]
async fn refusals_and_oversized_messages_end_cleanly_even_with_frames_already_sent() {
    let server = TestServer::start(&[
        ("REQUIRE_AUTH", "true"),
        ("API_KEY", "k-raw"),
        ("MAX_WS_MESSAGE_BYTES", "50"),
    ])
    .await;
    let addr = server.running().local_addr();
    for path in ["/ws/publish", "/ws/subscribe"] {
        let mut ws = RawWs::connect(addr, path, &[]).await;
        ws.send(&[Frame::text("{}"), Frame::text(event_text())])
            .await;
        assert_eq!(ws.close_code().await, Some(4001), "{path}");

        // Far over the limit (more than twice it, and over 64 KiB): 1009.
        let mut ws = RawWs::connect(addr, &format!("{path}?api_key=k-raw"), &[]).await;
        ws.send(&[Frame::text(vec![b' '; 70_000])]).await;
        assert_eq!(ws.close_code().await, Some(1009), "{path}");
    }
    // Text frames are the protocol; binary ones are read the same way.
    let mut ws = RawWs::connect(addr, "/ws/subscribe?api_key=k-raw", &[]).await;
    ws.send(&[Frame::new(BINARY, "{}")]).await;
    let ack: Value = serde_json::from_str(&ws.text().await).expect("JSON ack");
    assert_eq!(ack["status"], "subscribed");
    ws.send(&[Frame::new(TEXT, "not json"), Frame::close(1000)])
        .await;
    assert_eq!(ws.close_code().await, Some(1000));
}
