//! Lookahead for greedy decoding: guesses of the next tokens from earlier text, which the
//! decode loop checks in one batched forward pass (prompt-lookup decoding).

use super::GeneratedToken;

/// A guess at the next tokens, in the manner of prompt-lookup decoding, over the prompt's
/// tail (the user's message) followed by the output so far: see [`lookup`].
pub(super) fn draft(pending: &[u32], out: &[GeneratedToken], k: usize) -> Vec<u32> {
    let history: Vec<u32> = pending.iter().copied().chain(out.iter().map(|t| t.token)).collect();
    lookup(&history, k)
}

/// Finds the latest earlier occurrence of the text's last three tokens (or two) and copies up
/// to `k` tokens that followed it. A small model's output often repeats the message (an
/// echoed `customerMessage`) or itself (a loop in free text); both are then guessed right.
fn lookup(history: &[u32], k: usize) -> Vec<u32> {
    for n in [3, 2] {
        if k == 0 || history.len() <= n {
            continue;
        }
        let tail = &history[history.len() - n..];
        if let Some(start) = (0..history.len() - n).rev().find(|&i| &history[i..i + n] == tail) {
            let from = start + n;
            return history[from..(from + k).min(history.len())].to_vec();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_copies_what_followed_the_last_earlier_occurrence_of_the_tail() {
        // ... 1 2 3 [4 5 6] ... 1 2 3 -> 4 5 6
        assert_eq!(lookup(&[9, 1, 2, 3, 4, 5, 6, 7, 1, 2, 3], 3), vec![4, 5, 6]);
        // The latest occurrence wins, and the copy stops where the text does.
        assert_eq!(lookup(&[1, 2, 8, 1, 2, 9, 1, 2], 5), vec![9, 1, 2]);
        // No earlier bigram: nothing to guess.
        assert_eq!(lookup(&[1, 2, 3, 4], 4), Vec::<u32>::new());
        assert_eq!(lookup(&[1, 2, 1, 2], 0), Vec::<u32>::new());
    }
}
