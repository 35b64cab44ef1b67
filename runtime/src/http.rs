//! A small blocking HTTP/1.1 client for what the runtime posts: webhook
//! notices and etcd's JSON gateway. [`post`] makes one request per
//! connection (`Connection: close`); [`KeepAlive`] keeps one connection open
//! across requests. Bodies with a length, chunked, or up to the close; over
//! TCP, or over TLS (rustls) when given a client configuration.
//! It runs on threads of its own (the webhook's) or blocking tasks (UDB
//! writes), never on the async runtime's workers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// TLS settings of a server's client: the CA that vouches for it and, if it
/// asks, this client's certificate.
pub(crate) type Tls = Arc<rustls::ClientConfig>;

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

/// POSTs `body` to `{authority}{path}` (over TLS with `tls`) on a
/// connection of its own; every step (connect, handshake, send, each read)
/// times out after `timeout`.
pub(crate) fn post(
    authority: &str,
    tls: Option<&Tls>,
    path: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
    read: Body,
) -> std::io::Result<Response> {
    let mut stream = BufReader::new(connect(authority, tls, timeout)?);
    send(stream.get_mut(), authority, path, content_type, body, true)?;
    Ok(read_response(stream, read)?.0)
}

/// A connection: plain TCP, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Plain(_) => "Stream::Plain",
            Stream::Tls(_) => "Stream::Tls",
        })
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

fn connect(authority: &str, tls: Option<&Tls>, timeout: Duration) -> std::io::Result<Stream> {
    let addr = authority.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the host has no address")
    })?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    let Some(tls) = tls else {
        return Ok(Stream::Plain(stream));
    };
    // The name the server's certificate must hold: the host as written.
    let host = host(authority);
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
        invalid(format!(
            "{host:?} cannot be checked against a certificate: {e}"
        ))
    })?;
    let mut connection = rustls::ClientConnection::new(tls.clone(), name)
        .map_err(|e| invalid(format!("TLS: {e}")))?;
    // The handshake now, so a refused certificate is told as such.
    while connection.is_handshaking() {
        connection.complete_io(&mut stream)?;
    }
    Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(
        connection, stream,
    ))))
}

/// The host of `HOST:PORT` as written (a DNS name or an IP address),
/// without the port or IPv6's brackets.
pub(crate) fn host(authority: &str) -> &str {
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']')
}

fn send(
    stream: &mut Stream,
    authority: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    close: bool,
) -> std::io::Result<()> {
    let host = authority.trim_end_matches(":80");
    let connection = if close { "close" } else { "keep-alive" };
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {connection}\r\nUser-Agent: upshift\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request)?;
    stream.flush()
}

/// One connection kept open across requests to one server, opened again
/// when the server closed it. Only for requests that may arrive twice: a
/// request on a reused connection that fails is sent again on a new one
/// (the server may have closed the old one as the request went out).
#[derive(Debug, Default)]
pub(crate) struct KeepAlive {
    open: Option<(String, BufReader<Stream>)>,
}

impl KeepAlive {
    /// POSTs `body` to `{authority}{path}` (over TLS with `tls`) and reads
    /// the whole answer.
    pub(crate) fn post(
        &mut self,
        authority: &str,
        tls: Option<&Tls>,
        path: &str,
        content_type: &str,
        body: &[u8],
        timeout: Duration,
    ) -> std::io::Result<Response> {
        if let Some((at, stream)) = self.open.take()
            && at == authority
            && let Ok(response) = self.exchange(authority, stream, path, content_type, body)
        {
            return Ok(response);
        }
        let stream = BufReader::new(connect(authority, tls, timeout)?);
        self.exchange(authority, stream, path, content_type, body)
    }

    fn exchange(
        &mut self,
        authority: &str,
        mut stream: BufReader<Stream>,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> std::io::Result<Response> {
        send(stream.get_mut(), authority, path, content_type, body, false)?;
        let (response, reusable) = read_response(&mut stream, Body::Whole)?;
        if reusable {
            self.open = Some((authority.to_string(), stream));
        }
        Ok(response)
    }
}

/// Reads a response from `from`; whether the connection can carry another
/// request (the body was delimited, and the server did not say it closes).
fn read_response(mut from: impl BufRead, read: Body) -> std::io::Result<(Response, bool)> {
    let mut line = String::new();
    if from.by_ref().take(1024).read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection without an answer",
        ));
    }
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("not an HTTP response: {:?}", line.trim_end())))?;
    let (mut length, mut chunked, mut closes) = (None, false, false);
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
        } else if name.eq_ignore_ascii_case("connection") {
            closes = value.eq_ignore_ascii_case("close");
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
            return Ok((Response { status, body }, false));
        }
    };
    let whole = read == Body::Whole;
    Ok((Response { status, body }, whole && !closes))
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
        read_response(raw.as_bytes(), read).map(|(r, _)| r)
    }

    #[test]
    fn the_host_is_the_authority_without_its_port() {
        assert_eq!(host("127.0.0.1:2379"), "127.0.0.1");
        assert_eq!(host("etcd.internal:2379"), "etcd.internal");
        assert_eq!(host("[::1]:2379"), "::1");
        assert_eq!(host("etcd.internal"), "etcd.internal");
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
    fn a_connection_is_kept_only_after_a_delimited_body() {
        let reusable = |raw: &str, read| read_response(raw.as_bytes(), read).expect(raw).1;
        assert!(reusable(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            Body::Whole
        ));
        assert!(!reusable(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
            Body::Whole
        ));
        assert!(!reusable(
            "HTTP/1.1 200 OK\r\n\r\nto the close",
            Body::Whole
        ));
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert!(reusable(chunked, Body::Whole));
        assert!(!reusable(chunked, Body::FirstChunk));
    }

    #[test]
    fn one_connection_carries_many_requests_and_is_opened_again_when_closed() {
        use std::io::{BufRead, BufReader, Write};
        let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let authority = server.local_addr().expect("addr").to_string();
        let accepted = std::thread::spawn(move || {
            let mut connections = 0;
            // The first connection answers two requests, then closes;
            // the second answers one.
            for answers in [2, 1] {
                let (stream, _) = server.accept().expect("accept");
                connections += 1;
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                for _ in 0..answers {
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).expect("read");
                        if let Some(v) = line.to_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().expect("length");
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    std::io::Read::read_exact(&mut reader, &mut body).expect("body");
                    write!(
                        writer,
                        "HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n"
                    )
                    .expect("answer");
                    writer.write_all(&body).expect("echo");
                }
            }
            connections
        });
        let mut client = KeepAlive::default();
        for text in ["one", "two", "three"] {
            let response = client
                .post(
                    &authority,
                    None,
                    "/",
                    "text/plain",
                    text.as_bytes(),
                    Duration::from_secs(5),
                )
                .expect(text);
            assert_eq!(response.body, text.as_bytes());
        }
        assert_eq!(accepted.join().expect("server"), 2);
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
