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

/// Reads `header` (complete, with its blank line) and `text_start` (the first
/// bytes of the body).
pub fn summarize(header: &[u8], text_start: &[u8]) -> Summary {
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
            (Some(name), _) if !name.trim().is_empty() => name.trim().to_owned(),
            (_, Some(address)) => address.trim().to_owned(),
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
    fn long_previews_are_cut_with_an_ellipsis() {
        let text = "word ".repeat(100);
        let s = summarize(&header(&["From: a@example.test", "Subject: x"]), text.as_bytes());
        assert_eq!(s.preview.chars().count(), PREVIEW_CHARS);
        assert!(s.preview.ends_with('…'));
    }
}
