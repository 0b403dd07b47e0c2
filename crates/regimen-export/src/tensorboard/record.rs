//! TFRecord framing, the container of TensorBoard event files.
//!
//! Each record is `length: u64 LE`, `masked_crc32c(length bytes): u32 LE`, `data`,
//! `masked_crc32c(data): u32 LE`. The CRC is CRC-32C (Castagnoli), masked (rotated right by 15
//! bits, plus a constant) because a CRC over data that itself embeds CRCs is weak.

use std::io::{self, Write};

/// The constant TFRecord adds to a rotated CRC.
const MASK_DELTA: u32 = 0xa282_ead8;

/// The masked CRC-32C of `bytes`, as TFRecord stores it.
pub(crate) fn masked_crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes).rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Writes one record holding `data`.
pub(crate) fn write_record(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let length = (data.len() as u64).to_le_bytes();
    out.write_all(&length)?;
    out.write_all(&masked_crc32c(&length).to_le_bytes())?;
    out.write_all(data)?;
    out.write_all(&masked_crc32c(data).to_le_bytes())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reads back every record of a TFRecord stream, checking both CRCs of each.
    pub(crate) fn read_records(mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        fn take<'a>(bytes: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], String> {
            if bytes.len() < n {
                return Err(format!("truncated {what}: wanted {n} bytes, {} left", bytes.len()));
            }
            let (head, rest) = bytes.split_at(n);
            *bytes = rest;
            Ok(head)
        }
        fn crc(bytes: &[u8]) -> u32 {
            u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
        }
        let mut records = Vec::new();
        while !bytes.is_empty() {
            let length = take(&mut bytes, 8, "length")?;
            if crc(take(&mut bytes, 4, "length crc")?) != masked_crc32c(length) {
                return Err(format!("record {}: length crc mismatch", records.len()));
            }
            let length = u64::from_le_bytes(length.try_into().map_err(|_| "length is 8 bytes".to_string())?);
            let length = usize::try_from(length).map_err(|e| e.to_string())?;
            let data = take(&mut bytes, length, "data")?;
            if crc(take(&mut bytes, 4, "data crc")?) != masked_crc32c(data) {
                return Err(format!("record {}: data crc mismatch", records.len()));
            }
            records.push(data.to_vec());
        }
        Ok(records)
    }

    #[test]
    fn crc32c_matches_published_check_values() {
        // The CRC catalogue's check value, and the iSCSI (RFC 3720, B.4) 32 zero bytes.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
    }

    #[test]
    fn masking_rotates_and_adds_the_delta() {
        assert_eq!(masked_crc32c(b""), MASK_DELTA);
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
        assert_eq!(masked_crc32c(&[0u8; 32]), 0x0fd7_fffa);
        assert_eq!(masked_crc32c(&8u64.to_le_bytes()), 0x0f24_86ff);
    }

    #[test]
    fn records_round_trip_through_the_reader() {
        let payloads: [&[u8]; 3] = [b"brain.Event:2", b"", &[0xff; 300]];
        let mut stream = Vec::new();
        for payload in payloads {
            write_record(&mut stream, payload).expect("write to a vector");
        }
        assert_eq!(stream.len(), payloads.iter().map(|p| 16 + p.len()).sum::<usize>());
        assert_eq!(&stream[..8], &13u64.to_le_bytes());
        let records = read_records(&stream).expect("valid stream");
        assert_eq!(records, payloads.map(<[u8]>::to_vec));
    }

    #[test]
    fn a_flipped_byte_anywhere_is_detected() {
        let mut stream = Vec::new();
        write_record(&mut stream, b"scalar event").expect("write to a vector");
        for position in 0..stream.len() {
            let mut corrupt = stream.clone();
            corrupt[position] ^= 0x01;
            assert!(read_records(&corrupt).is_err(), "flip at byte {position} went unnoticed");
        }
    }
}
