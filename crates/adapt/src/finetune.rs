//! Fine-tuning of a judge's last block and classifier on its trunk maps (the tensor
//! entering the block, one per augmented view of each face), by Adam on the log-loss of
//! the live class, with an L2 pull back towards the pretrained weights (L2-SP): with a few
//! hundred images, weights that wander far from what the model learnt on its own large
//! set overfit the pilot.
//!
//! The block is MiniFASNet's tail: a 1x1 convolution with bias and PReLU, a depthwise
//! convolution that covers the whole map (one weight per channel and position, with bias),
//! a linear layer, a fixed BatchNorm and the classifier, then a softmax. The gradients are
//! written out by hand below and checked against numerical ones in the tests.

use ndarray::{s, Array1, Array2, ArrayView2, Axis, Zip};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use facelive_backends::onnx::TailOp;
use facelive_backends::Tensor;

use crate::AdaptError;

fn op_name(op: &TailOp) -> &'static str {
    match op {
        TailOp::Conv { .. } => "Conv",
        TailOp::PRelu { .. } => "PRelu",
        TailOp::Flatten => "Flatten",
        TailOp::MatMul { .. } => "MatMul",
        TailOp::BatchNorm { .. } => "BatchNormalization",
    }
}

/// The trained weights of a tail.
#[derive(Debug, Clone, PartialEq)]
pub struct TailWeights {
    /// `[channels, inputs]`: the 1x1 convolution.
    pub expand: Array2<f32>,
    pub expand_bias: Array1<f32>,
    /// `[channels, positions]`: the depthwise convolution over the whole map.
    pub depthwise: Array2<f32>,
    pub depthwise_bias: Array1<f32>,
    /// `[channels, hidden]`.
    pub linear: Array2<f32>,
    /// `[hidden, classes]`.
    pub classifier: Array2<f32>,
}

/// A judge's tail: its trained weights and the fixed ones (PReLU slopes, the BatchNorm
/// folded into a scale and a shift), and which output is the live class.
#[derive(Debug, Clone)]
pub struct Tail {
    pub weights: TailWeights,
    pub prelu: Array1<f32>,
    pub bn_scale: Array1<f32>,
    pub bn_shift: Array1<f32>,
    pub live_index: usize,
}

/// How a tail is trained.
#[derive(Debug, Clone, Copy)]
pub struct FineTune {
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f32,
    /// The L2-SP penalty: this times half the squared distance to the pretrained weights.
    pub pull: f32,
    pub seed: u64,
}

impl Default for FineTune {
    fn default() -> Self {
        Self {
            epochs: 8,
            batch: 32,
            learning_rate: 1e-4,
            pull: 1e-2,
            seed: 0,
        }
    }
}

/// One forward pass over a batch, keeping what the backward pass needs.
struct Pass {
    /// `[batch * positions, channels]` before and after PReLU.
    pre: Array2<f32>,
    act: Array2<f32>,
    /// `[batch, channels]`, `[batch, hidden]` after the BatchNorm, `[batch, classes]`.
    pooled: Array2<f32>,
    normed: Array2<f32>,
    probs: Array2<f32>,
}

impl Tail {
    /// The tail of a MiniFASNet-shaped graph read from its ONNX file: Conv (1x1), PRelu,
    /// Conv (depthwise, whole map), Flatten, MatMul, BatchNormalization, MatMul.
    pub fn from_ops(ops: &[TailOp], live_index: usize) -> Result<Tail, AdaptError> {
        let wrong = || {
            let names: Vec<&str> = ops.iter().map(op_name).collect();
            AdaptError::Shape(format!(
                "the last block is {names:?}; fine-tuning knows Conv, PRelu, Conv \
                 (depthwise), Flatten, MatMul, BatchNormalization, MatMul"
            ))
        };
        let [TailOp::Conv {
            weight: ew,
            bias: Some(eb),
            group: 1,
        }, TailOp::PRelu { slope }, TailOp::Conv {
            weight: dw,
            bias: Some(db),
            group,
        }, TailOp::Flatten, TailOp::MatMul { weight: lw }, TailOp::BatchNorm {
            scale,
            bias,
            mean,
            var,
            epsilon,
        }, TailOp::MatMul { weight: cw }] = ops
        else {
            return Err(wrong());
        };
        let channels = ew.shape[0];
        let matrix = |t: &Tensor, rows: usize| {
            Array2::from_shape_vec((rows, t.data.len() / rows.max(1)), t.data.clone())
                .map_err(|_| wrong())
        };
        let vector = |t: &Tensor| Array1::from_vec(t.data.clone());
        let bn_scale: Array1<f32> = Zip::from(&vector(scale))
            .and(&vector(var))
            .map_collect(|g, v| g / (v + epsilon).sqrt());
        let bn_shift = vector(bias) - &(vector(mean) * &bn_scale);
        let tail = Tail {
            weights: TailWeights {
                expand: matrix(ew, channels)?,
                expand_bias: vector(eb),
                depthwise: matrix(dw, channels)?,
                depthwise_bias: vector(db),
                linear: matrix(lw, channels)?,
                classifier: matrix(cw, bn_scale.len())?,
            },
            prelu: vector(slope),
            bn_scale,
            bn_shift,
            live_index,
        };
        let w = &tail.weights;
        let fits = *group == channels
            && [
                w.expand_bias.len(),
                w.depthwise_bias.len(),
                tail.prelu.len(),
            ]
            .iter()
            .all(|&n| n == channels)
            && w.linear.ncols() == tail.bn_scale.len()
            && live_index < w.classifier.ncols();
        if !fits {
            return Err(wrong());
        }
        Ok(tail)
    }

    pub fn positions(&self) -> usize {
        self.weights.depthwise.ncols()
    }

    pub fn inputs(&self) -> usize {
        self.weights.expand.ncols()
    }

    /// `x`: `[batch * positions, inputs]`, each sample's map position-major (the trunk's
    /// channel-major values transposed by [`Tail::rows`]).
    fn forward(&self, x: ArrayView2<f32>) -> Pass {
        let w = &self.weights;
        let (p, c) = (self.positions(), w.expand.nrows());
        let batch = x.nrows() / p;
        let pre = x.dot(&w.expand.t()) + &w.expand_bias;
        let mut act = pre.clone();
        Zip::from(act.rows_mut()).for_each(|mut row| {
            Zip::from(&mut row).and(&self.prelu).for_each(|v, a| {
                if *v < 0.0 {
                    *v *= a
                }
            })
        });
        let mut pooled = Array2::zeros((batch, c));
        for b in 0..batch {
            let block = act.slice(s![b * p..(b + 1) * p, ..]);
            let mut row = pooled.row_mut(b);
            row.assign(&w.depthwise_bias);
            for (pos, a) in block.rows().into_iter().enumerate() {
                Zip::from(&mut row)
                    .and(&a)
                    .and(w.depthwise.column(pos))
                    .for_each(|o, a, k| *o += a * k);
            }
        }
        let normed = pooled.dot(&w.linear) * &self.bn_scale + &self.bn_shift;
        let mut probs = normed.dot(&w.classifier);
        for mut row in probs.rows_mut() {
            let max = row.fold(f32::NEG_INFINITY, |m, v| m.max(*v));
            row.mapv_inplace(|v| (v - max).exp());
            let sum = row.sum();
            row /= sum;
        }
        Pass {
            pre,
            act,
            pooled,
            normed,
            probs,
        }
    }

    /// The live probability of each sample of `x` (`[n * positions, inputs]`).
    pub fn live_scores(&self, x: ArrayView2<f32>) -> Vec<f32> {
        let pass = self.forward(x);
        pass.probs.column(self.live_index).to_vec()
    }

    /// A trunk map (channel-major, `[inputs, positions]` flattened) as rows of
    /// `[positions, inputs]`, as the forward pass reads it.
    pub fn rows(&self, trunk: &[f32]) -> Result<Array2<f32>, AdaptError> {
        let (i, p) = (self.inputs(), self.positions());
        let map = ArrayView2::from_shape((i, p), trunk).map_err(|_| {
            AdaptError::Shape(format!(
                "a trunk of {} values, expected {i}x{p}",
                trunk.len()
            ))
        })?;
        Ok(map.t().to_owned())
    }

    /// The mean log-loss of the live class over the batch (without the pull).
    #[cfg(test)]
    fn loss(&self, pass: &Pass, live: &[bool]) -> f32 {
        let l = self.live_index;
        let total: f32 = pass
            .probs
            .rows()
            .into_iter()
            .zip(live)
            .map(|(p, &y)| {
                let q = if y { p[l] } else { 1.0 - p[l] };
                -q.max(1e-12).ln()
            })
            .sum();
        total / live.len() as f32
    }

    /// The gradient of the batch's mean log-loss with respect to the trained weights.
    fn gradient(&self, x: ArrayView2<f32>, pass: &Pass, live: &[bool]) -> TailWeights {
        let w = &self.weights;
        let (p, l) = (self.positions(), self.live_index);
        let n = live.len() as f32;
        // d loss / d logits: p - onehot(live) for a live face; for a spoof, the derivative
        // of -ln(1 - p_live), with 1 - p_live summed from the other classes (it can be tiny).
        let mut d_logits = pass.probs.clone();
        for (mut row, &y) in d_logits.rows_mut().into_iter().zip(live) {
            if y {
                row[l] -= 1.0;
            } else {
                let pl = row[l];
                let rest = (row.sum() - pl).max(1e-12);
                row.mapv_inplace(|pj| -pl * pj / rest);
                row[l] = pl;
            }
        }
        d_logits /= n;
        let classifier = pass.normed.t().dot(&d_logits);
        let d_linear_out = d_logits.dot(&w.classifier.t()) * &self.bn_scale;
        let linear = pass.pooled.t().dot(&d_linear_out);
        let d_pooled = d_linear_out.dot(&w.linear.t());
        let depthwise_bias = d_pooled.sum_axis(Axis(0));
        let mut depthwise = Array2::zeros(w.depthwise.raw_dim());
        let mut d_pre = Array2::zeros(pass.pre.raw_dim());
        for (b, dp) in d_pooled.rows().into_iter().enumerate() {
            for pos in 0..p {
                let r = b * p + pos;
                Zip::from(depthwise.column_mut(pos))
                    .and(&dp)
                    .and(pass.act.row(r))
                    .for_each(|g, d, a| *g += d * a);
                Zip::from(d_pre.row_mut(r))
                    .and(&dp)
                    .and(w.depthwise.column(pos))
                    .and(pass.pre.row(r))
                    .and(&self.prelu)
                    .for_each(|g, d, k, h, slope| *g = d * k * if *h < 0.0 { *slope } else { 1.0 });
            }
        }
        TailWeights {
            expand: d_pre.t().dot(&x),
            expand_bias: d_pre.sum_axis(Axis(0)),
            depthwise,
            depthwise_bias,
            linear,
            classifier,
        }
    }

    /// Trains the tail on `x` (one `[positions, inputs]` block per sample, stacked) and
    /// the samples' labels.
    pub fn fine_tune(&self, x: &Array2<f32>, live: &[bool], how: &FineTune) -> Tail {
        let p = self.positions();
        let start = self.weights.clone();
        let mut tail = self.clone();
        let mut adam = Adam::new(&start, how.learning_rate);
        let mut rng = ChaCha8Rng::seed_from_u64(how.seed);
        let mut order: Vec<usize> = (0..live.len()).collect();
        for _ in 0..how.epochs {
            order.shuffle(&mut rng);
            for chunk in order.chunks(how.batch.max(1)) {
                let mut xb = Array2::zeros((chunk.len() * p, self.inputs()));
                for (k, &i) in chunk.iter().enumerate() {
                    xb.slice_mut(s![k * p..(k + 1) * p, ..])
                        .assign(&x.slice(s![i * p..(i + 1) * p, ..]));
                }
                let yb: Vec<bool> = chunk.iter().map(|&i| live[i]).collect();
                let pass = tail.forward(xb.view());
                let mut g = tail.gradient(xb.view(), &pass, &yb);
                g.add_pull(&tail.weights, &start, how.pull);
                adam.step(&mut tail.weights, &g);
            }
        }
        tail
    }
}

impl TailWeights {
    fn parts(&self) -> [&[f32]; 6] {
        [
            self.expand.as_slice().expect("standard layout"),
            self.expand_bias.as_slice().expect("standard layout"),
            self.depthwise.as_slice().expect("standard layout"),
            self.depthwise_bias.as_slice().expect("standard layout"),
            self.linear.as_slice().expect("standard layout"),
            self.classifier.as_slice().expect("standard layout"),
        ]
    }

    fn parts_mut(&mut self) -> [&mut [f32]; 6] {
        [
            self.expand.as_slice_mut().expect("standard layout"),
            self.expand_bias.as_slice_mut().expect("standard layout"),
            self.depthwise.as_slice_mut().expect("standard layout"),
            self.depthwise_bias.as_slice_mut().expect("standard layout"),
            self.linear.as_slice_mut().expect("standard layout"),
            self.classifier.as_slice_mut().expect("standard layout"),
        ]
    }

    /// Adds the L2-SP term's gradient, `pull * (w - start)`.
    fn add_pull(&mut self, w: &TailWeights, start: &TailWeights, pull: f32) {
        for ((g, w), s) in self
            .parts_mut()
            .into_iter()
            .zip(w.parts())
            .zip(start.parts())
        {
            for ((g, w), s) in g.iter_mut().zip(w).zip(s) {
                *g += pull * (w - s);
            }
        }
    }
}

/// Adam (Kingma & Ba), over the six weight arrays as one vector.
struct Adam {
    m: TailWeights,
    v: TailWeights,
    t: i32,
    rate: f32,
}

impl Adam {
    const BETA1: f32 = 0.9;
    const BETA2: f32 = 0.999;
    const EPS: f32 = 1e-8;

    fn new(like: &TailWeights, rate: f32) -> Self {
        let zero = |w: &TailWeights| {
            let mut z = w.clone();
            z.parts_mut().into_iter().for_each(|p| p.fill(0.0));
            z
        };
        Self {
            m: zero(like),
            v: zero(like),
            t: 0,
            rate,
        }
    }

    fn step(&mut self, w: &mut TailWeights, g: &TailWeights) {
        self.t += 1;
        let c1 = 1.0 - Self::BETA1.powi(self.t);
        let c2 = 1.0 - Self::BETA2.powi(self.t);
        let parts = w
            .parts_mut()
            .into_iter()
            .zip(g.parts())
            .zip(self.m.parts_mut())
            .zip(self.v.parts_mut());
        for (((w, g), m), v) in parts {
            for (((w, g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = Self::BETA1 * *m + (1.0 - Self::BETA1) * g;
                *v = Self::BETA2 * *v + (1.0 - Self::BETA2) * g * g;
                *w -= self.rate * (*m / c1) / ((*v / c2).sqrt() + Self::EPS);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn random(rng: &mut ChaCha8Rng, shape: (usize, usize), scale: f32) -> Array2<f32> {
        Array2::from_shape_fn(shape, |_| rng.random_range(-scale..scale))
    }

    /// A tail small enough to differentiate numerically: 4 inputs, 6 channels, 3
    /// positions, 5 hidden, 3 classes.
    fn small_tail(rng: &mut ChaCha8Rng) -> Tail {
        let (i, c, p, h, k) = (4, 6, 3, 5, 3);
        Tail {
            weights: TailWeights {
                expand: random(rng, (c, i), 1.0),
                expand_bias: random(rng, (1, c), 0.5).row(0).to_owned(),
                depthwise: random(rng, (c, p), 1.0),
                depthwise_bias: random(rng, (1, c), 0.5).row(0).to_owned(),
                linear: random(rng, (c, h), 1.0),
                classifier: random(rng, (h, k), 1.0),
            },
            prelu: random(rng, (1, c), 0.5).row(0).mapv(f32::abs),
            bn_scale: random(rng, (1, h), 1.0).row(0).to_owned(),
            bn_shift: random(rng, (1, h), 0.5).row(0).to_owned(),
            live_index: 1,
        }
    }

    /// Every weight's analytic derivative against a central difference in f32, for a
    /// batch with both classes.
    #[test]
    fn gradients_match_numerical_ones() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let tail = small_tail(&mut rng);
        let live = [true, false, false, true];
        let x = random(
            &mut rng,
            (live.len() * tail.positions(), tail.inputs()),
            1.0,
        );
        let pass = tail.forward(x.view());
        let analytic = tail.gradient(x.view(), &pass, &live);
        let h = 1e-2f32;
        let mut checked = 0;
        for part in 0..6 {
            for idx in 0..analytic.parts()[part].len() {
                let at = |delta: f32| {
                    let mut t = tail.clone();
                    t.weights.parts_mut()[part][idx] += delta;
                    t.loss(&t.forward(x.view()), &live) as f64
                };
                let numeric = (at(h) - at(-h)) / (2.0 * h as f64);
                let a = analytic.parts()[part][idx] as f64;
                assert!(
                    (a - numeric).abs() <= 2e-3 + 2e-2 * numeric.abs(),
                    "part {part} weight {idx}: analytic {a}, numerical {numeric}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 24 + 6 + 18 + 6 + 30 + 15);
    }

    /// Training lowers the loss on a set it can separate, and is the same for a seed.
    #[test]
    fn fine_tuning_learns_and_is_deterministic() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let tail = small_tail(&mut rng);
        let live: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
        let p = tail.positions();
        let mut x = random(&mut rng, (live.len() * p, tail.inputs()), 1.0);
        for (i, &y) in live.iter().enumerate() {
            x.slice_mut(s![i * p..(i + 1) * p, 0])
                .fill(if y { 2.0 } else { -2.0 });
        }
        let how = FineTune {
            epochs: 60,
            batch: 8,
            learning_rate: 1e-2,
            pull: 0.0,
            seed: 1,
        };
        let before = tail.loss(&tail.forward(x.view()), &live);
        let trained = tail.fine_tune(&x, &live, &how);
        let after = trained.loss(&trained.forward(x.view()), &live);
        assert!(after < 0.5 * before, "loss {before} -> {after}");
        assert_eq!(trained.weights, tail.fine_tune(&x, &live, &how).weights);
    }

    #[test]
    fn a_trunk_becomes_position_major_rows() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let tail = small_tail(&mut rng);
        // channel-major: input channel i at position p is i * 3 + p
        let trunk: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let rows = tail.rows(&trunk).unwrap();
        assert_eq!(rows.shape(), &[3, 4]);
        assert_eq!(rows[[1, 2]], 7.0);
        assert!(tail.rows(&trunk[..11]).is_err());
    }
}
