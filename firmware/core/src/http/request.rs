//! An HTTP/1.x request read from a connection's bytes: the head parsed by `httparse`, the
//! body framed by `Content-Length`.
//!
//! Caps (a client can grow nothing without bound):
//!
//! * the body: [`MAX_BODY`] bytes, the chapter's 4 KB request limit, which does not count the
//!   headers ("Request size is limited to 4 KBytes, not including headers");
//! * the head (request line and headers): [`MAX_HEAD`] bytes and [`MAX_HEADERS`] headers,
//!   against header floods (assumed: the chapter gives no figure).
//!
//! A body sent with `Transfer-Encoding` (chunked) is refused: the module needs its length up
//! front to hold it to the limit (assumed). Bytes after the body are ignored: a connection
//! carries one request (the chapter's REST procedure).

use alloc::string::String;
use alloc::vec::Vec;

/// Largest request body, bytes.
pub const MAX_BODY: usize = 4096;
/// Largest request head (request line and headers), bytes.
pub const MAX_HEAD: usize = 4096;
/// Most headers in a request.
pub const MAX_HEADERS: usize = 32;

/// The request method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Options,
    /// Any other token (`PUT`, `DELETE`, ...): the server answers 405.
    Other,
}

impl Method {
    fn parse(text: &str) -> Self {
        match text {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }
}

/// A whole request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The request target as sent (`/command/ver?x=1`), still percent-encoded.
    pub target: Vec<u8>,
    /// Headers in order; names in lower case.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The target without its query (`/command/ver`).
    pub fn path(&self) -> &[u8] {
        match self.target.iter().position(|b| *b == b'?') {
            Some(q) => &self.target[..q],
            None => &self.target,
        }
    }

    /// The first header named `name` (lower case), if any.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }
}

/// Why a request was refused; [`RequestError::status`] is the HTTP status it is answered
/// with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Not an HTTP/1.x request head, or a `Content-Length` that is not one number.
    Malformed,
    /// The head passed [`MAX_HEAD`] bytes.
    HeadTooLarge,
    /// More than [`MAX_HEADERS`] headers.
    TooManyHeaders,
    /// A body over [`MAX_BODY`] bytes.
    BodyTooLarge,
    /// A body with `Transfer-Encoding`.
    Unsupported,
}

impl RequestError {
    /// 400 for a malformed request (the chapter); the others are assumed: 431, 413, 501.
    pub fn status(self) -> u16 {
        match self {
            Self::Malformed => 400,
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            Self::BodyTooLarge => 413,
            Self::Unsupported => 501,
        }
    }
}

/// Reads one request from a connection's bytes as they come.
#[derive(Clone, Debug, Default)]
pub struct RequestReader {
    buf: Vec<u8>,
    /// The head once it is complete, and the body length it announced.
    head: Option<(Request, usize)>,
}

impl RequestReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether any byte of a request has arrived.
    pub fn started(&self) -> bool {
        !self.buf.is_empty() || self.head.is_some()
    }

    /// Takes more bytes; the request once it is whole. After an error or a whole request the
    /// reader is done: feed it no more.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Request>, RequestError> {
        match &mut self.head {
            None => {
                // Never hold more than a head's worth while the head is incomplete.
                let room = (MAX_HEAD + 1).saturating_sub(self.buf.len());
                self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
                let Some((request, used, length)) = parse_head(&self.buf)? else {
                    return Ok(None);
                };
                let body = self.buf.split_off(used.min(self.buf.len()));
                self.buf = body;
                // Bytes beyond the whole request are ignored.
                let rest = &bytes[bytes.len().min(room)..];
                self.head = Some((request, length));
                self.buf.extend_from_slice(
                    &rest[..rest.len().min(length.saturating_sub(self.buf.len()))],
                );
            }
            Some((_, length)) => {
                let want = length.saturating_sub(self.buf.len());
                self.buf.extend_from_slice(&bytes[..bytes.len().min(want)]);
            }
        }
        match &mut self.head {
            Some((request, length)) if self.buf.len() >= *length => {
                let mut request = core::mem::replace(request, empty());
                self.buf.truncate(*length);
                request.body = core::mem::take(&mut self.buf);
                Ok(Some(request))
            }
            _ => Ok(None),
        }
    }
}

fn empty() -> Request {
    Request { method: Method::Other, target: Vec::new(), headers: Vec::new(), body: Vec::new() }
}

/// The head, how many bytes it took and the body length it announced; `None` while it is
/// incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize, usize)>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let used = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(used)) if used <= MAX_HEAD => used,
        Ok(_) if buf.len() > MAX_HEAD => return Err(RequestError::HeadTooLarge),
        Ok(httparse::Status::Complete(_)) => return Err(RequestError::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooManyHeaders),
        Err(_) => return Err(RequestError::Malformed),
    };
    let method = Method::parse(parsed.method.unwrap_or(""));
    let target = parsed.path.unwrap_or("").as_bytes().to_vec();
    let mut length: Option<usize> = None;
    let mut list = Vec::new();
    for h in parsed.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        match name.as_str() {
            "content-length" => {
                let value = parse_length(h.value).ok_or(RequestError::Malformed)?;
                if length.is_some_and(|l| l != value) {
                    return Err(RequestError::Malformed);
                }
                length = Some(value);
            }
            "transfer-encoding" => return Err(RequestError::Unsupported),
            _ => {}
        }
        list.push((name, h.value.to_vec()));
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY {
        return Err(RequestError::BodyTooLarge);
    }
    Ok(Some((Request { method, target, headers: list, body: Vec::new() }, used, length)))
}

/// A `Content-Length` value: decimal digits only (a value too large for `usize` counts as
/// too large a body, not as malformed).
fn parse_length(value: &[u8]) -> Option<usize> {
    let value = value.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        value
            .iter()
            .try_fold(0usize, |n, d| n.checked_mul(10)?.checked_add(usize::from(d - b'0')))
            .unwrap_or(usize::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;
    use rstest::rstest;

    fn read_all(bytes: &[u8]) -> Result<Option<Request>, RequestError> {
        RequestReader::new().feed(bytes)
    }

    /// The same bytes fed one at a time give the same result.
    fn read_bytewise(bytes: &[u8]) -> Result<Option<Request>, RequestError> {
        let mut r = RequestReader::new();
        for b in bytes {
            if let Some(req) = r.feed(core::slice::from_ref(b))? {
                return Ok(Some(req));
            }
        }
        Ok(None)
    }

    #[rstest]
    #[case(b"GET / HTTP/1.1\r\nHost: m\r\n\r\n".as_slice(), Method::Get, "/", "")]
    #[case(b"GET /command/ver HTTP/1.0\r\n\r\n".as_slice(), Method::Get, "/command/ver", "")]
    #[case(b"POST /command HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".as_slice(), Method::Post, "/command", "hello")]
    #[case(b"POST /command HTTP/1.1\r\ncontent-length: 2\r\n\r\nhello".as_slice(), Method::Post, "/command", "he")]
    #[case(b"OPTIONS /command HTTP/1.1\r\n\r\n".as_slice(), Method::Options, "/command", "")]
    #[case(b"DELETE /x HTTP/1.1\r\n\r\n".as_slice(), Method::Other, "/x", "")]
    #[case(b"GET /log?x=1 HTTP/1.1\r\n\r\n".as_slice(), Method::Get, "/log", "")]
    fn whole_requests(
        #[case] bytes: &[u8],
        #[case] method: Method,
        #[case] path: &str,
        #[case] body: &str,
    ) {
        for got in [read_all(bytes), read_bytewise(bytes)] {
            let req = got.expect("valid").expect("whole");
            assert_eq!(req.method, method);
            assert_eq!(req.path(), path.as_bytes());
            assert_eq!(req.body, body.as_bytes());
        }
    }

    #[rstest]
    #[case(b"GET / HTTP/1.1\r\nHost: m\r\n".as_slice())]
    #[case(b"GET / HTT".as_slice())]
    #[case(b"POST /command HTTP/1.1\r\nContent-Length: 10\r\n\r\nhello".as_slice())]
    #[case(b"".as_slice())]
    fn incomplete_requests_wait(#[case] bytes: &[u8]) {
        assert_eq!(read_all(bytes), Ok(None));
        assert_eq!(read_bytewise(bytes), Ok(None));
    }

    #[rstest]
    #[case(b"garbage\r\n\r\n".as_slice(), RequestError::Malformed)]
    #[case(b"GET / HTTP/2.0\r\n\r\n".as_slice(), RequestError::Malformed)]
    #[case(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n".as_slice(), RequestError::Malformed)]
    #[case(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n".as_slice(), RequestError::Malformed)]
    #[case(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".as_slice(), RequestError::Malformed)]
    #[case(b"POST / HTTP/1.1\r\nContent-Length: 4097\r\n\r\n".as_slice(), RequestError::BodyTooLarge)]
    #[case(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".as_slice(), RequestError::BodyTooLarge)]
    #[case(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".as_slice(), RequestError::Unsupported)]
    #[case(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n".as_slice(), RequestError::Malformed)]
    fn refused_requests(#[case] bytes: &[u8], #[case] want: RequestError) {
        assert_eq!(read_all(bytes), Err(want));
        assert_eq!(read_bytewise(bytes), Err(want));
    }

    #[test]
    fn a_body_of_exactly_the_limit_is_taken() {
        let body = vec![b'a'; MAX_BODY];
        let mut bytes =
            format!("POST /command HTTP/1.1\r\nContent-Length: {MAX_BODY}\r\n\r\n").into_bytes();
        bytes.extend_from_slice(&body);
        assert_eq!(read_all(&bytes).expect("valid").expect("whole").body, body);
    }

    #[test]
    fn a_header_flood_is_refused() {
        let mut head = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            head.push_str(&format!("X-{i}: y\r\n"));
        }
        head.push_str("\r\n");
        assert_eq!(read_all(head.as_bytes()), Err(RequestError::TooManyHeaders));
    }

    #[test]
    fn an_endless_head_is_refused_and_holds_no_more_than_the_cap() {
        let mut r = RequestReader::new();
        assert_eq!(r.feed(b"GET / HTTP/1.1\r\nX-Long: "), Ok(None));
        let chunk = vec![b'a'; 1000];
        let mut result = Ok(None);
        for _ in 0..10 {
            result = r.feed(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(RequestError::HeadTooLarge));
        assert!(r.buf.len() <= MAX_HEAD + 1);
    }

    #[test]
    fn headers_are_kept_with_lower_case_names() {
        let req = read_all(b"GET / HTTP/1.1\r\nOrigin: http://a\r\nAuthorization: Basic x\r\n\r\n")
            .expect("valid")
            .expect("whole");
        assert_eq!(req.header("origin"), Some(b"http://a".as_slice()));
        assert_eq!(req.header("authorization"), Some(b"Basic x".as_slice()));
        assert_eq!(req.header("cookie"), None);
    }

    #[rstest]
    #[case(400, RequestError::Malformed)]
    #[case(431, RequestError::HeadTooLarge)]
    #[case(431, RequestError::TooManyHeaders)]
    #[case(413, RequestError::BodyTooLarge)]
    #[case(501, RequestError::Unsupported)]
    fn statuses(#[case] status: u16, #[case] error: RequestError) {
        assert_eq!(error.status(), status);
    }
}
