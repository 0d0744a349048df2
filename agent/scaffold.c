/* agent/scaffold: loads a scaffold folder (system prompt, tool declarations, budgets) and names
 * its version by the digest of its files. It runs no tool: agent/tools does. */
#include "agent/scaffold.h"

#include <stdlib.h>
#include <string.h>

#include "agent/image.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/str.h"

#define SCAFFOLD_FILES_MAX 256
#define SCAFFOLD_BYTES_MAX ((uint64_t)16 << 20)
#define PROMPT_MAX         ((size_t)256 << 10)

static const char *const known_tools[] = { "bash", "view",   "create", "str_replace",
                                           "list", "submit", NULL };

int agt_scaffold_dir(const char *given, char **out)
{
    return agt_data_dir(given, "CRUCIBLE_SCAFFOLD", "scaffolds/default", "scaffold", out);
}

void agt_scaffold_free(struct agt_scaffold *sc)
{
    if (!sc)
        return;
    free(sc->dir);
    free(sc->version);
    free(sc->system_prompt);
    json_decref(sc->tools);
    free(sc);
}

static int check_tools(const char *path, json_t *tools)
{
    if (!json_is_array(tools) || json_array_size(tools) == 0)
        return cru_err_set(CRU_EINVAL, "%s: expected a non-empty array of tools", path);
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        char where[32];
        snprintf(where, sizeof(where), "[%zu]", i);
        const char *name = NULL, *desc = NULL;
        json_t *params = NULL;
        static const char *const keys[] = { "name", "description", "parameters", NULL };
        int rc = json_is_object(t) ? 0 : cru_err_set(CRU_EINVAL, "%s: expected an object", where);
        if (rc == 0)
            rc = cru_json_check_keys(t, where, keys);
        if (rc == 0)
            rc = cru_json_get_str(t, where, "name", true, &name);
        if (rc == 0)
            rc = cru_json_get_str(t, where, "description", true, &desc);
        if (rc == 0)
            rc = cru_json_get_object(t, where, "parameters", true, &params);
        bool known = false;
        for (size_t k = 0; rc == 0 && known_tools[k]; k++)
            known = known || strcmp(known_tools[k], name) == 0;
        if (rc == 0 && !known)
            rc = cru_err_set(CRU_EINVAL,
                             "%s.name: unknown tool '%s' (bash, view, create, str_replace, "
                             "list, submit)",
                             where, name);
        if (rc < 0)
            return cru_err_wrap(rc, "%s", path);
    }
    return 0;
}

static int load_config(const char *path, struct agt_scaffold *sc)
{
    json_t *cfg = NULL;
    int rc = cru_json_load_file(&cfg, path, 1 << 20);
    if (rc == CRU_ENOENT)
        return 0; /* every budget has a default */
    static const char *const keys[] = { "max_turns",          "max_completion_tokens",
                                        "command_timeout_ms", "observation_bytes",
                                        "view_lines",         NULL };
    if (rc == 0 && !json_is_object(cfg))
        rc = cru_err_set(CRU_EINVAL, "expected an object");
    if (rc == 0)
        rc = cru_json_check_keys(cfg, "", keys);
    if (rc == 0)
        rc = cru_json_get_u64(cfg, "", "max_turns", false, 1, 100000, &sc->max_turns);
    if (rc == 0)
        rc = cru_json_get_u64(cfg, "", "max_completion_tokens", false, 1, (uint64_t)1 << 32,
                              &sc->max_completion_tokens);
    if (rc == 0)
        rc = cru_json_get_u64(cfg, "", "command_timeout_ms", false, 100, 3600000,
                              &sc->command_timeout_ms);
    if (rc == 0)
        rc = cru_json_get_u64(cfg, "", "observation_bytes", false, 256, (uint64_t)1 << 24,
                              &sc->observation_bytes);
    if (rc == 0)
        rc = cru_json_get_u64(cfg, "", "view_lines", false, 1, 100000, &sc->view_lines);
    json_decref(cfg);
    return rc < 0 ? cru_err_wrap(rc, "%s", path) : 0;
}

int agt_scaffold_load(const char *dir, struct agt_scaffold **out)
{
    struct agt_scaffold *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    sc->max_turns = 50;
    sc->max_completion_tokens = 65536;
    sc->command_timeout_ms = 60000;
    sc->observation_bytes = 16384;
    sc->view_lines = 400;
    char *p = NULL;
    struct cru_buf prompt = CRU_BUF_INIT;
    struct cru_manifest m = { 0 };
    int rc = cru_str_dup(&sc->dir, dir);
    if (rc == 0 && (rc = cru_str_printf(&p, "%s/system.md", dir)) == 0)
        rc = cru_file_read(p, PROMPT_MAX, &prompt);
    if (rc == 0)
        sc->system_prompt = cru_buf_detach(&prompt, NULL);
    free(p);
    p = NULL;
    if (rc == 0 && (rc = cru_str_printf(&p, "%s/tools.json", dir)) == 0 &&
        (rc = cru_json_load_file(&sc->tools, p, 1 << 20)) == 0)
        rc = check_tools(p, sc->tools);
    free(p);
    p = NULL;
    if (rc == 0 && (rc = cru_str_printf(&p, "%s/scaffold.json", dir)) == 0)
        rc = load_config(p, sc);
    free(p);
    if (rc == 0 && (rc = cru_manifest_make(dir, SCAFFOLD_FILES_MAX, SCAFFOLD_BYTES_MAX, &m)) == 0) {
        uint8_t d[32];
        char hex[65];
        cru_manifest_digest(&m, d);
        cru_hex(hex, d, 32);
        rc = cru_str_printf(&sc->version, "sha256:%s", hex);
    }
    cru_manifest_free(&m);
    cru_buf_free(&prompt);
    if (rc < 0) {
        agt_scaffold_free(sc);
        return cru_err_wrap(rc, "scaffold %s", dir);
    }
    *out = sc;
    return 0;
}

int agt_scaffold_has_tool(const struct agt_scaffold *sc, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(sc->tools, i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0)
            return 1;
    }
    return 0;
}
