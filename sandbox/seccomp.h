/* seccomp: the sandbox's system-call filter (libseccomp).
 *
 * An allow-list at least as strict as Docker's default profile: anything not listed fails with
 * EPERM, clone3 fails with ENOSYS (so libc falls back to clone, whose flags can be checked),
 * and on top of Docker's list these are refused: io_uring, userfaultfd, bpf, perf_event_open,
 * the key syscalls, the whole mount API, namespace creation (unshare, setns, clone with
 * CLONE_NEW* flags), ptrace and process_vm_*, kexec, module loading, personality changes other
 * than the harmless ones, ioctl TIOCSTI and TIOCLINUX (also with high bits set in the request),
 * sockets of families AF_PACKET, AF_ALG, AF_VSOCK, AF_NETLINK other than NETLINK_ROUTE, raw
 * sockets (SOCK_RAW), and every non-native ABI (i386 int 0x80, x32), whose calls kill the
 * process.
 */
#ifndef CRU_SANDBOX_SECCOMP_H
#define CRU_SANDBOX_SECCOMP_H

/* Installs the filter on the calling thread, which must be the only thread (it runs in the
 * forked child just before execve). no_new_privs should already be set; the call sets it too,
 * which is harmless when it is. After success the process can only shrink its privileges
 * further. On failure (CRU_EUNSUPPORTED when this libseccomp lacks a syscall the filter cannot
 * do without, else the code of the failed step) part of the filter may already be in place:
 * the caller must not go on to run the agent. */
int sbx_seccomp_apply(void);

/* The same filter compiled once into a BPF program (host side, before the sandbox's init is
 * cloned), for the init's commands to install with one prctl(): no allocation at that point,
 * and no recompilation per command. *prog owns its instructions: sbx_seccomp_program_free(). */
struct sock_fprog;
int sbx_seccomp_program(struct sock_fprog *prog);
void sbx_seccomp_program_free(struct sock_fprog *prog);

#endif
