/* SPDX-License-Identifier: MIT */
/*
 * SCMI sensor management (DEN0056 §4.7, version 2.0): sensors of fixed
 * values from sensors=, and dom0's hwmon files from hwmon=, read when
 * the guest asks; described and read synchronously. Values are in
 * hwmon's units (millidegrees, mV, mA, µW, µJ), which the descriptions'
 * scales say.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scmi.h"

#define SCMI_PROTO_SENSOR 0x15
#define SCMI_SENSOR_VERSION 0x20000
#define SCMI_SENSOR_DESCRIPTION_GET 0x3
#define SCMI_SENSOR_READING_GET 0x6
/* §4.7.2.7: flags bit 0 asks for an asynchronous reading. */
#define SCMI_SENSOR_READ_ASYNC 0x1
/* §4.7.2.5: a description is id, attributes low and high, name. */
#define SCMI_SENSOR_DESC_LEN (12 + SCMI_NAME_LEN)
/* attributes_high: the unit multiplier, a signed power of ten, in bits
 * 15:11. */
#define SCMI_SENSOR_SCALE(exp) ((uint32_t)((exp)&0x1f) << 11)
/* A hwmon file's text: a decimal integer and a newline. */
#define SCMI_HWMON_TEXT_MAX 32

/* §4.7.2.5's units, by the names the options take, and the power of ten
 * of hwmon's unit for each (Documentation/hwmon/sysfs-interface.rst). */
static const struct {
    const char *name;
    uint8_t unit;
    int8_t scale;
} scmi_sensor_types[] = {
    {"temp", 2, -3},    /* degrees Celsius, millidegrees */
    {"voltage", 5, -3}, /* Volts, mV */
    {"current", 6, -3}, /* Amps, mA */
    {"power", 7, -6},   /* Watts, µW */
    {"energy", 8, -6},  /* Joules, µJ */
};

static bool scmi_sensor_name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len >= SCMI_NAME_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("-_.", name[i]))
            return false;
    return true;
}

static int scmi_sensor_type(const char *name, struct scmi_sensor *sn)
{
    for (size_t i = 0;
         i < sizeof(scmi_sensor_types) / sizeof(scmi_sensor_types[0]); i++) {
        if (!strcmp(name, scmi_sensor_types[i].name)) {
            sn->type = scmi_sensor_types[i].unit;
            sn->scale = scmi_sensor_types[i].scale;
            return 0;
        }
    }
    return -EINVAL;
}

/* A decimal integer, with a newline after it where it is a hwmon file's
 * text. */
static int scmi_sensor_value(const char *text, bool newline, int64_t *value)
{
    char *end;

    errno = 0;
    *value = strtoll(text, &end, 10);
    if (newline && *end == '\n')
        end++;
    return errno || end == text || *end ? -EINVAL : 0;
}

/* A hwmon file's value now, read from its start. */
static int scmi_sensor_read_hwmon(const struct scmi_sensor *sn, int64_t *value)
{
    char text[SCMI_HWMON_TEXT_MAX];
    ssize_t n = pread(sn->fd, text, sizeof(text) - 1, 0);

    if (n < 0)
        return -errno;
    text[n] = '\0';
    return scmi_sensor_value(text, true, value);
}

/* hwmon='s third field: open the file, kept open for the guest's
 * readings (they work after --chroot and the dropped privileges), and
 * check it reads as a value. */
static const char *scmi_sensor_open(struct scmi_sensor *sn, const char *path)
{
    int64_t value;

    sn->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (sn->fd < 0)
        return "has a file that cannot be opened";
    if (scmi_sensor_read_hwmon(sn, &value))
        return "has a file that does not read as a decimal integer";
    return NULL;
}

/* One NAME:TYPE:VALUE (or NAME:TYPE:PATH for hwmon=) item into the next
 * sensor; a line naming what is wrong with it. */
static int scmi_sensor_add(struct scmi *s, const char *key, const char *spec,
                           char **field)
{
    struct scmi_sensor *sn = &s->sensors[s->nr_sensors];
    bool hwmon = !strcmp(key, "hwmon");
    const char *why = NULL;

    if (s->nr_sensors == SCMI_SENSORS_MAX)
        why = "is one sensor more than the 16 there may be";
    else if (!scmi_sensor_name_ok(field[0]))
        why = "has a name that is not 1 to 15 letters, digits, '-', '_' "
              "or '.'";
    else if (scmi_sensor_type(field[1], sn))
        why = "has a type that is not temp, voltage, current, power or "
              "energy";
    else if (hwmon)
        why = scmi_sensor_open(sn, field[2]);
    else if (scmi_sensor_value(field[2], false, &sn->value))
        why = "has a value that is not a decimal integer";
    /* Counted even when refused: scmi_sensor_close() closes its file. */
    if (s->nr_sensors < SCMI_SENSORS_MAX)
        s->nr_sensors++;
    if (why) {
        xvdm_dev_log(s->dev, XVDM_LOG_ERROR, "%s=%s: '%s:%s:%s' %s", key, spec,
                     field[0], field[1], field[2], why);
        return -EINVAL;
    }
    strcpy(sn->name, field[0]);
    return 0;
}

void scmi_sensor_close(struct scmi *s)
{
    for (unsigned i = 0; i < s->nr_sensors; i++)
        if (s->sensors[i].fd >= 0)
            close(s->sensors[i].fd);
}

int scmi_sensor_parse(struct scmi *s, const char *key, const char *spec)
{
    char *copy, *field[3], *rest;
    unsigned n = 0;
    int ret = 0;

    if (!spec)
        return 0;
    copy = strdup(spec);
    if (!copy)
        return -ENOMEM;
    /* strsep, not strtok: an empty field is an error, not skipped. */
    rest = copy;
    while (rest && !ret) {
        field[n++] = strsep(&rest, ":");
        if (n == 3) {
            ret = scmi_sensor_add(s, key, spec, field);
            n = 0;
        }
    }
    if (!ret && n) {
        xvdm_dev_log(s->dev, XVDM_LOG_ERROR,
                     "%s=%s: '%s' is not a whole NAME:TYPE:%s", key, spec,
                     field[0], strcmp(key, "hwmon") ? "VALUE" : "PATH");
        ret = -EINVAL;
    }
    free(copy);
    return ret;
}

/* §4.7.2.2: sensors in bits 15:0; no asynchronous readings (bits 23:16),
 * no shared-memory statistics (the address and length that follow). */
static int32_t scmi_sensor_attributes(struct scmi *s, struct scmi_cmd *cmd)
{
    return scmi_ret_u32(cmd, s->nr_sensors) && scmi_ret_u32(cmd, 0) &&
                   scmi_ret_u32(cmd, 0) && scmi_ret_u32(cmd, 0)
               ? SCMI_SUCCESS
               : SCMI_COMMS_ERROR;
}

static bool scmi_sensor_describe(struct scmi_cmd *cmd, uint32_t id,
                                 const struct scmi_sensor *sn)
{
    char name[SCMI_NAME_LEN] = {0};

    strcpy(name, sn->name);
    /* attributes_low 0: synchronous only, no trip points. */
    return scmi_ret_u32(cmd, id) && scmi_ret_u32(cmd, 0) &&
           scmi_ret_u32(cmd, SCMI_SENSOR_SCALE(sn->scale) | sn->type) &&
           scmi_ret(cmd, name, SCMI_NAME_LEN);
}

/* §4.7.2.5: descriptions from desc_index on, as many as the response
 * holds; num_returned in bits 11:0 and num_remaining in 31:16. */
static int32_t scmi_sensor_description_get(struct scmi *s, struct scmi_cmd *cmd)
{
    uint32_t index = scmi_param_u32(cmd, 0), n;

    if (index >= s->nr_sensors) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI SENSOR_DESCRIPTION_GET from sensor %u, of "
                             "%u: INVALID_PARAMETERS",
                             index, s->nr_sensors);
        return SCMI_INVALID_PARAMETERS;
    }
    n = s->nr_sensors - index;
    if (cmd->cap < 4 + SCMI_SENSOR_DESC_LEN)
        return SCMI_COMMS_ERROR;
    if (n > (cmd->cap - 4) / SCMI_SENSOR_DESC_LEN)
        n = (cmd->cap - 4) / SCMI_SENSOR_DESC_LEN;
    scmi_ret_u32(cmd, (s->nr_sensors - index - n) << 16 | n);
    for (uint32_t i = index; i < index + n; i++)
        scmi_sensor_describe(cmd, i, &s->sensors[i]);
    return SCMI_SUCCESS;
}

/* Read sensor id's hwmon file; a line when it stops reading as a value
 * (one, however often the guest asks, until it reads again). */
static bool scmi_sensor_read_failed(struct scmi *s, uint32_t id)
{
    struct scmi_sensor *sn = &s->sensors[id];
    bool failed = scmi_sensor_read_hwmon(sn, &sn->value) != 0;

    if (failed && !sn->failing)
        xvdm_dev_log(s->dev, XVDM_LOG_WARN,
                     "SCMI sensor %u (%s): its hwmon file does not read as a "
                     "value: HARDWARE_ERROR until it does",
                     id, sn->name);
    sn->failing = failed;
    return failed;
}

/* §4.7.2.7: the value, 64 bits signed, low word first. */
static int32_t scmi_sensor_reading_get(struct scmi *s, struct scmi_cmd *cmd)
{
    uint32_t id = scmi_param_u32(cmd, 0), flags = scmi_param_u32(cmd, 1);
    uint64_t v;

    if (id >= s->nr_sensors) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI SENSOR_READING_GET of sensor %u, of %u: "
                             "NOT_FOUND",
                             id, s->nr_sensors);
        return SCMI_NOT_FOUND;
    }
    if (flags & ~SCMI_SENSOR_READ_ASYNC) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI SENSOR_READING_GET with reserved flags "
                             "0x%08x: INVALID_PARAMETERS",
                             flags);
        return SCMI_INVALID_PARAMETERS;
    }
    if (flags & SCMI_SENSOR_READ_ASYNC) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI SENSOR_READING_GET asynchronously, which "
                             "sensor %u does not support: NOT_SUPPORTED",
                             id);
        return SCMI_NOT_SUPPORTED;
    }
    if (s->sensors[id].fd >= 0 && scmi_sensor_read_failed(s, id))
        return SCMI_HARDWARE_ERROR;
    v = (uint64_t)s->sensors[id].value;
    return scmi_ret_u32(cmd, (uint32_t)v) &&
                   scmi_ret_u32(cmd, (uint32_t)(v >> 32))
               ? SCMI_SUCCESS
               : SCMI_COMMS_ERROR;
}

static const struct scmi_message scmi_sensor_messages[] = {
    {SCMI_PROTOCOL_VERSION, 0, scmi_version},
    {SCMI_PROTOCOL_ATTRIBUTES, 0, scmi_sensor_attributes},
    {SCMI_PROTOCOL_MESSAGE_ATTRIBUTES, 4, scmi_message_attributes},
    {SCMI_SENSOR_DESCRIPTION_GET, 4, scmi_sensor_description_get},
    {SCMI_SENSOR_READING_GET, 8, scmi_sensor_reading_get},
};

const struct scmi_protocol scmi_sensor_protocol = {
    .id = SCMI_PROTO_SENSOR,
    .version = SCMI_SENSOR_VERSION,
    .messages = scmi_sensor_messages,
    .nr_messages =
        sizeof(scmi_sensor_messages) / sizeof(scmi_sensor_messages[0]),
};
