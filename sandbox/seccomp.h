/* seccomp: the sandbox's system-call filter (libseccomp).
 *
 * An allow-list at least as strict as Docker's default profile: anything not listed fails with
 * EPERM, clone3 fails with ENOSYS (so libc falls back to clone, whose flags can be checked),
 * and on top of Docker's list these are refused: io_uring, userfaultfd, bpf, perf_event_open,
 * the key syscalls, the whole mount API, namespace creation (unshare, setns, clone with
 * CLONE_NEW* flags), ptrace and process_vm_*, kexec, module loading, personality changes other
 * than the harmless ones, ioctl TIOCSTI and TIOCLINUX (also with high bits set in the request),
 * sockets of families AF_PACKET, AF_ALG, AF_VSOCK, AF_NETLINK other than NETLINK_ROUTE, raw
 * sockets (SOCK_RAW), a setuid or setgid bit in the mode that chmod, fchmod, fchmodat,
 * fchmodat2, mknod, mknodat, creat, open or openat (creating) would give a file, openat2
 * (ENOSYS: its mode is out of the filter's sight), and every non-native ABI (i386 int 0x80,
 * x32), whose calls kill the process.
 */
#ifndef CRU_SANDBOX_SECCOMP_H
#define CRU_SANDBOX_SECCOMP_H

#include <linux/filter.h>
#include <stddef.h>

/* The filter is two programs: a guard (allow everything but ioctl TIOCSTI and TIOCLINUX,
 * compared on the request's low 32 bits, and setuid or setgid modes) and the allow-list.
 * libseccomp cannot express "allow ioctl unless" inside the allow-list without an unspecified
 * rule order; the kernel runs every installed program and takes the strictest verdict, so two
 * programs are exact. */
#define SBX_SECCOMP_PROGRAMS 2

struct sbx_seccomp {
    struct sock_fprog prog[SBX_SECCOMP_PROGRAMS]; /* instructions owned: sbx_seccomp_free() */
    size_t n;
};

/* Builds both programs with libseccomp and compiles them to BPF, once, on the host: the
 * sandbox's commands then install them with sbx_seccomp_install(), which allocates nothing
 * and costs two prctl() calls. CRU_EUNSUPPORTED when this libseccomp lacks a syscall the
 * filter cannot do without. */
int sbx_seccomp_compile(struct sbx_seccomp *out);
void sbx_seccomp_free(struct sbx_seccomp *s);

/* The same programs as the build compiled them (tools/seccomp_gen.c; crucible links
 * libseccomp statically, so they are what sbx_seccomp_compile would make, without its 1.5 ms):
 * CRU_EUNSUPPORTED in a build that carries none (the fuzz build). */
int sbx_seccomp_builtin(struct sbx_seccomp *out);

/* sbx_seccomp_builtin where the build carries the programs, else sbx_seccomp_compile. */
int sbx_seccomp_load(struct sbx_seccomp *out);

/* Installs the programs on the calling thread (system calls only; -1 with errno on failure).
 * The caller must have set no_new_privs or hold CAP_SYS_ADMIN in its user namespace. On
 * failure part of the filter may be in place: the caller must not go on to run the agent. */
int sbx_seccomp_install(const struct sbx_seccomp *s);

/* load + no_new_privs + install + free, for a process that wants the filter on itself. */
int sbx_seccomp_apply(void);

#endif
