//! A cap on the data one IMAP response may carry. Every fetch asks for a
//! part of a message only (`BODY.PEEK[HEADER]<0.n>`, `BODY.PEEK[TEXT]<0.n>`),
//! but a broken or hostile server may answer with any literal `{size}`, and
//! async-imap buffers a whole response, up to 512 MiB, before it hands it
//! over. [`Capped`] reads the literal sizes as the bytes pass and fails the
//! connection on one over [`LITERAL_LIMIT`], before its data is read.
//!
//! Literals are found as IMAP defines them: `{digits}` at the end of a line
//! (RFC 3501 §4.3), whose next `digits` bytes are skipped by the scan. A
//! quoted string cannot hold a line end, so it cannot fake one.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest literal accepted: far above what a partial fetch asks for
/// (a header's first [`super::message::HEADER_BYTES`]) and anything else we
/// read (folder names, flags).
pub const LITERAL_LIMIT: u64 = 1024 * 1024;

/// A literal over [`LITERAL_LIMIT`]: the connection's read error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server announced {size} bytes in one piece, more than the {} KiB a notifier ever asks for", .limit / 1024)]
pub struct TooLarge {
    /// What the server announced.
    pub size: u64,
    /// The limit.
    pub limit: u64,
}

/// Where the scan of the server's bytes is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Scan {
    /// In a line.
    #[default]
    Text,
    /// After `{`, with the digits so far.
    Size { size: u64, digits: bool },
    /// After `{digits}`: a literal if the line ends here.
    Closed(u64),
    /// After `{digits}\r`.
    ClosedCr(u64),
    /// In a literal, with this many bytes left.
    Literal(u64),
}

impl Scan {
    /// Takes in `bytes` as they arrive.
    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), TooLarge> {
        while !bytes.is_empty() {
            if let Scan::Literal(left) = *self {
                let skip = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                bytes = &bytes[skip..];
                let left = left - skip as u64;
                *self = if left == 0 { Scan::Text } else { Scan::Literal(left) };
                continue;
            }
            let byte = bytes[0];
            bytes = &bytes[1..];
            *self = match (*self, byte) {
                (_, b'{') => Scan::Size { size: 0, digits: false },
                (Scan::Size { size, .. }, b'0'..=b'9') => {
                    Scan::Size { size: size.saturating_mul(10).saturating_add(u64::from(byte - b'0')), digits: true }
                }
                (Scan::Size { size, digits: true }, b'}') => Scan::Closed(size),
                (Scan::Closed(size), b'\r') => Scan::ClosedCr(size),
                (Scan::Closed(size) | Scan::ClosedCr(size), b'\n') => {
                    if size > LITERAL_LIMIT {
                        return Err(TooLarge { size, limit: LITERAL_LIMIT });
                    }
                    if size == 0 { Scan::Text } else { Scan::Literal(size) }
                }
                _ => Scan::Text,
            };
        }
        Ok(())
    }
}

/// A connection whose incoming literals are capped (see the module docs);
/// writes pass through.
#[derive(Debug)]
pub(crate) struct Capped<S> {
    inner: S,
    scan: Scan,
}

impl<S> Capped<S> {
    pub(crate) fn new(inner: S) -> Capped<S> {
        Capped { inner, scan: Scan::default() }
    }

    /// The connection without the cap, for a TLS handshake over it (its
    /// ciphertext is not IMAP).
    pub(crate) fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                Poll::Ready(this.scan.feed(&buf.filled()[before..]).map_err(std::io::Error::other))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn scan(chunks: &[&[u8]]) -> Result<Scan, TooLarge> {
        let mut scan = Scan::default();
        for chunk in chunks {
            scan.feed(chunk)?;
        }
        Ok(scan)
    }

    #[test]
    fn literals_within_the_limit_pass_and_their_data_is_not_scanned() {
        let header = b"Subject: {99999999999}\r\n\r\n";
        let mut response = format!("* 1 FETCH (UID 7 BODY[HEADER]<0> {{{}}}\r\n", header.len()).into_bytes();
        response.extend_from_slice(header);
        response.extend_from_slice(b")\r\n");
        assert_eq!(scan(&[&response]), Ok(Scan::Text));
        // The same, arriving a byte at a time.
        let bytes: Vec<&[u8]> = response.chunks(1).collect();
        assert_eq!(scan(&bytes), Ok(Scan::Text));
    }

    #[test]
    fn a_literal_over_the_limit_is_refused_when_announced() {
        let refused = scan(&[b"* 1 FETCH (BODY[HEADER] {52428800}\r\n"]);
        assert_eq!(refused, Err(TooLarge { size: 52_428_800, limit: LITERAL_LIMIT }));
        assert_eq!(scan(&[b"* 1 FETCH (BODY[TEXT] {", b"99999999999999999999999", b"}\r", b"\n"]).map_err(|e| e.size), Err(u64::MAX));
    }

    #[test]
    fn braces_that_do_not_end_a_line_are_not_literals() {
        assert_eq!(scan(&[b"* OK [ALERT] a {52428800} in the middle\r\n"]), Ok(Scan::Text));
        assert_eq!(scan(&[b"* LIST () \"/\" \"{52428800}\"\r\n"]), Ok(Scan::Text));
        assert_eq!(scan(&[b"* 1 FETCH (BODY[TEXT] {}\r\n"]), Ok(Scan::Text));
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 256, failure_persistence: None, ..Default::default() })]

        #[test]
        fn the_verdict_does_not_depend_on_how_the_bytes_arrive(
            pieces in proptest::collection::vec(proptest::prop_oneof![
                proptest::strategy::Just(b"{".to_vec()),
                proptest::strategy::Just(b"}\r\n".to_vec()),
                proptest::strategy::Just(b"}\n".to_vec()),
                "[0-9]{1,8}".prop_map(String::into_bytes),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
            ], 0..24),
            cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..8),
        ) {
            let bytes = pieces.concat();
            let whole = scan(&[&bytes]);
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            at.push(0);
            at.push(bytes.len());
            at.sort_unstable();
            let chunks: Vec<&[u8]> = at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
            proptest::prop_assert_eq!(scan(&chunks), whole);
        }
    }

    #[tokio::test]
    async fn a_server_that_answers_50_mb_to_a_partial_fetch_fails_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let serving = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            socket.write_all(b"* OK ready\r\n").await.expect("greeting");
            // Answers the LOGIN as if it were a partial fetch.
            let mut command = [0u8; 256];
            let _ = socket.read(&mut command).await;
            let size = 50 * 1024 * 1024;
            let _ = socket.write_all(format!("* 1 FETCH (UID 1 BODY[HEADER]<0> {{{size}}}\r\n").as_bytes()).await;
            let block = vec![b'a'; 64 * 1024];
            let mut sent = 0;
            while sent < size && socket.write_all(&block).await.is_ok() {
                sent += block.len();
            }
            sent
        });
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let mut client = async_imap::Client::new(Capped::new(tcp));
        let _greeting = client.read_response().await.expect("greeting").expect("a response");
        let Err((async_imap::error::Error::Io(refused), _)) = client.login("me", "secret").await else {
            panic!("the connection should fail on the literal's size")
        };
        let too_large = refused.get_ref().and_then(|e| e.downcast_ref::<TooLarge>());
        assert_eq!(too_large, Some(&TooLarge { size: 50 * 1024 * 1024, limit: LITERAL_LIMIT }), "{refused:?}");
        assert!(serving.await.expect("server") < 50 * 1024 * 1024, "refused before the data was read");
    }
}
