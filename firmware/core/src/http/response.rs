//! A response: status line, headers, `Content-Length`, `Connection: close` and the body.
//! Every body's length is known when it is written (files, JSON, error pages), so no
//! chunked encoding is needed.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A response to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new() }
    }

    /// A response with a body of this media type.
    pub fn with_body(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        let mut response = Self::new(status);
        response.header("Content-Type", content_type);
        response.body = body;
        response
    }

    /// A short plain-text body: the status line's reason (`404 Not Found`).
    pub fn plain(status: u16) -> Self {
        let text = format!("{status} {}", reason(status));
        Self::with_body(status, "text/plain", text.into_bytes())
    }

    pub fn header(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The bytes on the wire. The server closes every connection after one response, so
    /// it says so (`Connection: close`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            // A value never carries a line end into the head (header injection).
            out.extend(value.bytes().filter(|b| *b != b'\r' && *b != b'\n'));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(b"Connection: close\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// The reason phrase of a status.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_status_headers_length_and_body() {
        let mut r = Response::with_body(200, "application/json", b"{}".to_vec());
        r.header("Access-Control-Allow-Origin", "*");
        assert_eq!(
            String::from_utf8(r.encode()).expect("text"),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nAccess-Control-Allow-Origin: *\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
    }

    #[test]
    fn plain_bodies_name_the_status() {
        let r = Response::plain(404);
        assert_eq!(r.body, b"404 Not Found");
        assert!(r.encode().starts_with(b"HTTP/1.1 404 Not Found\r\n"));
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        let mut r = Response::new(401);
        r.header("WWW-Authenticate", "Basic realm=a\r\nX-Evil: 1");
        let text = String::from_utf8(r.encode()).expect("text");
        assert!(text.contains("WWW-Authenticate: Basic realm=aX-Evil: 1\r\n"), "{text}");
    }
}
