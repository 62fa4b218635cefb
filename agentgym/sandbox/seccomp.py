"""A seccomp filter for bubblewrap sandboxes, modelled on Docker's default profile.

Docker runs every container under a seccomp profile that refuses the system calls an
unprivileged process has no business making (kernel keyrings, BPF, perf, mounts, module
loading, namespaces, clock setting...). bubblewrap applies none of its own; ``bwrap
--seccomp FD`` loads a compiled classic-BPF program from a file descriptor. This module
builds that program directly (a deny list is a short chain of compares), so no libseccomp
is needed. Denied calls fail with ``EPERM``; ``clone3`` fails with ``ENOSYS`` so that libc
falls back to ``clone``, whose flags are checked (no new namespaces), as Docker does.
Calls from a foreign ABI (32-bit x86 on x86_64, x32) are refused outright: a deny list is
only as good as its syscall table.
"""

from __future__ import annotations

import errno
import os
import platform
import struct

# classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h)
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000

#: AUDIT_ARCH_* values and the calls denied on each, by number (from the kernel's
#: asm/unistd_64.h and asm-generic/unistd.h).
ARCHES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (0xC000003E, {
        "acct": 163, "add_key": 248, "bpf": 321, "clock_adjtime": 305, "clock_settime": 227,
        "create_module": 174, "delete_module": 176, "finit_module": 313, "get_kernel_syms": 177,
        "get_mempolicy": 239, "init_module": 175, "ioperm": 173, "iopl": 172, "kcmp": 312,
        "kexec_file_load": 320, "kexec_load": 246, "keyctl": 250, "lookup_dcookie": 212, "mbind": 237,
        "mount": 165, "move_pages": 279, "name_to_handle_at": 303, "nfsservctl": 180,
        "open_by_handle_at": 304, "perf_event_open": 298, "pivot_root": 155, "process_vm_readv": 310,
        "process_vm_writev": 311, "ptrace": 101, "query_module": 178, "quotactl": 179, "reboot": 169,
        "request_key": 249, "set_mempolicy": 238, "setns": 308, "settimeofday": 164, "swapon": 167,
        "swapoff": 168, "sysfs": 139, "_sysctl": 156, "umount2": 166, "unshare": 272, "uselib": 134,
        "userfaultfd": 323, "ustat": 136, "vhangup": 153, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "open_tree": 428, "move_mount": 429, "mount_setattr": 442, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "fanotify_init": 300, "syslog": 103,
        "pidfd_getfd": 438, "quotactl_fd": 443,
    }),
    "aarch64": (0xC00000B7, {
        "acct": 89, "add_key": 217, "bpf": 280, "clock_adjtime": 266, "clock_settime": 112,
        "delete_module": 106, "finit_module": 273, "get_mempolicy": 236, "init_module": 105, "kcmp": 272,
        "kexec_file_load": 294, "kexec_load": 104, "keyctl": 219, "lookup_dcookie": 18, "mbind": 235,
        "mount": 40, "move_pages": 239, "name_to_handle_at": 264, "nfsservctl": 42, "open_by_handle_at": 265,
        "perf_event_open": 241, "pivot_root": 41, "process_vm_readv": 270, "process_vm_writev": 271,
        "ptrace": 117, "quotactl": 60, "reboot": 142, "request_key": 218, "set_mempolicy": 237, "setns": 268,
        "settimeofday": 170, "swapon": 224, "swapoff": 225, "umount2": 39, "unshare": 97, "userfaultfd": 282,
        "vhangup": 58, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "open_tree": 428,
        "move_mount": 429, "mount_setattr": 442, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "fanotify_init": 262, "syslog": 116, "pidfd_getfd": 438, "quotactl_fd": 443,
    }),
}
CLONE = {"x86_64": 56, "aarch64": 220}
CLONE3 = 435
#: CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
X32_BIT = 0x40000000


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def build(arch: str | None = None) -> bytes:
    """The BPF program (an array of ``struct sock_filter``) for ``arch`` (default: this machine's)."""
    arch = arch or platform.machine()
    if arch not in ARCHES:
        raise ValueError(f"no seccomp syscall table for {arch}")
    audit, denied = ARCHES[arch]
    numbers = sorted(set(denied.values()))
    deny = RET_ERRNO | errno.EPERM
    prog: list[tuple[int, int, int, int]] = [
        (_LD_W_ABS, 0, 0, 4),            # arch
        (_JEQ_K, 1, 0, audit),
        (_RET_K, 0, 0, deny),            # a foreign ABI
        (_LD_W_ABS, 0, 0, 0),            # syscall number
    ]
    if arch == "x86_64":
        prog += [(_JGE_K, 0, 1, X32_BIT), (_RET_K, 0, 0, deny)]
    prog += [(_JEQ_K, 0, 1, CLONE3), (_RET_K, 0, 0, RET_ERRNO | errno.ENOSYS)]
    # clone: refuse new namespaces (flags are the low word of args[0], at offset 16)
    prog += [(_JEQ_K, 0, 3, CLONE[arch]), (_LD_W_ABS, 0, 0, 16), (_JSET_K, 0, 1, NAMESPACE_FLAGS),
             (_RET_K, 0, 0, deny)]
    # after the clone block the accumulator may hold the flags: reload the number
    prog += [(_LD_W_ABS, 0, 0, 0)]
    n = len(numbers)
    for i, nr in enumerate(numbers):  # jump to the shared "deny" at the end on a match
        prog.append((_JEQ_K, n - i, 0, nr))
    prog += [(_RET_K, 0, 0, RET_ALLOW), (_RET_K, 0, 0, deny)]
    return b"".join(_insn(*i) for i in prog)


_PROGRAM: bytes | None = None


def program_fd() -> int | None:
    """A fresh read-only descriptor holding the program (bwrap reads it to the end), or None
    when this machine's architecture has no table. The caller closes it after the spawn."""
    global _PROGRAM
    if _PROGRAM is None:
        try:
            _PROGRAM = build()
        except ValueError:
            _PROGRAM = b""
    if not _PROGRAM:
        return None
    fd = os.memfd_create("agentgym-seccomp", os.MFD_CLOEXEC)
    os.write(fd, _PROGRAM)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
