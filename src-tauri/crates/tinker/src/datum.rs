//! One RL training example with its shapes checked up front, so a bad turn
//! is rejected with a clear reason before it costs a round trip.

use std::fmt;
use std::str::FromStr;

use crate::error::TinkerError;

/// Token ids travel as int32 on the wire.
const MAX_TOKEN_ID: u32 = i32::MAX as u32;

/// Why a [`Datum`] could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DatumError {
    #[error("model_input is empty")]
    Empty,
    #[error("{field} has {len} values but model_input has {expected} tokens")]
    LengthMismatch {
        field: &'static str,
        len: usize,
        expected: usize,
    },
    #[error("{field}[{index}] is {value} (values must be finite)")]
    NonFinite {
        field: &'static str,
        index: usize,
        value: f32,
    },
    #[error("{field}[{index}] is token id {token}, above the largest id the service accepts ({MAX_TOKEN_ID})")]
    TokenOutOfRange {
        field: &'static str,
        index: usize,
        token: u32,
    },
    #[error("a sequence needs at least two tokens to give one training target (got {0})")]
    TooShort(usize),
}

/// A training example for the RL losses: the tokens the model reads, the
/// token expected at each position, the sampler's log-probability of that
/// token, and its advantage. All four have the same length `T`.
///
/// Prompt positions conventionally carry log-prob 0 and advantage 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    model_input: Vec<u32>,
    target_tokens: Vec<u32>,
    logprobs: Vec<f32>,
    advantages: Vec<f32>,
}

impl Datum {
    /// Checks that all four vectors have the length of `model_input`, that
    /// token ids fit the wire type, and that every float is finite.
    pub fn new(
        model_input: Vec<u32>,
        target_tokens: Vec<u32>,
        logprobs: Vec<f32>,
        advantages: Vec<f32>,
    ) -> Result<Datum, DatumError> {
        let expected = model_input.len();
        if expected == 0 {
            return Err(DatumError::Empty);
        }
        for (field, len) in [
            ("target_tokens", target_tokens.len()),
            ("logprobs", logprobs.len()),
            ("advantages", advantages.len()),
        ] {
            if len != expected {
                return Err(DatumError::LengthMismatch {
                    field,
                    len,
                    expected,
                });
            }
        }
        check_tokens("model_input", &model_input)?;
        check_tokens("target_tokens", &target_tokens)?;
        check_finite("logprobs", &logprobs)?;
        check_finite("advantages", &advantages)?;
        Ok(Datum {
            model_input,
            target_tokens,
            logprobs,
            advantages,
        })
    }

    /// The usual next-token shift of a whole sequence (`tokens.len() = N`):
    /// the model reads `tokens[..N-1]` and is scored on `tokens[1..]`.
    /// `logprobs` and `advantages` are per target, so `N - 1` long.
    pub fn shifted(
        tokens: &[u32],
        logprobs: Vec<f32>,
        advantages: Vec<f32>,
    ) -> Result<Datum, DatumError> {
        if tokens.len() < 2 {
            return Err(DatumError::TooShort(tokens.len()));
        }
        let n = tokens.len();
        Datum::new(
            tokens[..n - 1].to_vec(),
            tokens[1..].to_vec(),
            logprobs,
            advantages,
        )
    }

    /// Number of positions `T`.
    pub fn len(&self) -> usize {
        self.model_input.len()
    }

    /// Never true for a built datum; present for clippy's `len` convention.
    pub fn is_empty(&self) -> bool {
        self.model_input.is_empty()
    }

    pub fn model_input(&self) -> &[u32] {
        &self.model_input
    }

    pub fn target_tokens(&self) -> &[u32] {
        &self.target_tokens
    }

    /// The sampler's log-probabilities of the targets.
    pub fn logprobs(&self) -> &[f32] {
        &self.logprobs
    }

    pub fn advantages(&self) -> &[f32] {
        &self.advantages
    }
}

fn check_tokens(field: &'static str, tokens: &[u32]) -> Result<(), DatumError> {
    match tokens.iter().position(|&t| t > MAX_TOKEN_ID) {
        Some(index) => Err(DatumError::TokenOutOfRange {
            field,
            index,
            token: tokens[index],
        }),
        None => Ok(()),
    }
}

fn check_finite(field: &'static str, values: &[f32]) -> Result<(), DatumError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(DatumError::NonFinite {
            field,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// The RL losses the service computes from [`Datum`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LossFn {
    /// Off-policy REINFORCE with importance weights from the sampler log-probs.
    ImportanceSampling,
    /// Clipped PPO objective.
    Ppo,
    /// Clipped importance-sampling REINFORCE.
    Cispo,
}

impl LossFn {
    /// The name on the wire and in `rl.loss`.
    pub fn as_str(self) -> &'static str {
        match self {
            LossFn::ImportanceSampling => "importance_sampling",
            LossFn::Ppo => "ppo",
            LossFn::Cispo => "cispo",
        }
    }
}

impl fmt::Display for LossFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LossFn {
    type Err = TinkerError;

    fn from_str(s: &str) -> Result<LossFn, TinkerError> {
        match s.trim() {
            "importance_sampling" => Ok(LossFn::ImportanceSampling),
            "ppo" => Ok(LossFn::Ppo),
            "cispo" => Ok(LossFn::Cispo),
            other => Err(TinkerError::InvalidInput(format!(
                "unknown loss {other:?}; expected importance_sampling, ppo or cispo"
            ))),
        }
    }
}

/// A loss with its numeric options (e.g. `clip_low_threshold` for PPO).
#[derive(Debug, Clone, PartialEq)]
pub struct Loss {
    pub function: LossFn,
    pub config: std::collections::BTreeMap<String, f64>,
}

impl Loss {
    pub fn new(function: LossFn) -> Loss {
        Loss {
            function,
            config: Default::default(),
        }
    }

    /// Adds one numeric option.
    pub fn with(mut self, key: impl Into<String>, value: f64) -> Loss {
        self.config.insert(key.into(), value);
        self
    }

    /// The clipping thresholds of `ppo` and `cispo` (e.g. 0.8 and 1.28).
    pub fn with_clip(self, low: f64, high: f64) -> Loss {
        self.with("clip_low_threshold", low)
            .with("clip_high_threshold", high)
    }

    pub(crate) fn validate(&self) -> Result<(), TinkerError> {
        match self.config.iter().find(|(_, v)| !v.is_finite()) {
            Some((k, v)) => Err(TinkerError::InvalidInput(format!(
                "loss option {k} is {v} (must be finite)"
            ))),
            None => Ok(()),
        }
    }
}

impl From<LossFn> for Loss {
    fn from(function: LossFn) -> Loss {
        Loss::new(function)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_consistent_shapes() {
        let d = Datum::new(
            vec![1, 2, 3],
            vec![2, 3, 4],
            vec![0.0, -0.5, -1.0],
            vec![0.0, 1.0, 1.0],
        )
        .unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.target_tokens(), &[2, 3, 4]);
    }

    #[test]
    fn names_the_field_with_the_wrong_length() {
        let e = Datum::new(vec![1, 2], vec![2, 3], vec![0.0], vec![0.0, 0.0]).unwrap_err();
        assert_eq!(
            e,
            DatumError::LengthMismatch {
                field: "logprobs",
                len: 1,
                expected: 2
            }
        );
        assert_eq!(
            e.to_string(),
            "logprobs has 1 values but model_input has 2 tokens"
        );
        let e = Datum::new(vec![1], vec![2, 3], vec![0.0], vec![0.0]).unwrap_err();
        assert!(matches!(
            e,
            DatumError::LengthMismatch {
                field: "target_tokens",
                ..
            }
        ));
        assert_eq!(
            Datum::new(vec![], vec![], vec![], vec![]),
            Err(DatumError::Empty)
        );
    }

    #[test]
    fn rejects_non_finite_values() {
        let e =
            Datum::new(vec![1, 2], vec![2, 3], vec![0.0, f32::NAN], vec![0.0, 0.0]).unwrap_err();
        assert!(matches!(
            e,
            DatumError::NonFinite {
                field: "logprobs",
                index: 1,
                ..
            }
        ));
        assert_eq!(e.to_string(), "logprobs[1] is NaN (values must be finite)");
        let e = Datum::new(vec![1], vec![2], vec![0.0], vec![f32::INFINITY]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "advantages[0] is inf (values must be finite)"
        );
    }

    #[test]
    fn rejects_token_ids_beyond_int32() {
        let e = Datum::new(vec![1, u32::MAX], vec![2, 3], vec![0.0; 2], vec![0.0; 2]).unwrap_err();
        assert!(matches!(
            e,
            DatumError::TokenOutOfRange {
                field: "model_input",
                index: 1,
                ..
            }
        ));
    }

    #[test]
    fn shifted_builds_next_token_targets() {
        let d = Datum::shifted(
            &[10, 11, 12, 13],
            vec![0.0, -0.1, -0.2],
            vec![0.0, 0.5, 0.5],
        )
        .unwrap();
        assert_eq!(d.model_input(), &[10, 11, 12]);
        assert_eq!(d.target_tokens(), &[11, 12, 13]);
        assert_eq!(
            Datum::shifted(&[1], vec![], vec![]),
            Err(DatumError::TooShort(1))
        );
    }

    #[test]
    fn loss_names_round_trip() {
        for l in [LossFn::ImportanceSampling, LossFn::Ppo, LossFn::Cispo] {
            assert_eq!(l.as_str().parse::<LossFn>().unwrap(), l);
        }
        assert!("mask".parse::<LossFn>().is_err());
        let ppo = Loss::new(LossFn::Ppo).with_clip(0.8, 1.28);
        assert_eq!(ppo.config.get("clip_high_threshold"), Some(&1.28));
        assert!(Loss::new(LossFn::Ppo)
            .with("beta", f64::NAN)
            .validate()
            .is_err());
    }
}
