//! Turning text into search terms: words, minus stopwords, stemmed.
//!
//! Skills and queries go through the same steps so that "committing" in a
//! request finds "commit" in a skill: split on anything that is not a letter or
//! digit (so `git-workflow` is two words), also split camelCase identifiers
//! (`TypeError` adds `type` and `error`), lowercase, drop common English words
//! and stem with Snowball English.

use std::borrow::Cow;
use std::sync::OnceLock;

use rust_stemmers::{Algorithm, Stemmer};

/// Shortest and longest words kept, in characters. Single letters carry no
/// meaning; very long runs are hashes, base64 or minified code.
const MIN_WORD_CHARS: usize = 2;
const MAX_WORD_CHARS: usize = 40;

/// Lowercases, filters and stems words.
pub(crate) struct Tokenizer {
    stemmer: Stemmer,
}

impl Tokenizer {
    pub(crate) fn new() -> Tokenizer {
        Tokenizer {
            stemmer: Stemmer::create(Algorithm::English),
        }
    }

    /// Calls `emit` with every kept word of `text`, lowercased but not stemmed.
    ///
    /// Callers stem only the words they have not seen before; stemming is the
    /// most expensive step and real text repeats its words a lot.
    pub(crate) fn for_each_word(text: &str, mut emit: impl FnMut(&str)) {
        let mut lower = String::new();
        for span in text.split(|c: char| !c.is_alphanumeric()) {
            if span.is_empty() {
                continue;
            }
            emit_lowercase(span, &mut lower, &mut emit);
            // Most words have no inner capital; skip the split (and its Vec) for them.
            if span.bytes().skip(1).any(|b| b.is_ascii_uppercase()) {
                let parts = camel_parts(span);
                if parts.len() > 1 {
                    for part in parts {
                        emit_lowercase(part, &mut lower, &mut emit);
                    }
                }
            }
        }
    }

    /// The stem of a lowercase word. Words with digits are left alone: they are
    /// identifiers or numbers, and English suffix rules only mangle them.
    pub(crate) fn stem<'a>(&self, word: &'a str) -> Cow<'a, str> {
        if word.chars().all(char::is_alphabetic) {
            self.stemmer.stem(word)
        } else {
            Cow::Borrowed(word)
        }
    }
}

/// Lowercases `word` into `buf` and emits it unless it is a stopword or out of bounds.
fn emit_lowercase(word: &str, buf: &mut String, emit: &mut impl FnMut(&str)) {
    buf.clear();
    // Most text is ASCII: lowercase bytes in place, skip Unicode case tables.
    if word.is_ascii() {
        if !(MIN_WORD_CHARS..=MAX_WORD_CHARS).contains(&word.len()) {
            return;
        }
        buf.push_str(word);
        buf.make_ascii_lowercase();
    } else {
        let chars = word.chars().count();
        if !(MIN_WORD_CHARS..=MAX_WORD_CHARS).contains(&chars) {
            return;
        }
        for c in word.chars() {
            buf.extend(c.to_lowercase());
        }
    }
    if !is_stopword(buf) {
        emit(buf);
    }
}

/// Splits an ASCII camelCase or PascalCase identifier into its words:
/// `parseJSONValue` gives `parse`, `JSON`, `Value`. Returns one part for
/// anything else.
fn camel_parts(word: &str) -> Vec<&str> {
    let bytes = word.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 1..bytes.len() {
        let (prev, cur) = (bytes[i - 1], bytes[i]);
        let next_is_lower = bytes.get(i + 1).is_some_and(u8::is_ascii_lowercase);
        // A boundary sits before an uppercase letter that follows a lowercase
        // letter or digit ("parseJ"), or that starts a word after an acronym
        // ("JSONValue": before the "V").
        let boundary = cur.is_ascii_uppercase()
            && (prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_is_lower));
        if boundary {
            parts.push(&word[start..i]);
            start = i;
        }
    }
    if start == 0 {
        return vec![word];
    }
    parts.push(&word[start..]);
    parts
}

/// Common English words that say nothing about which skill applies.
/// Sorted, for binary search.
#[rustfmt::skip]
const STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "done", "down", "during", "each",
    "etc", "few", "for", "from", "further", "get", "got", "had", "has", "have", "having", "he",
    "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is",
    "it", "its", "itself", "just", "let", "me", "might", "more", "most", "must", "my", "myself",
    "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours",
    "ourselves", "out", "over", "own", "please", "same", "shall", "she", "should", "so", "some",
    "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there",
    "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "us", "very",
    "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will",
    "with", "would", "you", "your", "yours", "yourself", "yourselves",
];

/// Whether `word` (lowercase) is a stopword. Tokenizing runs this for every
/// word of every skill, so the list is kept as integers: each stopword packed
/// into a `u128` (all are ASCII and under 16 bytes), sorted once.
fn is_stopword(word: &str) -> bool {
    static PACKED: OnceLock<Vec<u128>> = OnceLock::new();
    let Some(key) = pack(word) else {
        return false;
    };
    let packed = PACKED.get_or_init(|| {
        let mut packed: Vec<u128> = STOPWORDS.iter().filter_map(|w| pack(w)).collect();
        packed.sort_unstable();
        packed
    });
    packed.binary_search(&key).is_ok()
}

/// The bytes of a string shorter than 16 bytes as one integer, zero-padded.
fn pack(word: &str) -> Option<u128> {
    let bytes = word.as_bytes();
    if bytes.len() >= 16 {
        return None;
    }
    let mut buf = [0u8; 16];
    buf[..bytes.len()].copy_from_slice(bytes);
    Some(u128::from_le_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        let tokenizer = Tokenizer::new();
        let mut out = Vec::new();
        Tokenizer::for_each_word(text, |w| out.push(tokenizer.stem(w).into_owned()));
        out
    }

    #[test]
    fn stopwords_are_sorted_and_packable() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(STOPWORDS
            .iter()
            .all(|w| pack(w).is_some() && is_stopword(w)));
        for word in [
            "",
            "git",
            "theirs2",
            "them selves",
            "abouts",
            "ab",
            "yourselvesyourselves",
        ] {
            assert!(!is_stopword(word), "{word}");
        }
    }

    #[test]
    fn splits_lowercases_drops_stopwords_and_stems() {
        assert_eq!(
            terms("How should I write my Git commit messages?"),
            ["write", "git", "commit", "messag"]
        );
        assert_eq!(terms("git-workflow"), ["git", "workflow"]);
        assert_eq!(
            terms("Committing, committed; commits"),
            ["commit", "commit", "commit"]
        );
    }

    #[test]
    fn keeps_identifiers_and_splits_camel_case() {
        assert_eq!(terms("TypeError"), ["typeerror", "type", "error"]);
        assert_eq!(
            terms("parseJSONValue"),
            ["parsejsonvalu", "pars", "json", "valu"]
        );
        assert_eq!(terms("utf8 x2 a"), ["utf8", "x2"]);
        assert_eq!(terms("HTTP"), ["http"]);
    }

    #[test]
    fn drops_noise() {
        let hash = "f".repeat(41);
        assert!(terms(&hash).is_empty());
        assert!(terms("the a of - _ / ... 1 2 3").is_empty());
        assert!(terms("").is_empty());
    }

    #[test]
    fn handles_unicode() {
        assert_eq!(terms("Zürich ÉTÉ"), ["zürich", "été"]);
        assert_eq!(terms("naïve—café"), ["naïv", "café"]);
    }

    #[test]
    fn camel_parts_examples() {
        assert_eq!(camel_parts("lower"), ["lower"]);
        assert_eq!(camel_parts("Upper"), ["Upper"]);
        assert_eq!(camel_parts("ABC"), ["ABC"]);
        assert_eq!(
            camel_parts("getHTTPResponse2Code"),
            ["get", "HTTP", "Response2", "Code"]
        );
    }
}
