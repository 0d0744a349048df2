#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "strutil.h"

int main(void)
{
    char a[] = "  padded text \t\n";
    assert(strcmp(str_trim(a), "padded text") == 0);
    char b[] = "   ";
    assert(strcmp(str_trim(b), "") == 0);
    assert(str_startswith("prefix-rest", "prefix"));
    assert(!str_startswith("pre", "prefix"));
    assert(str_count_char("a,b,,c", ',') == 3);
    puts("strutil: ok");
    return 0;
}
