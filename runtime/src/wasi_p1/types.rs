//! WASI preview 1 constants and struct layouts (from the p1 witx).

pub(crate) const FILETYPE_UNKNOWN: u8 = 0;
pub(crate) const FILETYPE_BLOCK_DEVICE: u8 = 1;
pub(crate) const FILETYPE_CHARACTER_DEVICE: u8 = 2;
pub(crate) const FILETYPE_DIRECTORY: u8 = 3;
pub(crate) const FILETYPE_REGULAR_FILE: u8 = 4;
pub(crate) const FILETYPE_SYMBOLIC_LINK: u8 = 7;

pub(crate) const FDFLAGS_APPEND: u16 = 1;

pub(crate) const OFLAGS_CREAT: u16 = 1;
pub(crate) const OFLAGS_DIRECTORY: u16 = 2;
pub(crate) const OFLAGS_EXCL: u16 = 4;
pub(crate) const OFLAGS_TRUNC: u16 = 8;

pub(crate) const LOOKUP_SYMLINK_FOLLOW: u32 = 1;

pub(crate) const FSTFLAGS_ATIM: u16 = 1;
pub(crate) const FSTFLAGS_ATIM_NOW: u16 = 2;
pub(crate) const FSTFLAGS_MTIM: u16 = 4;
pub(crate) const FSTFLAGS_MTIM_NOW: u16 = 8;

pub(crate) const RIGHTS_FD_READ: u64 = 1 << 1;
pub(crate) const RIGHTS_FD_WRITE: u64 = 1 << 6;
pub(crate) const RIGHTS_FD_READDIR: u64 = 1 << 14;
/// seek + tell
pub(crate) const RIGHTS_SEEK_TELL: u64 = (1 << 2) | (1 << 5);
/// fdstat_set_flags, filestat_get, poll_fd_readwrite
pub(crate) const RIGHTS_STREAM: u64 = (1 << 3) | (1 << 21) | (1 << 27);
/// What only a regular file has: read, seek, tell, write, allocate, filestat_set_size.
pub(crate) const RIGHTS_FILE_ONLY: u64 =
    RIGHTS_FD_READ | RIGHTS_SEEK_TELL | RIGHTS_FD_WRITE | (1 << 8) | (1 << 22);
/// A file's rights apart from read and write.
pub(crate) const RIGHTS_FILE_COMMON: u64 =
    RIGHTS_SEEK_TELL | RIGHTS_STREAM | (1 << 4) | (1 << 7) | (1 << 23);
/// Rights of a writable file beyond `fd_write`: datasync, allocate, filestat_set_size.
pub(crate) const RIGHTS_FILE_WRITE: u64 = RIGHTS_FD_WRITE | 1 | (1 << 8) | (1 << 22);
/// Every right p1 defines (kiln does not restrict by rights; capabilities are paths).
pub(crate) const RIGHTS_ALL: u64 = (1 << 29) - 1;

pub(crate) const CLOCK_REALTIME: u32 = 0;
pub(crate) const CLOCK_MONOTONIC: u32 = 1;
pub(crate) const CLOCK_PROCESS_CPUTIME: u32 = 2;
pub(crate) const CLOCK_THREAD_CPUTIME: u32 = 3;

pub(crate) const EVENTTYPE_CLOCK: u8 = 0;
pub(crate) const EVENTTYPE_FD_READ: u8 = 1;
pub(crate) const EVENTTYPE_FD_WRITE: u8 = 2;
pub(crate) const SUBCLOCKFLAGS_ABSTIME: u16 = 1;
pub(crate) const EVENTRWFLAGS_HANGUP: u16 = 1;

pub(crate) const FILESTAT_SIZE: u32 = 64;
pub(crate) const SUBSCRIPTION_SIZE: u32 = 48;
pub(crate) const EVENT_SIZE: u32 = 32;
pub(crate) const DIRENT_SIZE: usize = 24;

pub(crate) fn filetype(t: kiln_fs::FileType) -> u8 {
    use kiln_fs::FileType as T;
    match t {
        T::Directory => FILETYPE_DIRECTORY,
        T::Regular => FILETYPE_REGULAR_FILE,
        T::Symlink => FILETYPE_SYMBOLIC_LINK,
        T::CharDevice => FILETYPE_CHARACTER_DEVICE,
        T::BlockDevice => FILETYPE_BLOCK_DEVICE,
        T::Fifo => FILETYPE_UNKNOWN,
    }
}
