//! Reading the judge's answers: one reply into a vote, votes into a score,
//! and how long to wait before retrying a turn whose votes all failed.

use std::time::Duration;

/// A vote that produced a score, with the judge's reasoning before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub score: i8,
    pub reason: String,
}

/// The longest reason kept from one reply.
const MAX_REASON_CHARS: usize = 1_000;

/// Reads a judge's reply. The score is the last `Score: …` line (markdown
/// emphasis and a trailing full stop allowed) or `\boxed{…}`, whichever
/// comes last; its value must be +1, 1, 0 or -1. Anything else is an error
/// naming what was wrong: a failed vote, never a guess.
pub fn parse_reply(reply: &str) -> Result<Verdict, String> {
    let lines: Vec<&str> = reply.lines().collect();
    for (at, line) in lines.iter().enumerate().rev() {
        let Some(token) = score_token(line) else {
            continue;
        };
        let score = parse_score(&token)
            .ok_or_else(|| format!("the final score {token:?} is not +1, 0 or -1"))?;
        let mut reason = lines[..at].join("\n");
        if reason.trim().is_empty() {
            // `Reason … Score: +1` on a single line.
            // ASCII lowercasing keeps byte offsets, so `at` indexes `line`.
            let lower = line.to_ascii_lowercase();
            let at = [lower.rfind("score"), lower.rfind("\\boxed")]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(0);
            reason = line[..at].to_string();
        }
        return Ok(Verdict {
            score,
            reason: clean_reason(&reason),
        });
    }
    Err(if reply.trim().is_empty() {
        "the judge's reply was empty".to_string()
    } else {
        "the judge's reply has no `Score:` line".to_string()
    })
}

/// The raw value after the last `score:` or inside the last `\boxed{}` of a line.
fn score_token(line: &str) -> Option<String> {
    let plain: String = line
        .chars()
        .filter(|c| !matches!(c, '*' | '`' | '#'))
        .collect::<String>()
        .to_lowercase();
    let labelled = plain
        .rfind("score:")
        .map(|at| (at, plain[at + "score:".len()..].to_string()));
    let boxed = plain.rfind("\\boxed{").and_then(|at| {
        let rest = &plain[at + "\\boxed{".len()..];
        rest.find('}').map(|end| (at, rest[..end].to_string()))
    });
    let (_, value) = match (labelled, boxed) {
        (Some(a), Some(b)) => Some(if a.0 > b.0 { a } else { b }),
        (a, b) => a.or(b),
    }?;
    let value = value.trim();
    // `Score: \boxed{1}` is one score, not two.
    let value = value
        .strip_prefix("\\boxed{")
        .and_then(|v| v.strip_suffix('}'))
        .unwrap_or(value);
    Some(
        value
            .trim()
            .trim_end_matches(['.', ',', ';'])
            .trim()
            .to_string(),
    )
}

fn parse_score(token: &str) -> Option<i8> {
    match token.replace('\u{2212}', "-").as_str() {
        "+1" | "1" => Some(1),
        "0" | "+0" | "-0" => Some(0),
        "-1" => Some(-1),
        _ => None,
    }
}

fn clean_reason(text: &str) -> String {
    let text = text.trim();
    let text = ["reason:", "reasoning:"]
        .iter()
        .find_map(|p| {
            text.get(..p.len())
                .filter(|head| head.eq_ignore_ascii_case(p))
                .map(|_| text[p.len()..].trim())
        })
        .unwrap_or(text);
    if text.chars().count() <= MAX_REASON_CHARS {
        text.to_string()
    } else {
        let cut: String = text.chars().take(MAX_REASON_CHARS).collect();
        format!("{cut}…")
    }
}

/// The majority of the successful votes, with the reason of the first vote
/// that agrees. A tie between the most common scores is 0; no successful
/// vote is `None` (the turn is retried, not scored).
pub fn majority(verdicts: &[&Verdict]) -> Option<(i8, String)> {
    if verdicts.is_empty() {
        return None;
    }
    let count = |score: i8| verdicts.iter().filter(|v| v.score == score).count();
    let counts = [(1, count(1)), (0, count(0)), (-1, count(-1))];
    let best = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let leaders: Vec<i8> = counts
        .iter()
        .filter(|(_, n)| *n == best)
        .map(|(s, _)| *s)
        .collect();
    let score = if leaders.len() == 1 { leaders[0] } else { 0 };
    let reason = verdicts
        .iter()
        .find(|v| v.score == score)
        .map(|v| v.reason.clone())
        .unwrap_or_else(|| "the votes were split evenly".to_string());
    Some((score, reason))
}

/// The wait before retry number `attempts` (1 after the first failure):
/// 1 min, doubling, at most 6 h, so a judge that is down for a while is not
/// hammered and a turn is still scored once it is back.
pub fn backoff(attempts: u32) -> Duration {
    const FIRST: Duration = Duration::from_secs(60);
    const MOST: Duration = Duration::from_secs(6 * 60 * 60);
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(MOST)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn score(reply: &str) -> Result<i8, String> {
        parse_reply(reply).map(|v| v.score)
    }

    #[test]
    fn reads_many_reply_shapes() {
        for (reply, expected) in [
            ("The dates are right.\nScore: +1", 1),
            ("Good.\nScore: 1", 1),
            ("Partly.\nScore: 0", 0),
            ("Wrong offset.\nScore: -1", -1),
            ("Wrong.\n**Score: -1**", -1),
            ("Wrong.\n**Score:** -1.", -1),
            ("fine\nscore: +1\n", 1),
            ("fine\n  SCORE:   +1  ", 1),
            ("Wrong.\nScore: \u{2212}1", -1),
            ("Reasoning...\n\\boxed{1}", 1),
            ("Reasoning...\nThe answer is \\boxed{-1}.", -1),
            ("Reasoning\nScore: \\boxed{0}", 0),
            ("`Score: +1`", 1),
            // The last score wins: an early draft is overridden.
            ("Score: +1 at first glance\nbut no.\nScore: -1", -1),
            ("Score: 0\nOn reflection \\boxed{1}", 1),
        ] {
            assert_eq!(score(reply), Ok(expected), "{reply:?}");
        }
    }

    #[test]
    fn anything_else_is_a_failed_vote() {
        for reply in [
            "",
            "   \n",
            "I think it is good.",
            "Score: 2",
            "Score: excellent",
            "Score: +1/-1",
            "Score:",
            "\\boxed{yes}",
            "Score: 1\nScore: maybe",
        ] {
            assert!(score(reply).is_err(), "{reply:?} should fail");
        }
        assert!(parse_reply("Score: 5").unwrap_err().contains("\"5\""));
    }

    #[test]
    fn the_reason_is_the_text_before_the_score() {
        let v = parse_reply("Reason: the user had to correct the offset.\nScore: -1").unwrap();
        assert_eq!(v.reason, "the user had to correct the offset.");
        let v = parse_reply("Looks right. Score: +1").unwrap();
        assert_eq!(v.reason, "Looks right.");
        let long = format!("{}\nScore: 0", "x".repeat(5_000));
        assert_eq!(parse_reply(&long).unwrap().reason.chars().count(), 1_001);
    }

    fn v(score: i8, reason: &str) -> Verdict {
        Verdict {
            score,
            reason: reason.into(),
        }
    }

    #[test]
    fn majority_and_ties() {
        let (a, b, c, d) = (v(1, "a"), v(1, "b"), v(-1, "c"), v(0, "d"));
        assert_eq!(majority(&[&a, &b, &c]), Some((1, "a".into())));
        assert_eq!(majority(&[&c, &a, &b]), Some((1, "a".into())));
        assert_eq!(majority(&[&c]), Some((-1, "c".into())));
        // Ties are 0, with a 0 vote's reason when there is one.
        assert_eq!(
            majority(&[&a, &c]),
            Some((0, "the votes were split evenly".into()))
        );
        assert_eq!(majority(&[&a, &c, &d]), Some((0, "d".into())));
        assert_eq!(majority(&[]), None);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(60));
        assert_eq!(backoff(2), Duration::from_secs(120));
        assert_eq!(backoff(4), Duration::from_secs(480));
        assert_eq!(backoff(0), Duration::from_secs(60));
        assert_eq!(backoff(30), Duration::from_secs(6 * 3600));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(6 * 3600));
    }
}
