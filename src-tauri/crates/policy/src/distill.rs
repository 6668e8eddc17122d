//! On-policy distillation: a teacher model's log-probs of the tokens the
//! policy sampled, folded into the per-token advantages as a reverse-KL
//! penalty.
//!
//! For response token `t` the policy (the student) sampled with log-prob
//! `s_t`, and the teacher gives the same token log-prob `q_t`. The
//! single-sample estimate of the reverse KL `KL(student ‖ teacher)` at
//! that position is `s_t − q_t`: positive where the student is more sure
//! of its token than the teacher is. Subtracting `kl_coef · (s_t − q_t)`
//! from the token's advantage pushes the student towards what the teacher
//! would have said, token by token, even when the judge's rewards carry no
//! signal (all equal, so the group advantage is 0). This is the on-policy
//! distillation of Agarwal et al. (2024) and the Tinker cookbook, and the
//! penalty applies only to tokens in the loss.

/// Per-token advantages of one response under the penalty, and the sum
/// and count of the reverse-KL estimates it used (for the batch's mean).
#[derive(Debug, Clone, PartialEq)]
pub struct Penalised {
    pub advantages: Vec<f32>,
    pub kl_sum: f64,
    pub kl_tokens: usize,
}

/// `A_t − kl_coef · (student_t − teacher_t)` for each response token in
/// the loss (`mask[t]`, or every token without a mask); tokens out of the
/// loss keep advantage 0. The slices have the response's length (the
/// caller checked).
///
/// ```
/// # use metaclaw_policy::reverse_kl_advantages;
/// // Advantage 1; the student is surer than the teacher on token 0
/// // (−0.5 vs −1.5: KL estimate 1) and less sure on token 1 (−2 vs −1: −1).
/// let p = reverse_kl_advantages(1.0, None, &[-0.5, -2.0], &[-1.5, -1.0], 0.5);
/// assert_eq!(p.advantages, [0.5, 1.5]);
/// assert_eq!((p.kl_sum, p.kl_tokens), (0.0, 2));
/// ```
pub fn reverse_kl_advantages(
    advantage: f32,
    mask: Option<&[bool]>,
    student: &[f32],
    teacher: &[f32],
    kl_coef: f64,
) -> Penalised {
    let mut out = Penalised {
        advantages: Vec::with_capacity(student.len()),
        kl_sum: 0.0,
        kl_tokens: 0,
    };
    for (t, (&s, &q)) in student.iter().zip(teacher).enumerate() {
        let in_loss = mask.is_none_or(|m| m.get(t).copied().unwrap_or(false));
        if !in_loss {
            out.advantages.push(0.0);
            continue;
        }
        let kl = f64::from(s) - f64::from(q);
        out.kl_sum += kl;
        out.kl_tokens += 1;
        out.advantages
            .push((f64::from(advantage) - kl_coef * kl) as f32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalty_by_hand() {
        // student −0.1, −0.2, −3.0; teacher −0.1, −1.2, −0.5:
        // KL estimates 0, 1.0, −2.5; kl_coef 0.2 → penalties 0, 0.2, −0.5.
        let p = reverse_kl_advantages(-1.0, None, &[-0.1, -0.2, -3.0], &[-0.1, -1.2, -0.5], 0.2);
        let want = [-1.0, -1.2, -0.5];
        for (a, w) in p.advantages.iter().zip(want) {
            assert!((f64::from(*a) - w).abs() < 1e-6, "{a} vs {w}");
        }
        assert_eq!(p.kl_tokens, 3);
        assert!((p.kl_sum - (-1.5)).abs() < 1e-6, "{}", p.kl_sum);
    }

    #[test]
    fn masked_tokens_stay_out_of_the_loss_and_the_mean() {
        // Token 1 is masked: advantage 0 and no KL term, whatever the teacher says.
        let p = reverse_kl_advantages(
            0.0,
            Some(&[true, false, true]),
            &[-1.0, -9.0, -0.5],
            &[-2.0, -0.1, -0.5],
            1.0,
        );
        assert_eq!(p.advantages, [-1.0, 0.0, 0.0]);
        assert_eq!((p.kl_sum, p.kl_tokens), (1.0, 2));
    }

    #[test]
    fn a_zero_coefficient_leaves_the_advantages_alone() {
        let p = reverse_kl_advantages(0.75, None, &[-1.0, -2.0], &[-3.0, -0.5], 0.0);
        assert_eq!(p.advantages, [0.75, 0.75]);
        // The KL is still measured (it is a useful metric on its own).
        assert_eq!((p.kl_sum, p.kl_tokens), (0.5, 2));
    }
}
