//! DNS answers: the pure answer function ([`answer`]), the answers
//! pre-rendered from a snapshot for the fast path ([`fast`]), and the pair
//! the fronts read ([`served`]). Nothing here touches a socket.

pub mod answer;
pub mod fast;
pub mod served;

pub use served::{Served, SharedZone};
