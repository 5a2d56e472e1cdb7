//! From the raw bytes the watcher peeks at (the whole header and the first
//! bytes of the body) to what a toast shows: decoded sender and subject
//! (RFC 2047 encoded words in any charset), a one-line text preview, the
//! date and the Message-ID. Pure: no I/O.
//!
//! Decoding is mail-parser's. The body is cut short on purpose (it may end
//! mid-line or mid-MIME-part), so the preview is best effort and may be
//! empty; the header is always complete.

use jiff::Timestamp;
use mail_parser::{MessageParser, MimeHeaders};

/// Longest preview shown, in characters.
pub const PREVIEW_CHARS: usize = 200;

/// How much of the header is fetched (`BODY.PEEK[HEADER]<0.n>`). Real
/// headers are a few kilobytes, long `Received` chains a few tens; past
/// this, a header is cut (and the sender or subject may be missing), which
/// beats holding whatever a broken server sends, 50 times per sync.
pub const HEADER_BYTES: usize = 64 * 1024;

/// How much of the text is fetched for the preview
/// (`BODY.PEEK[TEXT]<0.n>`).
pub const PREVIEW_BYTES: usize = 2048;

/// What a toast needs from one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The sender's display name, else their address.
    pub sender: String,
    /// The decoded subject.
    pub subject: String,
    /// The start of the text, whitespace collapsed.
    pub preview: String,
    /// The Date header, if it parses.
    pub date: Option<Timestamp>,
    /// The Message-ID without angle brackets.
    pub message_id: Option<String>,
}

/// Reads `header` (with its blank line, unless it was cut at
/// [`HEADER_BYTES`]) and `text_start` (the first bytes of the body).
pub fn summarize(header: &[u8], text_start: &[u8]) -> Summary {
    // A server may answer more than the partial fetch asked for: decode
    // only what was asked, so the work stays bounded whatever it sent.
    let header = &header[..header.len().min(HEADER_BYTES)];
    let text_start = &text_start[..text_start.len().min(PREVIEW_BYTES)];
    let mut raw = Vec::with_capacity(header.len() + text_start.len() + 4);
    raw.extend_from_slice(header);
    if !header.ends_with(b"\r\n\r\n") && !header.ends_with(b"\n\n") {
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(text_start);
    // A multipart body cut short lacks its closing boundary, and mail-parser
    // then leaves the open part undecoded (quoted-printable shown raw).
    if let Some(boundary) = multipart_boundary(header) {
        raw.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    }
    let Some(message) = MessageParser::default().parse(&raw[..]) else {
        return Summary { sender: String::new(), subject: String::new(), preview: String::new(), date: None, message_id: None };
    };
    let sender = message
        .from()
        .and_then(|from| from.first())
        .map(|a| match (&a.name, &a.address) {
            // On one line like the subject: a decoded name may hold line
            // breaks (found by the property tests), and a toast's sender
            // line or a log line must not.
            (Some(name), _) if !name.trim().is_empty() => one_line(name, usize::MAX),
            (_, Some(address)) => one_line(address, usize::MAX),
            _ => String::new(),
        })
        .unwrap_or_default();
    let subject = message.subject().map(|s| one_line(s, usize::MAX)).unwrap_or_default();
    let preview = message.body_text(0).map(|t| one_line(&t, PREVIEW_CHARS)).unwrap_or_default();
    let date = message.date().and_then(|d| Timestamp::from_second(d.to_timestamp()).ok());
    let message_id = message.message_id().map(|id| id.trim().trim_start_matches('<').trim_end_matches('>').to_owned());
    Summary { sender, subject, preview, date, message_id }
}

fn multipart_boundary(header: &[u8]) -> Option<String> {
    let parsed = MessageParser::default().parse_headers(header)?;
    let content_type = parsed.content_type()?;
    if !content_type.ctype().eq_ignore_ascii_case("multipart") {
        return None;
    }
    content_type.attribute("boundary").map(str::to_owned)
}

/// `text` on one line, whitespace collapsed, cut to `max` characters with an
/// ellipsis.
fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, word) in text.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() > max {
            break;
        }
    }
    if out.chars().count() > max {
        let mut cut: String = out.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        return cut;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER_END: &str = "\r\n\r\n";

    fn header(lines: &[&str]) -> Vec<u8> {
        format!("{}{HEADER_END}", lines.join("\r\n")).into_bytes()
    }

    #[test]
    fn plain_headers_and_text_become_sender_subject_and_preview() {
        let h = header(&[
            "From: Ada Lovelace <ada@example.test>",
            "Subject: Engines",
            "Date: Tue, 24 Nov 2026 10:00:00 +0000",
            "Message-ID: <abc@example.test>",
        ]);
        let s = summarize(&h, b"Hello,\r\n\r\nthe   engine works.\r\n");
        assert_eq!(s.sender, "Ada Lovelace");
        assert_eq!(s.subject, "Engines");
        assert_eq!(s.preview, "Hello, the engine works.");
        assert_eq!(s.message_id.as_deref(), Some("abc@example.test"));
        assert_eq!(s.date.map(|d| d.as_second()), Some(1_795_514_400));
    }

    #[test]
    fn encoded_words_are_decoded_in_utf8_and_latin1() {
        let cases = [
            ("=?UTF-8?B?w4ljaMOpYW5jZSDwn5OF?=", "Échéance 📅"),
            ("=?UTF-8?Q?R=C3=A9union_demain?=", "Réunion demain"),
            ("=?ISO-8859-1?Q?Caf=E9_cr=E8me?=", "Café crème"),
            ("=?iso-8859-1?B?R3L832U=?=", "Grüße"),
        ];
        for (wire, decoded) in cases {
            let h = header(&["From: =?ISO-8859-1?Q?Fran=E7ois?= <f@example.test>", &format!("Subject: {wire}")]);
            let s = summarize(&h, b"");
            assert_eq!(s.subject, decoded, "{wire}");
            assert_eq!(s.sender, "François");
        }
    }

    #[test]
    fn a_sender_name_with_line_breaks_is_shown_on_one_line() {
        // Found by the property tests: a raw CR, and one in an encoded word.
        for from in ["From: =?UTF-8?b??= \r <a@example.test>", "From: =?UTF-8?Q?Ada=0D=0ALovelace?= <a@example.test>"] {
            let s = summarize(&header(&[from, "Subject: x"]), b"");
            assert!(!s.sender.contains(['\r', '\n']), "{from}: {:?}", s.sender);
        }
    }

    #[test]
    fn a_sender_without_a_name_shows_the_address() {
        let s = summarize(&header(&["From: bob@example.test", "Subject: x"]), b"");
        assert_eq!(s.sender, "bob@example.test");
    }

    #[test]
    fn a_quoted_printable_part_cut_short_still_gives_a_preview() {
        let h = header(&[
            "From: a@example.test",
            "Subject: x",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative; boundary=\"b1\"",
        ]);
        let body = b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 at noon, then a very long lin";
        let s = summarize(&h, body);
        assert!(s.preview.starts_with("Café at noon"), "{:?}", s.preview);
    }

    #[test]
    fn only_what_a_partial_fetch_asks_for_is_decoded_when_a_server_sends_more() {
        let mut h = b"From: a@example.test\r\n".to_vec();
        while h.len() < HEADER_BYTES {
            h.extend_from_slice(b"Received: from relay.example.test by mx.example.test; Tue, 24 Nov 2026 10:00:00 +0000\r\n");
        }
        h.extend_from_slice(b"Subject: past the limit\r\n\r\n");
        let mut text = vec![b' '; PREVIEW_BYTES];
        text.extend_from_slice(b"beyond");
        let s = summarize(&h, &text);
        assert_eq!(s.sender, "a@example.test");
        assert_eq!(s.subject, "", "the subject is past the fetched part");
        assert_eq!(s.preview, "", "the text is past the fetched part");
    }

    #[test]
    fn long_previews_are_cut_with_an_ellipsis() {
        let text = "word ".repeat(100);
        let s = summarize(&header(&["From: a@example.test", "Subject: x"]), text.as_bytes());
        assert_eq!(s.preview.chars().count(), PREVIEW_CHARS);
        assert!(s.preview.ends_with('…'));
    }
}
