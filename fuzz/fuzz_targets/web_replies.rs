//! The harness's readers of the module's HTTP API replies on arbitrary bytes: the REST
//! `POST /command` reply (JSON, optional base64 response), the `GET /log` reply and the
//! WebSocket command stream's MessagePack reply. They never panic; a reply they accept
//! round-trips where the format allows (a command reply re-encoded as JSON reads back the same).
#![no_main]

use gecko_hil::channel::{cmdstream, rest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    // The status the body comes with: mostly 200, sometimes another.
    let status = if selector & 0x80 == 0 { 200 } else { u16::from(selector) * 3 };
    match selector & 3 {
        0 => {
            if let Ok((code, response)) = rest::parse_command_reply(status, body) {
                assert!(matches!(status, 200 | 400 | 500));
                // What was accepted reads back the same from a well-formed reply.
                let text = String::from_utf8_lossy(&response).into_owned();
                let again = serde_json::json!({ "id": 1, "code": code.0, "flags": 0, "response": text });
                let again = rest::parse_command_reply(200, again.to_string().as_bytes());
                assert_eq!(again.map(|(c, _)| c), Ok(code));
            }
        }
        1 => {
            if let Ok(lines) = rest::parse_log_reply(status, body) {
                assert!(lines.iter().all(|l| !l.ends_with('\n') && !l.ends_with('\r')));
            }
        }
        _ => {
            if let Ok(reply) = cmdstream::parse_reply(body) {
                let _ = reply.code.name();
            }
            // A message the channel builds is never taken for a reply.
            let line = String::from_utf8_lossy(body);
            let message = cmdstream::command_message(&line, Some(body), 7);
            assert!(cmdstream::parse_reply(&message).is_err());
        }
    }
});
