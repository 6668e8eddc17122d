//! Scored turns → RL training datums for the Tinker service.
//!
//! Advantages are group-normalised rewards, `(r − mean) / (std + ε)`, with
//! the population standard deviation of the group (all turns of the batch,
//! or those sharing a group key). A group whose rewards are all equal
//! carries no signal and gets advantage 0 for every turn.
//!
//! A turn of `P` prompt and `R` response tokens becomes one datum over the
//! whole sequence `s = prompt ++ response` (`N = P + R`): the model reads
//! `s[..N-1]`, is scored on `s[1..]`, so position `i` predicts `s[i+1]`.
//! Positions whose target is a prompt token carry log-prob 0 and advantage
//! 0; position `P-1+j` (target: response token `j`) carries the sampler's
//! log-prob of that token and the turn's advantage, or advantage 0 when the
//! token is masked out of the loss.
//!
//! With on-policy distillation a turn also carries a teacher's log-probs of
//! its response tokens, and each response token's advantage becomes
//! `A − kl_coef · (sampler log-prob − teacher log-prob)` (see
//! [`crate::distill`]).

use std::collections::HashMap;

use metaclaw_tinker::{Datum, DatumError};

use crate::distill::reverse_kl_advantages;

/// One sampled response with its score, as the trainer collects it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredTurn {
    pub prompt_tokens: Vec<u32>,
    pub response_tokens: Vec<u32>,
    /// The sampler's log-prob of each response token.
    pub logprobs: Vec<f32>,
    /// The judge's score, usually -1, 0 or 1.
    pub reward: f32,
    /// Turns with the same key are normalised together; turns without one
    /// form one group.
    pub group: Option<String>,
    /// Per response token: `false` keeps it out of the loss. `None`: all in.
    pub loss_mask: Option<Vec<bool>>,
    /// A teacher's log-prob of each response token (on-policy
    /// distillation); `None`: the advantage is the same for every token.
    pub teacher_logprobs: Option<Vec<f32>>,
}

/// Options of the advantage computation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdvantageConfig {
    /// Added to the standard deviation before dividing.
    pub epsilon: f64,
    /// The weight of the reverse-KL penalty for turns with teacher
    /// log-probs (ignored for turns without).
    pub kl_coef: f64,
}

impl Default for AdvantageConfig {
    fn default() -> AdvantageConfig {
        AdvantageConfig {
            epsilon: 1e-6,
            kl_coef: 1.0,
        }
    }
}

/// Why a batch could not become datums; `turn` is the index in the batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    #[error("the batch is empty")]
    Empty,
    #[error("turn {turn}: the prompt has no tokens")]
    EmptyPrompt { turn: usize },
    #[error("turn {turn}: the response has no tokens")]
    EmptyResponse { turn: usize },
    #[error("turn {turn}: {field} has {len} values but the response has {expected} tokens")]
    LengthMismatch {
        turn: usize,
        field: &'static str,
        len: usize,
        expected: usize,
    },
    #[error("turn {turn}: {field}[{index}] is {value} (values must be finite)")]
    NonFinite {
        turn: usize,
        field: &'static str,
        index: usize,
        value: f32,
    },
    #[error("turn {turn}: the reward is {value} (it must be finite)")]
    NonFiniteReward { turn: usize, value: f32 },
    #[error("epsilon is {0} (must be finite and not negative)")]
    BadEpsilon(f64),
    #[error("kl_coef is {0} (must be finite and not negative)")]
    BadKlCoef(f64),
    #[error("turn {turn}: {source}")]
    Datum {
        turn: usize,
        #[source]
        source: DatumError,
    },
}

/// The datums of a batch and the numbers the store keeps about it.
#[derive(Debug, Clone, PartialEq)]
pub struct DatumBatch {
    pub datums: Vec<Datum>,
    /// Each turn's advantage, in batch order.
    pub advantages: Vec<f32>,
    /// Mean and population standard deviation of the batch's rewards.
    pub reward_mean: f64,
    pub reward_std: f64,
    /// The mean reverse-KL estimate (sampler − teacher log-prob) over the
    /// response tokens in the loss of the turns with teacher log-probs;
    /// `None` when no turn has them.
    pub reverse_kl_mean: Option<f64>,
}

/// `(r − mean) / (std + ε)` within each group, in input order. `groups[i]`
/// is turn `i`'s key; `None` keys form one group.
pub fn group_advantages(rewards: &[f64], groups: &[Option<&str>], epsilon: f64) -> Vec<f64> {
    let mut members: HashMap<Option<&str>, Vec<usize>> = HashMap::new();
    for (i, _) in rewards.iter().enumerate() {
        members
            .entry(groups.get(i).copied().flatten())
            .or_default()
            .push(i);
    }
    let mut out = vec![0.0; rewards.len()];
    for indices in members.values() {
        let values: Vec<f64> = indices.iter().map(|&i| rewards[i]).collect();
        let (mean, std) = mean_std(&values);
        if std == 0.0 {
            continue;
        }
        for &i in indices {
            out[i] = (rewards[i] - mean) / (std + epsilon);
        }
    }
    out
}

/// Mean and population standard deviation (0 for fewer than two values
/// or identical values).
fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Checks every turn and builds one datum per turn.
pub fn build_datums(
    turns: &[ScoredTurn],
    config: AdvantageConfig,
) -> Result<DatumBatch, BatchError> {
    if turns.is_empty() {
        return Err(BatchError::Empty);
    }
    if !config.epsilon.is_finite() || config.epsilon < 0.0 {
        return Err(BatchError::BadEpsilon(config.epsilon));
    }
    if !config.kl_coef.is_finite() || config.kl_coef < 0.0 {
        return Err(BatchError::BadKlCoef(config.kl_coef));
    }
    for (turn, t) in turns.iter().enumerate() {
        validate(turn, t)?;
    }
    let rewards: Vec<f64> = turns.iter().map(|t| f64::from(t.reward)).collect();
    let groups: Vec<Option<&str>> = turns.iter().map(|t| t.group.as_deref()).collect();
    let advantages = group_advantages(&rewards, &groups, config.epsilon);
    let (reward_mean, reward_std) = mean_std(&rewards);

    let mut datums = Vec::with_capacity(turns.len());
    let (mut kl_sum, mut kl_tokens, mut distilled) = (0.0, 0usize, false);
    for (turn, (t, &advantage)) in turns.iter().zip(&advantages).enumerate() {
        let per_token = response_advantages(t, advantage as f32, config.kl_coef);
        if let Some((sum, tokens)) = per_token.kl {
            distilled = true;
            kl_sum += sum;
            kl_tokens += tokens;
        }
        datums.push(
            datum(t, per_token.advantages).map_err(|source| BatchError::Datum { turn, source })?,
        );
    }
    Ok(DatumBatch {
        datums,
        advantages: advantages.iter().map(|&a| a as f32).collect(),
        reward_mean,
        reward_std,
        reverse_kl_mean: distilled.then(|| kl_sum / kl_tokens.max(1) as f64),
    })
}

/// A turn's advantage per response token, and the reverse-KL sum and token
/// count when a teacher scored it.
struct ResponseAdvantages<'t> {
    advantages: PerToken<'t>,
    kl: Option<(f64, usize)>,
}

/// The response positions' advantages, without a copy where they are one
/// number.
enum PerToken<'t> {
    Same(f32),
    Masked(f32, &'t [bool]),
    Each(Vec<f32>),
}

fn response_advantages(t: &ScoredTurn, advantage: f32, kl_coef: f64) -> ResponseAdvantages<'_> {
    let mask = t.loss_mask.as_deref();
    match (&t.teacher_logprobs, mask) {
        (Some(teacher), _) => {
            let p = reverse_kl_advantages(advantage, mask, &t.logprobs, teacher, kl_coef);
            ResponseAdvantages {
                advantages: PerToken::Each(p.advantages),
                kl: Some((p.kl_sum, p.kl_tokens)),
            }
        }
        (None, None) => ResponseAdvantages {
            advantages: PerToken::Same(advantage),
            kl: None,
        },
        (None, Some(mask)) => ResponseAdvantages {
            advantages: PerToken::Masked(advantage, mask),
            kl: None,
        },
    }
}

fn validate(turn: usize, t: &ScoredTurn) -> Result<(), BatchError> {
    if t.prompt_tokens.is_empty() {
        return Err(BatchError::EmptyPrompt { turn });
    }
    let expected = t.response_tokens.len();
    if expected == 0 {
        return Err(BatchError::EmptyResponse { turn });
    }
    let mask_len = t.loss_mask.as_ref().map(Vec::len);
    let teacher_len = t.teacher_logprobs.as_ref().map(Vec::len);
    for (field, len) in [
        ("logprobs", Some(t.logprobs.len())),
        ("loss_mask", mask_len),
        ("teacher_logprobs", teacher_len),
    ] {
        if let Some(len) = len.filter(|&len| len != expected) {
            return Err(BatchError::LengthMismatch {
                turn,
                field,
                len,
                expected,
            });
        }
    }
    if !t.reward.is_finite() {
        return Err(BatchError::NonFiniteReward {
            turn,
            value: t.reward,
        });
    }
    let teacher = t.teacher_logprobs.as_deref().unwrap_or_default();
    for (field, values) in [
        ("logprobs", t.logprobs.as_slice()),
        ("teacher_logprobs", teacher),
    ] {
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(BatchError::NonFinite {
                turn,
                field,
                index,
                value: values[index],
            });
        }
    }
    Ok(())
}

/// One validated turn and its per-response-token advantages → its datum
/// (see the module documentation).
fn datum(t: &ScoredTurn, response_advantages: PerToken<'_>) -> Result<Datum, DatumError> {
    let p = t.prompt_tokens.len();
    let r = t.response_tokens.len();
    let len = p + r - 1;
    let mut model_input = Vec::with_capacity(len);
    model_input.extend_from_slice(&t.prompt_tokens);
    model_input.extend_from_slice(&t.response_tokens[..r - 1]);
    let mut target_tokens = Vec::with_capacity(len);
    target_tokens.extend_from_slice(&t.prompt_tokens[1..]);
    target_tokens.extend_from_slice(&t.response_tokens);
    let mut logprobs = vec![0.0f32; p - 1];
    logprobs.extend_from_slice(&t.logprobs);
    let mut advantages = vec![0.0f32; p - 1];
    match response_advantages {
        PerToken::Same(advantage) => advantages.resize(len, advantage),
        PerToken::Masked(advantage, mask) => {
            advantages.extend(mask.iter().map(|&on| if on { advantage } else { 0.0 }))
        }
        PerToken::Each(each) => advantages.extend(each),
    }
    Datum::new(model_input, target_tokens, logprobs, advantages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(prompt: &[u32], response: &[u32], logprobs: &[f32], reward: f32) -> ScoredTurn {
        ScoredTurn {
            prompt_tokens: prompt.to_vec(),
            response_tokens: response.to_vec(),
            logprobs: logprobs.to_vec(),
            reward,
            group: None,
            loss_mask: None,
            teacher_logprobs: None,
        }
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn advantages_by_hand() {
        // rewards 1, 0, -1, 1: mean 0.25; squared deviations 0.5625,
        // 0.0625, 1.5625, 0.5625 sum to 2.75, /4 = 0.6875, std =
        // sqrt(0.6875) = 0.82915619758885.
        let std = 0.6875f64.sqrt();
        let a = group_advantages(&[1.0, 0.0, -1.0, 1.0], &[None; 4], 0.0);
        assert!(close(
            &a,
            &[0.75 / std, -0.25 / std, -1.25 / std, 0.75 / std]
        ));
        assert!(close(
            &a,
            &[
                0.904534033733291,
                -0.301511344577764,
                -1.507556722888818,
                0.904534033733291
            ]
        ));
        // 1 and -1: mean 0, std 1, so ±1/(1 + ε).
        let eps = 0.5;
        assert!(close(
            &group_advantages(&[1.0, -1.0], &[None, None], eps),
            &[1.0 / 1.5, -1.0 / 1.5]
        ));
        // All equal: no signal, not 0/ε noise.
        assert_eq!(
            group_advantages(&[1.0, 1.0, 1.0], &[None; 3], 1e-6),
            [0.0; 3]
        );
        assert_eq!(group_advantages(&[1.0], &[None], 1e-6), [0.0]);
    }

    #[test]
    fn groups_are_normalised_separately() {
        // a: {1, -1} → ±1; b: {0, 0, 1} → mean 1/3, std sqrt(2/9).
        let a = group_advantages(
            &[1.0, 0.0, -1.0, 0.0, 1.0],
            &[Some("a"), Some("b"), Some("a"), Some("b"), Some("b")],
            0.0,
        );
        let s = (2.0f64 / 9.0).sqrt();
        assert!(close(
            &a,
            &[1.0, -1.0 / 3.0 / s, -1.0, -1.0 / 3.0 / s, 2.0 / 3.0 / s]
        ));
    }

    #[test]
    fn datum_layout_by_hand() {
        let mut masked = turn(&[30, 31], &[40, 41, 42], &[-1.0, -2.0, -3.0], -1.0);
        masked.loss_mask = Some(vec![true, false, true]);
        let batch = build_datums(
            &[turn(&[10, 11, 12], &[20, 21], &[-0.5, -0.25], 1.0), masked],
            AdvantageConfig {
                epsilon: 0.0,
                ..AdvantageConfig::default()
            },
        )
        .unwrap();
        // Rewards 1 and -1: advantages +1 and -1.
        assert_eq!(batch.advantages, vec![1.0, -1.0]);
        assert_eq!(batch.reward_mean, 0.0);
        assert_eq!(batch.reward_std, 1.0);

        let d = &batch.datums[0];
        assert_eq!(d.model_input(), &[10, 11, 12, 20]);
        assert_eq!(d.target_tokens(), &[11, 12, 20, 21]);
        assert_eq!(d.logprobs(), &[0.0, 0.0, -0.5, -0.25]);
        assert_eq!(d.advantages(), &[0.0, 0.0, 1.0, 1.0]);

        let d = &batch.datums[1];
        assert_eq!(d.model_input(), &[30, 31, 40, 41]);
        assert_eq!(d.target_tokens(), &[31, 40, 41, 42]);
        assert_eq!(d.logprobs(), &[0.0, -1.0, -2.0, -3.0]);
        assert_eq!(d.advantages(), &[0.0, -1.0, 0.0, -1.0]);

        // A one-token prompt and response: one position.
        let single = build_datums(
            &[turn(&[1], &[2], &[-0.1], 0.0)],
            AdvantageConfig::default(),
        )
        .unwrap();
        assert_eq!(single.datums[0].model_input(), &[1]);
        assert_eq!(single.datums[0].target_tokens(), &[2]);
        assert_eq!(single.datums[0].advantages(), &[0.0]);
    }

    #[test]
    fn bad_turns_are_rejected_with_their_index() {
        let good = turn(&[1, 2], &[3], &[-0.1], 1.0);
        let check = |bad: ScoredTurn| {
            build_datums(&[good.clone(), bad], AdvantageConfig::default())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            check(turn(&[], &[3], &[-0.1], 1.0)),
            "turn 1: the prompt has no tokens"
        );
        assert_eq!(
            check(turn(&[1], &[], &[], 1.0)),
            "turn 1: the response has no tokens"
        );
        assert_eq!(
            check(turn(&[1], &[3, 4], &[-0.1], 1.0)),
            "turn 1: logprobs has 1 values but the response has 2 tokens"
        );
        let mut mask = good.clone();
        mask.loss_mask = Some(vec![true, true]);
        assert_eq!(
            check(mask),
            "turn 1: loss_mask has 2 values but the response has 1 tokens"
        );
        assert_eq!(
            check(turn(&[1], &[3], &[f32::NAN], 1.0)),
            "turn 1: logprobs[0] is NaN (values must be finite)"
        );
        assert_eq!(
            check(turn(&[1], &[3], &[-0.1], f32::INFINITY)),
            "turn 1: the reward is inf (it must be finite)"
        );
        assert!(matches!(
            build_datums(
                &[turn(&[1], &[u32::MAX], &[-0.1], 1.0)],
                AdvantageConfig::default()
            ),
            Err(BatchError::Datum {
                turn: 0,
                source: DatumError::TokenOutOfRange { .. }
            })
        ));
        assert_eq!(
            build_datums(&[], AdvantageConfig::default()),
            Err(BatchError::Empty)
        );
        assert_eq!(
            build_datums(
                std::slice::from_ref(&good),
                AdvantageConfig {
                    epsilon: f64::NAN,
                    ..AdvantageConfig::default()
                }
            )
            .unwrap_err()
            .to_string(),
            "epsilon is NaN (must be finite and not negative)"
        );
        let mut teacher = good.clone();
        teacher.teacher_logprobs = Some(vec![-0.1, -0.2]);
        assert_eq!(
            check(teacher.clone()),
            "turn 1: teacher_logprobs has 2 values but the response has 1 tokens"
        );
        teacher.teacher_logprobs = Some(vec![f32::NEG_INFINITY]);
        assert_eq!(
            check(teacher),
            "turn 1: teacher_logprobs[0] is -inf (values must be finite)"
        );
        assert_eq!(
            build_datums(
                &[good],
                AdvantageConfig {
                    kl_coef: -1.0,
                    ..AdvantageConfig::default()
                }
            )
            .unwrap_err()
            .to_string(),
            "kl_coef is -1 (must be finite and not negative)"
        );
    }

    #[test]
    fn distillation_by_hand() {
        // Turn 0: reward 1 → advantage +1; sampler −0.5, −0.25, teacher
        // −1.5, −0.25: KL 1.0, 0 → with kl_coef 0.5: 1 − 0.5 = 0.5, 1 − 0 = 1.
        // Turn 1: reward −1 → advantage −1; mask [on, off, on]; sampler −1,
        // −2, −3, teacher −0.5, −9, −4: KL −0.5, (off), 1.0 → −1 + 0.25 =
        // −0.75, 0, −1 − 0.5 = −1.5.
        let mut a = turn(&[10, 11, 12], &[20, 21], &[-0.5, -0.25], 1.0);
        a.teacher_logprobs = Some(vec![-1.5, -0.25]);
        let mut b = turn(&[30, 31], &[40, 41, 42], &[-1.0, -2.0, -3.0], -1.0);
        b.loss_mask = Some(vec![true, false, true]);
        b.teacher_logprobs = Some(vec![-0.5, -9.0, -4.0]);
        let config = AdvantageConfig {
            epsilon: 0.0,
            kl_coef: 0.5,
        };
        let batch = build_datums(&[a, b], config).unwrap();
        assert_eq!(batch.advantages, vec![1.0, -1.0]);
        assert_eq!(batch.datums[0].advantages(), &[0.0, 0.0, 0.5, 1.0]);
        assert_eq!(batch.datums[1].advantages(), &[0.0, -0.75, 0.0, -1.5]);
        // The sampler's log-probs go to the loss unchanged.
        assert_eq!(batch.datums[0].logprobs(), &[0.0, 0.0, -0.5, -0.25]);
        // Mean over the 4 tokens in the loss: (1 + 0 − 0.5 + 1) / 4.
        assert_eq!(batch.reverse_kl_mean, Some(0.375));

        // Equal rewards give no group signal; the teacher still does.
        let mut c = turn(&[1, 2], &[3, 4], &[-0.125, -2.0], 1.0);
        c.teacher_logprobs = Some(vec![-0.625, -1.0]);
        let d = turn(&[1, 2], &[5], &[-0.3], 1.0);
        let batch = build_datums(&[c, d], config).unwrap();
        assert_eq!(batch.advantages, vec![0.0, 0.0]);
        assert_eq!(batch.datums[0].advantages(), &[0.0, -0.25, 0.5]);
        // A turn without teacher log-probs is trained on its advantage alone.
        assert_eq!(batch.datums[1].advantages(), &[0.0, 0.0]);
        // The mean covers the scored turn's two tokens only: (0.5 − 1) / 2.
        assert_eq!(batch.reverse_kl_mean, Some(-0.25));

        let plain = build_datums(&[turn(&[1], &[2], &[-0.1], 0.0)], config).unwrap();
        assert_eq!(plain.reverse_kl_mean, None);
    }
}
