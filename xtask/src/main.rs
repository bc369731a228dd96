//! Developer tasks (`cargo xtask …`): benchmarks, codegen, test images, local clusters.

fn main() {}
