use crate::beta::Thing;

pub fn x() -> Thing {
    Thing
}
