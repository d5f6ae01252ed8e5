/* SPDX-License-Identifier: MIT */
/*
 * virtio-scmi's state, shared by its parts: scmi.c (the module: options,
 * life cycle, the command queue's drain, a message's framing and the
 * base protocol) and scmi-sensor.c (the sensor management protocol and
 * its sensors=).
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

struct scmi_sensor {
    char name[SCMI_NAME_LEN];
    uint8_t type;  /* DEN0056 §4.7.2.5's unit */
    int8_t scale;  /* value's power of ten */
    int64_t value; /* fixed, or the last read */
    int fd;        /* the hwmon file, or -1 */
    bool failing;  /* its last read failed, which has had its line */
};

struct scmi {
    struct xvdm_dev *dev;
    /* The command being served: its protocol, for the messages that
     * every protocol has. */
    const struct scmi_protocol *proto;
    struct scmi_sensor sensors[SCMI_SENSORS_MAX];
    unsigned nr_sensors;
};

/* Append len bytes to cmd's return values: false when they do not fit in
 * the guest's buffer. */
bool scmi_ret(struct scmi_cmd *cmd, const void *data, uint32_t len);
bool scmi_ret_u32(struct scmi_cmd *cmd, uint32_t v);
uint32_t scmi_param_u32(const struct scmi_cmd *cmd, unsigned index);
/* PROTOCOL_VERSION and PROTOCOL_MESSAGE_ATTRIBUTES, the same for every
 * protocol: each protocol's table lists them. */
int32_t scmi_version(struct scmi *s, struct scmi_cmd *cmd);
int32_t scmi_message_attributes(struct scmi *s, struct scmi_cmd *cmd);

/* ---- scmi-sensor.c ---- */

extern const struct scmi_protocol scmi_sensor_protocol;
/* Option key's sensors, after those before: sensors=NAME:TYPE:VALUE[:...]
 * or hwmon=NAME:TYPE:PATH[:...]. 0, or -EINVAL after a line naming the
 * bad item; either way scmi_sensor_close() closes what was opened. */
int scmi_sensor_parse(struct scmi *s, const char *key, const char *spec);
void scmi_sensor_close(struct scmi *s);

#endif
