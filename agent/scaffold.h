/* scaffold: the built-in agent's editable parts, loaded from a folder.
 *
 * A scaffold folder (scaffolds/default/ is the bundled one) holds plain files that
 * self-evolution may edit and that the episode header records by digest:
 *
 *   system.md      the system prompt
 *   tools.json     the tools offered to the model: [{name, description, parameters}], a subset
 *                  of the built-in tools (bash, view, create, str_replace, list, submit)
 *   scaffold.json  budgets and observation limits (all optional, defaults below)
 *
 * The version is "sha256:" and the digest of the folder's manifest (every file's path, size
 * and content), so any edit makes another version.
 */
#ifndef CRU_AGENT_SCAFFOLD_H
#define CRU_AGENT_SCAFFOLD_H

#include <stdint.h>

#include <jansson.h>

struct agt_scaffold {
    char *dir;
    char *version; /* "sha256:HEX" */
    char *system_prompt;
    json_t *tools;                  /* the tools.json array */
    uint64_t max_turns;             /* model turns (tool rounds) per episode; default 50 */
    uint64_t max_completion_tokens; /* sampled tokens per episode; default 65536 */
    uint64_t command_timeout_ms;    /* bash's default timeout; default 60000 */
    uint64_t observation_bytes;     /* the most bytes of one tool result; default 16384 */
    uint64_t view_lines;            /* the most lines `view` shows at once; default 400 */
};

/* The scaffold folder: GIVEN, else $CRUCIBLE_SCAFFOLD, else scaffolds/default beside the
 * executable or in the current folder. */
int agt_scaffold_dir(const char *given, char **out);

/* Loads and validates DIR; problems are CRU_EINVAL naming the file and field. */
int agt_scaffold_load(const char *dir, struct agt_scaffold **out);
void agt_scaffold_free(struct agt_scaffold *sc);

/* Whether the scaffold offers tool NAME. */
int agt_scaffold_has_tool(const struct agt_scaffold *sc, const char *name);

#endif
