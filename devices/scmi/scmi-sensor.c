/* SPDX-License-Identifier: MIT */
/*
 * SCMI sensor management (DEN0056 §4.7, version 2.0): sensors of fixed
 * values from sensors=, and dom0's hwmon files from hwmon=, read when
 * the guest asks; described and read synchronously. Values are in
 * hwmon's units (millidegrees, mV, mA, µW, µJ), which the descriptions'
 * scales say. Each sensor has two trip points; while the guest has
 * notifications on for one that is set, the hwmon files are read every
 * poll-ms and a crossing sent as SENSOR_TRIP_POINT_EVENT.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "scmi.h"

#define SCMI_PROTO_SENSOR 0x15
#define SCMI_SENSOR_VERSION 0x20000
#define SCMI_SENSOR_DESCRIPTION_GET 0x3
#define SCMI_SENSOR_TRIP_POINT_NOTIFY 0x4
#define SCMI_SENSOR_TRIP_POINT_CONFIG 0x5
#define SCMI_SENSOR_READING_GET 0x6
/* §4.7.3.1: the notification, its payload agent, sensor and trip point
 * descriptor; the agent is the platform's 0, the crossing not being any
 * agent's doing. */
#define SCMI_SENSOR_TRIP_POINT_EVENT 0x0
#define SCMI_AGENT_PLATFORM 0
/* trip_point_desc: the trip point in bits 7:0, bit 16 set for a rising
 * crossing. */
#define SCMI_TRIP_DESC_RISING (1u << 16)
/* §4.7.2.9: event_control bit 0 turns the sensor's notifications on. */
#define SCMI_SENSOR_NOTIFY_ON 0x1
/* §4.7.2.10: event_control: the crossings in bits 1:0, the trip point in
 * 11:4, the rest reserved. */
#define SCMI_TRIP_RISING 0x1
#define SCMI_TRIP_FALLING 0x2
#define SCMI_TRIP_EVENTS(c) ((c)&0x3)
#define SCMI_TRIP_ID(c) (((c) >> 4) & 0xff)
#define SCMI_TRIP_RESERVED 0xfffff00cu
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
                           char **field, bool flagged)
{
    struct scmi_sensor *sn = &s->sensors[s->nr_sensors];
    bool hwmon = !strcmp(key, "hwmon");
    const char *why = NULL;

    (void)flagged; /* sensors' items have no flag */
    if (s->nr_sensors == SCMI_SENSORS_MAX)
        why = "is one sensor more than the 16 there may be";
    else if (!scmi_name_ok(field[0]))
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
    if (s->poll_timer >= 0) {
        xvdm_dev_unwatch_fd(s->dev, s->poll_timer);
        close(s->poll_timer);
    }
}

int scmi_sensor_parse(struct scmi *s, const char *key, const char *spec)
{
    return scmi_parse_items(s, key, spec,
                            strcmp(key, "hwmon") ? "NAME:TYPE:VALUE"
                                                 : "NAME:TYPE:PATH",
                            NULL, scmi_sensor_add);
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
    /* attributes_low: synchronous readings only, the trip points. */
    return scmi_ret_u32(cmd, id) && scmi_ret_u32(cmd, SCMI_TRIP_POINTS) &&
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

/* A sensor id the guest gave that is none of them, with a line naming
 * the message. */
static bool scmi_sensor_missing(struct scmi *s, uint32_t id, const char *msg)
{
    if (id < s->nr_sensors)
        return false;
    xvdm_dev_guest_error(s->dev, "SCMI %s of sensor %u, of %u: NOT_FOUND", msg,
                         id, s->nr_sensors);
    return true;
}

/* §4.7.2.7: the value, 64 bits signed, low word first. */
static int32_t scmi_sensor_reading_get(struct scmi *s, struct scmi_cmd *cmd)
{
    uint32_t id = scmi_param_u32(cmd, 0), flags = scmi_param_u32(cmd, 1);
    uint64_t v;

    if (scmi_sensor_missing(s, id, "SENSOR_READING_GET"))
        return SCMI_NOT_FOUND;
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

/* Polled: an hwmon sensor with notifications on and a trip point set. */
static bool scmi_sensor_polled(const struct scmi_sensor *sn)
{
    if (sn->fd < 0 || !sn->notify)
        return false;
    for (unsigned t = 0; t < SCMI_TRIP_POINTS; t++)
        if (sn->trips[t].events)
            return true;
    return false;
}

/* Arm the poll while a sensor is polled, disarm it when none is. */
static void scmi_sensor_poll_update(struct scmi *s)
{
    struct itimerspec its = {{0, 0}, {0, 0}};
    bool want = false;

    for (unsigned i = 0; i < s->nr_sensors; i++)
        want = want || scmi_sensor_polled(&s->sensors[i]);
    if (want == s->polling)
        return;
    if (want) {
        its.it_interval.tv_sec = s->poll_ms / 1000;
        its.it_interval.tv_nsec = (long)(s->poll_ms % 1000) * 1000000;
        its.it_value = its.it_interval;
    }
    if (timerfd_settime(s->poll_timer, 0, &its, NULL)) {
        xvdm_dev_log(s->dev, XVDM_LOG_ERROR,
                     "SCMI: the hwmon poll's timer cannot be set: %m");
        return;
    }
    s->polling = want;
}

/* Which side of the trip points in mask (bit t: trip point t) sensor
 * id's value is on now: their crossings are counted from there, not from
 * a value read long before. A value that cannot be read leaves the side
 * to the next one that can, which reports nothing. */
static void scmi_sensor_baseline(struct scmi *s, uint32_t id, unsigned mask)
{
    struct scmi_sensor *sn = &s->sensors[id];
    bool read = sn->fd < 0 || !scmi_sensor_read_failed(s, id);

    for (unsigned t = 0; t < SCMI_TRIP_POINTS; t++) {
        if (!(mask >> t & 1))
            continue;
        sn->trips[t].known = read;
        sn->trips[t].above = read && sn->value >= sn->trips[t].value;
    }
}

/* §4.7.3.1: an event for each trip point sensor id's new value crossed
 * in a direction the guest asked for. */
static void scmi_sensor_check_trips(struct scmi *s, uint32_t id)
{
    struct scmi_sensor *sn = &s->sensors[id];

    for (uint32_t t = 0; t < SCMI_TRIP_POINTS; t++) {
        struct scmi_trip *tp = &sn->trips[t];
        bool above = sn->value >= tp->value;
        uint32_t payload[3];

        if (tp->known && above == tp->above)
            continue;
        tp->above = above;
        if (!tp->known) {
            tp->known = true;
            continue;
        }
        if (!(tp->events & (above ? SCMI_TRIP_RISING : SCMI_TRIP_FALLING)))
            continue;
        payload[0] = htole32(SCMI_AGENT_PLATFORM);
        payload[1] = htole32(id);
        payload[2] = htole32((above ? SCMI_TRIP_DESC_RISING : 0) | t);
        scmi_notify(s, SCMI_PROTO_SENSOR, SCMI_SENSOR_TRIP_POINT_EVENT, payload,
                    sizeof(payload));
    }
}

static void scmi_sensor_on_poll(void *arg, uint32_t revents)
{
    struct scmi *s = arg;
    uint64_t expirations;

    (void)revents;
    if (read(s->poll_timer, &expirations, sizeof(expirations)) < 0)
        return;
    for (uint32_t id = 0; id < s->nr_sensors; id++)
        if (scmi_sensor_polled(&s->sensors[id]) &&
            !scmi_sensor_read_failed(s, id))
            scmi_sensor_check_trips(s, id);
}

int scmi_sensor_poll_init(struct scmi *s)
{
    int ret;

    s->poll_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->poll_timer < 0) {
        ret = -errno;
        xvdm_dev_log(s->dev, XVDM_LOG_ERROR,
                     "SCMI: no timer for the hwmon poll: %m");
        return ret;
    }
    ret = xvdm_dev_watch_fd(s->dev, s->poll_timer, EPOLLIN, scmi_sensor_on_poll,
                            s);
    if (ret)
        xvdm_dev_log(s->dev, XVDM_LOG_ERROR,
                     "SCMI: the hwmon poll's timer cannot be watched: %s",
                     strerror(-ret));
    return ret;
}

void scmi_sensor_reset(struct scmi *s)
{
    for (unsigned i = 0; i < s->nr_sensors; i++) {
        s->sensors[i].notify = false;
        memset(s->sensors[i].trips, 0, sizeof(s->sensors[i].trips));
    }
    scmi_sensor_poll_update(s);
}

/* §4.7.2.9: the sensor's trip point events on or off; NOT_SUPPORTED
 * without the eventq they would go on. */
static int32_t scmi_sensor_trip_point_notify(struct scmi *s,
                                             struct scmi_cmd *cmd)
{
    uint32_t id = scmi_param_u32(cmd, 0), control = scmi_param_u32(cmd, 1);

    if (scmi_sensor_missing(s, id, "SENSOR_TRIP_POINT_NOTIFY"))
        return SCMI_NOT_FOUND;
    if (control & ~SCMI_SENSOR_NOTIFY_ON) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI SENSOR_TRIP_POINT_NOTIFY with reserved "
                             "bits 0x%08x: INVALID_PARAMETERS",
                             control);
        return SCMI_INVALID_PARAMETERS;
    }
    if (!scmi_has_eventq(s)) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI SENSOR_TRIP_POINT_NOTIFY without the "
                             "eventq (VIRTIO_SCMI_F_P2A_CHANNELS): "
                             "NOT_SUPPORTED");
        return SCMI_NOT_SUPPORTED;
    }
    s->sensors[id].notify = control & SCMI_SENSOR_NOTIFY_ON;
    scmi_sensor_baseline(s, id, (1u << SCMI_TRIP_POINTS) - 1);
    scmi_sensor_poll_update(s);
    return SCMI_SUCCESS;
}

/* §4.7.2.10: one trip point's value and the crossings it reports. */
static int32_t scmi_sensor_trip_point_config(struct scmi *s,
                                             struct scmi_cmd *cmd)
{
    uint32_t id = scmi_param_u32(cmd, 0), control = scmi_param_u32(cmd, 1);
    struct scmi_trip *tp;

    if (scmi_sensor_missing(s, id, "SENSOR_TRIP_POINT_CONFIG"))
        return SCMI_NOT_FOUND;
    if (control & SCMI_TRIP_RESERVED ||
        SCMI_TRIP_ID(control) >= SCMI_TRIP_POINTS) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI SENSOR_TRIP_POINT_CONFIG with event "
                             "control 0x%08x (reserved bits, or a trip point "
                             "past %u): INVALID_PARAMETERS",
                             control, SCMI_TRIP_POINTS);
        return SCMI_INVALID_PARAMETERS;
    }
    tp = &s->sensors[id].trips[SCMI_TRIP_ID(control)];
    tp->events = SCMI_TRIP_EVENTS(control);
    tp->value = (int64_t)((uint64_t)scmi_param_u32(cmd, 3) << 32 |
                          scmi_param_u32(cmd, 2));
    scmi_sensor_baseline(s, id, 1u << SCMI_TRIP_ID(control));
    scmi_sensor_poll_update(s);
    return SCMI_SUCCESS;
}

static const struct scmi_message scmi_sensor_messages[] = {
    {SCMI_PROTOCOL_VERSION, 0, scmi_version},
    {SCMI_PROTOCOL_ATTRIBUTES, 0, scmi_sensor_attributes},
    {SCMI_PROTOCOL_MESSAGE_ATTRIBUTES, 4, scmi_message_attributes},
    {SCMI_SENSOR_DESCRIPTION_GET, 4, scmi_sensor_description_get},
    {SCMI_SENSOR_TRIP_POINT_NOTIFY, 8, scmi_sensor_trip_point_notify},
    {SCMI_SENSOR_TRIP_POINT_CONFIG, 16, scmi_sensor_trip_point_config},
    {SCMI_SENSOR_READING_GET, 8, scmi_sensor_reading_get},
};

const struct scmi_protocol scmi_sensor_protocol = {
    .id = SCMI_PROTO_SENSOR,
    .version = SCMI_SENSOR_VERSION,
    .messages = scmi_sensor_messages,
    .nr_messages =
        sizeof(scmi_sensor_messages) / sizeof(scmi_sensor_messages[0]),
};
