//! Text helpers shared by the vendor formats: word counts (the mock's "tokens"), stream pieces,
//! truncation at a word budget.

/// Whitespace-separated words in `text`.
pub(crate) fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// A token count as vendors report it: never zero.
pub(crate) fn tokens(words: usize) -> u64 {
    words.max(1) as u64
}

/// Splits `text` into `n` pieces of near-equal length on char boundaries.
///
/// No piece is empty: text shorter than `n` chars gives one piece per char, and empty text gives
/// a single empty piece, so every stream carries at least one delta.
pub(crate) fn pieces(text: &str, n: usize) -> Vec<&str> {
    let chars = text.chars().count();
    let n = n.max(1).min(chars.max(1));
    let mut out = Vec::with_capacity(n);
    let mut rest = text;
    let mut remaining_chars = chars;
    for remaining_pieces in (1..=n).rev() {
        // Spread the remainder over the first pieces, so sizes differ by at most one char.
        let take = remaining_chars.div_ceil(remaining_pieces);
        let cut = rest
            .char_indices()
            .nth(take)
            .map_or(rest.len(), |(at, _)| at);
        let (piece, tail) = rest.split_at(cut);
        out.push(piece);
        rest = tail;
        remaining_chars -= take;
    }
    out
}

/// `text` cut after its `max`-th word when it has more than `max` words, keeping the original
/// spacing between the kept words.
pub(crate) fn truncate_words(text: &str, max: usize) -> Option<&str> {
    let mut seen = 0;
    let mut in_word = false;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                in_word = false;
                if seen == max {
                    return (words(&text[at..]) > 0).then(|| &text[..at]);
                }
            }
        } else if !in_word {
            in_word = true;
            seen += 1;
            if seen > max {
                return Some(text[..at].trim_end());
            }
        }
    }
    None
}

/// Whether `text` contains the word "parallel" (any case).
pub(crate) fn mentions_parallel(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .any(|word| word.eq_ignore_ascii_case("parallel"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_near_equal_and_reassemble() {
        let text = "Hello, wörld! How are you?";
        for n in 1..40 {
            let parts = pieces(text, n);
            assert_eq!(parts.concat(), text);
            assert_eq!(parts.len(), n.min(text.chars().count()));
            assert!(parts.iter().all(|p| !p.is_empty()));
            let sizes: Vec<usize> = parts.iter().map(|p| p.chars().count()).collect();
            let (min, max) = (sizes.iter().min(), sizes.iter().max());
            assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "{sizes:?}");
        }
        assert_eq!(pieces("", 4), vec![""]);
        assert_eq!(pieces("ab", 0), vec!["ab"]);
    }

    #[test]
    fn truncation_keeps_whole_words() {
        assert_eq!(truncate_words("one two three", 2), Some("one two"));
        assert_eq!(truncate_words("one  two\tthree four", 2), Some("one  two"));
        assert_eq!(truncate_words("one two", 2), None);
        assert_eq!(truncate_words("one two  ", 2), None);
        assert_eq!(truncate_words("  one two three", 1), Some("  one"));
        assert_eq!(truncate_words("one two", 0), Some(""));
    }

    #[test]
    fn parallel_is_a_word() {
        assert!(mentions_parallel("call them in Parallel, please"));
        assert!(!mentions_parallel("parallelism"));
    }
}
