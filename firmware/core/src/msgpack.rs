//! The WebSocket command stream's messages (chapter, "WebSocket Command Stream") in msgpack:
//! a command message `{"command", "data", "id"}` in, a response `{"id", "code", "response"}`
//! out. Decoding is strict: the raw message becomes a [`Request`] once, here, or a
//! [`Rejected`] that says why.
//!
//! Decisions (the chapter gives only the field names; assumed):
//!
//! * The message is one msgpack map with string keys and nothing after it. `command` is
//!   required, a string. `data` is optional: a string, binary, or nil (no data). `id` is
//!   optional: an integer, echoed in the response as it came. Other keys are skipped (values
//!   nested at most [`DEPTH_MAX`] deep); a key given twice is refused.
//! * The response map holds `id` only when the command message had one, then `code` (the
//!   command's result code, an integer) and `response`: a string when the body is UTF-8,
//!   else binary (a `stream_read` of arbitrary bytes).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use rmp::Marker;
use rmp::decode::{self, Bytes};
use rmp::encode;

/// How deep an unknown key's value may nest (maps and arrays).
pub const DEPTH_MAX: usize = 8;

/// A command message's `id`: an integer, kept as it came so the response echoes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Id {
    /// Zero or more.
    Unsigned(u64),
    /// Below zero.
    Negative(i64),
}

/// A command message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The command line, as typed on the serial console.
    pub command: String,
    /// The data phase's bytes (`write`, `file_create`), if any.
    pub data: Option<Vec<u8>>,
    pub id: Option<Id>,
}

/// Why a message is not a command message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not msgpack, cut short, or bytes after the map.
    Malformed,
    /// Valid msgpack, but not a map.
    NotAMap,
    /// A map key that is not a string (or not UTF-8).
    BadKey,
    /// A key given twice.
    DuplicateKey,
    /// No `command`.
    NoCommand,
    /// `command` is not a UTF-8 string.
    BadCommand,
    /// `data` is not a string, binary or nil.
    BadData,
    /// `id` is not an integer.
    BadId,
    /// An unknown key's value nests deeper than [`DEPTH_MAX`].
    TooDeep,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::Malformed => "malformed msgpack",
            DecodeError::NotAMap => "message is not a map",
            DecodeError::BadKey => "map key is not a string",
            DecodeError::DuplicateKey => "duplicate key",
            DecodeError::NoCommand => "no command",
            DecodeError::BadCommand => "command is not a string",
            DecodeError::BadData => "data is not a string or binary",
            DecodeError::BadId => "id is not an integer",
            DecodeError::TooDeep => "value nested too deep",
        })
    }
}

/// A message refused, with its `id` when it could be read (the answer then carries it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub error: DecodeError,
    pub id: Option<Id>,
}

impl Request {
    /// Decodes a command message.
    pub fn decode(bytes: &[u8]) -> Result<Request, Rejected> {
        let mut id = None;
        match decode_fields(bytes, &mut id) {
            Ok(request) => Ok(request),
            Err(error) => Err(Rejected { error, id }),
        }
    }

    /// The message as a client sends it (keys `command`, `data`, `id`; `data` binary): the
    /// inverse of [`Request::decode`], for tests and fuzzing.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let len = 1 + u32::from(self.data.is_some()) + u32::from(self.id.is_some());
        let _ = encode::write_map_len(&mut out, len);
        let _ = encode::write_str(&mut out, "command");
        let _ = encode::write_str(&mut out, &self.command);
        if let Some(data) = &self.data {
            let _ = encode::write_str(&mut out, "data");
            let _ = encode::write_bin(&mut out, data);
        }
        if let Some(id) = self.id {
            let _ = encode::write_str(&mut out, "id");
            write_id(&mut out, id);
        }
        out
    }
}

/// A response message: `{"id"?, "code", "response"}`.
pub fn encode_response(id: Option<Id>, code: u8, response: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(response.len() + 24);
    // Writing to a Vec cannot fail, and every length here fits a u32 (a response is built
    // from a command's body, far below 4 GiB).
    let _ = encode::write_map_len(&mut out, 2 + u32::from(id.is_some()));
    if let Some(id) = id {
        let _ = encode::write_str(&mut out, "id");
        write_id(&mut out, id);
    }
    let _ = encode::write_str(&mut out, "code");
    let _ = encode::write_uint(&mut out, u64::from(code));
    let _ = encode::write_str(&mut out, "response");
    match core::str::from_utf8(response) {
        Ok(text) => {
            let _ = encode::write_str(&mut out, text);
        }
        Err(_) => {
            let _ = encode::write_bin(&mut out, response);
        }
    }
    out
}

fn write_id(out: &mut Vec<u8>, id: Id) {
    let _ = match id {
        Id::Unsigned(n) => encode::write_uint(out, n),
        Id::Negative(n) => encode::write_sint(out, n),
    };
}

/// The fields of a command message; `id` is filled in as soon as it is read.
fn decode_fields(bytes: &[u8], id: &mut Option<Id>) -> Result<Request, DecodeError> {
    let mut rd = Reader(bytes);
    let len = match rd.marker()? {
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
            rd.with(decode::read_map_len).map_err(|_| DecodeError::Malformed)?
        }
        _ => {
            // Not a map: but is it msgpack at all?
            rd.skip(0)?;
            return Err(if rd.0.is_empty() {
                DecodeError::NotAMap
            } else {
                DecodeError::Malformed
            });
        }
    };
    let (mut command, mut data, mut seen_id) = (None, None, false);
    let mut others: Vec<&[u8]> = Vec::new();
    for _ in 0..len {
        let key = match rd.marker()? {
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => rd.str_bytes()?,
            _ => return Err(DecodeError::BadKey),
        };
        let dup = match key {
            b"command" => command.is_some(),
            b"data" => data.is_some(),
            b"id" => seen_id,
            other => others.contains(&other),
        };
        if dup {
            return Err(DecodeError::DuplicateKey);
        }
        match key {
            b"command" => {
                let text = match rd.marker()? {
                    Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                        rd.str_bytes()?
                    }
                    _ => return Err(DecodeError::BadCommand),
                };
                let text = core::str::from_utf8(text).map_err(|_| DecodeError::BadCommand)?;
                command = Some(String::from(text));
            }
            b"data" => {
                data = Some(match rd.marker()? {
                    Marker::Null => {
                        rd.skip(0)?;
                        None
                    }
                    Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                        Some(rd.str_bytes()?.to_vec())
                    }
                    Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => Some(rd.bin_bytes()?.to_vec()),
                    _ => return Err(DecodeError::BadData),
                });
            }
            b"id" => {
                seen_id = true;
                *id = Some(match rd.marker()? {
                    Marker::FixNeg(_) | Marker::I8 | Marker::I16 | Marker::I32 | Marker::I64 => {
                        let n: i64 =
                            rd.with(decode::read_int).map_err(|_| DecodeError::Malformed)?;
                        if n >= 0 { Id::Unsigned(n as u64) } else { Id::Negative(n) }
                    }
                    Marker::FixPos(_) | Marker::U8 | Marker::U16 | Marker::U32 | Marker::U64 => {
                        Id::Unsigned(rd.with(decode::read_int).map_err(|_| DecodeError::Malformed)?)
                    }
                    _ => return Err(DecodeError::BadId),
                });
            }
            other => {
                others.push(other);
                rd.skip(0)?;
            }
        }
    }
    if !rd.0.is_empty() {
        return Err(DecodeError::Malformed);
    }
    let command = command.ok_or(DecodeError::NoCommand)?;
    Ok(Request { command, data: data.flatten(), id: *id })
}

/// The bytes not yet decoded.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// Runs an rmp decoder on the rest and moves past what it read.
    fn with<T, E>(&mut self, f: impl FnOnce(&mut Bytes<'a>) -> Result<T, E>) -> Result<T, E> {
        let mut b = Bytes::new(self.0);
        let result = f(&mut b);
        self.0 = b.remaining_slice();
        result
    }

    /// The next value's marker, not consumed.
    fn marker(&self) -> Result<Marker, DecodeError> {
        self.0.first().map(|b| Marker::from_u8(*b)).ok_or(DecodeError::Malformed)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn str_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.with(decode::read_str_len).map_err(|_| DecodeError::Malformed)?;
        self.take(len as usize)
    }

    fn bin_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.with(decode::read_bin_len).map_err(|_| DecodeError::Malformed)?;
        self.take(len as usize)
    }

    /// Moves past one value of any type, `depth` levels down.
    fn skip(&mut self, depth: usize) -> Result<(), DecodeError> {
        let fixed = |n: usize| move |r: &mut Self| r.take(1 + n).map(|_| ());
        match self.marker()? {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
                fixed(0)(self)
            }
            Marker::U8 | Marker::I8 => fixed(1)(self),
            Marker::U16 | Marker::I16 => fixed(2)(self),
            Marker::U32 | Marker::I32 | Marker::F32 => fixed(4)(self),
            Marker::U64 | Marker::I64 | Marker::F64 => fixed(8)(self),
            Marker::FixExt1 => fixed(2)(self),
            Marker::FixExt2 => fixed(3)(self),
            Marker::FixExt4 => fixed(5)(self),
            Marker::FixExt8 => fixed(9)(self),
            Marker::FixExt16 => fixed(17)(self),
            Marker::Ext8 | Marker::Ext16 | Marker::Ext32 => {
                let meta = self.with(decode::read_ext_meta).map_err(|_| DecodeError::Malformed)?;
                self.take(meta.size as usize).map(|_| ())
            }
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                self.str_bytes().map(|_| ())
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => self.bin_bytes().map(|_| ()),
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                if depth >= DEPTH_MAX {
                    return Err(DecodeError::TooDeep);
                }
                let n = self.with(decode::read_array_len).map_err(|_| DecodeError::Malformed)?;
                (0..n).try_for_each(|_| self.skip(depth + 1))
            }
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
                if depth >= DEPTH_MAX {
                    return Err(DecodeError::TooDeep);
                }
                let n = self.with(decode::read_map_len).map_err(|_| DecodeError::Malformed)?;
                (0..2 * u64::from(n)).try_for_each(|_| self.skip(depth + 1))
            }
            Marker::Reserved => Err(DecodeError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use rstest::rstest;

    /// A msgpack map built by hand: `(key, value bytes)` pairs.
    fn map(fields: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = vec![0x80 | fields.len() as u8];
        for (k, v) in fields {
            out.push(0xa0 | k.len() as u8);
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(v);
        }
        out
    }

    fn s(text: &str) -> Vec<u8> {
        let mut out = vec![0xa0 | text.len() as u8];
        out.extend_from_slice(text.as_bytes());
        out
    }

    fn req(command: &str, data: Option<&[u8]>, id: Option<Id>) -> Request {
        Request { command: command.into(), data: data.map(<[u8]>::to_vec), id }
    }

    #[rstest]
    #[case::command_only(map(&[("command", &s("version"))]), req("version", None, None))]
    #[case::all_three(
        map(&[("command", &s("write 0 2")), ("data", &s("hi")), ("id", &[0x07])]),
        req("write 0 2", Some(b"hi"), Some(Id::Unsigned(7)))
    )]
    #[case::any_order_binary_data(
        map(&[("id", &[0xcd, 0x01, 0x00]), ("data", &[0xc4, 0x02, 0x00, 0xff]), ("command", &s("w"))]),
        req("w", Some(&[0, 255]), Some(Id::Unsigned(256)))
    )]
    #[case::nil_data(map(&[("command", &s("ls")), ("data", &[0xc0])]), req("ls", None, None))]
    #[case::negative_id(map(&[("command", &s("ls")), ("id", &[0xff])]), req("ls", None, Some(Id::Negative(-1))))]
    #[case::signed_positive_id(map(&[("command", &s("ls")), ("id", &[0xd0, 0x05])]), req("ls", None, Some(Id::Unsigned(5))))]
    #[case::u64_id(
        map(&[("command", &s("ls")), ("id", &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])]),
        req("ls", None, Some(Id::Unsigned(u64::MAX)))
    )]
    #[case::unknown_key_skipped(
        map(&[("flags", &[0x92, 0x81, 0xa1, b'a', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0xd4, 1, 2]), ("command", &s("ls"))]),
        req("ls", None, None)
    )]
    fn decodes(#[case] bytes: Vec<u8>, #[case] want: Request) {
        assert_eq!(Request::decode(&bytes), Ok(want.clone()));
        assert_eq!(Request::decode(&want.encode()), Ok(want), "encode is decode's inverse");
    }

    #[rstest]
    #[case::empty(vec![], DecodeError::Malformed, None)]
    #[case::reserved_marker(vec![0xc1], DecodeError::Malformed, None)]
    #[case::cut_short(map(&[("command", &s("version"))])[..6].to_vec(), DecodeError::Malformed, None)]
    #[case::trailing(
        [map(&[("command", &s("ls"))]), vec![0x00]].concat(),
        DecodeError::Malformed,
        None
    )]
    #[case::json_text(br#"{"command":"ls"}"#.to_vec(), DecodeError::Malformed, None)]
    #[case::array(vec![0x91, 0xa2, b'l', b's'], DecodeError::NotAMap, None)]
    #[case::string(s("ls"), DecodeError::NotAMap, None)]
    #[case::int_key(vec![0x81, 0x01, 0x02], DecodeError::BadKey, None)]
    #[case::no_command(map(&[("id", &[0x05])]), DecodeError::NoCommand, Some(Id::Unsigned(5)))]
    #[case::command_int(map(&[("id", &[0x06]), ("command", &[0x01])]), DecodeError::BadCommand, Some(Id::Unsigned(6)))]
    #[case::command_not_utf8(map(&[("command", &[0xa1, 0xff])]), DecodeError::BadCommand, None)]
    #[case::data_int(map(&[("command", &s("ls")), ("data", &[0x01])]), DecodeError::BadData, None)]
    #[case::id_string(map(&[("command", &s("ls")), ("id", &s("x"))]), DecodeError::BadId, None)]
    #[case::id_float(map(&[("command", &s("ls")), ("id", &[0xca, 0, 0, 0, 0])]), DecodeError::BadId, None)]
    #[case::dup_command(map(&[("command", &s("ls")), ("command", &s("ls"))]), DecodeError::DuplicateKey, None)]
    #[case::dup_other(map(&[("x", &[0x01]), ("x", &[0x01]), ("command", &s("ls"))]), DecodeError::DuplicateKey, None)]
    #[case::dup_id(map(&[("id", &[0x01]), ("id", &[0x02]), ("command", &s("ls"))]), DecodeError::DuplicateKey, Some(Id::Unsigned(1)))]
    #[case::deep(map(&[("x", &[0x91; 9]), ("command", &s("ls"))]), DecodeError::TooDeep, None)]
    #[case::huge_declared_string(vec![0x81, 0xdb, 0xff, 0xff, 0xff, 0xff], DecodeError::Malformed, None)]
    #[case::huge_declared_map(vec![0xdf, 0xff, 0xff, 0xff, 0xff], DecodeError::Malformed, None)]
    fn rejects(#[case] bytes: Vec<u8>, #[case] error: DecodeError, #[case] id: Option<Id>) {
        assert_eq!(Request::decode(&bytes), Err(Rejected { error, id }));
    }

    #[rstest]
    #[case::with_id(Some(Id::Unsigned(7)), 0, b"4.2.0", {
        let mut m = vec![0x83];
        m.extend(s("id")); m.push(0x07);
        m.extend(s("code")); m.push(0x00);
        m.extend(s("response")); m.extend(s("4.2.0"));
        m
    })]
    #[case::without_id(None, 3, b"Unknown command", {
        let mut m = vec![0x82];
        m.extend(s("code")); m.push(0x03);
        m.extend(s("response")); m.push(0xaf); m.extend(b"Unknown command");
        m
    })]
    #[case::binary_body(Some(Id::Negative(-2)), 0, &[0xff, 0x00], {
        let mut m = vec![0x83];
        m.extend(s("id")); m.push(0xfe);
        m.extend(s("code")); m.push(0x00);
        m.extend(s("response")); m.extend([0xc4, 0x02, 0xff, 0x00]);
        m
    })]
    fn responses(
        #[case] id: Option<Id>,
        #[case] code: u8,
        #[case] body: &[u8],
        #[case] want: Vec<u8>,
    ) {
        assert_eq!(encode_response(id, code, body), want);
    }
}
