//! Helpers shared by several plugins (upstream's `plugins/helper`): score normalisation.

use crate::framework::NodeScore;

/// Scales scores so the highest becomes `max_priority` (upstream's `DefaultNormalizeScore`);
/// with `reverse`, the highest becomes 0 and the lowest `max_priority`. When every score is 0
/// they stay 0, or all become `max_priority` with `reverse`.
pub fn default_normalize_score(max_priority: i64, reverse: bool, scores: &mut [NodeScore]) {
    let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
    if max <= 0 {
        if reverse {
            for s in scores.iter_mut() {
                s.score = max_priority;
            }
        }
        return;
    }
    for s in scores.iter_mut() {
        let scaled = max_priority * s.score / max;
        s.score = if reverse {
            max_priority - scaled
        } else {
            scaled
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(v: &[i64]) -> Vec<NodeScore> {
        v.iter()
            .enumerate()
            .map(|(i, s)| NodeScore {
                name: format!("n{i}"),
                score: *s,
            })
            .collect()
    }

    #[test]
    fn normalises_like_upstream() {
        let cases: [(&[i64], bool, &[i64]); 5] = [
            (&[10, 20, 30], false, &[33, 66, 100]),
            (&[10, 20, 30], true, &[67, 34, 0]),
            (&[0, 0, 0], false, &[0, 0, 0]),
            (&[0, 0, 0], true, &[100, 100, 100]),
            (&[2, 11, 4], false, &[18, 100, 36]),
        ];
        for (input, reverse, want) in cases {
            let mut s = scores(input);
            default_normalize_score(100, reverse, &mut s);
            let got: Vec<i64> = s.iter().map(|s| s.score).collect();
            assert_eq!(got, want, "{input:?} reverse={reverse}");
        }
    }
}
