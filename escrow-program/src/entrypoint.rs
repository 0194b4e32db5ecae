//! The program's entrypoint, panic handler and memory builtins (SBPF only).

#[cfg(target_arch = "bpf")]
mod sbpf {
    use core::mem::MaybeUninit;

    use crate::account::{deserialize, AccountView, MAX_ACCOUNTS};
    use crate::processor::process_instruction;
    use crate::syscalls;

    /// Where SBPF v0 maps the program's heap.
    const HEAP_START: usize = 0x3_0000_0000;
    const _: () = assert!(MAX_ACCOUNTS * core::mem::size_of::<AccountView>() <= 32 * 1024);

    /// Called by the loader with its serialised input; returns 0 on success or
    /// a custom error code (see `error.rs`), after logging it as Anchor does.
    ///
    /// # Safety
    /// Only the runtime calls this, with a pointer to its input region.
    #[no_mangle]
    pub unsafe extern "C" fn entrypoint(input: *mut u8) -> u64 {
        // The account views live at the start of the runtime's heap (32 KiB, unused
        // otherwise: nothing here allocates), not in this 4 KiB stack frame.
        // SAFETY: the heap region is mapped, writable, 8-aligned and large enough,
        // and nothing else uses it; MaybeUninit needs no initialisation.
        let slots = unsafe { &mut *(HEAP_START as *mut [MaybeUninit<AccountView>; MAX_ACCOUNTS]) };
        // SAFETY: `input` is the loader's input region, valid for the whole instruction.
        let input = unsafe { deserialize(input, slots) };
        match process_instruction(input.program_id, input.accounts, input.data) {
            Ok(()) => 0,
            Err(error) => {
                syscalls::log(error.anchor_log().as_bytes());
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
