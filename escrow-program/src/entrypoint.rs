//! The program's entrypoint, panic handler and memory builtins (SBPF only).

#[cfg(target_arch = "bpf")]
mod sbpf {
    use core::mem::MaybeUninit;

    use crate::account::{deserialize, AccountView, MAX_ACCOUNTS};
    use crate::processor::process_instruction;
    use crate::syscalls;

    /// Called by the loader with its serialised input; returns 0 on success or
    /// a custom error code (see `error.rs`), after logging the error's name.
    ///
    /// # Safety
    /// Only the runtime calls this, with a pointer to its input region.
    #[no_mangle]
    pub unsafe extern "C" fn entrypoint(input: *mut u8) -> u64 {
        let mut slots = [MaybeUninit::<AccountView>::uninit(); MAX_ACCOUNTS];
        // SAFETY: `input` is the loader's input region, valid for the whole instruction.
        let input = unsafe { deserialize(input, &mut slots) };
        match process_instruction(input.program_id, input.accounts, input.data) {
            Ok(()) => 0,
            Err(error) => {
                syscalls::log(error.name().as_bytes());
                error.code()
            }
        }
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        const WHERE: &[u8] = b"perpd-escrow";
        // SAFETY: the syscall reads `len` bytes of a static string and aborts.
        unsafe { syscalls::sol_panic_(WHERE.as_ptr(), WHERE.len() as u64, 0, 0) }
    }

    // LLVM lowers copies, fills and comparisons to these C functions; there is no
    // libc here, so they forward to the runtime's memory syscalls.

    /// # Safety
    /// The C `memcpy` contract: `n` bytes, valid, non-overlapping.
    #[no_mangle]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { syscalls::sol_memcpy_(dst, src, n as u64) };
        dst
    }

    /// # Safety
    /// The C `memmove` contract: `n` bytes, valid, may overlap.
    #[no_mangle]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { syscalls::sol_memmove_(dst, src, n as u64) };
        dst
    }

    /// # Safety
    /// The C `memset` contract: `n` writable bytes.
    #[no_mangle]
    pub unsafe extern "C" fn memset(dst: *mut u8, value: i32, n: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { syscalls::sol_memset_(dst, value as u8, n as u64) };
        dst
    }

    /// # Safety
    /// The C `memcmp` contract: `n` readable bytes at each pointer.
    #[no_mangle]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        let mut result = 0i32;
        // SAFETY: forwarded contract; `result` is a valid out-pointer.
        unsafe { syscalls::sol_memcmp_(a, b, n as u64, &mut result) };
        result
    }

    /// # Safety
    /// As `memcmp`.
    #[no_mangle]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: forwarded contract.
        unsafe { memcmp(a, b, n) }
    }
}
