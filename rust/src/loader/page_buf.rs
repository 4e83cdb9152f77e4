//! Zeroed buffers that start on a page boundary and own whole pages.
//!
//! Batch fields are page-locked (`cudaHostRegister`) one by one, and a registration covers
//! whole pages. A field sharing a page with another (small heap allocations do) could not
//! be registered on its own: CUDA refuses overlapping ranges, so it would stay pageable and
//! its copies would be synchronous staging copies. Every field therefore gets pages of its own.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::OnceLock;

use super::batch::ZeroIsValid;
use crate::error::{Error, Result};

/// The operating system's page size in bytes (4096 where it cannot be read).
pub fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            page as usize
        } else {
            4096
        }
    })
}

/// `n` zeroed `T`s at a page-aligned address, in an allocation of whole pages.
pub struct PageBuf<T: ZeroIsValid> {
    ptr: NonNull<T>,
    len: usize,
    /// `None` for an empty buffer (nothing allocated).
    layout: Option<Layout>,
}

// SAFETY: PageBuf owns its memory exclusively, like Vec<T>.
unsafe impl<T: ZeroIsValid + Send> Send for PageBuf<T> {}
unsafe impl<T: ZeroIsValid + Sync> Sync for PageBuf<T> {}

impl<T: ZeroIsValid> PageBuf<T> {
    /// `Error::OutOfMemory` (never an abort) if the memory cannot be had.
    pub fn zeroed(n: usize, what: &str) -> Result<Self> {
        let item = std::mem::size_of::<T>();
        if n == 0 || item == 0 {
            return Ok(PageBuf { ptr: NonNull::dangling(), len: n, layout: None });
        }
        let oom = || Error::OutOfMemory(format!("cannot allocate {what}: {n} x {item} bytes"));
        let page = page_size();
        let bytes = n.checked_mul(item).and_then(|b| b.checked_next_multiple_of(page)).ok_or_else(oom)?;
        let layout = Layout::from_size_align(bytes, page.max(std::mem::align_of::<T>())).map_err(|_| oom())?;
        // SAFETY: `layout` has non-zero size. Zero bytes are a valid T (ZeroIsValid), so the
        // first `n` elements are initialised.
        let raw = unsafe { alloc_zeroed(layout) } as *mut T;
        let ptr = NonNull::new(raw).ok_or_else(oom)?;
        Ok(PageBuf { ptr, len: n, layout: Some(layout) })
    }

    /// Bytes owned (whole pages; 0 when empty).
    pub fn capacity_bytes(&self) -> usize {
        self.layout.map_or(0, |l| l.size())
    }
}

impl<T: ZeroIsValid> Deref for PageBuf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points to `len` initialised T's (or is dangling with len 0 or a zero-sized T).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: ZeroIsValid> DerefMut for PageBuf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: ZeroIsValid> Drop for PageBuf<T> {
    fn drop(&mut self) {
        if let Some(layout) = self.layout {
            // SAFETY: allocated in `zeroed` with exactly this layout.
            unsafe { dealloc(self.ptr.as_ptr() as *mut u8, layout) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_on_a_page_and_own_whole_pages() {
        let page = page_size();
        for n in [1usize, 7, 77 * 2, page / 8, page / 8 + 1, 3 * page] {
            let a = PageBuf::<i64>::zeroed(n, "test").unwrap();
            let b = PageBuf::<u8>::zeroed(n, "test").unwrap();
            for (addr, bytes, cap) in
                [(a.as_ptr() as usize, n * 8, a.capacity_bytes()), (b.as_ptr() as usize, n, b.capacity_bytes())]
            {
                assert_eq!(addr % page, 0);
                assert_eq!(cap % page, 0);
                assert!(cap >= bytes && cap < bytes + page);
            }
            assert!(a.iter().all(|&x| x == 0) && a.len() == n);
        }
        let empty = PageBuf::<f32>::zeroed(0, "test").unwrap();
        assert!(empty.is_empty() && empty.capacity_bytes() == 0);
        assert!(matches!(PageBuf::<u8>::zeroed(usize::MAX - 1, "test"), Err(Error::OutOfMemory(_))));
    }
}
