/* SPDX-License-Identifier: MIT */
/*
 * virtio-scmi's state, shared by its parts: scmi.c (the module: options,
 * life cycle, the command queue's drain, a message's framing and the
 * base protocol), scmi-sensor.c (the sensor management protocol and
 * its sensors=) and scmi-reset.c (reset domain management, resets=).
 */
#ifndef XVDM_SCMI_H
#define XVDM_SCMI_H

#include <stdbool.h>
#include <stdint.h>

#include <xvdm/device.h>

/* DEN0056 §4.1.4: status codes, the first return value of a response. */
#define SCMI_SUCCESS 0
#define SCMI_NOT_SUPPORTED (-1)
#define SCMI_INVALID_PARAMETERS (-2)
#define SCMI_NOT_FOUND (-4)
#define SCMI_COMMS_ERROR (-7)
#define SCMI_HARDWARE_ERROR (-9)
#define SCMI_PROTOCOL_ERROR (-10)

/* DEN0056 §4.2.2: a protocol's first three messages are the same. */
#define SCMI_PROTOCOL_VERSION 0x0
#define SCMI_PROTOCOL_ATTRIBUTES 0x1
#define SCMI_PROTOCOL_MESSAGE_ATTRIBUTES 0x2

/* Names and vendor strings: 16 bytes, NUL-terminated (DEN0056 §4.2.2.4). */
#define SCMI_NAME_LEN 16
/* Sensors sensors= may give. */
#define SCMI_SENSORS_MAX 16
/* Trip points each sensor has (§4.7.2.5's attributes_low, bits 7:0). */
#define SCMI_TRIP_POINTS 2
/* Return values one response may carry, after the status: all sensors'
 * descriptions (28 bytes each) and their 4-byte count at most. */
#define SCMI_RET_MAX (4 + SCMI_SENSORS_MAX * 28)

/* One command being answered: its parameters (checked against the
 * message's length before its handler runs) and the return values the
 * handler appends after the status, at most cap bytes (what the guest's
 * response buffer holds). */
struct scmi_cmd {
    const uint8_t *params;
    uint8_t ret[SCMI_RET_MAX];
    uint32_t len;
    uint32_t cap;
};

/* A handler answers one command: a status, its return values in cmd. */
struct scmi;
typedef int32_t (*scmi_handler)(struct scmi *s, struct scmi_cmd *cmd);

struct scmi_message {
    uint8_t id;
    uint8_t params_len; /* what the message's parameters are, exactly */
    scmi_handler handler;
};

struct scmi_protocol {
    uint8_t id;
    uint32_t version;
    const struct scmi_message *messages;
    unsigned nr_messages;
};

/* One trip point (§4.7.2.10): the crossings to report, its value, and the
 * side of it the value was on when last polled. */
struct scmi_trip {
    uint8_t events; /* event control bits 1:0: 1 rising, 2 falling */
    bool known;     /* above holds: a value was read since it was set */
    bool above;     /* at or above value */
    int64_t value;
};

struct scmi_sensor {
    char name[SCMI_NAME_LEN];
    uint8_t type;  /* DEN0056 §4.7.2.5's unit */
    int8_t scale;  /* value's power of ten */
    int64_t value; /* fixed, or the last read */
    int fd;        /* the hwmon file, or -1 */
    bool failing;  /* its last read failed, which has had its line */
    bool notify;   /* SENSOR_TRIP_POINT_NOTIFY enabled */
    struct scmi_trip trips[SCMI_TRIP_POINTS];
};

/* A reset domain: a line of one of dom0's GPIO chips, held as an output
 * from create to destroy. */
struct scmi_reset_domain {
    char name[SCMI_NAME_LEN];
    int fd;       /* the line request, or -1 */
    bool failing; /* its last drive failed, which has had its line */
};

/* Reset domains resets= may give. */
#define SCMI_RESETS_MAX 16

struct scmi {
    struct xvdm_dev *dev;
    /* The command being served: its protocol, for the messages that
     * every protocol has. */
    const struct scmi_protocol *proto;
    struct scmi_sensor sensors[SCMI_SENSORS_MAX];
    unsigned nr_sensors;
    /* The hwmon= sensors' poll, armed while the guest has a trip point
     * to hear of: a timerfd (-1 before it is made), every poll_ms. */
    int poll_timer;
    uint32_t poll_ms;
    bool polling;
    uint64_t dropped; /* notifications the eventq had no room for */
    struct scmi_reset_domain resets[SCMI_RESETS_MAX];
    unsigned nr_resets;
};

/* Append len bytes to cmd's return values: false when they do not fit in
 * the guest's buffer. */
bool scmi_ret(struct scmi_cmd *cmd, const void *data, uint32_t len);
bool scmi_ret_u32(struct scmi_cmd *cmd, uint32_t v);
uint32_t scmi_param_u32(const struct scmi_cmd *cmd, unsigned index);
/* A sensor's or reset domain's name: 1 to 15 letters, digits, '-', '_'
 * or '.'. */
bool scmi_name_ok(const char *name);
/* One item of an option's list: its three fields; flagged when the
 * optional fourth field, the flag, followed them. 0, or -EINVAL after a
 * line naming the item. */
typedef int (*scmi_item_add)(struct scmi *s, const char *key, const char *spec,
                             char **field, bool flagged);
/* Option key's list spec, items of three ':'-separated fields (form, as
 * the user gives it, e.g. "NAME:TYPE:VALUE"), each followed by the word
 * flag or not (flag NULL: never), to add, in order. 0, or a negative
 * errno after a line naming what is wrong. */
int scmi_parse_items(struct scmi *s, const char *key, const char *spec,
                     const char *form, const char *flag, scmi_item_add add);
/* PROTOCOL_VERSION and PROTOCOL_MESSAGE_ATTRIBUTES, the same for every
 * protocol: each protocol's table lists them. */
int32_t scmi_version(struct scmi *s, struct scmi_cmd *cmd);
int32_t scmi_message_attributes(struct scmi *s, struct scmi_cmd *cmd);
/* Whether the driver took the eventq (VIRTIO_SCMI_F_P2A_CHANNELS). */
bool scmi_has_eventq(struct scmi *s);
/* Payload bytes a notification may have here. */
#define SCMI_NOTIFY_PAYLOAD_MAX 32
/* Send notification msg of protocol proto, its len-byte payload (at most
 * SCMI_NOTIFY_PAYLOAD_MAX), on the eventq; dropped, counted and logged when
 * there is no room for it. */
void scmi_notify(struct scmi *s, uint32_t proto, uint32_t msg,
                 const void *payload, uint32_t len);

/* ---- scmi-sensor.c ---- */

extern const struct scmi_protocol scmi_sensor_protocol;
/* Option key's sensors, after those before: sensors=NAME:TYPE:VALUE[:...]
 * or hwmon=NAME:TYPE:PATH[:...]. 0, or -EINVAL after a line naming the
 * bad item; either way scmi_sensor_close() closes what was opened. */
int scmi_sensor_parse(struct scmi *s, const char *key, const char *spec);
/* Make the poll's timer and watch it; 0 or a negative errno after a line. */
int scmi_sensor_poll_init(struct scmi *s);
/* Virtio reset: no notification enabled, no trip point, no poll. */
void scmi_sensor_reset(struct scmi *s);
void scmi_sensor_close(struct scmi *s);

/* ---- scmi-reset.c ---- */

extern const struct scmi_protocol scmi_reset_protocol;
/* resets=NAME:CHIP:LINE[:active-low][:...]: each line requested as an
 * output, deasserted. 0, or a negative errno after a line naming the bad
 * item; either way scmi_reset_close() gives back what was requested. */
int scmi_reset_parse(struct scmi *s, const char *spec);
/* Every domain deasserted (a device reset: the guest's driver starts
 * again). */
void scmi_reset_deassert_all(struct scmi *s);
/* Every domain deasserted and its line given back to dom0. */
void scmi_reset_close(struct scmi *s);

#endif
