//! Arbitrary bytes as a `POST /command` body and as JSON text.
//!
//! Checked:
//! * `json::parse` and `CommandRequest::parse` never panic (deep nesting included);
//! * what the response writer makes of any command's bytes is JSON the reader takes, and a
//!   base64 response decodes back to the same bytes.
#![no_main]

use gecko_core::http::auth::base64_decode;
use gecko_core::http::json::{self, CommandRequest, Json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = json::parse(data);
    let _ = CommandRequest::parse(data);
    for base64 in [false, true] {
        let text = json::command_response(1, 0, data, base64);
        let Ok(Json::Object(fields)) = json::parse(text.as_bytes()) else {
            panic!("the writer wrote what the reader refuses: {text}");
        };
        if base64 {
            let Some((_, Json::String(response))) = fields.iter().find(|(k, _)| k == "response")
            else {
                panic!("no response in {text}");
            };
            assert_eq!(base64_decode(response.as_bytes()).as_deref(), Some(data));
        }
    }
});
