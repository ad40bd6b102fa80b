//! Sets of bytes, the bottom layer: a [`ByteSet`] and the few JSON facts about bytes that the
//! grammar and the vocabulary both use (which bytes a JSON string holds unescaped).

use std::fmt;
use std::ops::{BitAnd, BitOr, Not, Sub};

/// A set of bytes, one bit per byte value in four 64-bit words: membership, union and
/// subset tests are a few word operations, which the token trie's walks make at every node.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ByteSet([u64; 4]);

impl ByteSet {
    /// No byte.
    pub const EMPTY: Self = Self([0; 4]);
    /// Every byte.
    pub const ALL: Self = Self([u64::MAX; 4]);

    /// The bytes `start..=end` (empty when `start > end`).
    pub fn range(start: u8, end: u8) -> Self {
        let (start, end) = (start as u32, end as u32);
        Self(std::array::from_fn(|w| {
            let (lo, hi) = (start.max(w as u32 * 64), end.min(w as u32 * 64 + 63));
            if lo > hi {
                return 0;
            }
            // Bits lo..=hi of this word.
            let width = hi - lo + 1;
            let ones = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
            ones << (lo % 64)
        }))
    }

    /// Adds `byte`.
    #[inline]
    pub fn insert(&mut self, byte: u8) {
        self.0[(byte / 64) as usize] |= 1 << (byte % 64);
    }

    /// Whether `byte` is in the set.
    #[inline]
    pub fn contains(&self, byte: u8) -> bool {
        self.0[(byte / 64) as usize] & (1 << (byte % 64)) != 0
    }

    /// How many bytes the set holds.
    #[inline]
    pub fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// Whether the set holds no byte.
    #[inline]
    pub fn is_empty(&self) -> bool {
        *self == Self::EMPTY
    }

    /// Whether the set holds every byte.
    #[inline]
    pub fn is_full(&self) -> bool {
        *self == Self::ALL
    }

    /// Whether every byte of `self` is in `other`.
    #[inline]
    pub fn is_subset(&self, other: &Self) -> bool {
        (0..4).fold(0, |acc, w| acc | (self.0[w] & !other.0[w])) == 0
    }

    /// Whether the two sets share a byte.
    #[inline]
    pub fn intersects(&self, other: &Self) -> bool {
        !(*self & *other).is_empty()
    }

    /// The bytes, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros();
                    rest &= rest - 1;
                    i as u8 * 64 + bit as u8
                })
            })
        })
    }

    /// The smallest byte, if any.
    pub fn first(&self) -> Option<u8> {
        self.0.iter().enumerate().find(|(_, w)| **w != 0).map(|(i, w)| i as u8 * 64 + w.trailing_zeros() as u8)
    }
}

impl FromIterator<u8> for ByteSet {
    fn from_iter<I: IntoIterator<Item = u8>>(bytes: I) -> Self {
        let mut set = Self::EMPTY;
        bytes.into_iter().for_each(|b| set.insert(b));
        set
    }
}

impl BitOr for ByteSet {
    type Output = Self;
    #[inline]
    fn bitor(self, other: Self) -> Self {
        Self(std::array::from_fn(|w| self.0[w] | other.0[w]))
    }
}

impl BitAnd for ByteSet {
    type Output = Self;
    #[inline]
    fn bitand(self, other: Self) -> Self {
        Self(std::array::from_fn(|w| self.0[w] & other.0[w]))
    }
}

/// The bytes of `self` that are not in `other`.
impl Sub for ByteSet {
    type Output = Self;
    #[inline]
    fn sub(self, other: Self) -> Self {
        Self(std::array::from_fn(|w| self.0[w] & !other.0[w]))
    }
}

impl Not for ByteSet {
    type Output = Self;
    #[inline]
    fn not(self) -> Self {
        Self(self.0.map(|w| !w))
    }
}

/// Lists the set as ranges: `{0x20-0x21, 0x23-0x5b, 0x5d-0x7f}`.
impl fmt::Debug for ByteSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ranges: Vec<(u8, u8)> = Vec::new();
        for b in self.iter() {
            match ranges.last_mut() {
                Some((_, end)) if *end as u16 + 1 == b as u16 => *end = b,
                _ => ranges.push((b, b)),
            }
        }
        let parts: Vec<String> =
            ranges.iter().map(|&(s, e)| if s == e { format!("{s:#04x}") } else { format!("{s:#04x}-{e:#04x}") }).collect();
        write!(f, "{{{}}}", parts.join(", "))
    }
}

/// The bytes a JSON string holds unescaped, one character each: U+0020..=U+007F but `"` and
/// `\`. (Multi-byte UTF-8 characters are not a run: their bytes lead to other states.)
pub fn json_string_run_bytes() -> ByteSet {
    (0u8..0x80).filter(|&b| !json_escapes(b)).collect()
}

/// The bytes a JSON string body writes as an escape sequence (`serde_json`'s canonical form:
/// the quote, the backslash and the control characters; DEL is written as it is). The one
/// place this is decided: the grammar's string characters, its pattern products and the
/// vocabulary's text tokens all ask here.
pub fn json_escapes(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The bytes a character inside a JSON string body can start with: a plain byte or a
/// UTF-8 lead byte.
pub fn json_text_first_bytes() -> ByteSet {
    json_string_run_bytes() | ByteSet::range(0xC2, 0xF4)
}

/// Where a string of text stands inside a UTF-8 character: at a boundary, or which bytes may
/// continue it (RFC 3629's table: no overlong forms, no surrogates, nothing past U+10FFFF).
/// Text is what a JSON string writes as it is: no byte that [`json_escapes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Utf8 {
    Boundary,
    /// This many continuation bytes (80..=BF) still to come.
    Tail1,
    Tail2,
    Tail3,
    /// After E0: A0..=BF, then one more.
    E0,
    /// After ED: 80..=9F, then one more.
    Ed,
    /// After F0: 90..=BF, then two more.
    F0,
    /// After F4: 80..=8F, then two more.
    F4,
}

/// How many places [`Utf8`] has.
pub(crate) const UTF8_STATES: usize = 8;

impl Utf8 {
    /// Every place, in order.
    pub(crate) const ALL: [Utf8; UTF8_STATES] =
        [Utf8::Boundary, Utf8::Tail1, Utf8::Tail2, Utf8::Tail3, Utf8::E0, Utf8::Ed, Utf8::F0, Utf8::F4];

    /// Where `byte` leads, or `None` when text cannot hold it here (a quote, a backslash or
    /// a control byte, which a string writes escaped, or broken UTF-8).
    pub(crate) fn next(self, byte: u8) -> Option<Utf8> {
        let tail = |n: u8| match n {
            0 => Utf8::Boundary,
            1 => Utf8::Tail1,
            2 => Utf8::Tail2,
            _ => Utf8::Tail3,
        };
        match self {
            Utf8::Boundary => match byte {
                0x00..=0x7F if json_escapes(byte) => None,
                0x00..=0x7F => Some(Utf8::Boundary),
                0xC2..=0xDF => Some(Utf8::Tail1),
                0xE0 => Some(Utf8::E0),
                0xED => Some(Utf8::Ed),
                0xE1..=0xEF => Some(Utf8::Tail2),
                0xF0 => Some(Utf8::F0),
                0xF1..=0xF3 => Some(Utf8::Tail3),
                0xF4 => Some(Utf8::F4),
                _ => None,
            },
            Utf8::Tail1 | Utf8::Tail2 | Utf8::Tail3 => (0x80..=0xBF).contains(&byte).then(|| tail(self as u8 - 1)),
            Utf8::E0 => (0xA0..=0xBF).contains(&byte).then_some(Utf8::Tail1),
            Utf8::Ed => (0x80..=0x9F).contains(&byte).then_some(Utf8::Tail1),
            Utf8::F0 => (0x90..=0xBF).contains(&byte).then_some(Utf8::Tail2),
            Utf8::F4 => (0x80..=0x8F).contains(&byte).then_some(Utf8::Tail2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The UTF-8 places accept exactly the prefixes of valid UTF-8 that a JSON string
    /// writes as they are (what the vocabulary counts as text), over every 1 to 3 byte string
    /// and a sample of 4 byte ones.
    #[test]
    fn the_places_accept_what_the_vocabulary_calls_text() {
        let text = |bytes: &[u8]| {
            !bytes.iter().any(|&b| json_escapes(b))
                && match std::str::from_utf8(bytes) {
                    Ok(_) => true,
                    Err(e) => e.error_len().is_none(),
                }
        };
        let walks = |bytes: &[u8]| bytes.iter().try_fold(Utf8::Boundary, |at, &b| at.next(b)).is_some();
        for a in 0..=255u8 {
            assert_eq!(walks(&[a]), text(&[a]), "{a:02x}");
            for b in 0..=255u8 {
                assert_eq!(walks(&[a, b]), text(&[a, b]), "{a:02x} {b:02x}");
                for c in (0..=255u8).step_by(7) {
                    assert_eq!(walks(&[a, b, c]), text(&[a, b, c]), "{a:02x} {b:02x} {c:02x}");
                }
            }
        }
        for bytes in [&[0xF0u8, 0x90, 0x80, 0x80][..], &[0xF4, 0x8F, 0xBF, 0xBF], &[0xF4, 0x90, 0x80, 0x80], &[0xF0, 0x8F, 0xBF, 0xBF]] {
            assert_eq!(walks(bytes), text(bytes), "{bytes:02x?}");
        }
    }

    #[test]
    fn set_operations_agree_with_a_list_of_bytes() {
        let a = ByteSet::range(b'a', b'z');
        let b: ByteSet = [b'0', b'x', b'y', 0xFF].into_iter().collect();
        assert_eq!(a.len(), 26);
        assert!(b.contains(0xFF) && b.contains(b'0') && !b.contains(b'1'));
        assert_eq!((a & b).iter().collect::<Vec<_>>(), b"xy");
        assert_eq!((b - a).iter().collect::<Vec<_>>(), [b'0', 0xFF]);
        assert_eq!((a | b).len(), 28);
        assert!((a & b).is_subset(&a) && !b.is_subset(&a) && a.intersects(&b));
        assert_eq!(!ByteSet::EMPTY, ByteSet::ALL);
        assert_eq!((!a).len(), 230);
        assert_eq!(b.first(), Some(b'0'));
        assert_eq!(ByteSet::EMPTY.first(), None);
        assert!(ByteSet::range(5, 4).is_empty());
        for (s, e) in [(0, 0), (0, 63), (0, 64), (63, 64), (1, 255), (0, 255), (200, 255), (64, 127), (100, 100)] {
            assert_eq!(ByteSet::range(s, e), (s..=e).collect::<ByteSet>(), "{s}..={e}");
        }
        assert_eq!(format!("{b:?}"), "{0x30, 0x78-0x79, 0xff}");
    }

    #[test]
    fn json_string_runs_exclude_the_escaped_bytes() {
        let run = json_string_run_bytes();
        assert_eq!(run.len(), 0x80 - 0x20 - 2);
        assert!(run.iter().all(|b| !json_escapes(b)));
        assert!(json_text_first_bytes().contains(0xC2) && !json_text_first_bytes().contains(0xC1));
    }
}
