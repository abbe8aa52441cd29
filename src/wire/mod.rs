//! DNS in wire format, below everything that reads or writes it: names held
//! once each in wire format ([`name_table`]), the question of a message read
//! without parsing it ([`question`]), and the transport a message came over.

pub mod name_table;
pub mod question;

/// What a message came over: it decides the size limit of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}
