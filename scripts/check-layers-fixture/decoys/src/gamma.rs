/// Not a path: `crate::alpha::x()`.
pub struct G;

mod nested {
    // `super` here is gamma itself, not the crate root.
    use super::G;
    pub fn g() -> G {
        G
    }
}
