// use super::super::gamma::G;  (a comment)
use super::Thing;

pub fn y<'a>(t: &'a Thing) -> &'a Thing {
    t
}

#[cfg(test)]
mod tests {
    use super::*;
}
