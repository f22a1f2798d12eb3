//! The MIME encodings a message needs: quoted-printable bodies (RFC 2045) and headers with
//! RFC 2047 encoded words, folded to stay within line limits.
//!
//! Written here rather than taken from a builder because the send path assembles tens of
//! thousands of messages a second from pre-encoded pieces: the encoders must be able to stop
//! and resume at a piece boundary (a soft line break) without changing the decoded bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The longest encoded line, not counting CRLF; RFC 2045 allows 76 including the `=` of a
/// soft line break.
const QP_LINE: usize = 76;

/// Appends `input` quoted-printable encoded, continuing a line at `column`. Line breaks in the
/// input become CRLF hard breaks. With `ends_part`, a trailing space is encoded (it would
/// otherwise end the last line and be lost in transit).
pub fn quoted_printable(input: &[u8], column: &mut usize, ends_part: bool, out: &mut Vec<u8>) {
    let mut index = 0;
    while index < input.len() {
        let byte = input[index];
        let next = input.get(index + 1).copied();
        index += 1;
        match byte {
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                *column = 0;
                continue;
            }
            b'\r' if next == Some(b'\n') => continue,
            _ => {}
        }
        let is_last = index == input.len();
        let literal = match byte {
            b' ' | b'\t' => !(matches!(next, Some(b'\n' | b'\r')) || (is_last && ends_part)),
            // A dot alone at the start of a line ends the message in SMTP; some relays
            // mishandle it even when dot-stuffed, so it is never left there.
            b'.' => *column != 0,
            b'=' => false,
            33..=126 => true,
            _ => false,
        };
        let width = if literal { 1 } else { 3 };
        // One column stays free for the `=` of a soft break.
        if *column + width > QP_LINE - 1 {
            soft_break(column, out);
        }
        if literal {
            out.push(byte);
        } else {
            out.extend_from_slice(&[
                b'=',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        }
        *column += width;
    }
}

/// Ends the current line without a line break in the decoded text.
pub fn soft_break(column: &mut usize, out: &mut Vec<u8>) {
    if *column > 0 {
        out.extend_from_slice(b"=\r\n");
        *column = 0;
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Bytes of UTF-8 per encoded word: 40 bytes become 56 base64 characters, so a word is 68
/// characters and fits a line with a short header name in front.
const WORD_BYTES: usize = 40;

/// `text` as one or more RFC 2047 encoded words, folded onto continuation lines.
fn encoded_words(text: &str, out: &mut String) {
    let mut start = 0;
    let mut first = true;
    while start < text.len() {
        let mut end = (start + WORD_BYTES).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        if !first {
            out.push_str("\r\n ");
        }
        out.push_str("=?utf-8?b?");
        out.push_str(&STANDARD.encode(&text.as_bytes()[start..end]));
        out.push_str("?=");
        start = end;
        first = false;
    }
}

/// Header lines are folded to stay within this many characters where they can (RFC 5322
/// 2.1.1 recommends 78); none ever reaches the hard limit of 998.
const FOLD_AT: usize = 78;

fn needs_encoding(text: &str) -> bool {
    !text.bytes().all(|byte| (32..127).contains(&byte)) || text.contains("=?")
}

/// A word that would not fit on a folded line of its own: only encoded words (which can be
/// cut anywhere) keep such a value within the line limits.
fn has_unfoldable_word(text: &str) -> bool {
    text.split(' ').any(|word| word.len() > FOLD_AT - 2)
}

/// An unstructured header (Subject) with its value, folded at spaces, CRLF-terminated.
pub fn unstructured_header(name: &str, value: &str, out: &mut String) {
    out.push_str(name);
    out.push_str(": ");
    if needs_encoding(value) || has_unfoldable_word(value) {
        encoded_words(value, out);
    } else {
        fold_words(name.len() + 2, value, out);
    }
    out.push_str("\r\n");
}

/// Folds plain ASCII text at spaces so lines stay under 78 characters where possible.
fn fold_words(mut column: usize, value: &str, out: &mut String) {
    for (index, word) in value.split(' ').enumerate() {
        if index > 0 {
            if column + 1 + word.len() > FOLD_AT {
                out.push_str("\r\n");
                column = 0;
            }
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += word.len();
    }
}

/// Names longer than this are written as encoded words, which fold; a shorter one fits a line
/// with its address.
const LONGEST_PLAIN_PHRASE: usize = 60;

/// A display name as an RFC 5322 phrase: bare when it is plain words, quoted when it holds
/// specials, encoded words when it is not ASCII or too long to fit a line.
pub fn phrase(name: &str, out: &mut String) {
    if needs_encoding(name) || name.len() > LONGEST_PLAIN_PHRASE {
        encoded_words(name, out);
    } else if name
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || b" !#$%&'*+-/=?^_`{|}~".contains(&byte))
    {
        out.push_str(name);
    } else {
        out.push('"');
        for c in name.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
}

/// `Name <address>`, or the bare address without a name; the address goes on a line of its
/// own when it would not fit after the name.
pub fn mailbox(name: Option<&str>, address: &str, out: &mut String) {
    match name {
        Some(name) => {
            phrase(name, out);
            angle_addr(address, out);
        }
        None => out.push_str(address),
    }
}

/// ` <address>` (or `<id>`), folded onto a new line when the current one would grow past 78.
pub fn angle_addr(address: &str, out: &mut String) {
    let column = out.len() - out.rfind('\n').map_or(0, |newline| newline + 1);
    if column + address.len() + 3 > FOLD_AT {
        out.push_str("\r\n");
    }
    out.push_str(" <");
    out.push_str(address);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qp(input: &str) -> String {
        let mut out = Vec::new();
        let mut column = 0;
        quoted_printable(input.as_bytes(), &mut column, true, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn decode_qp(encoded: &str) -> String {
        let mut out = Vec::new();
        let bytes = encoded.as_bytes();
        let mut index = 0;
        while index < bytes.len() {
            match bytes[index] {
                b'=' if bytes[index + 1] == b'\r' => index += 3,
                b'=' => {
                    let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    index += 3;
                }
                b'\r' => index += 1,
                byte => {
                    out.push(byte);
                    index += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn quoted_printable_escapes_what_it_must_and_nothing_else() {
        assert_eq!(qp("a=b café"), "a=3Db caf=C3=A9");
        assert_eq!(qp("end \nnext"), "end=20\r\nnext");
        assert_eq!(qp(".\n"), "=2E\r\n");
        assert_eq!(qp("trailing "), "trailing=20");
    }

    #[test]
    fn quoted_printable_lines_never_exceed_76_and_round_trip() {
        let input = format!(
            "{}\n{} ümlaut {}",
            "x".repeat(200),
            "é".repeat(50),
            "=".repeat(40)
        );
        let encoded = qp(&input);
        assert!(
            encoded.split("\r\n").all(|line| line.len() <= 76),
            "{encoded}"
        );
        assert_eq!(decode_qp(&encoded), input);
    }

    #[test]
    fn pieces_encoded_separately_decode_to_their_concatenation() {
        let mut out = Vec::new();
        let mut column = 0;
        quoted_printable(b"Hello ", &mut column, false, &mut out);
        soft_break(&mut column, &mut out);
        quoted_printable("Zoë".as_bytes(), &mut column, false, &mut out);
        soft_break(&mut column, &mut out);
        quoted_printable(b", welcome", &mut column, true, &mut out);
        let encoded = String::from_utf8(out).unwrap();
        assert_eq!(encoded, "Hello =\r\nZo=C3=AB=\r\n, welcome");
        assert_eq!(decode_qp(&encoded), "Hello Zoë, welcome");
    }

    #[test]
    fn headers_encode_non_ascii_and_refuse_nothing_silently() {
        let mut out = String::new();
        unstructured_header("Subject", "Plain subject", &mut out);
        unstructured_header("Subject", "Grüße 🎉", &mut out);
        assert_eq!(
            out,
            "Subject: Plain subject\r\nSubject: =?utf-8?b?R3LDvMOfZSDwn46J?=\r\n"
        );
        let mut out = String::new();
        mailbox(Some("Doe, Jane \"JD\""), "jane@example.com", &mut out);
        assert_eq!(out, "\"Doe, Jane \\\"JD\\\"\" <jane@example.com>");
        let mut out = String::new();
        mailbox(Some("李伟"), "li@example.com", &mut out);
        assert_eq!(out, "=?utf-8?b?5p2O5Lyf?= <li@example.com>");
    }

    #[test]
    fn a_word_too_long_for_any_line_and_a_long_name_are_encoded_so_they_fold() {
        let mut out = String::new();
        unstructured_header(
            "Subject",
            &format!("Big {} news", "x".repeat(1100)),
            &mut out,
        );
        assert!(out.split("\r\n").all(|line| line.len() <= 78), "{out}");
        let mut out = String::from("To: ");
        let name = format!("\"{}\"", "Quoted, Name ".repeat(90));
        mailbox(Some(&name), "a-rather-long-address@example.com", &mut out);
        assert!(out.split("\r\n").all(|line| line.len() <= 78), "{out}");
        // The address goes on a line of its own when it does not fit after the name.
        let mut out = String::from("To: ");
        mailbox(
            Some(&"y".repeat(55)),
            "a-rather-long-address@example.com",
            &mut out,
        );
        assert_eq!(
            out,
            format!(
                "To: {}\r\n <a-rather-long-address@example.com>",
                "y".repeat(55)
            )
        );
    }

    #[test]
    fn long_encoded_subjects_are_split_into_folded_words_on_character_boundaries() {
        let mut out = String::new();
        unstructured_header("Subject", &"日本語のニュースレター".repeat(5), &mut out);
        assert!(out.split("\r\n").all(|line| line.len() <= 78), "{out}");
        assert!(out.matches("=?utf-8?b?").count() > 1);
    }
}
