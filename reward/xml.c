/* xml: libxml2 set up once, and a strict parse of untrusted documents. */
#include "reward/xml.h"

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <pthread.h>
#include <string.h>

#include "lib/err.h"

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init_once(void)
{
    xmlInitParser();
}

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
    xmlParserCtxtPtr p = ctx;
    p->_private = &dtd_seen;
    xmlStopParser(p);
}

int rwd_xml_read(const char *data, size_t len, const char *what, xmlDoc **out)
{
    *out = NULL;
    pthread_once(&xml_once, xml_init_once);
    if (len > RWD_XML_MAX_BYTES)
        return cru_err_set(CRU_ELIMIT, "%s: over %zu bytes", what, RWD_XML_MAX_BYTES);
    if (len == 0)
        return cru_err_set(CRU_EPARSE, "%s: empty", what);
    xmlParserCtxt *ctx = xmlNewParserCtxt();
    if (!ctx || !ctx->sax) {
        xmlFreeParserCtxt(ctx);
        return cru_err_set(CRU_ENOMEM, "%s: out of memory", what);
    }
    ctx->sax->internalSubset = refuse_dtd;
    ctx->_private = NULL;
    xmlDoc *doc = xmlCtxtReadMemory(ctx, data, (int)len, NULL, NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                        XML_PARSE_NOCDATA);
    int rc = 0;
    if (ctx->_private == &dtd_seen || (doc && (doc->intSubset || doc->extSubset))) {
        rc = cru_err_set(CRU_EPARSE, "%s: has a DOCTYPE (a DTD), which is refused", what);
    } else if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(ctx);
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
    xmlFreeParserCtxt(ctx);
    if (rc < 0) {
        xmlFreeDoc(doc);
        return rc;
    }
    *out = doc;
    return 0;
}
