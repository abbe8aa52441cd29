//! DNS: the answer function and the fronts that carry it to the network.

pub mod answer;
pub mod fast;
pub mod front;
pub mod rrl;
