//! Just enough base64 (RFC 4648, standard alphabet) to read AUTH responses,
//! which is not worth a dependency.

/// Decodes `input`, ignoring surrounding whitespace and padding.
/// Returns `None` on any character outside the alphabet.
pub(crate) fn decode(input: &str) -> Option<Vec<u8>> {
    let input = input.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in input.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_padded_and_unpadded_input() {
        assert_eq!(decode("VXNlcm5hbWU6").unwrap(), b"Username:");
        assert_eq!(decode("UGFzc3dvcmQ6").unwrap(), b"Password:");
        assert_eq!(decode("AHVzZXIAcGFzcw==").unwrap(), b"\0user\0pass");
        assert_eq!(decode("YQ").unwrap(), b"a");
        assert_eq!(decode("").unwrap(), b"");
        assert_eq!(decode("a b"), None);
    }
}
