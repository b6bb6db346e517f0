//! The `flowrun` binary.

fn main() {
    let mut engine = rhai::Engine::new();
    flowrun::native::register(&mut engine);
}
