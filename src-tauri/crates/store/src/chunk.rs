//! Cuts a long string into content-defined pieces, so that an edit to a long prompt leaves most pieces as they were.
//!
//! The proxy appends the injected skills to the client's system prompt, and
//! agents put the date or the model in it: whole-prompt deduplication would
//! store a fresh copy of a 48 KB prompt for every such variant. Cut into
//! pieces, a variant costs only the pieces around the change.
//!
//! A piece ends after a line chosen by the line's own content (a hash), not
//! by its position, so an insertion or a change early in the text shifts the
//! cut points only up to the next chosen line: after it, the pieces are the
//! same as before. Lines are where prompts are edited, so a cut never splits
//! a line unless the line alone exceeds [`MAX_PIECE`].

/// A piece ends at a chosen line only once it is at least this long, so that
/// short lines do not make tiny pieces (each piece costs a row and a reference).
pub(crate) const MIN_PIECE: usize = 1024;

/// No piece is longer: a longer line (base64, minified code) is cut inside,
/// at a character boundary.
pub(crate) const MAX_PIECE: usize = 32 * 1024;

/// A line is chosen as a cut point when the top bits of its hash are zero:
/// about one line in eight, so a piece is typically [`MIN_PIECE`] plus a few
/// lines.
const CHOSEN_SHIFT: u32 = 61;

/// Cuts `text` into consecutive pieces that concatenate to `text`.
///
/// For example, a 40 KB prompt of 80-byte lines comes out as pieces of one
/// to a few KB, each ending with a newline; appending "\n\nskills…" to it
/// changes only the last piece and adds new ones after it. Text shorter
/// than [`MIN_PIECE`] is one piece; the empty string is no piece.
pub(crate) fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut line_start = 0;
    while line_start < text.len() {
        let line_end = text[line_start..]
            .find('\n')
            .map_or(text.len(), |i| line_start + i + 1);
        // A line that would take the piece past the maximum is cut inside.
        while line_end - start > MAX_PIECE {
            let cut = char_boundary_at_or_before(text, start + MAX_PIECE);
            out.push(&text[start..cut]);
            start = cut;
        }
        if line_end - start >= MIN_PIECE && is_chosen(&text[line_start..line_end]) {
            out.push(&text[start..line_end]);
            start = line_end;
        }
        line_start = line_end;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

fn is_chosen(line: &str) -> bool {
    fnv1a(line.as_bytes()) >> CHOSEN_SHIFT == 0
}

/// FNV-1a, 64 bits: fixed forever (unlike std's hasher), so the same text is
/// cut the same way by every build and its pieces are shared.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// `at` or the nearest character boundary before it. A boundary is at most
/// three bytes back; the caller ensures `at > start` by more than that.
fn char_boundary_at_or_before(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
// Tests may fail loudly; the no-panic policy is for the store itself.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A prompt-like text: numbered lines of varying length, like a long system prompt.
    fn prompt(lines: usize, tag: &str) -> String {
        (0..lines)
            .map(|i| format!("{tag} line {i}: {}\n", "word ".repeat(i % 23)))
            .collect()
    }

    fn check_invariants(text: &str) -> Vec<&str> {
        let out = pieces(text);
        assert_eq!(out.concat(), text);
        assert!(out.iter().all(|p| !p.is_empty()));
        assert!(
            out.iter().all(|p| p.len() <= MAX_PIECE),
            "a piece is too long"
        );
        // Every piece but the last is at least the minimum (a cut inside a
        // long line is near the maximum).
        for p in &out[..out.len().saturating_sub(1)] {
            assert!(p.len() >= MIN_PIECE, "{}", p.len());
        }
        out
    }

    #[test]
    fn pieces_concatenate_to_the_text() {
        assert!(pieces("").is_empty());
        assert_eq!(pieces("short\ntext"), ["short\ntext"]);
        let long = prompt(2_000, "x");
        let out = check_invariants(&long);
        assert!(out.len() > 10, "{} pieces", out.len());
        assert!(out[..out.len() - 1].iter().all(|p| p.ends_with('\n')));
        let average = long.len() / out.len();
        assert!((MIN_PIECE..4 * MIN_PIECE).contains(&average), "{average}");
    }

    #[test]
    fn a_long_line_is_cut_at_character_boundaries() {
        // Four-byte characters, so most byte offsets are not boundaries.
        let text = format!("head\n{}\ntail", "🦀é".repeat(30_000));
        let out = check_invariants(&text);
        assert!(out.len() >= 5);
        let crlf = "a\r\n".repeat(5_000);
        check_invariants(&crlf);
    }

    #[test]
    fn appending_keeps_all_but_the_last_piece() {
        let base = prompt(1_000, "sys");
        let before = pieces(&base);
        let with_skills = format!("{base}\n\n## Skills\n{}", prompt(100, "skill"));
        let after = pieces(&with_skills);
        assert_eq!(after[..before.len() - 1], before[..before.len() - 1]);
    }

    #[test]
    fn a_change_in_the_middle_touches_only_nearby_pieces() {
        let head = prompt(600, "a");
        let tail = prompt(600, "b");
        let one = format!("{head}Current date: 2026-11-25\n{tail}");
        let two = format!("{head}Current date: 2026-11-26 (a longer line)\n{tail}");
        let (p1, p2) = (pieces(&one), pieces(&two));
        let shared = p2.iter().filter(|p| p1.contains(p)).count();
        assert!(
            p2.len() - shared <= 2,
            "{} of {} pieces changed",
            p2.len() - shared,
            p2.len()
        );
    }
}
