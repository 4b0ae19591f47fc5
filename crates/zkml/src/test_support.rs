//! Helpers for the crate's tests.

use proptest::prelude::*;

use crate::model::{Activation, AffineRow, FloatLayer, FloatModel};

/// Any activation.
pub(crate) fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::None),
        Just(Activation::Relu),
        Just(Activation::Sigmoid)
    ]
}

/// `depth` layers of `outputs` neurons each over `inputs` values, random activations;
/// `dense` rows read every input in order, other rows up to 9 random ones.
pub(crate) fn layered_model(
    inputs: std::ops::Range<usize>,
    outputs: std::ops::Range<usize>,
    depth: std::ops::Range<usize>,
    dense: bool,
) -> impl Strategy<Value = FloatModel> {
    (
        inputs,
        prop::collection::vec((outputs, activation()), depth),
    )
        .prop_flat_map(move |(n_in, shape)| {
            let mut widths = vec![n_in];
            widths.extend(shape.iter().map(|s| s.0));
            let layers: Vec<_> = shape
                .iter()
                .enumerate()
                .map(|(l, &(n_out, act))| {
                    let n_prev = widths[l];
                    let terms = if dense {
                        prop::collection::vec(-1.0f32..1.0, n_prev)
                            .prop_map(|w| (0u32..).zip(w).collect::<Vec<_>>())
                            .boxed()
                    } else {
                        prop::collection::vec((0..n_prev as u32, -1.5f32..1.5), 1..10).boxed()
                    };
                    prop::collection::vec((-1.0f32..1.0, terms), n_out).prop_map(move |rows| {
                        FloatLayer {
                            rows: rows
                                .into_iter()
                                .map(|(bias, terms)| AffineRow { bias, terms })
                                .collect(),
                            activation: act,
                        }
                    })
                })
                .collect();
            let out = *widths.last().unwrap_or(&1);
            layers.prop_map(move |layers| FloatModel {
                input_shape: vec![n_in],
                input_len: n_in,
                output_shape: vec![out],
                layers,
                softmax_output: false,
            })
        })
}

/// A file of the crate's test data.
pub(crate) fn testdata(name: &str) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("testdata/{name}: {e}"))
}

/// Runs `work` inside a rayon pool of `threads` threads, on a thread of its own, and fails
/// (instead of hanging) if it does not finish within `secs` seconds: `what` names it.
pub(crate) fn on_rayon_within<T: Send + 'static>(
    threads: usize,
    secs: u64,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool");
        let _ = done.send(pool.install(work));
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s"))
}
