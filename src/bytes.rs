//! Sets of bytes, the bottom layer: a [`ByteSet`] and the few JSON facts about bytes that the
//! grammar and the vocabulary both use (which bytes a JSON string holds unescaped).

/// A set of bytes as four 64-bit words.
pub type ByteSet = [u64; 4];

/// The bytes a JSON string holds unescaped, one character each: U+0020..=U+007F but `"` and
/// `\`. (Multi-byte UTF-8 characters are not a run: their bytes lead to other states.)
pub fn json_string_run_bytes() -> ByteSet {
    let mut set = [0u64; 4];
    for b in (0u8..0x80).filter(|&b| !json_escapes(b)) {
        set[(b / 64) as usize] |= 1 << (b % 64);
    }
    set
}

/// The bytes a JSON string body writes as an escape sequence (`serde_json`'s canonical form:
/// the quote, the backslash and the control characters; DEL is written as it is). The one
/// place this is decided: the grammar's string characters, its pattern products and the
/// vocabulary's text tokens all ask here.
pub fn json_escapes(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Whether every byte of `a` is in `b`.
#[inline]
pub fn subset(a: &ByteSet, b: &ByteSet) -> bool {
    (a[0] & !b[0]) | (a[1] & !b[1]) | (a[2] & !b[2]) | (a[3] & !b[3]) == 0
}

/// Whether `byte` is in `set`.
#[inline]
pub fn contains(set: &ByteSet, byte: u8) -> bool {
    set[(byte / 64) as usize] & (1 << (byte % 64)) != 0
}

/// How many bytes `set` holds.
#[inline]
pub fn byte_count(set: &ByteSet) -> u32 {
    set.iter().map(|w| w.count_ones()).sum()
}

/// The bytes `start..=end`.
pub fn byte_range(start: u8, end: u8) -> ByteSet {
    let mut set = [0u64; 4];
    (start..=end).for_each(|b| set[(b / 64) as usize] |= 1 << (b % 64));
    set
}

/// The bytes a character inside a JSON string body can start with: a plain byte or a
/// UTF-8 lead byte.
pub fn json_text_first_bytes() -> ByteSet {
    let (plain, leads) = (json_string_run_bytes(), byte_range(0xC2, 0xF4));
    std::array::from_fn(|w| plain[w] | leads[w])
}
