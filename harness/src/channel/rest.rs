//! The REST transport: commands as `POST /command` to the module's HTTP server, log lines by
//! polling `GET /log` (chapter, "HTTP Server with RESTful API").
//!
//! One request per command, as the chapter's procedure has it (open, POST, response, close):
//! the client keeps no idle connection. The command goes as JSON `{flags, command, data}`;
//! `data` is base64 with flag 0x04 when it is not UTF-8; flag 0x02 asks for the response in
//! base64, which the reply marks with its own flag 0x01. After each command the channel
//! fetches `/log` once: the log lines the module buffered since the previous fetch (what the
//! command printed, and whatever no command caused) belong to that reply, as inline log lines
//! read while a command runs belong to its reply on the serial console.
//!
//! The module may live in a lab network namespace. The blocking client runs its requests on a
//! runtime thread it spawns when it is built; a thread inherits the network namespace of the
//! thread that spawns it, so the client is built on a thread that entered the namespace, and
//! every socket it opens later is made there, whichever thread calls it.

use super::{Channel, ChannelError, ConsoleFormat, LogLine, RawLink, Reply, Request, Timing};
use crate::code::ResultCode;
use crate::transport::Transport;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Request flag: the `command` field is base64.
pub const FLAG_COMMAND_BASE64: u8 = 0x01;
/// Request flag: answer with the response in base64.
pub const FLAG_RESPONSE_BASE64: u8 = 0x02;
/// Request flag: the `data` field is base64.
pub const FLAG_DATA_BASE64: u8 = 0x04;
/// Reply flag: the `response` field is base64.
pub const REPLY_FLAG_BASE64: u8 = 0x01;

/// HTTP Basic credentials (`http.server.username` / `password`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Where a module's HTTP server is and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget {
    pub addr: SocketAddrV4,
    pub credentials: Option<Credentials>,
    /// The network namespace the module is in (`/run/netns/<lab>`); `None`: this process's.
    pub netns: Option<PathBuf>,
}

impl HttpTarget {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn link(&self) -> String {
        match &self.netns {
            Some(ns) => format!("http://{} (in {})", self.addr, ns.display()),
            None => format!("http://{}", self.addr),
        }
    }
}

/// An HTTP client for one module: the command and log requests, sockets in the module's
/// namespace.
#[derive(Debug)]
pub struct HttpClient {
    client: reqwest::blocking::Client,
    target: HttpTarget,
}

impl HttpClient {
    /// Builds the client (inside `target.netns` when given).
    pub fn new(target: HttpTarget) -> Result<Self, ChannelError> {
        let build = || {
            reqwest::blocking::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(5))
                .build()
        };
        let built = match &target.netns {
            Some(ns) => crate::lab::netns::run_in_netns(ns, build).map_err(|e| {
                ChannelError::Link { link: target.link(), source: std::io::Error::other(e) }
            })?,
            None => build(),
        };
        let client = built.map_err(|e| ChannelError::Link {
            link: target.link(),
            source: std::io::Error::other(e),
        })?;
        Ok(Self { client, target })
    }

    pub fn target(&self) -> &HttpTarget {
        &self.target
    }

    fn request(
        &self,
        builder: reqwest::blocking::RequestBuilder,
        timeout: Duration,
    ) -> reqwest::blocking::RequestBuilder {
        let builder = builder.timeout(timeout.max(Duration::from_millis(1)));
        match &self.target.credentials {
            Some(c) => builder.basic_auth(&c.username, Some(&c.password)),
            None => builder,
        }
    }

    /// Sends `body` as `POST /command`; the HTTP status, the time the headers came and the
    /// body.
    pub fn post_command(
        &self,
        command: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(u16, Duration, Vec<u8>), ChannelError> {
        let sent = Instant::now();
        let builder = self
            .client
            .post(self.target.url("/command"))
            .header("content-type", "application/json")
            .body(body);
        let response = self
            .request(builder, timeout)
            .send()
            .map_err(|e| self.error(command, &e, sent.elapsed()))?;
        let headers = sent.elapsed();
        let status = response.status().as_u16();
        let bytes = response.bytes().map_err(|e| self.error(command, &e, sent.elapsed()))?;
        Ok((status, headers, bytes.to_vec()))
    }

    /// Fetches `GET /log`: the log lines the module buffered since the last fetch.
    pub fn fetch_logs(&self, timeout: Duration) -> Result<Vec<String>, ChannelError> {
        let what = "GET /log";
        let sent = Instant::now();
        let builder = self.client.get(self.target.url("/log"));
        let response = self
            .request(builder, timeout)
            .send()
            .map_err(|e| self.error(what, &e, sent.elapsed()))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().map_err(|e| self.error(what, &e, sent.elapsed()))?;
        parse_log_reply(status, &bytes).map_err(|reason| ChannelError::Malformed {
            command: what.to_string(),
            reason,
            bytes: super::escape_bytes(&bytes),
        })
    }

    /// A failed request as a channel error: no answer in time is the module's; a refused,
    /// reset or unreachable connection is the link's.
    fn error(&self, command: &str, e: &reqwest::Error, waited: Duration) -> ChannelError {
        if e.is_timeout() {
            return ChannelError::Timeout {
                command: command.to_string(),
                waited,
                partial: String::new(),
            };
        }
        ChannelError::Link { link: self.target.link(), source: std::io::Error::other(chain(e)) }
    }
}

/// An error with its causes, one line (`error sending request: … : Connection refused`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The JSON body of `POST /command`, fields in the chapter's order.
#[derive(serde::Serialize)]
struct CommandRequest<'a> {
    flags: u8,
    command: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
}

/// The JSON body of `POST /command` for `line` and its data.
pub fn command_body(line: &str, data: Option<&[u8]>, base64_response: bool) -> Vec<u8> {
    let mut flags = 0;
    if base64_response {
        flags |= FLAG_RESPONSE_BASE64;
    }
    let data = data.map(|bytes| match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => {
            flags |= FLAG_DATA_BASE64;
            BASE64.encode(bytes)
        }
    });
    // Serializing strings and a number cannot fail.
    serde_json::to_vec(&CommandRequest { flags, command: line, data }).unwrap_or_default()
}

#[derive(Deserialize)]
struct CommandReply {
    #[allow(dead_code)]
    id: u64,
    code: u64,
    #[serde(default)]
    flags: u64,
    response: String,
}

/// The code and response bytes of a `POST /command` reply (HTTP status and body), or why it
/// cannot be one.
///
/// The chapter names 200 (executed), 400 (malformed request) and 500 (server error) but not
/// which of them a command that ran and failed gets; a module may answer such a command 400
/// or 500 with its JSON reply. So under those three statuses a command reply in the body is
/// the answer and its `code` decides; without one, or under another status (401, 403, 404,
/// 503), there is no answer to the command.
pub fn parse_command_reply(status: u16, body: &[u8]) -> Result<(ResultCode, Vec<u8>), String> {
    if !matches!(status, 200 | 400 | 500) {
        return Err(format!("HTTP status {status}"));
    }
    let reply: CommandReply = serde_json::from_slice(body).map_err(|e| match status {
        200 => format!("not a command reply: {e}"),
        _ => format!("HTTP status {status} without a command reply ({e})"),
    })?;
    let code = u8::try_from(reply.code)
        .map_err(|_| format!("code {} is not a result code", reply.code))?;
    let response = if reply.flags & u64::from(REPLY_FLAG_BASE64) != 0 {
        BASE64
            .decode(reply.response.as_bytes())
            .map_err(|e| format!("flags say base64, but the response is not: {e}"))?
    } else {
        reply.response.into_bytes()
    };
    Ok((ResultCode(code), response))
}

#[derive(Deserialize)]
struct LogReply {
    logs: Vec<String>,
}

/// The log lines of a `GET /log` reply, or why it cannot be one.
pub fn parse_log_reply(status: u16, body: &[u8]) -> Result<Vec<String>, String> {
    if status != 200 {
        return Err(format!("HTTP status {status}"));
    }
    let reply: LogReply =
        serde_json::from_slice(body).map_err(|e| format!("not a log reply: {e}"))?;
    Ok(reply.logs.into_iter().map(|l| l.trim_end_matches(['\r', '\n']).to_string()).collect())
}

/// Log lines fetched after a reply, as the reply's: they arrived by the time it was complete.
pub fn log_lines(lines: Vec<String>, at: Duration) -> Vec<LogLine> {
    lines.into_iter().map(|text| LogLine { level: None, text, at }).collect()
}

/// The REST API as a [`Channel`].
#[derive(Debug)]
pub struct RestChannel {
    http: HttpClient,
    /// Ask for base64 responses (flag 0x02): exact bytes, whatever the response holds.
    base64_responses: bool,
    /// Log lines fetched by [`Channel::resync`], handed out with the next reply.
    pending: Vec<String>,
}

impl RestChannel {
    pub fn connect(target: HttpTarget) -> Result<Self, ChannelError> {
        Ok(Self { http: HttpClient::new(target)?, base64_responses: false, pending: Vec::new() })
    }

    /// Asks for every response in base64 (flag 0x02).
    pub fn with_base64_responses(mut self, on: bool) -> Self {
        self.base64_responses = on;
        self
    }
}

impl Channel for RestChannel {
    fn transport(&self) -> Transport {
        Transport::Rest
    }

    fn endpoint(&self) -> String {
        self.http.target.link()
    }

    fn execute(&mut self, request: &Request<'_>) -> Result<Reply, ChannelError> {
        let sent = Instant::now();
        let body = command_body(request.line, request.data, self.base64_responses);
        let (status, headers, bytes) =
            self.http.post_command(request.line, body, request.timeout)?;
        let (code, body) =
            parse_command_reply(status, &bytes).map_err(|reason| ChannelError::Malformed {
                command: request.line.to_string(),
                reason,
                bytes: super::escape_bytes(&bytes),
            })?;
        let replied = sent.elapsed();
        let left = request.timeout.saturating_sub(replied).max(Duration::from_secs(1));
        let mut lines = std::mem::take(&mut self.pending);
        lines.extend(self.http.fetch_logs(left)?);
        let logs = log_lines(lines, replied);
        let timing = Timing { sent, first_byte: Some(headers), total: replied };
        Ok(Reply { code, body, logs, timing })
    }

    /// Nothing to bring back: replies are structured whatever the console's format. The log
    /// lines buffered so far are kept for the next reply: what the module printed since the
    /// network came up (an auto-start client's failure, say) is the case's to see.
    fn resync(&mut self, _format: ConsoleFormat, timeout: Duration) -> Result<(), ChannelError> {
        let lines = self.http.fetch_logs(timeout)?;
        self.pending.extend(lines);
        Ok(())
    }

    fn raw(&mut self) -> Option<&mut dyn RawLink> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::plain("get wlan.ssid", None, false, r#"{"flags":0,"command":"get wlan.ssid"}"#)]
    #[case::base64_response("ls", None, true, r#"{"flags":2,"command":"ls"}"#)]
    #[case::text_data(
        "stream_write 0 4",
        Some(&b"live"[..]),
        false,
        r#"{"flags":0,"command":"stream_write 0 4","data":"live"}"#
    )]
    #[case::binary_data(
        "stream_write 0 3",
        Some(&b"\xff\x00a"[..]),
        false,
        r#"{"flags":4,"command":"stream_write 0 3","data":"/wBh"}"#
    )]
    #[case::both(
        "fcr x 1",
        Some(&b"\x80"[..]),
        true,
        r#"{"flags":6,"command":"fcr x 1","data":"gA=="}"#
    )]
    #[case::quotes(
        "set wlan.ssid \"a b\"",
        None,
        false,
        r#"{"flags":0,"command":"set wlan.ssid \"a b\""}"#
    )]
    fn builds_command_requests(
        #[case] line: &str,
        #[case] data: Option<&[u8]>,
        #[case] base64: bool,
        #[case] want: &str,
    ) {
        let body = command_body(line, data, base64);
        assert_eq!(String::from_utf8(body).expect("utf-8"), want);
    }

    #[rstest]
    #[case::ok(200, r#"{"id":1,"code":0,"flags":0,"response":"Set OK\r\n"}"#, Ok((0, &b"Set OK\r\n"[..])))]
    #[case::no_flags(200, r#"{"id":7,"code":3,"response":"Unknown command\r\n"}"#, Ok((3, &b"Unknown command\r\n"[..])))]
    #[case::base64(200, r#"{"id":2,"code":0,"flags":1,"response":"/wA="}"#, Ok((0, &b"\xff\x00"[..])))]
    #[case::bad_base64(
        200,
        r#"{"id":2,"code":0,"flags":1,"response":"%%"}"#,
        Err("flags say base64, but the response is not: Invalid symbol 37, offset 0.")
    )]
    #[case::big_code(
        200,
        r#"{"id":2,"code":300,"flags":0,"response":""}"#,
        Err("code 300 is not a result code")
    )]
    #[case::no_code(
        200,
        r#"{"id":2,"response":""}"#,
        Err("not a command reply: missing field `code` at line 1 column 22")
    )]
    #[case::not_json(200, "Set OK", Err("not a command reply: expected value at line 1 column 1"))]
    #[case::bad_request(
        400,
        "",
        Err(
            "HTTP status 400 without a command reply (EOF while parsing a value at line 1 column 0)"
        )
    )]
    #[case::failed_command_as_400(400, r#"{"id":1,"code":7,"flags":0,"response":"Invalid argument\r\n"}"#, Ok((7, &b"Invalid argument\r\n"[..])))]
    #[case::failed_command_as_500(500, r#"{"id":1,"code":1,"response":"Command failed\r\n"}"#, Ok((1, &b"Command failed\r\n"[..])))]
    #[case::server_error(
        500,
        "oops",
        Err("HTTP status 500 without a command reply (expected value at line 1 column 1)")
    )]
    #[case::unauthorized(401, r#"{"id":1,"code":0,"response":""}"#, Err("HTTP status 401"))]
    #[case::forbidden(403, "", Err("HTTP status 403"))]
    fn reads_command_replies(
        #[case] status: u16,
        #[case] body: &str,
        #[case] want: Result<(u8, &[u8]), &str>,
    ) {
        let got = parse_command_reply(status, body.as_bytes());
        let want = want.map(|(c, b)| (ResultCode(c), b.to_vec())).map_err(str::to_string);
        assert_eq!(got, want);
    }

    #[rstest]
    #[case::two(200, r#"{"logs":["[Associated]","Joined\r\n"]}"#, Ok(vec!["[Associated]", "Joined"]))]
    #[case::none(200, r#"{"logs":[]}"#, Ok(vec![]))]
    #[case::not_a_list(
        200,
        r#"{"logs":"x"}"#,
        Err(
            "not a log reply: invalid type: string \"x\", expected a sequence at line 1 column 11"
        )
    )]
    #[case::status(404, "", Err("HTTP status 404"))]
    fn reads_log_replies(
        #[case] status: u16,
        #[case] body: &str,
        #[case] want: Result<Vec<&str>, &str>,
    ) {
        let got = parse_log_reply(status, body.as_bytes());
        let want =
            want.map(|v| v.into_iter().map(str::to_string).collect()).map_err(str::to_string);
        assert_eq!(got, want);
    }
}
