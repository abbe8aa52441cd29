//! The question of a query or response, read from the wire bytes without
//! parsing the message: the fronts use it to tell a transfer from an answer,
//! to slip an RRL answer, and to count responses by type.

/// Length of the DNS header (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;

/// Where the question section of a message ends (header, one name, type and
/// class), if the message has exactly one well-formed question. Names with
/// compression pointers are refused: no question we answer or send has one.
pub fn question_end(message: &[u8]) -> Option<usize> {
    if message.len() < HEADER_LEN || u16::from_be_bytes([message[4], message[5]]) != 1 {
        return None;
    }
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*message.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        at += 1 + len;
    }
    let end = at + 4;
    (end <= message.len()).then_some(end)
}

/// The name of the one well-formed question of `message`, in wire format
/// as it was sent (case kept).
pub fn question_name(message: &[u8]) -> Option<&[u8]> {
    let end = question_end(message)?;
    message.get(HEADER_LEN..end - 4)
}

/// Whether the wire name `name` is `origin` or below it (lower-case wire
/// `origin`; `name` in any case), label by label.
pub fn is_under(name: &[u8], origin: &[u8]) -> bool {
    let mut at = 0;
    while let Some(rest) = name.get(at..) {
        if rest.len() < origin.len() {
            return false;
        }
        if rest.eq_ignore_ascii_case(origin) {
            return true;
        }
        match rest.first() {
            Some(&len) if len != 0 && len & 0xc0 == 0 => at += 1 + usize::from(len),
            _ => return false,
        }
    }
    false
}

/// The type of the one well-formed question of `message`.
pub fn question_type(message: &[u8]) -> Option<u16> {
    let end = question_end(message)?;
    Some(u16::from_be_bytes([message[end - 4], message[end - 3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `a.b.` of type SRV (33), class IN.
    fn query() -> Vec<u8> {
        let mut bytes = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&[1, b'a', 1, b'b', 0, 0, 33, 0, 1]);
        bytes
    }

    #[test]
    fn reads_the_question() {
        let bytes = query();
        assert_eq!(question_end(&bytes), Some(bytes.len()));
        assert_eq!(question_type(&bytes), Some(33));
    }

    #[test]
    fn tells_names_under_an_origin_label_by_label() {
        let bytes = query();
        assert_eq!(question_name(&bytes), Some(&[1, b'a', 1, b'b', 0][..]));
        let origin = [1, b'b', 0];
        assert!(is_under(&[1, b'a', 1, b'B', 0], &origin));
        assert!(is_under(&[1, b'b', 0], &origin));
        // One label `a\x01b` ends in the bytes of `b.` but is not under it.
        assert!(!is_under(&[3, b'a', 1, b'b', 0], &origin));
        assert!(!is_under(&[2, b'a', b'b', 0], &origin));
        assert!(!is_under(&[1, b'a', 1, b'c', 0], &origin));
        assert!(!is_under(&[], &origin));
    }

    #[test]
    fn refuses_what_is_not_one_plain_question() {
        let bytes = query();
        // Cut anywhere: no question, never a panic.
        for end in 0..bytes.len() {
            assert_eq!(question_end(&bytes[..end]), None, "cut at {end}");
        }
        let mut two = bytes.clone();
        two[5] = 2;
        assert_eq!(question_end(&two), None);
        let mut none = bytes.clone();
        none[5] = 0;
        assert_eq!(question_end(&none), None);
        let mut pointer = bytes;
        pointer[12] = 0xc0;
        assert_eq!(question_end(&pointer), None);
    }
}
