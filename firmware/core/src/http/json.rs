//! A strict JSON reader (RFC 8259, nesting at most [`MAX_DEPTH`] deep), a writer for strings,
//! and the REST API's messages: the command request `{flags, command, data}` and the
//! response `{id, code, flags, response}` (chapter, "Command Request/Response"), and the log
//! response `{"logs": [...]}`.
//!
//! Decisions (assumed; the chapter gives the fields only): `command` is required, `flags`
//! and `data` are optional (0 and empty); other fields are ignored; a field given twice,
//! flags outside 0x07, a `flags` that is not a whole number 0-255, and base64 that does not
//! decode are malformed requests. The response's text is written as JSON text; bytes that
//! are not UTF-8 are written as `\u00XX` (their Latin-1 reading): a client that needs the
//! exact bytes asks for base64 (flag 0x02).

use super::auth::{base64_decode, base64_encode};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Deepest nesting of arrays and objects the reader takes.
pub const MAX_DEPTH: usize = 16;

/// A JSON value. Numbers keep their text (the API needs only small whole numbers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Where the text stopped being JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonError {
    pub at: usize,
}

/// Parses one JSON value, with nothing but white space around it.
pub fn parse(text: &[u8]) -> Result<Json, JsonError> {
    let mut p = Parser { text, at: 0 };
    p.ws();
    let value = p.value(0)?;
    p.ws();
    if p.at != text.len() {
        return Err(p.err());
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn err(&self) -> JsonError {
        JsonError { at: self.at }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }

    fn word(&mut self, word: &[u8], value: Json) -> Result<Json, JsonError> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.err())
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.word(b"true", Json::Bool(true)),
            Some(b'f') => self.word(b"false", Json::Bool(false)),
            Some(b'n') => self.word(b"null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err()),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err());
        }
        self.eat(b'{')?;
        let mut fields = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Json::Object(fields));
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let value = self.value(depth)?;
            fields.push((key, value));
            self.ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Json::Object(fields));
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err());
        }
        self.eat(b'[')?;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn number(&mut self) -> Result<Json, JsonError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err()),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err());
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.err());
            }
            self.digits();
        }
        let text = core::str::from_utf8(&self.text[start..self.at]).map_err(|_| self.err())?;
        Ok(Json::Number(text.into()))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.text.get(self.at..self.at + 4).ok_or(self.err())?;
        let text = core::str::from_utf8(digits).map_err(|_| self.err())?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.err());
        }
        self.at += 4;
        u32::from_str_radix(text, 16).map_err(|_| self.err())
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.at;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            let run = core::str::from_utf8(&self.text[start..self.at])
                .map_err(|e| JsonError { at: start + e.valid_up_to() })?;
            out.push_str(run);
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.at += 1;
                            let c = self.unicode()?;
                            out.push(c);
                            continue;
                        }
                        _ => return Err(self.err()),
                    };
                    self.at += 1;
                    out.push(c);
                }
                // A control character or the end of the text.
                _ => return Err(self.err()),
            }
        }
    }

    /// The code point of `\uXXXX` (a surrogate pair: both halves).
    fn unicode(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&first) {
            if !self.text[self.at..].starts_with(b"\\u") {
                return Err(self.err());
            }
            self.at += 2;
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(self.err());
            }
            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else {
            first
        };
        char::from_u32(code).ok_or(self.err())
    }
}

/// Writes `bytes` as a JSON string (quotes included) onto `out`: UTF-8 text as it is with the
/// needed escapes, any other byte as `\u00XX`.
pub fn write_string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\u{:04x}", b);
        }
    }
    out.push('"');
}

/// Request flag: `command` is base64.
pub const FLAG_COMMAND_BASE64: u8 = 0x01;
/// Request flag: answer with the response in base64.
pub const FLAG_RESPONSE_BASE64: u8 = 0x02;
/// Request flag: `data` is base64.
pub const FLAG_DATA_BASE64: u8 = 0x04;
/// Response flag: `response` is base64.
pub const RESPONSE_FLAG_BASE64: u8 = 0x01;

/// A `POST /command` body, decoded: the command line and its data as bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRequest {
    pub flags: u8,
    pub command: Vec<u8>,
    pub data: Vec<u8>,
}

/// Why a `POST /command` body is malformed (answered 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandRequestError {
    NotJson(JsonError),
    NotAnObject,
    /// A field given twice.
    Duplicate,
    NoCommand,
    /// A field of the wrong type (`flags` not a whole number 0-255, `command` or `data` not
    /// a string).
    BadField,
    /// Flag bits the API does not define.
    UnknownFlags(u8),
    /// `command` or `data` flagged base64 but not base64.
    BadBase64,
}

impl CommandRequest {
    pub fn parse(body: &[u8]) -> Result<Self, CommandRequestError> {
        let json = parse(body).map_err(CommandRequestError::NotJson)?;
        let Json::Object(fields) = json else { return Err(CommandRequestError::NotAnObject) };
        for (i, (key, _)) in fields.iter().enumerate() {
            if fields[..i].iter().any(|(k, _)| k == key) {
                return Err(CommandRequestError::Duplicate);
            }
        }
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let flags = match field("flags") {
            None => 0,
            Some(Json::Number(n)) => n.parse::<u8>().map_err(|_| CommandRequestError::BadField)?,
            Some(_) => return Err(CommandRequestError::BadField),
        };
        if flags & !(FLAG_COMMAND_BASE64 | FLAG_RESPONSE_BASE64 | FLAG_DATA_BASE64) != 0 {
            return Err(CommandRequestError::UnknownFlags(flags));
        }
        let text = |name: &str| match field(name) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.as_bytes().to_vec())),
            Some(_) => Err(CommandRequestError::BadField),
        };
        let decode = |bytes: Vec<u8>, base64: bool| {
            if base64 {
                base64_decode(&bytes).ok_or(CommandRequestError::BadBase64)
            } else {
                Ok(bytes)
            }
        };
        let command = text("command")?.ok_or(CommandRequestError::NoCommand)?;
        let command = decode(command, flags & FLAG_COMMAND_BASE64 != 0)?;
        let data = decode(text("data")?.unwrap_or_default(), flags & FLAG_DATA_BASE64 != 0)?;
        Ok(Self { flags, command, data })
    }
}

/// The command response body: `{"id":..,"code":..,"flags":..,"response":".."}`; with
/// `base64` the response is base64 and flag 0x01 says so.
pub fn command_response(id: u32, code: u8, response: &[u8], base64: bool) -> String {
    let mut out = String::new();
    let flags = if base64 { RESPONSE_FLAG_BASE64 } else { 0 };
    let _ = write!(out, "{{\"id\":{id},\"code\":{code},\"flags\":{flags},\"response\":");
    if base64 {
        write_string(&mut out, base64_encode(response).as_bytes());
    } else {
        write_string(&mut out, response);
    }
    out.push('}');
    out
}

/// The log response body: `{"logs":["..",..]}`.
pub fn logs_response<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::from("{\"logs\":[");
    for (i, line) in lines.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(&mut out, line.as_bytes());
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use rstest::rstest;

    fn s(text: &str) -> Json {
        Json::String(text.to_string())
    }

    #[rstest]
    #[case("null", Json::Null)]
    #[case(" true ", Json::Bool(true))]
    #[case("false", Json::Bool(false))]
    #[case("0", Json::Number("0".into()))]
    #[case("-12.5e+3", Json::Number("-12.5e+3".into()))]
    #[case(r#""a\"b\\c\/\n\u0041\ud83d\ude00""#, s("a\"b\\c/\nA\u{1F600}"))]
    #[case("[]", Json::Array(vec![]))]
    #[case("[1, [2]]", Json::Array(vec![Json::Number("1".into()), Json::Array(vec![Json::Number("2".into())])]))]
    #[case(r#"{"a": {}, "b": "x"}"#, Json::Object(vec![("a".into(), Json::Object(vec![])), ("b".into(), s("x"))]))]
    #[case("\"é\"", s("é"))]
    fn reads(#[case] text: &str, #[case] want: Json) {
        assert_eq!(parse(text.as_bytes()), Ok(want));
    }

    #[rstest]
    #[case("")]
    #[case("{")]
    #[case("{\"a\"}")]
    #[case("{\"a\":1,}")]
    #[case("[1,]")]
    #[case("01")]
    #[case("1.")]
    #[case("-")]
    #[case("1e")]
    #[case("tru")]
    #[case("\"abc")]
    #[case("\"a\nb\"")]
    #[case(r#""\x""#)]
    #[case(r#""\u12""#)]
    #[case(r#""\ud83d""#)]
    #[case(r#""\ud83d\u0041""#)]
    #[case("{} {}")]
    #[case("{'a': 1}")]
    #[case("[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]")]
    fn refuses(#[case] text: &str) {
        assert!(parse(text.as_bytes()).is_err(), "{text}");
    }

    #[test]
    fn refuses_bytes_that_are_not_utf8() {
        assert!(parse(b"\"\xff\"").is_err());
    }

    #[rstest]
    #[case(r#"{"flags":0,"command":"ver","data":""}"#, 0, "ver", "")]
    #[case(r#"{"command":"ver"}"#, 0, "ver", "")]
    #[case(r#"{"flags":1,"command":"dmVy"}"#, 1, "ver", "")]
    #[case(r#"{"flags":2,"command":"ver"}"#, 2, "ver", "")]
    #[case(
        r#"{"flags":4,"command":"stream_write 0 5","data":"aGVsbG8="}"#,
        4,
        "stream_write 0 5",
        "hello"
    )]
    #[case(r#"{"flags":7,"command":"dmVy","data":"aGk="}"#, 7, "ver", "hi")]
    #[case(r#"{"command":"x","extra":[1,2]}"#, 0, "x", "")]
    fn command_requests(
        #[case] body: &str,
        #[case] flags: u8,
        #[case] command: &str,
        #[case] data: &str,
    ) {
        let want = CommandRequest { flags, command: command.into(), data: data.into() };
        assert_eq!(CommandRequest::parse(body.as_bytes()), Ok(want));
    }

    #[rstest]
    #[case(r#"{"flags":0,"command":"ver""#, "NotJson")]
    #[case(r#"["ver"]"#, "NotAnObject")]
    #[case(r#"{"flags":0}"#, "NoCommand")]
    #[case(r#"{"command":"a","command":"b"}"#, "Duplicate")]
    #[case(r#"{"flags":"1","command":"ver"}"#, "BadField")]
    #[case(r#"{"flags":1.5,"command":"ver"}"#, "BadField")]
    #[case(r#"{"flags":-1,"command":"ver"}"#, "BadField")]
    #[case(r#"{"flags":256,"command":"ver"}"#, "BadField")]
    #[case(r#"{"command":5}"#, "BadField")]
    #[case(r#"{"command":"ver","data":null}"#, "BadField")]
    #[case(r#"{"flags":8,"command":"ver"}"#, "UnknownFlags")]
    #[case(r#"{"flags":1,"command":"not base64!"}"#, "BadBase64")]
    #[case(r#"{"flags":4,"command":"ver","data":"@@"}"#, "BadBase64")]
    fn malformed_command_requests(#[case] body: &str, #[case] kind: &str) {
        let err = CommandRequest::parse(body.as_bytes()).expect_err(body);
        assert!(alloc::format!("{err:?}").starts_with(kind), "{body}: {err:?}");
    }

    #[rstest]
    #[case(1, 0, b"4.2.0\r\n".as_slice(), false, r#"{"id":1,"code":0,"flags":0,"response":"4.2.0\r\n"}"#)]
    #[case(7, 3, b"Unknown command\r\n".as_slice(), false, r#"{"id":7,"code":3,"flags":0,"response":"Unknown command\r\n"}"#)]
    #[case(2, 0, b"hi".as_slice(), true, r#"{"id":2,"code":0,"flags":1,"response":"aGk="}"#)]
    #[case(3, 0, b"q\"\\\x01\xff".as_slice(), false, r#"{"id":3,"code":0,"flags":0,"response":"q\"\\\u0001\u00ff"}"#)]
    fn command_responses(
        #[case] id: u32,
        #[case] code: u8,
        #[case] response: &[u8],
        #[case] base64: bool,
        #[case] want: &str,
    ) {
        let got = command_response(id, code, response, base64);
        assert_eq!(got, want);
        assert!(parse(got.as_bytes()).is_ok());
    }

    #[test]
    fn log_responses() {
        assert_eq!(logs_response([].into_iter()), r#"{"logs":[]}"#);
        assert_eq!(
            logs_response(["[Ready]", "a\"b"].into_iter()),
            r#"{"logs":["[Ready]","a\"b"]}"#
        );
    }
}
