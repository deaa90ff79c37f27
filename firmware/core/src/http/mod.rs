//! The HTTP server's codecs: pure functions and small state machines over bytes, with no
//! knowledge of the module (the server part is `module/http_server.rs`).
//!
//! * [`request`]: an HTTP/1.1 request, head (`httparse`) and body (by `Content-Length`),
//!   with the caps that keep a hostile client from growing it without bound.
//! * [`response`]: the status line, headers and body of a response.
//! * [`url`]: percent-decoding of a request path.
//! * [`json`]: a strict JSON reader and writer, and the REST API's command request and
//!   response (`{flags, command, data}` → `{id, code, flags, response}`).
//! * [`whitelist`]: `http_whitelist.csv`, the API calls that need no authorization.
//! * [`auth`]: HTTP Basic credentials.
//! * [`content_type`]: the media type of a file by its extension.

pub mod auth;
pub mod json;
pub mod request;
pub mod response;
pub mod url;
pub mod whitelist;

/// The media type a file is served with, by the extension of its name (`text/html` for
/// `x.html`); unknown extensions are `application/octet-stream`.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" => "application/javascript",
        "json" => "application/json",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "xml" => "application/xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("webapp/index.html", "text/html")]
    #[case("a.HTM", "text/html")]
    #[case("x.js", "application/javascript")]
    #[case("style.css", "text/css")]
    #[case("data.json", "application/json")]
    #[case("logo.png", "image/png")]
    #[case("p.jpeg", "image/jpeg")]
    #[case("i.svg", "image/svg+xml")]
    #[case("http_whitelist.csv", "text/csv")]
    #[case("x.js.gz", "application/gzip")]
    #[case("noext", "application/octet-stream")]
    #[case("a.weird", "application/octet-stream")]
    fn content_types(#[case] name: &str, #[case] want: &str) {
        assert_eq!(content_type(name), want);
    }
}
