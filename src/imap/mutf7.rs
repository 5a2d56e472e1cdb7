//! Folder names on the wire: IMAP's modified UTF-7 (RFC 3501 §5.1.3).
//!
//! Servers without UTF8=ACCEPT name folders in ASCII, with anything else
//! written as `&` + base64 of its UTF-16 (alphabet `A-Za-z0-9+,`, no
//! padding) + `-`, and `&` itself as `&-`: "Entwürfe" is `Entw&APw-rfe`.
//! Vigie's config and item keys hold the names people read; they are
//! encoded only for the commands and decoded from LIST.
//!
//! Decoding never fails on what a server sends: a malformed name is kept
//! as it came (it still works in commands, since encoding it back is not
//! needed for display only).

use base64::Engine;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig, DecodePaddingMode};

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::IMAP_MUTF7,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// The wire form of the folder name `name`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&ENGINE.encode(bytes));
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// The readable form of the wire name `wire`, or `None` if it is not
/// valid modified UTF-7.
pub fn decode(wire: &str) -> Option<String> {
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('-')?;
        let encoded = &after[..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = ENGINE.decode(encoded).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_wire_form_of_rfc_3501() {
        let cases = [
            ("INBOX", "INBOX"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
            ("Tom & Jerry", "Tom &- Jerry"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("📅 Dates", "&2D3cxQ- Dates"),
        ];
        for (name, wire) in cases {
            assert_eq!(encode(name), wire, "{name}");
            assert_eq!(decode(wire).as_deref(), Some(name), "{wire}");
        }
    }

    #[test]
    fn a_malformed_wire_name_is_refused_not_guessed() {
        for wire in ["a&Jjo", "&!!-", "&AP-"] {
            assert_eq!(decode(wire), None, "{wire}");
        }
    }
}
