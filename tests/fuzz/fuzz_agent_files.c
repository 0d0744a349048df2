/* fuzz/agent_files: the files an agent run reads from users, on arbitrary bytes: a scripted
 * agent's list of tool calls (scripted:FILE) and a scaffold's tools.json and scaffold.json.
 *
 * The first byte picks which file the rest is. Loading must succeed or fail with a message,
 * never crash; a script that loads has only objects with a "tool" string.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/runner.h"
#include "agent/scaffold.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "tests/fuzz/fuzz.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_agent_files: %s (%s)\n", what, cru_err_msg());
    abort();
}

static void check_failure(int rc)
{
    if (rc < 0 && (cru_err_code() != rc || cru_err_msg()[0] == '\0'))
        fail("a failure without a matching message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int fd = memfd_create("fuzz", 0);
    if (fd < 0 || cru_write_all(fd, data + 1, size - 1) < 0)
        fail("memfd");
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    cru_err_clear();
    if (data[0] % 2 == 0) {
        char spec[80];
        snprintf(spec, sizeof(spec), "scripted:%s", path);
        struct agt_agent *a = NULL;
        int rc = agt_agent_load(spec, &a);
        check_failure(rc);
        if (rc == 0 && agt_agent_kind(a) != AGT_AGENT_SCRIPTED)
            fail("a script that loads as another agent");
        agt_agent_free(a);
    } else {
        /* A scaffold folder whose tools.json or scaffold.json is the input. */
        char dir[] = "/tmp/crucible-fuzz-scaffold-XXXXXX", p[128];
        if (!mkdtemp(dir))
            fail("mkdtemp");
        static const char tools[] =
            "[{\"name\": \"bash\", \"description\": \"x\", \"parameters\": {}}]";
        bool is_tools = data[0] % 4 == 1;
        snprintf(p, sizeof(p), "%s/system.md", dir);
        cru_file_write_atomic(p, "prompt", 6, 0644);
        snprintf(p, sizeof(p), "%s/tools.json", dir);
        if (is_tools)
            cru_file_write_atomic(p, data + 1, size - 1, 0644);
        else
            cru_file_write_atomic(p, tools, sizeof(tools) - 1, 0644);
        snprintf(p, sizeof(p), "%s/scaffold.json", dir);
        if (!is_tools)
            cru_file_write_atomic(p, data + 1, size - 1, 0644);
        struct agt_scaffold *sc = NULL;
        int rc = agt_scaffold_load(dir, &sc);
        check_failure(rc);
        if (rc == 0 && (!sc->version || sc->max_turns == 0 || !sc->tools))
            fail("a scaffold that loads without its version, budgets or tools");
        agt_scaffold_free(sc);
        cru_remove_tree(dir);
    }
    close(fd);
    return 0;
}
