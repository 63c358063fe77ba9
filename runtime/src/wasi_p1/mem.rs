//! Guest linear memory marshalling: bounds-checked little-endian loads and stores.
//! Every pointer from a guest is untrusted; out of bounds is `EFAULT`, never a panic.

use crate::error::Errno;

pub(crate) fn range(mem: &[u8], ptr: u32, len: u32) -> Result<std::ops::Range<usize>, Errno> {
    let start = ptr as usize;
    let end = start.checked_add(len as usize).ok_or(Errno::FAULT)?;
    if end > mem.len() {
        return Err(Errno::FAULT);
    }
    Ok(start..end)
}

pub(crate) fn slice(mem: &[u8], ptr: u32, len: u32) -> Result<&[u8], Errno> {
    Ok(&mem[range(mem, ptr, len)?])
}

pub(crate) fn slice_mut(mem: &mut [u8], ptr: u32, len: u32) -> Result<&mut [u8], Errno> {
    let r = range(mem, ptr, len)?;
    Ok(&mut mem[r])
}

pub(crate) fn read_u32(mem: &[u8], ptr: u32) -> Result<u32, Errno> {
    let b = slice(mem, ptr, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

pub(crate) fn read_u64(mem: &[u8], ptr: u32) -> Result<u64, Errno> {
    let b = slice(mem, ptr, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_le_bytes(a))
}

pub(crate) fn read_u16(mem: &[u8], ptr: u32) -> Result<u16, Errno> {
    let b = slice(mem, ptr, 2)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

pub(crate) fn write_bytes(mem: &mut [u8], ptr: u32, data: &[u8]) -> Result<(), Errno> {
    let len = u32::try_from(data.len()).map_err(|_| Errno::FAULT)?;
    slice_mut(mem, ptr, len)?.copy_from_slice(data);
    Ok(())
}

pub(crate) fn write_u8(mem: &mut [u8], ptr: u32, v: u8) -> Result<(), Errno> {
    write_bytes(mem, ptr, &[v])
}
pub(crate) fn write_u16(mem: &mut [u8], ptr: u32, v: u16) -> Result<(), Errno> {
    write_bytes(mem, ptr, &v.to_le_bytes())
}
pub(crate) fn write_u32(mem: &mut [u8], ptr: u32, v: u32) -> Result<(), Errno> {
    write_bytes(mem, ptr, &v.to_le_bytes())
}
pub(crate) fn write_u64(mem: &mut [u8], ptr: u32, v: u64) -> Result<(), Errno> {
    write_bytes(mem, ptr, &v.to_le_bytes())
}

/// An `iovec`/`ciovec` array: (buf, len) pairs.
pub(crate) fn iovecs(mem: &[u8], ptr: u32, count: u32) -> Result<Vec<(u32, u32)>, Errno> {
    if count > 1024 {
        return Err(Errno::INVAL);
    }
    (0..count)
        .map(|i| {
            let at = ptr.checked_add(i * 8).ok_or(Errno::FAULT)?;
            Ok((read_u32(mem, at)?, read_u32(mem, at + 4)?))
        })
        .collect()
}

/// A path argument: its bytes (copied, so the guest cannot change them mid-call).
pub(crate) fn path(mem: &[u8], ptr: u32, len: u32) -> Result<Vec<u8>, Errno> {
    if len > 4096 {
        return Err(Errno::NAMETOOLONG);
    }
    Ok(slice(mem, ptr, len)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_bounds_is_efault() {
        let mut mem = vec![0u8; 16];
        assert_eq!(read_u32(&mem, 13), Err(Errno::FAULT));
        assert_eq!(read_u64(&mem, u32::MAX), Err(Errno::FAULT));
        assert_eq!(write_u64(&mut mem, 9, 1), Err(Errno::FAULT));
        write_u64(&mut mem, 8, 0x0102_0304_0506_0708).unwrap();
        assert_eq!(read_u64(&mem, 8).unwrap(), 0x0102_0304_0506_0708);
        assert_eq!(
            iovecs(&mem, 0, 2).unwrap(),
            vec![(0, 0), (0x0506_0708, 0x0102_0304)]
        );
        assert_eq!(iovecs(&mem, 8, 2), Err(Errno::FAULT));
    }
}
