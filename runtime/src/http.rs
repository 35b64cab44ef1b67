//! A small blocking HTTP/1.1 client for what the runtime posts: webhook
//! notices and etcd's JSON gateway. One request per connection
//! (`Connection: close`); bodies with a length, chunked, or up to the close.
//! It runs on threads of its own (the webhook's) or blocking tasks (UDB
//! writes), never on the async runtime's workers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The longest response body read: etcd answers pages of at most a few MiB.
const MAX_BODY: usize = 64 << 20;

/// A response: the status code and the body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// How much of the body to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// All of it.
    Whole,
    /// Only the first chunk of a chunked body: a streamed answer (etcd's
    /// lease keep-alive) whose first message is all that is wanted.
    FirstChunk,
}

fn invalid(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

/// POSTs `body` to `http://{authority}{path}`; every step (connect, send,
/// each read) times out after `timeout`.
pub(crate) fn post(
    authority: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
    read: Body,
) -> std::io::Result<Response> {
    let addr = authority.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the host has no address")
    })?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let host = authority.trim_end_matches(":80");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: upshift\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    read_response(BufReader::new(stream), read)
}

/// Reads a response from `from`.
fn read_response(mut from: impl BufRead, read: Body) -> std::io::Result<Response> {
    let mut line = String::new();
    from.by_ref().take(1024).read_line(&mut line)?;
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("not an HTTP response: {:?}", line.trim_end())))?;
    let (mut length, mut chunked) = (None, false);
    for _ in 0..100 {
        line.clear();
        from.by_ref().take(8192).read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(invalid(format!("a header without a colon: {header:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .map_err(|_| invalid(format!("Content-Length {value:?}")))?;
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = match (chunked, length) {
        (true, _) => read_chunked(&mut from, read)?,
        (false, Some(n)) if n > MAX_BODY => {
            return Err(invalid(format!("a body of {n} bytes (at most {MAX_BODY})")));
        }
        (false, Some(n)) => {
            let mut body = vec![0; n];
            from.read_exact(&mut body)?;
            body
        }
        (false, None) => {
            let mut body = Vec::new();
            from.take(MAX_BODY as u64).read_to_end(&mut body)?;
            body
        }
    };
    Ok(Response { status, body })
}

fn read_chunked(from: &mut impl BufRead, read: Body) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        from.by_ref().take(1024).read_line(&mut line)?;
        let size = line.trim_end().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size.trim(), 16)
            .map_err(|_| invalid(format!("a chunk size {:?}", line.trim_end())))?;
        if size == 0 {
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid(format!("a body over {MAX_BODY} bytes")));
        }
        let start = body.len();
        body.resize(start + size, 0);
        from.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        from.read_exact(&mut crlf)?;
        if read == Body::FirstChunk {
            return Ok(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, read: Body) -> std::io::Result<Response> {
        read_response(raw.as_bytes(), read)
    }

    #[test]
    fn reads_bodies_with_a_length_chunked_or_to_the_close() {
        let r = parse(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            Body::Whole,
        )
        .expect("length");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse(chunked, Body::Whole).expect("chunked").body, b"abcde");
        assert_eq!(
            parse(chunked, Body::FirstChunk).expect("first").body,
            b"abc"
        );
        let r = parse("HTTP/1.0 404 Not Found\r\n\r\nno such", Body::Whole).expect("close");
        assert_eq!((r.status, r.body.as_slice()), (404, &b"no such"[..]));
    }

    #[test]
    fn refuses_what_is_not_a_response() {
        for raw in [
            "SSH-2.0-OpenSSH\r\n",
            "HTTP/1.1 abc\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
        ] {
            assert!(parse(raw, Body::Whole).is_err(), "{raw:?} was taken");
        }
    }
}
