/* lt_names.c — the name rule (lt_names.h). */
#include "lt_names.h"

#include <stdio.h>
#include <string.h>

int lt_name_valid(const char *s, size_t cap)
{
    if (!s || !*s) return 0;
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_')) return 0;
    return n < cap;
}

int lt_scale_valid(const char *s)
{
    return s && (!strcmp(s, "ci") || !strcmp(s, "short") || !strcmp(s, "full"));
}

void lt_name_quote(const char *s, char *buf, size_t cap)
{
    if (cap < 4) {
        if (cap) buf[0] = '\0';
        return;
    }
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        char piece[8];
        if (*p >= 0x20 && *p < 0x7f) snprintf(piece, sizeof piece, "%c", *p);
        else snprintf(piece, sizeof piece, "\\x%02x", *p);
        size_t k = strlen(piece);
        if (o + k > cap - 4) {   /* keep room for "..." and the NUL */
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, piece, k);
        o += k;
    }
    buf[o] = '\0';
}
