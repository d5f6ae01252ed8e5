/* SPDX-License-Identifier: MIT */
/* Options that list numbers and ranges (see range-list.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "range-list.h"

/* One item: "A" or "A-B", A <= B. 0, or -EINVAL. */
static int range_parse(const char *item, int base, unsigned long *first,
                       unsigned long *last)
{
    char *end;
    unsigned long a, b;

    errno = 0;
    a = strtoul(item, &end, base);
    b = a;
    if (!errno && end != item && *end == '-') {
        const char *next = end + 1;

        b = strtoul(next, &end, base);
        if (end == next || *next == '-' || *next == '+')
            return -EINVAL;
    }
    if (errno || end == item || *end || item[0] == '-' || item[0] == '+' ||
        a > b)
        return -EINVAL;
    *first = a;
    *last = b;
    return 0;
}

static bool range_list_has_empty(const char *list)
{
    return !*list || list[0] == ':' || list[strlen(list) - 1] == ':' ||
           strstr(list, "::");
}

int range_list_walk(struct xvdm_dev *dev, const char *key, const char *list,
                    int base, range_list_fn *fn, void *arg)
{
    char *copy, *item, *save = NULL;
    int ret = 0;

    if (range_list_has_empty(list)) {
        xvdm_dev_log(dev, XVDM_LOG_ERROR,
                     "%s=%s: an empty item (':' separates them)", key, list);
        return -EINVAL;
    }
    copy = strdup(list);
    if (!copy)
        return -ENOMEM;
    for (item = strtok_r(copy, ":", &save); item && !ret;
         item = strtok_r(NULL, ":", &save)) {
        unsigned long first, last;

        ret = range_parse(item, base, &first, &last);
        if (ret)
            xvdm_dev_log(dev, XVDM_LOG_ERROR,
                         "%s=%s: '%s' is not a number or a range A-B of "
                         "them (%s; ':' separates them)",
                         key, list, item, base == 16 ? "hex" : "decimal");
        else
            ret = fn(arg, first, last, item);
    }
    free(copy);
    return ret;
}
