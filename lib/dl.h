/* dl: the libraries crucible loads when a feature first needs them instead of at start-up.
 *
 * libgit2 (git workspaces), libarchive (archives, XLSX and DOCX), libxml2 (JUnit reports,
 * OOXML parts) and libmicrohttpd (the gateway's HTTP server) each bring a chain of further
 * libraries (Kerberos, SSH and TLS for libgit2; ICU and the C++ runtime through libxml2; a
 * dozen compressors through libarchive; GnuTLS and its own through libmicrohttpd) that every
 * run of the binary would otherwise map and relocate, `crucible version` and `crucible exec`
 * included. Here each is opened by its soname on first use, once per process, and the
 * functions crucible calls are looked up into a table whose pointers are typed from the
 * library's own header, so the compiler checks every call as before. Callers call through
 * the table: `dl->git_repository_free(repo)`.
 *
 * A library that cannot be loaded, or that lacks one of the functions, is an error
 * (CRU_EUNSUPPORTED) naming the library, its soname, the Debian package that ships it and the
 * feature that needed it, and it is repeated to every later caller. Nothing is unloaded.
 */
#ifndef CRU_LIB_DL_H
#define CRU_LIB_DL_H

#include <stddef.h>

#include <archive.h>
#include <archive_entry.h>
#include <git2.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <microhttpd.h>

/* The functions of each library that crucible calls, one X(name) each. A new call into one
 * of these libraries starts with a line here. */
#define CRU_LIBGIT2_FUNCTIONS(X)                                                                   \
    X(git_libgit2_init)                                                                            \
    X(git_error_last)                                                                              \
    X(git_checkout_options_init)                                                                   \
    X(git_checkout_tree)                                                                           \
    X(git_commit_free)                                                                             \
    X(git_commit_lookup)                                                                           \
    X(git_diff_free)                                                                               \
    X(git_diff_get_delta)                                                                          \
    X(git_diff_num_deltas)                                                                         \
    X(git_diff_options_init)                                                                       \
    X(git_diff_print)                                                                              \
    X(git_diff_tree_to_workdir)                                                                    \
    X(git_object_free)                                                                             \
    X(git_object_id)                                                                               \
    X(git_object_peel)                                                                             \
    X(git_odb_free)                                                                                \
    X(git_odb_refresh)                                                                             \
    X(git_odb_write_pack)                                                                          \
    X(git_oid_cpy)                                                                                 \
    X(git_oid_fromstr)                                                                             \
    X(git_packbuilder_free)                                                                        \
    X(git_packbuilder_insert_walk)                                                                 \
    X(git_packbuilder_new)                                                                         \
    X(git_packbuilder_set_threads)                                                                 \
    X(git_packbuilder_write)                                                                       \
    X(git_reference_create)                                                                        \
    X(git_reference_free)                                                                          \
    X(git_repository_free)                                                                         \
    X(git_repository_init)                                                                         \
    X(git_repository_odb)                                                                          \
    X(git_repository_open_bare)                                                                    \
    X(git_repository_open_ext)                                                                     \
    X(git_repository_path)                                                                         \
    X(git_repository_set_head_detached)                                                            \
    X(git_repository_set_workdir)                                                                  \
    X(git_revparse_single)                                                                         \
    X(git_revwalk_free)                                                                            \
    X(git_revwalk_new)                                                                             \
    X(git_revwalk_push)                                                                            \
    X(git_tree_free)

#define CRU_LIBARCHIVE_FUNCTIONS(X)                                                                \
    X(archive_errno)                                                                               \
    X(archive_error_string)                                                                        \
    X(archive_entry_acl_clear)                                                                     \
    X(archive_entry_filetype)                                                                      \
    X(archive_entry_hardlink)                                                                      \
    X(archive_entry_mode)                                                                          \
    X(archive_entry_pathname)                                                                      \
    X(archive_entry_pathname_utf8)                                                                 \
    X(archive_entry_perm)                                                                          \
    X(archive_entry_set_fflags)                                                                    \
    X(archive_entry_set_hardlink)                                                                  \
    X(archive_entry_set_pathname)                                                                  \
    X(archive_entry_set_perm)                                                                      \
    X(archive_entry_size)                                                                          \
    X(archive_entry_size_is_set)                                                                   \
    X(archive_entry_symlink)                                                                       \
    X(archive_entry_unset_size)                                                                    \
    X(archive_entry_xattr_clear)                                                                   \
    X(archive_read_data)                                                                           \
    X(archive_read_data_block)                                                                     \
    X(archive_read_free)                                                                           \
    X(archive_read_new)                                                                            \
    X(archive_read_next_header)                                                                    \
    X(archive_read_open_fd)                                                                        \
    X(archive_read_open_memory)                                                                    \
    X(archive_read_support_filter_bzip2)                                                           \
    X(archive_read_support_filter_compress)                                                        \
    X(archive_read_support_filter_gzip)                                                            \
    X(archive_read_support_filter_lzma)                                                            \
    X(archive_read_support_filter_xz)                                                              \
    X(archive_read_support_filter_zstd)                                                            \
    X(archive_read_support_format_7zip)                                                            \
    X(archive_read_support_format_ar)                                                              \
    X(archive_read_support_format_cpio)                                                            \
    X(archive_read_support_format_empty)                                                           \
    X(archive_read_support_format_iso9660)                                                         \
    X(archive_read_support_format_tar)                                                             \
    X(archive_read_support_format_xar)                                                             \
    X(archive_read_support_format_zip)                                                             \
    X(archive_read_support_format_zip_seekable)                                                    \
    X(archive_write_close)                                                                         \
    X(archive_write_data_block)                                                                    \
    X(archive_write_disk_new)                                                                      \
    X(archive_write_disk_set_options)                                                              \
    X(archive_write_finish_entry)                                                                  \
    X(archive_write_free)                                                                          \
    X(archive_write_header)

/* xmlFree is a variable that holds libxml2's deallocator, so its entry points at the
 * variable: `(*dl->xmlFree)(p)`. */
#define CRU_LIBXML2_FUNCTIONS(X)                                                                   \
    X(xmlInitParser)                                                                               \
    X(xmlCtxtGetLastError)                                                                         \
    X(xmlCtxtReadMemory)                                                                           \
    X(xmlDocGetRootElement)                                                                        \
    X(xmlFree)                                                                                     \
    X(xmlFreeDoc)                                                                                  \
    X(xmlFreeParserCtxt)                                                                           \
    X(xmlGetProp)                                                                                  \
    X(xmlNewParserCtxt)                                                                            \
    X(xmlStopParser)

#define CRU_LIBMHD_FUNCTIONS(X)                                                                    \
    X(MHD_add_response_header)                                                                     \
    X(MHD_create_response_from_buffer)                                                             \
    X(MHD_create_response_from_callback)                                                           \
    X(MHD_destroy_response)                                                                        \
    X(MHD_get_connection_info)                                                                     \
    X(MHD_get_daemon_info)                                                                         \
    X(MHD_lookup_connection_value)                                                                 \
    X(MHD_queue_response)                                                                          \
    X(MHD_quiesce_daemon)                                                                          \
    X(MHD_start_daemon)                                                                            \
    X(MHD_stop_daemon)

#define CRU_DL_POINTER(name) __typeof__(name) *name;

struct cru_libgit2 {
    CRU_LIBGIT2_FUNCTIONS(CRU_DL_POINTER)
};

struct cru_libarchive {
    CRU_LIBARCHIVE_FUNCTIONS(CRU_DL_POINTER)
};

struct cru_libxml2 {
    CRU_LIBXML2_FUNCTIONS(CRU_DL_POINTER)
};

struct cru_libmhd {
    CRU_LIBMHD_FUNCTIONS(CRU_DL_POINTER)
};

/* Each returns the library's table in *out, loading the library on the first call (from any
 * thread; later calls return at once). libgit2 comes initialised (git_libgit2_init) and
 * libxml2 with its parser initialised (xmlInitParser), for the life of the process. A
 * library that cannot be loaded: CRU_EUNSUPPORTED, "FEATURE needs LIB (SONAME, Debian
 * package PKG), which cannot be loaded: WHY". The table is borrowed and never freed. */
int cru_dl_libgit2(const struct cru_libgit2 **out);
int cru_dl_libarchive(const struct cru_libarchive **out);
int cru_dl_libxml2(const struct cru_libxml2 **out);
int cru_dl_libmhd(const struct cru_libmhd **out);

/* What cru_dl_open loads: the library, where it is found, and what needs it. */
struct cru_dl_spec {
    const char *name;    /* "libgit2" */
    const char *soname;  /* "libgit2.so.1.5": the ABI built against */
    const char *package; /* the Debian package that ships the soname */
    const char *feature; /* what needs it, for the error: "a git workspace" */
    const char *const *symbols;
    size_t n_symbols;
};

/* Opens SPEC's library and stores the address of each of its symbols in SLOTS[i] (n_symbols
 * of them). The library stays loaded whatever happens. Errors: CRU_EUNSUPPORTED as above,
 * naming the first symbol missing if the library loads but lacks one. The building block of
 * the loaders above, and testable on its own. */
int cru_dl_open(const struct cru_dl_spec *spec, void **slots);

#endif
