/* seccomp_gen: writes the sandbox's seccomp programs as a C header, at build time.
 *
 * libseccomp takes about 1.5 ms to turn the filter's rules into BPF, which every crucible
 * process that makes a sandbox would pay again. The result depends only on the rules
 * (sandbox/seccomp.c) and on libseccomp, which crucible links statically: so the build runs
 * the same compilation once and crucible carries the programs it produced. tests/test_seccomp.c
 * checks that the carried programs equal a fresh compilation.
 *
 *     seccomp-gen OUT.h
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "sandbox/seccomp.h"

static int write_header(FILE *f, const struct sbx_seccomp *s)
{
    fprintf(f,
            "/* Made by the build (tools/seccomp_gen.c) from sandbox/seccomp.c: do not edit. */\n");
    for (size_t p = 0; p < s->n; p++) {
        fprintf(f, "static const struct sock_filter sbx_builtin_prog%zu[%u] = {\n", p,
                s->prog[p].len);
        for (unsigned i = 0; i < s->prog[p].len; i++) {
            const struct sock_filter *x = &s->prog[p].filter[i];
            fprintf(f, "    { 0x%04x, %u, %u, 0x%08x },\n", x->code, x->jt, x->jf, x->k);
        }
        fprintf(f, "};\n");
    }
    fprintf(f,
            "static const struct {\n    const struct sock_filter *insns;\n    unsigned len;\n"
            "} sbx_builtin[%zu] = {\n",
            s->n);
    for (size_t p = 0; p < s->n; p++)
        fprintf(f, "    { sbx_builtin_prog%zu, %u },\n", p, s->prog[p].len);
    fprintf(f, "};\n");
    return ferror(f) ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seccomp-gen OUT.h\n");
        return 2;
    }
    struct sbx_seccomp s;
    if (sbx_seccomp_compile(&s) < 0) {
        fprintf(stderr, "seccomp-gen: %s\n", cru_err_msg());
        return 3;
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    int rc = f ? write_header(f, &s) : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, argv[1]) != 0)
        rc = -1;
    if (rc < 0) {
        fprintf(stderr, "seccomp-gen: cannot write %s: %s\n", argv[1], strerror(errno));
        remove(tmp);
    }
    sbx_seccomp_free(&s);
    return rc < 0 ? 3 : 0;
}
