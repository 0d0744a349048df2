/* chat: conversations, the built-in Qwen3 chat template, incremental rendering for
 * token-exact contexts, and the parse of a model's reply into reasoning, content and tool
 * calls.
 *
 * The renderer is the Qwen3 Jinja template (tokenizer_config.json's chat_template) written
 * out in C: its text is identical to what the template gives (tests/tokenizer/chat_*). A
 * context grows by appending: tok_chat_append() says which ids of the context stay and which
 * ids follow them, so that the result equals a full re-render at that position; where the
 * template rewrites history (Qwen3 drops the reasoning of earlier turns once a new user
 * message comes) it says so, with the message and the reason, so that the caller can record
 * a context edit instead of retokenizing silently. docs/tokenizer.md has the rules.
 */
#ifndef CRU_MODEL_CHAT_H
#define CRU_MODEL_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/buf.h"
#include "model/tokenizer.h"

/* Bounds on a conversation. */
#define TOK_CHAT_MSGS_MAX  100000            /* messages */
#define TOK_CHAT_CALLS_MAX 256               /* tool calls in one message */
#define TOK_CHAT_TOOLS_MAX 1024              /* declared tools */
#define TOK_CHAT_TEXT_MAX  ((size_t)1 << 30) /* bytes of one rendering */

enum tok_role {
    TOK_ROLE_SYSTEM,
    TOK_ROLE_USER,
    TOK_ROLE_ASSISTANT,
    TOK_ROLE_TOOL,
};

/* "system", "user", "assistant", "tool". */
const char *tok_role_name(enum tok_role role);

struct tok_call {
    char *name;
    json_t *arguments;    /* an object (a new reference); rendered as the template's tojson */
    char *arguments_text; /* when set instead, rendered as it is (a string in the template) */
};

struct tok_msg {
    enum tok_role role;
    char *content;   /* never NULL once added */
    char *reasoning; /* the assistant's reasoning_content; NULL when not given, and then a
                        "</think>" in the content separates it, as in the template */
    struct tok_call *calls;
    size_t n_calls;
};

/* A conversation: messages, declared tools, and the template's two switches. Everything is
 * owned by it (tok_chat_free()). */
struct tok_chat {
    struct tok_msg *msgs;
    size_t n_msgs, cap;
    json_t *tools;     /* an array of tool declarations, or NULL */
    bool thinking_off; /* enable_thinking=false: the generation prompt closes an empty think */
};

#define TOK_CHAT_INIT                                                                              \
    {                                                                                              \
        NULL, 0, 0, NULL, false                                                                    \
    }

void tok_chat_free(struct tok_chat *c);

/* Appends a message (copies CONTENT and REASONING, which may be NULL). Text is stored as
 * valid UTF-8: invalid bytes become U+FFFD, as tok_encode() would read them. */
int tok_chat_add(struct tok_chat *c, enum tok_role role, const char *content,
                 const char *reasoning);

/* Appends a tool call to the last message (an assistant's). ARGUMENTS is borrowed (its
 * reference count is raised); it must be an object. */
int tok_chat_add_call(struct tok_chat *c, const char *name, json_t *arguments);

/* Sets the declared tools (an array, borrowed: its reference count is raised). */
int tok_chat_set_tools(struct tok_chat *c, json_t *tools);

/* Reads a conversation in the OpenAI chat format: {"messages": [{"role", "content",
 * "reasoning_content", "tool_calls": [{"function": {"name", "arguments"}}]}], "tools": [...],
 * "enable_thinking": false}. Unknown roles and malformed fields are CRU_EINVAL naming the
 * field. C must be empty (TOK_CHAT_INIT). */
int tok_chat_from_json(struct tok_chat *c, const json_t *v);

/* Where each message's text lies in a rendering: [start, end) byte offsets. */
struct tok_span {
    size_t start, end;
};

/* Renders the first N messages of C with the Qwen3 template into OUT (appending), plus the
 * generation prompt when GEN. SPANS, when not NULL, receives N spans. A conversation without
 * messages is CRU_EINVAL (the template reads messages[0]). */
int tok_chat_render(const struct tok_chat *c, size_t n, bool gen, struct cru_buf *out,
                    struct tok_span *spans);

/* Renders and encodes: the ids a full re-render gives. */
int tok_chat_encode(const struct tok *t, const struct tok_chat *c, size_t n, bool gen,
                    struct tok_ids *out);

/* The result of tok_chat_append(). */
struct tok_append {
    size_t keep;        /* how many ids of the context stay (all of them unless EDIT) */
    struct tok_ids ids; /* the ids that follow them */
    bool edit;          /* the context must be cut to KEEP ids: record a context edit */
    size_t edit_msg;    /* when EDIT: the first message whose rendering differs */
    char reason[256];   /* when EDIT: why, for the record */
};

void tok_append_free(struct tok_append *a);

/* Brings a context up to date with C (all its messages, plus the generation prompt when GEN).
 * CTX[0..N_CTX) are the ids the context holds: what earlier renders and the model's samples
 * put there (the sampled ids are never retokenized). The context's text (its ids decoded) is
 * compared with the full rendering: where it is a prefix ending at an added-token boundary,
 * OUT keeps all N_CTX ids and OUT->ids are the rest of the rendering (append-only). Otherwise
 * OUT->edit is set: OUT->keep is the longest prefix of the context that still agrees and ends
 * at such a boundary, and OUT->ids the rendering from there. In both cases CTX[0..keep)
 * followed by OUT->ids is the context the template describes, and where CTX was itself
 * encoded from a rendering, it equals tok_chat_encode() of the whole. */
int tok_chat_append(const struct tok *t, const struct tok_chat *c, const int32_t *ctx, size_t n_ctx,
                    bool gen, struct tok_append *out);

/* A model's reply, parsed. */
struct tok_reply {
    char *reasoning; /* the text of <think>...</think>, or NULL when there was none */
    char *content;   /* the rest, without the tool calls */
    struct tok_call *calls;
    size_t n_calls;
    char *error; /* NULL when every tool call is well formed; else one line per problem,
                    written to be shown to the model as the observation */
};

void tok_reply_free(struct tok_reply *r);

/* Parses the text of a reply (its sampled ids decoded; a final <|im_end|> or <|endoftext|> is
 * dropped). Each <tool_call>...</tool_call> block must hold a JSON object with exactly "name"
 * (a tool declared in TOOLS, an array or NULL) and "arguments" (an object with the tool's
 * required parameters, of their declared JSON types, and no others when the schema forbids
 * them). Problems do not fail the call: the well-formed calls are returned in OUT->calls and
 * each problem is described in OUT->error. Fails only for lack of memory or a bound. */
int tok_chat_parse(const char *text, size_t len, const json_t *tools, struct tok_reply *out);

/* Adds a parsed reply to C as an assistant message (its reasoning, content and calls). */
int tok_chat_add_reply(struct tok_chat *c, const struct tok_reply *r);

/* The chat templates crucible renders itself. */
enum tok_template {
    TOK_TEMPLATE_QWEN3,
};

/* Reads DIR/tokenizer_config.json and says which built-in renderer its chat_template is.
 * A template crucible does not know is CRU_EUNSUPPORTED (its SHA-256 is in the message). */
int tok_template_detect(const char *dir, enum tok_template *out);

#endif
