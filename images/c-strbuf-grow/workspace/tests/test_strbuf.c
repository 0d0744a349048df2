#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

int main(void)
{
    strbuf sb;
    sb_init(&sb);
    assert(strcmp(sb_str(&sb), "") == 0);
    assert(sb_append(&sb, "hello") == 0);
    assert(sb_append(&sb, ", ") == 0);
    assert(sb_append(&sb, "world") == 0);
    assert(strcmp(sb_str(&sb), "hello, world") == 0);
    assert(sb.len == 12);
    assert(sb_appendf(&sb, " %d+%d=%d", 2, 2, 4) == 0);
    assert(strcmp(sb_str(&sb), "hello, world 2+2=4") == 0);
    sb_reset(&sb);
    assert(sb.len == 0 && strcmp(sb_str(&sb), "") == 0);
    sb_free(&sb);
    puts("all tests passed");
    return 0;
}
