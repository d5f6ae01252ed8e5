/* SPDX-License-Identifier: MIT */
/*
 * virtio-scmi (VIRTIO 1.2 §5.17): an SCMI platform (Arm DEN0056) for the
 * guest, its commands on the cmdq: the base protocol, sensor management
 * (the sensors from sensors= and hwmon=) and reset domain management
 * (dom0's GPIO lines from resets=). This file: options, life cycle, the
 * cmdq's drain, a message's framing and the base protocol;
 * scmi-sensor.c: the sensors; scmi-reset.c: the reset domains.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/virtio_scmi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/iov-copy.h"
#include "scmi.h"

#define SCMI_DEVICE_ID 32
#define SCMI_QUEUE_SIZE 64
/* Buffers per chain; Linux's driver uses one of each. */
#define SCMI_IOV_MAX 8
/* Parameter bytes a command may carry: Linux's virtio transport's
 * VIRTIO_SCMI_MAX_MSG_SIZE. */
#define SCMI_PARAMS_MAX 128

/* DEN0056 §4.1.2: the message header. */
#define SCMI_HDR_LEN 4u
#define SCMI_HDR_MSG_ID(h) ((h)&0xff)
#define SCMI_HDR_TYPE(h) (((h) >> 8) & 0x3)
#define SCMI_HDR_PROTO(h) (((h) >> 10) & 0xff)
#define SCMI_TYPE_COMMAND 0
#define SCMI_TYPE_NOTIFICATION 3

/* DEN0056 §4.2: the base protocol, version 2.0. */
#define SCMI_PROTO_BASE 0x10
#define SCMI_BASE_VERSION 0x20000
#define SCMI_BASE_DISCOVER_VENDOR 0x3
#define SCMI_BASE_DISCOVER_SUB_VENDOR 0x4
#define SCMI_BASE_DISCOVER_IMPLEMENTATION_VERSION 0x5
#define SCMI_BASE_DISCOVER_LIST_PROTOCOLS 0x6
#define SCMI_BASE_DISCOVER_AGENT 0x7
/* One agent, the guest, id 1; agent 0 is the platform; the caller asks
 * for itself with 0xffffffff. */
#define SCMI_AGENTS 1
#define SCMI_AGENT_GUEST 1
#define SCMI_AGENT_SELF 0xffffffffu
#define SCMI_IMPLEMENTATION_VERSION 1

static const char *const scmi_options[] = {
    "sensors=NAME:TYPE:VALUE[:...]: fixed-value sensors, in this order "
    "(ids 0, 1, ...): NAME up to 15 letters, digits, '-', '_' or '.'; "
    "TYPE temp, voltage, current, power or energy; VALUE an integer in "
    "hwmon's units (millidegrees Celsius, mV, mA, uW, uJ)",
    "hwmon=NAME:TYPE:PATH[:...]: sensors read from dom0's hwmon files "
    "when the guest asks (e.g. /sys/class/hwmon/hwmon0/temp1_input), "
    "after those of sensors=; 16 sensors in all at most",
    "poll-ms=MS: how often hwmon= sensors are read for their trip points "
    "while the guest has trip point notifications enabled, 10 to 60000 "
    "(default 1000)",
    "resets=NAME:CHIP:LINE[:active-low][:...]: reset domains, in this "
    "order (ids 0, 1, ...), each a line of one of dom0's GPIO chips "
    "(/dev/gpiochipN, LINE its offset) held as an output from start, "
    "deasserted; active-low when asserting drives it low; 16 at most",
    NULL,
};

bool scmi_ret(struct scmi_cmd *cmd, const void *data, uint32_t len)
{
    if (len > cmd->cap - cmd->len)
        return false;
    memcpy(cmd->ret + cmd->len, data, len);
    cmd->len += len;
    return true;
}

bool scmi_ret_u32(struct scmi_cmd *cmd, uint32_t v)
{
    uint32_t le = htole32(v);

    return scmi_ret(cmd, &le, sizeof(le));
}

uint32_t scmi_param_u32(const struct scmi_cmd *cmd, unsigned index)
{
    uint32_t le;

    memcpy(&le, cmd->params + 4 * index, sizeof(le));
    return le32toh(le);
}

/* A 16-byte string return value, NUL-padded. */
static bool scmi_ret_name(struct scmi_cmd *cmd, const char *name)
{
    char buf[SCMI_NAME_LEN] = {0};

    strncpy(buf, name, SCMI_NAME_LEN - 1);
    return scmi_ret(cmd, buf, SCMI_NAME_LEN);
}

bool scmi_name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len >= SCMI_NAME_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("-_.", name[i]))
            return false;
    return true;
}

int scmi_parse_items(struct scmi *s, const char *key, const char *spec,
                     const char *form, const char *flag, scmi_item_add add)
{
    char *copy, *field[3], *rest;
    unsigned n = 0;
    bool flagged;
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
        if (n < 3)
            continue;
        flagged = flag && rest && !strncmp(rest, flag, strlen(flag)) &&
                  (rest[strlen(flag)] == ':' || !rest[strlen(flag)]);
        if (flagged)
            strsep(&rest, ":");
        ret = add(s, key, spec, field, flagged);
        n = 0;
    }
    if (!ret && n) {
        xvdm_dev_log(s->dev, XVDM_LOG_ERROR, "%s=%s: '%s' is not a whole %s",
                     key, spec, field[0], form);
        ret = -EINVAL;
    }
    free(copy);
    return ret;
}

static const struct scmi_message *
scmi_find_message(const struct scmi_protocol *p, uint32_t id)
{
    for (unsigned i = 0; i < p->nr_messages; i++)
        if (p->messages[i].id == id)
            return &p->messages[i];
    return NULL;
}

int32_t scmi_version(struct scmi *s, struct scmi_cmd *cmd)
{
    return scmi_ret_u32(cmd, s->proto->version) ? SCMI_SUCCESS
                                                : SCMI_COMMS_ERROR;
}

/* DEN0056 §4.2.2.3: NOT_FOUND for a message the protocol does not
 * have; no message has attributes here (no fast channels). */
int32_t scmi_message_attributes(struct scmi *s, struct scmi_cmd *cmd)
{
    uint32_t id = scmi_param_u32(cmd, 0);

    if (!scmi_find_message(s->proto, id))
        return SCMI_NOT_FOUND;
    return scmi_ret_u32(cmd, 0) ? SCMI_SUCCESS : SCMI_COMMS_ERROR;
}

/* The protocols besides base, in the order DISCOVER_LIST_PROTOCOLS
 * gives them. */
static const struct scmi_protocol *const scmi_protocols[] = {
    &scmi_sensor_protocol,
    &scmi_reset_protocol,
};
#define SCMI_NR_PROTOCOLS                                                      \
    ((uint32_t)(sizeof(scmi_protocols) / sizeof(scmi_protocols[0])))

/* §4.2.2.2: agents in bits 15:8, protocols besides base in 7:0. */
static int32_t scmi_base_attributes(struct scmi *s, struct scmi_cmd *cmd)
{
    (void)s;
    return scmi_ret_u32(cmd, SCMI_AGENTS << 8 | SCMI_NR_PROTOCOLS)
               ? SCMI_SUCCESS
               : SCMI_COMMS_ERROR;
}

static int32_t scmi_base_vendor(struct scmi *s, struct scmi_cmd *cmd)
{
    (void)s;
    return scmi_ret_name(cmd, "xvdm") ? SCMI_SUCCESS : SCMI_COMMS_ERROR;
}

static int32_t scmi_base_sub_vendor(struct scmi *s, struct scmi_cmd *cmd)
{
    (void)s;
    return scmi_ret_name(cmd, "xen") ? SCMI_SUCCESS : SCMI_COMMS_ERROR;
}

static int32_t scmi_base_impl_version(struct scmi *s, struct scmi_cmd *cmd)
{
    (void)s;
    return scmi_ret_u32(cmd, SCMI_IMPLEMENTATION_VERSION) ? SCMI_SUCCESS
                                                          : SCMI_COMMS_ERROR;
}

/* §4.2.2.7: the protocols from the skip-th on, their ids one a byte,
 * padded to a word; INVALID_PARAMETERS for skip past the last. */
static int32_t scmi_base_list_protocols(struct scmi *s, struct scmi_cmd *cmd)
{
    uint32_t skip = scmi_param_u32(cmd, 0), n;
    uint8_t ids[(SCMI_NR_PROTOCOLS + 3) / 4 * 4] = {0};

    if (skip > SCMI_NR_PROTOCOLS) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI BASE_DISCOVER_LIST_PROTOCOLS skips %u of %u "
                             "protocols: INVALID_PARAMETERS",
                             skip, SCMI_NR_PROTOCOLS);
        return SCMI_INVALID_PARAMETERS;
    }
    n = SCMI_NR_PROTOCOLS - skip;
    for (uint32_t i = 0; i < n; i++)
        ids[i] = scmi_protocols[skip + i]->id;
    return scmi_ret_u32(cmd, n) && scmi_ret(cmd, ids, (n + 3) / 4 * 4)
               ? SCMI_SUCCESS
               : SCMI_COMMS_ERROR;
}

/* §4.2.2.8: the agent's id and name; 0 is the platform. */
static int32_t scmi_base_discover_agent(struct scmi *s, struct scmi_cmd *cmd)
{
    uint32_t id = scmi_param_u32(cmd, 0);

    if (id == SCMI_AGENT_SELF)
        id = SCMI_AGENT_GUEST;
    if (id > SCMI_AGENTS) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI BASE_DISCOVER_AGENT of agent %u, of %u: "
                             "NOT_FOUND",
                             id, SCMI_AGENTS);
        return SCMI_NOT_FOUND;
    }
    return scmi_ret_u32(cmd, id) &&
                   scmi_ret_name(cmd, id == 0 ? "platform" : "guest")
               ? SCMI_SUCCESS
               : SCMI_COMMS_ERROR;
}

static const struct scmi_message scmi_base_messages[] = {
    {SCMI_PROTOCOL_VERSION, 0, scmi_version},
    {SCMI_PROTOCOL_ATTRIBUTES, 0, scmi_base_attributes},
    {SCMI_PROTOCOL_MESSAGE_ATTRIBUTES, 4, scmi_message_attributes},
    {SCMI_BASE_DISCOVER_VENDOR, 0, scmi_base_vendor},
    {SCMI_BASE_DISCOVER_SUB_VENDOR, 0, scmi_base_sub_vendor},
    {SCMI_BASE_DISCOVER_IMPLEMENTATION_VERSION, 0, scmi_base_impl_version},
    {SCMI_BASE_DISCOVER_LIST_PROTOCOLS, 4, scmi_base_list_protocols},
    {SCMI_BASE_DISCOVER_AGENT, 4, scmi_base_discover_agent},
};

static const struct scmi_protocol scmi_base_protocol = {
    .id = SCMI_PROTO_BASE,
    .version = SCMI_BASE_VERSION,
    .messages = scmi_base_messages,
    .nr_messages = sizeof(scmi_base_messages) / sizeof(scmi_base_messages[0]),
};

static const struct scmi_protocol *scmi_find_protocol(uint32_t id)
{
    if (id == SCMI_PROTO_BASE)
        return &scmi_base_protocol;
    for (uint32_t i = 0; i < SCMI_NR_PROTOCOLS; i++)
        if (scmi_protocols[i]->id == id)
            return scmi_protocols[i];
    return NULL;
}

/* The command of header hdr, its params_len parameter bytes in params,
 * answered into cmd: its status. Unknown protocols and messages are
 * NOT_SUPPORTED (§4.1.4); parameters of another length than the
 * message's, a message that is no command, PROTOCOL_ERROR. */
static int32_t scmi_dispatch(struct scmi *s, uint32_t hdr,
                             const uint8_t *params, uint32_t params_len,
                             struct scmi_cmd *cmd)
{
    const struct scmi_message *m;

    s->proto = scmi_find_protocol(SCMI_HDR_PROTO(hdr));
    if (SCMI_HDR_TYPE(hdr) != SCMI_TYPE_COMMAND) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI message 0x%08x is of type %u, "
                             "not a command: PROTOCOL_ERROR",
                             hdr, SCMI_HDR_TYPE(hdr));
        return SCMI_PROTOCOL_ERROR;
    }
    if (!s->proto) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI message 0x%08x is of protocol "
                             "0x%02x, which is not served: "
                             "NOT_SUPPORTED",
                             hdr, SCMI_HDR_PROTO(hdr));
        return SCMI_NOT_SUPPORTED;
    }
    m = scmi_find_message(s->proto, SCMI_HDR_MSG_ID(hdr));
    if (!m) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI message 0x%08x: protocol 0x%02x "
                             "has no message 0x%02x: NOT_SUPPORTED",
                             hdr, s->proto->id, SCMI_HDR_MSG_ID(hdr));
        return SCMI_NOT_SUPPORTED;
    }
    if (params_len != m->params_len) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI message 0x%08x has %u bytes of "
                             "parameters, not %u: PROTOCOL_ERROR",
                             hdr, params_len, m->params_len);
        return SCMI_PROTOCOL_ERROR;
    }
    cmd->params = params;
    return m->handler(s, cmd);
}

/* §5.17.6.1: the request (header, parameters) in the device-readable
 * part, the response (the header again, the status, return values) in
 * the device-writable part. A chain without room for a header, or for a
 * header and a status, is given back with nothing written; a response
 * that does not fit is COMMS_ERROR. Bytes written, as the used length. */
static uint32_t scmi_serve(struct scmi *s, const struct xvdm_chain *ch)
{
    const struct iovec *in = &ch->iov[ch->out_num];
    uint8_t params[SCMI_PARAMS_MAX];
    struct scmi_cmd cmd = {0};
    uint32_t hdr, head[2];
    int32_t status;

    if (ch->out_len < SCMI_HDR_LEN || ch->in_len < 2 * SCMI_HDR_LEN) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI chain %u has %u bytes for the device and "
                             "%u for its response, not a header and room "
                             "for a header and status: given back unanswered",
                             ch->head, ch->out_len, ch->in_len);
        return 0;
    }
    iov_copy(ch->iov, ch->out_num, 0, &hdr, SCMI_HDR_LEN, false);
    hdr = le32toh(hdr);
    cmd.cap = ch->in_len - 2 * SCMI_HDR_LEN;
    if (cmd.cap > SCMI_RET_MAX)
        cmd.cap = SCMI_RET_MAX;
    if (ch->out_len - SCMI_HDR_LEN > SCMI_PARAMS_MAX) {
        xvdm_dev_guest_error(s->dev,
                             "SCMI message 0x%08x has %u bytes of "
                             "parameters, more than any: "
                             "PROTOCOL_ERROR",
                             hdr, ch->out_len - SCMI_HDR_LEN);
        status = SCMI_PROTOCOL_ERROR;
    } else {
        iov_copy(ch->iov, ch->out_num, SCMI_HDR_LEN, params,
                 ch->out_len - SCMI_HDR_LEN, false);
        status =
            scmi_dispatch(s, hdr, params, ch->out_len - SCMI_HDR_LEN, &cmd);
    }
    if (status == SCMI_COMMS_ERROR)
        xvdm_dev_guest_error(s->dev,
                             "SCMI message 0x%08x: the response does "
                             "not fit in chain %u's %u bytes: "
                             "COMMS_ERROR",
                             hdr, ch->head, ch->in_len);
    /* A failed command's response is its status alone. */
    if (status != SCMI_SUCCESS)
        cmd.len = 0;
    head[0] = htole32(hdr);
    head[1] = htole32((uint32_t)status);
    iov_copy(in, ch->in_num, 0, head, sizeof(head), true);
    iov_copy(in, ch->in_num, sizeof(head), cmd.ret, cmd.len, true);
    return (uint32_t)sizeof(head) + cmd.len;
}

bool scmi_has_eventq(struct scmi *s)
{
    return xvdm_dev_features(s->dev) & 1ull << VIRTIO_SCMI_F_P2A_CHANNELS;
}

/* §5.17.6.2: a notification goes into the next buffer the driver put on
 * the eventq, taken when it is due, so nothing waits in dom0: with none
 * there (the device MAY drop it), or one without room for all of it (the
 * driver MUST NOT put one), it is dropped, that buffer given back empty. */
void scmi_notify(struct scmi *s, uint32_t proto, uint32_t msg,
                 const void *payload, uint32_t len)
{
    struct xvdm_queue *q = xvdm_dev_queue(s->dev, VIRTIO_SCMI_VQ_RX);
    struct iovec iov[SCMI_IOV_MAX];
    struct xvdm_chain ch = {.iov = iov, .iov_cap = SCMI_IOV_MAX};
    uint32_t hdr = msg | SCMI_TYPE_NOTIFICATION << 8 | proto << 10;
    uint8_t out[SCMI_HDR_LEN + SCMI_NOTIFY_PAYLOAD_MAX];
    uint32_t le = htole32(hdr);
    int ret = xvdm_queue_pop(q, &ch);

    memcpy(out, &le, SCMI_HDR_LEN);
    memcpy(out + SCMI_HDR_LEN, payload, len);
    if (ret == 1 && ch.out_num == 0 && ch.in_len >= SCMI_HDR_LEN + len) {
        iov_copy(ch.iov, ch.in_num, 0, out, SCMI_HDR_LEN + len, true);
        xvdm_queue_push(q, &ch, SCMI_HDR_LEN + len);
        xvdm_queue_notify_guest(q);
        return;
    }
    if (ret == 1) {
        xvdm_queue_push(q, &ch, 0);
        xvdm_queue_notify_guest(q);
    }
    s->dropped++;
    xvdm_dev_guest_error(
        s->dev,
        "SCMI notification 0x%08x dropped: %s (%" PRIu64 " dropped so far)",
        hdr,
        ret == 1 ? "the eventq's buffer has no writable room for it"
                 : "no buffer on the eventq",
        s->dropped);
}

/* Commands are answered at once, in order: nothing stays in flight. The
 * eventq's buffers wait for notifications (scmi_notify()). */
static void scmi_queue_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
    struct scmi *s = priv;
    struct iovec iov[SCMI_IOV_MAX];
    struct xvdm_chain ch = {.iov = iov, .iov_cap = SCMI_IOV_MAX};

    if (index != VIRTIO_SCMI_VQ_TX)
        return;
    while (xvdm_queue_next(q, &ch) == 1)
        xvdm_queue_push(q, &ch, scmi_serve(s, &ch));
    xvdm_queue_notify_guest(q);
}

static void scmi_destroy(void *priv)
{
    scmi_sensor_close(priv);
    scmi_reset_close(priv);
    free(priv);
}

static int scmi_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                       struct xvdm_device_setup *setup, void **priv)
{
    struct scmi *s = calloc(1, sizeof(*s));
    uint64_t poll_ms = 1000;
    int ret;

    if (!s)
        return -ENOMEM;
    s->dev = dev;
    s->poll_timer = -1;
    for (unsigned i = 0; i < SCMI_SENSORS_MAX; i++)
        s->sensors[i].fd = -1;
    for (unsigned i = 0; i < SCMI_RESETS_MAX; i++)
        s->resets[i].fd = -1;
    ret = scmi_sensor_parse(s, "sensors", xvdm_opt_get(opts, "sensors"));
    if (ret == 0)
        ret = scmi_sensor_parse(s, "hwmon", xvdm_opt_get(opts, "hwmon"));
    if (ret == 0)
        ret = xvdm_opt_u64(dev, opts, "poll-ms", 10, 60000, &poll_ms);
    s->poll_ms = (uint32_t)poll_ms;
    if (ret == 0)
        ret = scmi_sensor_poll_init(s);
    if (ret == 0)
        ret = scmi_reset_parse(s, xvdm_opt_get(opts, "resets"));
    if (ret) {
        scmi_destroy(s);
        return ret;
    }
    xvdm_dev_log(dev, XVDM_LOG_INFO,
                 "SCMI platform, %u sensor(s), %u reset domain(s)",
                 s->nr_sensors, s->nr_resets);
    /* §5.17.2: the eventq, for notifications (no delayed responses: every
     * command is answered at once), with VIRTIO_SCMI_F_P2A_CHANNELS. */
    setup->features = 1ull << VIRTIO_SCMI_F_P2A_CHANNELS;
    setup->num_queues = 2;
    setup->queue_size_max[VIRTIO_SCMI_VQ_TX] = SCMI_QUEUE_SIZE;
    setup->queue_size_max[VIRTIO_SCMI_VQ_RX] = SCMI_QUEUE_SIZE;
    *priv = s;
    return 0;
}

/* No chain outlives a queue_notify() or scmi_notify() call; what the
 * guest enabled does, and the reset domains' levels: the guest's driver
 * starts again with every domain deasserted, as at start. Their lines
 * stay held: the guest's devices keep them. */
static void scmi_reset(void *priv)
{
    scmi_sensor_reset(priv);
    scmi_reset_deassert_all(priv);
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "scmi",
    .summary = "SCMI platform (virtio-scmi): base protocol, sensors and their "
               "trip point notifications, reset domains on dom0's GPIO lines",
    .device_id = SCMI_DEVICE_ID,
    .options = scmi_options,
    .create = scmi_create,
    .destroy = scmi_destroy,
    .queue_notify = scmi_queue_notify,
    .reset = scmi_reset,
};
