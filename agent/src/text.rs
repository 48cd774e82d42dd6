//! Bytes from the outside (command output, log files, PowerShell JSON) to text, whatever the
//! encoding Windows or Linux chose: a BOM wins (UTF-8, UTF-16LE/BE), then UTF-16LE without BOM
//! (PowerShell's `Out-File` default), then UTF-8, and Windows-1252 as the last resort (French
//! Windows tools writing in the ANSI code page). Never fails, never panics.

use encoding_rs::{Encoding, UTF_8, UTF_16LE, WINDOWS_1252};

/// Decodes `bytes` to a `String`, replacing what cannot be decoded.
pub fn decode(bytes: &[u8]) -> String {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        return text.into_owned();
    }
    if looks_like_utf16le(bytes) {
        let (text, _) = UTF_16LE.decode_without_bom_handling(bytes);
        return text.into_owned();
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => {
            // Valid UTF-8 is rare by accident; text that is not is most likely ANSI (1252).
            let (text, _, _) = WINDOWS_1252.decode(bytes);
            text.into_owned()
        }
    }
}

/// ASCII text in UTF-16LE has a NUL in most odd positions.
fn looks_like_utf16le(bytes: &[u8]) -> bool {
    if bytes.len() < 4 {
        return false;
    }
    let sample = &bytes[..bytes.len().min(512)];
    let odd = sample.iter().skip(1).step_by(2).count();
    let nul_odd = sample
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|b| **b == 0)
        .count();
    let nul_even = sample.iter().step_by(2).filter(|b| **b == 0).count();
    nul_odd * 10 >= odd * 7 && nul_even * 10 < odd
}

/// `true` when the text is valid UTF-8 as is (used by tests and callers that report it).
pub fn is_utf8(bytes: &[u8]) -> bool {
    let (_, _, had_errors) = UTF_8.decode(bytes);
    !had_errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(text: &str, bom: bool) -> Vec<u8> {
        let mut out = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
        out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        out
    }

    fn check(input: &[u8], expected: &str) {
        assert_eq!(decode(input), expected, "input {input:?}");
    }

    #[test]
    fn decodes_what_windows_and_linux_write() {
        check(b"", "");
        check("Médecin".as_bytes(), "Médecin");
        check(b"\xEF\xBB\xBFweda", "weda");
        check(&utf16le("Rép. Échec", true), "Rép. Échec");
        check(&utf16le("{\"a\":1}", false), "{\"a\":1}");
        check(b"R\xe9p. \xc9chec \x80", "Rép. Échec €");
        check(b"\xFF\xFE\x41", "\u{FFFD}");
        check(b"\x00\x01\xff", "\u{0}\u{1}ÿ");
        assert!(is_utf8(b"ok"));
        assert!(!is_utf8(b"\xe9"));
    }
}
