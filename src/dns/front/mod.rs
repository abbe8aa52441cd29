//! Network fronts: they take packets off sockets and hand them to
//! [`crate::dns::answer`], which alone decides what is answered.

pub mod hickory;
