//! The utility system: response curves, the compensation factor, vetoes and the commitment
//! bonus, over the actions of the data ([`super::content`]).

use super::content::{Action, Consideration, CurveKind, Input, NeedValues};

impl Consideration {
    /// The curve's value at `x` (0 to 1), clamped to 0 to 1.
    pub fn eval(&self, x: f64) -> f64 {
        let y = match self.curve {
            CurveKind::Linear => self.m * (x - self.c) + self.b,
            CurveKind::Polynomial => {
                let d = x - self.c;
                self.m * d.signum() * d.abs().powf(self.k) + self.b
            }
            CurveKind::Logistic => self.b + self.k / (1.0 + (-self.m * (x - self.c)).exp()),
        };
        if y.is_finite() {
            y.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// The score of `action` for `needs` and `mood`, 0 to 1: the product of its considerations,
/// each corrected with the compensation factor for their count; a zero vetoes; the current
/// action gets `commitment` of its distance to 1.
pub fn score(
    action: &Action,
    needs: &NeedValues,
    mood: f64,
    current: bool,
    commitment: f64,
) -> f64 {
    let n = action.considerations.len() as f64;
    let modification = 1.0 - 1.0 / n;
    let mut total = 1.0;
    for c in &action.considerations {
        let x = match c.input {
            Input::Hunger => needs[0],
            Input::Rest => needs[1],
            Input::Social => needs[2],
            Input::Safety => needs[3],
            Input::Mood => (mood + 1.0) / 2.0,
        };
        let v = c.eval(x.clamp(0.0, 1.0));
        if v == 0.0 {
            return 0.0;
        }
        total *= v + (1.0 - v) * modification * v;
    }
    let total = total.clamp(0.0, 1.0);
    if current && total > 0.0 {
        total + (1.0 - total) * commitment
    } else {
        total
    }
}
