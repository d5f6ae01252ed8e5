/* SPDX-License-Identifier: MIT */
/*
 * SCMI reset domain management (DEN0056 §4.8, version 3.0, as Linux's
 * arm_scmi reset.c and reset-scmi.c use it): each domain a reset pin of
 * a peripheral wired to one of dom0's GPIO lines, from resets=. The line
 * is requested as an output at create, deasserted, and held until
 * destroy; the kernel inverts an active-low line's level
 * (GPIO_V2_LINE_FLAG_ACTIVE_LOW), so a domain's value is 1 when asserted.
 * Resets are synchronous: no asynchronous resets, no notifications.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/gpio-cdev.h"
#include "scmi.h"

#define SCMI_PROTO_RESET 0x16
#define SCMI_RESET_VERSION 0x30000
#define SCMI_RESET_DOMAIN_ATTRIBUTES 0x3
#define SCMI_RESET_RESET 0x4
/* §4.8.2.5: RESET's flags. With bit 0, an autonomous reset, bit 1 is
 * ignored; bit 2 asks for an asynchronous one. */
#define SCMI_RESET_AUTONOMOUS 0x1
#define SCMI_RESET_EXPLICIT_ASSERT 0x2
#define SCMI_RESET_ASYNC 0x4
/* reset_state: bit 31 clear is an architectural reset, 0 the cold reset,
 * the one a line can do (Linux asks for it alone). */
#define SCMI_RESET_ARCH_COLD 0
/* An autonomous reset holds the line asserted this long, on xvdm's loop:
 * long enough for the usual reset pins (their datasheets ask for a few
 * µs), short enough that a guest resetting over and over holds its own
 * device model 100 µs a command. A peripheral needing a longer pulse is
 * reset explicitly: its driver asserts, waits and deasserts. */
#define SCMI_RESET_HOLD_US 100
#define SCMI_RESET_ACTIVE_LOW "active-low"

/* Domain id's line to its asserted (1) or deasserted (0) level; a line
 * when it fails (one until it works again). */
static int scmi_reset_drive(struct scmi *s, uint32_t id, int asserted)
{
    struct scmi_reset_domain *r = &s->resets[id];
    int ret = gpio_cdev_set(r->fd, asserted);

    if (ret && !r->failing)
        xvdm_dev_log(s->dev, XVDM_LOG_WARN,
                     "SCMI reset domain %u (%s): driving its line: %s: "
                     "HARDWARE_ERROR until it works",
                     id, r->name, strerror(-ret));
    r->failing = ret != 0;
    return ret;
}

/* The line of chip chip's offset line, requested as an output at the
 * deasserted level; NULL, or why it cannot be had (in buf, len bytes,
 * when the chip's). */
static const char *scmi_reset_request(struct scmi *s,
                                      struct scmi_reset_domain *r,
                                      const char *chip, const char *line,
                                      bool active_low, char *buf, size_t len)
{
    struct gpio_v2_line_config c;
    char consumer[GPIO_MAX_NAME_SIZE], *end;
    const char *why;
    unsigned long offset;
    unsigned lines;
    int fd;

    errno = 0;
    offset = strtoul(line, &end, 10);
    if (errno || end == line || *end || *line == '-')
        return "has a line that is not a decimal number";
    fd = gpio_cdev_open_chip(chip, &lines, &why);
    if (fd < 0) {
        snprintf(buf, len, "has a chip that %s: %s", why, strerror(-fd));
        return buf;
    }
    snprintf(consumer, sizeof(consumer), "xvdm dom%u %s",
             xvdm_dev_domid(s->dev), r->name);
    gpio_cdev_config(&c,
                     GPIO_V2_LINE_FLAG_OUTPUT |
                         (active_low ? GPIO_V2_LINE_FLAG_ACTIVE_LOW : 0),
                     0);
    /* The request outlives the chip's fd, as in the kernel. */
    r->fd = offset < lines
                ? gpio_cdev_request(fd, (unsigned)offset, consumer, &c)
                : -ERANGE;
    close(fd);
    if (r->fd == -ERANGE)
        return "has a line past the chip's last";
    if (r->fd == -EBUSY)
        return "has a line that is in use in dom0";
    if (r->fd < 0) {
        snprintf(buf, len, "has a line that cannot be requested as an "
                 "output: %s", strerror(-r->fd));
        return buf;
    }
    return NULL;
}

/* One NAME:CHIP:LINE[:active-low] item into the next domain; a line
 * naming what is wrong with it. */
static int scmi_reset_add(struct scmi *s, const char *key, const char *spec,
                          char **field, bool active_low)
{
    struct scmi_reset_domain *r = &s->resets[s->nr_resets];
    const char *why = NULL;
    char buf[128];

    if (s->nr_resets == SCMI_RESETS_MAX) {
        why = "is one reset domain more than the 16 there may be";
    } else if (!scmi_name_ok(field[0])) {
        why = "has a name that is not 1 to 15 letters, digits, '-', '_' "
              "or '.'";
    } else {
        strcpy(r->name, field[0]);
        why = scmi_reset_request(s, r, field[1], field[2], active_low, buf,
                                 sizeof(buf));
    }
    /* Counted even when refused: scmi_reset_close() ends its request. */
    if (s->nr_resets < SCMI_RESETS_MAX)
        s->nr_resets++;
    if (why) {
        xvdm_dev_log(s->dev, XVDM_LOG_ERROR, "%s=%s: '%s:%s:%s%s' %s", key,
                     spec, field[0], field[1], field[2],
                     active_low ? ":" SCMI_RESET_ACTIVE_LOW : "", why);
        return -EINVAL;
    }
    return 0;
}

int scmi_reset_parse(struct scmi *s, const char *spec)
{
    return scmi_parse_items(s, "resets", spec, "NAME:CHIP:LINE",
                            SCMI_RESET_ACTIVE_LOW, scmi_reset_add);
}

void scmi_reset_deassert_all(struct scmi *s)
{
    for (uint32_t i = 0; i < s->nr_resets; i++)
        if (s->resets[i].fd >= 0)
            scmi_reset_drive(s, i, 0);
}

void scmi_reset_close(struct scmi *s)
{
    scmi_reset_deassert_all(s);
    for (unsigned i = 0; i < s->nr_resets; i++)
        if (s->resets[i].fd >= 0)
            close(s->resets[i].fd);
}

/* §4.8.2.2: domains in bits 15:0. */
static int32_t scmi_reset_attributes(struct scmi *s, struct scmi_cmd *cmd)
{
    return scmi_ret_u32(cmd, s->nr_resets) ? SCMI_SUCCESS : SCMI_COMMS_ERROR;
}

static bool scmi_reset_found(struct scmi *s, const char *message, uint32_t id)
{
    if (id < s->nr_resets)
        return true;
    xvdm_dev_guest_error(s->dev, "SCMI %s of reset domain %u, of %u: NOT_FOUND",
                         message, id, s->nr_resets);
    return false;
}

/* §4.8.2.4: attributes 0 (no asynchronous reset, no notifications, no
 * extended name), the latency of an autonomous reset in µs, the name. */
static int32_t scmi_reset_domain_attributes(struct scmi *s,
                                            struct scmi_cmd *cmd)
{
    uint32_t id = scmi_param_u32(cmd, 0);
    char name[SCMI_NAME_LEN] = {0};

    if (!scmi_reset_found(s, "RESET_DOMAIN_ATTRIBUTES", id))
        return SCMI_NOT_FOUND;
    strcpy(name, s->resets[id].name);
    return scmi_ret_u32(cmd, 0) && scmi_ret_u32(cmd, SCMI_RESET_HOLD_US) &&
                   scmi_ret(cmd, name, SCMI_NAME_LEN)
               ? SCMI_SUCCESS
               : SCMI_COMMS_ERROR;
}

/* Reserved flags, an asynchronous request that is no autonomous reset,
 * a reset state other than the cold reset: INVALID_PARAMETERS; an
 * asynchronous autonomous reset, which no domain supports: NOT_SUPPORTED
 * (as Arm's SCP firmware answers). A line for each. */
static int32_t scmi_reset_check(struct scmi *s, uint32_t flags, uint32_t state)
{
    int32_t status = SCMI_INVALID_PARAMETERS;

    if (!(flags & ~(SCMI_RESET_AUTONOMOUS | SCMI_RESET_EXPLICIT_ASSERT |
                    SCMI_RESET_ASYNC)) &&
        state == SCMI_RESET_ARCH_COLD) {
        if (!(flags & SCMI_RESET_ASYNC))
            return SCMI_SUCCESS;
        if (flags & SCMI_RESET_AUTONOMOUS)
            status = SCMI_NOT_SUPPORTED;
    }
    xvdm_dev_guest_error(s->dev,
                         "SCMI RESET with flags 0x%08x and reset state "
                         "0x%08x: %s",
                         flags, state,
                         status == SCMI_NOT_SUPPORTED ? "NOT_SUPPORTED"
                                                      : "INVALID_PARAMETERS");
    return status;
}

/* An autonomous reset: asserted, held, deasserted. */
static int scmi_reset_pulse(struct scmi *s, uint32_t id)
{
    struct timespec hold = {0, SCMI_RESET_HOLD_US * 1000};
    int ret = scmi_reset_drive(s, id, 1);

    if (ret)
        return ret;
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &hold, &hold) == EINTR)
        ;
    return scmi_reset_drive(s, id, 0);
}

/* §4.8.2.5: domain_id, flags, reset_state. */
static int32_t scmi_reset_reset(struct scmi *s, struct scmi_cmd *cmd)
{
    uint32_t id = scmi_param_u32(cmd, 0), flags = scmi_param_u32(cmd, 1);
    int32_t status;
    int ret;

    if (!scmi_reset_found(s, "RESET", id))
        return SCMI_NOT_FOUND;
    status = scmi_reset_check(s, flags, scmi_param_u32(cmd, 2));
    if (status != SCMI_SUCCESS)
        return status;
    if (flags & SCMI_RESET_AUTONOMOUS)
        ret = scmi_reset_pulse(s, id);
    else
        ret = scmi_reset_drive(s, id, !!(flags & SCMI_RESET_EXPLICIT_ASSERT));
    return ret ? SCMI_HARDWARE_ERROR : SCMI_SUCCESS;
}

/* RESET_NOTIFY is not here: NOT_SUPPORTED, and NOT_FOUND to
 * PROTOCOL_MESSAGE_ATTRIBUTES, as is RESET_DOMAIN_NAME_GET (no extended
 * names: they fit in 16 bytes). */
static const struct scmi_message scmi_reset_messages[] = {
    {SCMI_PROTOCOL_VERSION, 0, scmi_version},
    {SCMI_PROTOCOL_ATTRIBUTES, 0, scmi_reset_attributes},
    {SCMI_PROTOCOL_MESSAGE_ATTRIBUTES, 4, scmi_message_attributes},
    {SCMI_RESET_DOMAIN_ATTRIBUTES, 4, scmi_reset_domain_attributes},
    {SCMI_RESET_RESET, 12, scmi_reset_reset},
};

const struct scmi_protocol scmi_reset_protocol = {
    .id = SCMI_PROTO_RESET,
    .version = SCMI_RESET_VERSION,
    .messages = scmi_reset_messages,
    .nr_messages = sizeof(scmi_reset_messages) / sizeof(scmi_reset_messages[0]),
};
