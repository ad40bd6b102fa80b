//! A tokenizer's token strings back to bytes: byte-fallback tokens (`<0x0A>`) and GPT-2's
//! byte-to-printable-character table.

use std::collections::HashMap;

/// `<0x0A>` → `0x0A`.
pub(super) fn byte_fallback(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2).then(|| u8::from_str_radix(hex, 16).ok()).flatten()
}

/// GPT-2's byte ↔ printable-character table, inverted.
pub(crate) fn gpt2_char_to_byte() -> HashMap<char, u8> {
    let mut printable: Vec<u8> = (b'!'..=b'~').chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut map: HashMap<char, u8> = printable.iter().map(|&b| (b as char, b)).collect();
    let mut n = 0u32;
    for b in 0..=255u8 {
        if !printable.contains(&b) {
            map.insert(char::from_u32(256 + n).expect("valid char"), b);
            printable.push(b);
            n += 1;
        }
    }
    map
}
