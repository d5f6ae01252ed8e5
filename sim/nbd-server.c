/* SPDX-License-Identifier: MIT */
/* NBD servers for tests and benchmarks (see nbd-server.h). */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nbd-server.h"

bool nbd_server_installed(const char *prog)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

int nbd_server_dir(struct nbd_server *s)
{
    snprintf(s->dir, sizeof(s->dir), "/tmp/xvdm-nbd-XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    snprintf(s->sock, sizeof(s->sock), "%s/sock", s->dir);
    snprintf(s->uri, sizeof(s->uri), "nbd+unix:///?socket=%s", s->sock);
    s->pid = -1;
    return 0;
}

static bool socket_answers(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

int nbd_server_start(struct nbd_server *s, char *const argv[])
{
    unlink(s->sock);
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    for (unsigned i = 0; i < 1000 && !socket_answers(s->sock); i++)
        usleep(10000);
    if (socket_answers(s->sock))
        return 0;
    fprintf(stderr, "%s does not listen on %s\n", argv[0], s->sock);
    return -1;
}

int nbd_server_nbdkit(struct nbd_server *s, const char *const *words)
{
    char *argv[24] = {"nbdkit", "-f", "--exit-with-parent", "-U", s->sock};
    unsigned n = 5;

    for (; *words && n < 23; words++)
        argv[n++] = (char *)*words;
    argv[n] = NULL;
    return nbd_server_start(s, argv);
}

int nbd_server_qemu(struct nbd_server *s, const char *format, const char *img,
                    unsigned clients)
{
    char fmt[32], shared[32], sockopt[128];
    char *argv[] = {"qemu-nbd", "--persistent", shared, fmt, sockopt,
                    (char *)img, NULL};

    snprintf(fmt, sizeof(fmt), "--format=%s", format);
    snprintf(shared, sizeof(shared), "--shared=%u", clients);
    snprintf(sockopt, sizeof(sockopt), "--socket=%s", s->sock);
    return nbd_server_start(s, argv);
}

void nbd_server_kill(struct nbd_server *s)
{
    int status;

    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    s->pid = -1;
}

int nbd_server_remove_dir(struct nbd_server *s)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
    return system(cmd) == 0 ? 0 : -1;
}
