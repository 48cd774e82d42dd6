//! The top level of a protobuf message, read without its schema: which field numbers it
//! holds. Enough to tell "a payload kind this collector does not know" from "no payload".

/// Field numbers at the top level of `bytes`, in order; `None` if `bytes` is not protobuf.
pub fn field_numbers(mut bytes: &[u8]) -> Option<Vec<u32>> {
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let number = u32::try_from(key >> 3).ok().filter(|n| *n > 0)?;
        let skip = match key & 7 {
            0 => {
                varint(&mut bytes)?;
                0
            }
            1 => 8,
            2 => usize::try_from(varint(&mut bytes)?).ok()?,
            5 => 4,
            // Groups (3, 4) are proto2 only; 6 and 7 do not exist.
            _ => return None,
        };
        bytes = bytes.get(skip..)?;
        fields.push(number);
    }
    Some(fields)
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_wire_type_and_refuses_damage() {
        // 1: string "ab"; 2: varint 300; 17: fixed32; 30: fixed64.
        let bytes = [
            0x0a, 0x02, b'a', b'b', 0x10, 0xac, 0x02, 0x8d, 0x01, 1, 2, 3, 4, 0xf1, 0x01, 0, 0, 0,
            0, 0, 0, 0, 0,
        ];
        assert_eq!(field_numbers(&bytes), Some(vec![1, 2, 17, 30]));
        assert_eq!(field_numbers(&[]), Some(vec![]));
        assert_eq!(field_numbers(&bytes[..3]), None, "cut inside a string");
        assert_eq!(field_numbers(&[0x0b]), None, "group start");
        assert_eq!(field_numbers(&[0x00, 0x00]), None, "field number 0");
        assert_eq!(field_numbers(&[0x08, 0xff]), None, "cut inside a varint");
    }
}
