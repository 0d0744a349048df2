#ifndef STRUTIL_H
#define STRUTIL_H

#include <stddef.h>

/* Remove leading and trailing ASCII whitespace in place; returns s. */
char *str_trim(char *s);
/* 1 if s starts with prefix, else 0. */
int str_startswith(const char *s, const char *prefix);
/* Number of occurrences of c in s. */
size_t str_count_char(const char *s, char c);

#endif
