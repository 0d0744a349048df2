#!/bin/sh
# Prints the C definitions that lib/dl.c needs for the libraries crucible loads on first use
# (libgit2, libarchive, libxml2, libmicrohttpd): for each, the soname of the library built against, read from
# its development link, and the Debian package that ships that soname, which the error names
# when the library is missing at run time. The Makefile adds them to the compiler flags.
# Fails, saying why, if a development link is missing or has no soname.
set -eu

# MACRO:PKG-CONFIG NAME:FILE, for each library.
for spec in LIBGIT2:libgit2:libgit2 LIBARCHIVE:libarchive:libarchive LIBXML2:libxml-2.0:libxml2 \
	LIBMHD:libmicrohttpd:libmicrohttpd; do
	macro=${spec%%:*}
	rest=${spec#*:}
	pc=${rest%%:*}
	file=${rest#*:}
	dir=$(pkg-config --variable=libdir "$pc")
	soname=$(objdump -p "$dir/$file.so" 2>/dev/null | sed -n 's/^ *SONAME *//p')
	if [ -z "$soname" ]; then
		echo "deps/dl-defs.sh: no soname for $dir/$file.so (run 'make setup')" >&2
		exit 1
	fi
	package=$(dpkg-query -S "*/$soname" 2>/dev/null | sed -n '1s/:.*//p')
	printf " -DCRU_%s_SONAME='\"%s\"' -DCRU_%s_PACKAGE='\"%s\"'" "$macro" "$soname" "$macro" "$package"
done
echo
