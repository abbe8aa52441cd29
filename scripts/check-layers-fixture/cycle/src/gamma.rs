pub struct G;

pub fn z() {
    let _ = crate::alpha::x();
}
