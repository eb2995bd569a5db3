//! The DAG shapes every peer runs, and their sizes.

use std::fmt;

/// A DAG of no-op tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A chain of this many tasks, each depending on the one before.
    Chain(usize),
    /// This many independent tasks (on obrestore: one node with this many sub-tasks).
    FanOut(usize),
    /// `layers` layers of `width` tasks; task `c` of a layer depends on tasks `c` and
    /// `c + 1` (mod `width`) of the layer before.
    Layers { layers: usize, width: usize },
}

impl Shape {
    /// How many tasks one run executes.
    pub fn tasks(self) -> usize {
        match self {
            Shape::Chain(length) => length,
            Shape::FanOut(width) => width,
            Shape::Layers { layers, width } => layers * width,
        }
    }

    /// The tasks of the previous layer that task `column` of a layer after the first
    /// depends on (one task when `width` is 1).
    pub fn layer_parents(width: usize, column: usize) -> Vec<usize> {
        let next = (column + 1) % width;
        if next == column {
            vec![column]
        } else {
            vec![column, next]
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Chain(length) => write!(f, "chain {length}"),
            Shape::FanOut(width) => write!(f, "fan-out {width}"),
            Shape::Layers { layers, width } => write!(f, "layers {layers}x{width}"),
        }
    }
}

/// The shapes of one suite: the in-memory peers run `memory`, the durable ones `durable`
/// (smaller, as a durable peer may take seconds per run).
#[derive(Debug, Clone)]
pub struct Suite {
    pub memory: Vec<Shape>,
    pub durable: Vec<Shape>,
}

impl Suite {
    /// The shapes: chain 1,000, fan-out 10,000, 20 layers x 100; the durable
    /// peers a chain of 200, a fan-out of 2,000 and 20 layers x 100.
    pub fn full() -> Suite {
        let layers = Shape::Layers {
            layers: 20,
            width: 100,
        };
        Suite {
            memory: vec![Shape::Chain(1_000), Shape::FanOut(10_000), layers],
            durable: vec![Shape::Chain(200), Shape::FanOut(2_000), layers],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_parents_wrap_and_dedupe() {
        assert_eq!(Shape::layer_parents(4, 0), vec![0, 1]);
        assert_eq!(Shape::layer_parents(4, 3), vec![3, 0]);
        assert_eq!(Shape::layer_parents(1, 0), vec![0]);
    }

    #[test]
    fn task_counts() {
        assert_eq!(Shape::Chain(7).tasks(), 7);
        assert_eq!(Shape::FanOut(9).tasks(), 9);
        assert_eq!(
            Shape::Layers {
                layers: 3,
                width: 4
            }
            .tasks(),
            12
        );
    }
}
