/* xml: reading untrusted XML with libxml2 (JUnit reports, OOXML parts).
 *
 * libxml2 is loaded and initialised by the first parse, once per process, and never cleaned up
 * (other threads may be parsing); the readers call into it only through these functions.
 * Documents are parsed without network access, entity substitution or DTD loading, and one
 * with a DOCTYPE is refused outright, so an entity bomb is never read. libxml2's own limits
 * stay on (a text node over 10 MB is an error).
 */
#ifndef CRU_REWARD_XML_H
#define CRU_REWARD_XML_H

#include <stddef.h>

#include <libxml/tree.h>

/* The largest document parsed. */
#define RWD_XML_MAX_BYTES ((size_t)64 << 20)

/* Parses LEN bytes of DATA into *out (xmlFreeDoc()). WHAT names the document in errors
 * ("JUnit report", "XLSX part xl/workbook.xml"). Not well-formed or empty: CRU_EPARSE, "WHAT:
 * line N: XML: reason"; a DOCTYPE: CRU_EPARSE, refused as soon as it is seen, before its
 * subset is read; over RWD_XML_MAX_BYTES: CRU_ELIMIT. */
int rwd_xml_read(const char *data, size_t len, const char *what, xmlDoc **out);

/* Frees a document from rwd_xml_read (NULL is fine). */
void rwd_xml_free(xmlDoc *doc);

/* The root element of DOC, or NULL when it has none. Borrowed from DOC. */
xmlNode *rwd_xml_root(const xmlDoc *doc);

/* The value of NODE's attribute NAME in *out (free()), or NULL when NODE has none. Errors:
 * CRU_ENOMEM. */
int rwd_xml_prop(const xmlNode *node, const char *name, char **out);

#endif
