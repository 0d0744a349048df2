/* xml: a strict parse of untrusted documents, and the few calls into libxml2 its readers make.
 * libxml2 is loaded, and its parser set up, by the first parse (lib/dl.h); every call into it
 * from reward/ goes through here. */
#include "reward/xml.h"

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dl.h"
#include "lib/err.h"

/* The parser context's _private points here once a DOCTYPE was seen. */
static char dtd_seen;

/* The SAX hook for "<!DOCTYPE": called before the internal subset (where entities would be
 * declared) is parsed; stops the parser there, so an entity bomb is never even read. */
static void refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *external_id,
                       const xmlChar *system_id)
{
    (void)name;
    (void)external_id;
    (void)system_id;
    const struct cru_libxml2 *dl;
    xmlParserCtxtPtr p = ctx;
    p->_private = &dtd_seen;
    /* Called from inside a parse, so libxml2 is loaded. */
    if (cru_dl_libxml2(&dl) == 0)
        dl->xmlStopParser(p);
}

int rwd_xml_read(const char *data, size_t len, const char *what, xmlDoc **out)
{
    const struct cru_libxml2 *dl;
    *out = NULL;
    if (len > RWD_XML_MAX_BYTES)
        return cru_err_set(CRU_ELIMIT, "%s: over %zu bytes", what, RWD_XML_MAX_BYTES);
    if (len == 0)
        return cru_err_set(CRU_EPARSE, "%s: empty", what);
    int rc = cru_dl_libxml2(&dl);
    if (rc < 0)
        return cru_err_wrap(rc, "%s", what);
    xmlParserCtxt *ctx = dl->xmlNewParserCtxt();
    if (!ctx || !ctx->sax) {
        dl->xmlFreeParserCtxt(ctx);
        return cru_err_set(CRU_ENOMEM, "%s: out of memory", what);
    }
    ctx->sax->internalSubset = refuse_dtd;
    ctx->_private = NULL;
    xmlDoc *doc = dl->xmlCtxtReadMemory(ctx, data, (int)len, NULL, NULL,
                                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                            XML_PARSE_NOCDATA);
    if (ctx->_private == &dtd_seen || (doc && (doc->intSubset || doc->extSubset))) {
        rc = cru_err_set(CRU_EPARSE, "%s: has a DOCTYPE (a DTD), which is refused", what);
    } else if (!doc) {
        const xmlError *e = dl->xmlCtxtGetLastError(ctx);
        const char *why = e && e->message ? e->message : "malformed XML";
        size_t n = strlen(why);
        while (n && (why[n - 1] == '\n' || why[n - 1] == ' '))
            n--; /* libxml2's messages end in a newline */
        if (e && e->code == XML_ERR_NO_MEMORY)
            rc = cru_err_set(CRU_ENOMEM, "%s: out of memory", what);
        else
            rc = cru_err_set(CRU_EPARSE, "%s: line %d: XML: %.*s", what, e ? e->line : 0, (int)n,
                             why);
    }
    dl->xmlFreeParserCtxt(ctx);
    if (rc < 0) {
        dl->xmlFreeDoc(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

/* The functions below take documents that rwd_xml_read made, so libxml2 is loaded: the
 * lookup of its table cannot fail. */

void rwd_xml_free(xmlDoc *doc)
{
    const struct cru_libxml2 *dl;
    if (doc && cru_dl_libxml2(&dl) == 0)
        dl->xmlFreeDoc(doc);
}

xmlNode *rwd_xml_root(const xmlDoc *doc)
{
    const struct cru_libxml2 *dl;
    if (!doc || cru_dl_libxml2(&dl) < 0)
        return NULL;
    return dl->xmlDocGetRootElement(doc);
}

int rwd_xml_prop(const xmlNode *node, const char *name, char **out)
{
    const struct cru_libxml2 *dl;
    *out = NULL;
    int rc = cru_dl_libxml2(&dl);
    if (rc < 0)
        return rc;
    xmlChar *v = dl->xmlGetProp(node, (const xmlChar *)name);
    if (!v)
        return 0;
    /* A copy in crucible's allocator, so the caller frees it like any other string. */
    *out = strdup((const char *)v);
    (*dl->xmlFree)(v);
    return *out ? 0 : cru_err_set(CRU_ENOMEM, "out of memory");
}
