//! Placeholder replaced by the restore-throughput benchmark.
fn main() {}
