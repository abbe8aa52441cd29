//! DNS: the answer function and the fronts that carry it to the network.

pub mod answer;
pub mod fast;
pub mod front;
pub mod rrl;

/// Where the question section of a query ends (header, one name, type and
/// class), if the query has one well-formed question.
pub fn question_end(query: &[u8]) -> Option<usize> {
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut at = 12;
    loop {
        let len = usize::from(*query.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len & 0xc0 != 0 {
            // No compression pointers in a question we answer.
            return None;
        }
        at += 1 + len;
    }
    let end = at + 4;
    (end <= query.len()).then_some(end)
}

/// The type asked for by a query with one well-formed question.
pub fn question_type(query: &[u8]) -> Option<u16> {
    let end = question_end(query)?;
    Some(u16::from_be_bytes([query[end - 4], query[end - 3]]))
}
