// Calls every wasi_snapshot_preview1 function directly (raw ABI, no libc wrappers),
// including error paths, and the kiln_v1 metadata calls. Prints "FAIL ..." for every
// unexpected result and "done ok=N fail=M"; exits 1 on any failure.
// Expects: fd 3 = preopen "/", argv = [p1_all, one, two], env has KILN_TEST=yes,
// cwd irrelevant (all paths relative to fd 3), a writable /work dir that is empty.
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_raise")))
uint32_t raw_proc_raise(uint32_t sig);
__attribute__((import_module("kiln_v1"), import_name("stat")))
uint32_t kiln_stat(uint32_t fd, uint32_t flags, const char *p, uint32_t len, void *out);
__attribute__((import_module("kiln_v1"), import_name("chmod")))
uint32_t kiln_chmod(uint32_t fd, uint32_t flags, const char *p, uint32_t len, uint32_t mode);
__attribute__((import_module("kiln_v1"), import_name("chown")))
uint32_t kiln_chown(uint32_t fd, uint32_t flags, const char *p, uint32_t len, int32_t uid, int32_t gid);
__attribute__((import_module("kiln_v1"), import_name("fstat")))
uint32_t kiln_fstat(uint32_t fd, void *out);

static int ok, fail;
#define EXPECT(call, want)                                                        \
    do {                                                                          \
        unsigned e_ = (unsigned)(call);                                           \
        if (e_ != (unsigned)(want)) {                                             \
            printf("FAIL line %d: %s -> %u (want %u)\n", __LINE__, #call, e_,     \
                   (unsigned)(want));                                             \
            fail++;                                                               \
        } else                                                                    \
            ok++;                                                                 \
    } while (0)
#define CHECK(cond)                                                               \
    do {                                                                          \
        if (!(cond)) {                                                            \
            printf("FAIL line %d: %s\n", __LINE__, #cond);                        \
            fail++;                                                               \
        } else                                                                    \
            ok++;                                                                 \
    } while (0)

#define R_ALL ((__wasi_rights_t)0x1fffffff)
#define R_RO (__WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_TELL | __WASI_RIGHTS_FD_READDIR)
#define ROOT 3

static __wasi_fd_t open_at(const char *p, __wasi_oflags_t of, __wasi_rights_t r, __wasi_fdflags_t ff, __wasi_errno_t want) {
    __wasi_fd_t fd = (__wasi_fd_t)-1;
    EXPECT(__wasi_path_open(ROOT, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, p, of, r, r, ff, &fd), want);
    return fd;
}

static void args_env(void) {
    __wasi_size_t argc, argsz, envc, envsz;
    EXPECT(__wasi_args_sizes_get(&argc, &argsz), 0);
    CHECK(argc == 3);
    char *argv[8];
    char buf[256];
    EXPECT(__wasi_args_get((uint8_t **)argv, (uint8_t *)buf), 0);
    CHECK(strcmp(argv[1], "one") == 0 && strcmp(argv[2], "two") == 0);
    EXPECT(__wasi_environ_sizes_get(&envc, &envsz), 0);
    char *envp[32];
    char ebuf[1024];
    CHECK(envc < 32 && envsz < sizeof ebuf);
    EXPECT(__wasi_environ_get((uint8_t **)envp, (uint8_t *)ebuf), 0);
    int found = 0;
    for (unsigned i = 0; i < envc; i++)
        if (strcmp(envp[i], "KILN_TEST=yes") == 0) found = 1;
    CHECK(found);
}

static void clocks_random_sched(void) {
    __wasi_timestamp_t t, res, m1, m2;
    EXPECT(__wasi_clock_res_get(__WASI_CLOCKID_MONOTONIC, &res), 0);
    EXPECT(__wasi_clock_res_get(99, &res), __WASI_ERRNO_INVAL);
    EXPECT(__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &t), 0);
    CHECK(t == 1234000000000ull);  // the configured epoch, reproducibly
    EXPECT(__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &m1), 0);
    EXPECT(__wasi_clock_time_get(99, 1, &t), __WASI_ERRNO_INVAL);
    // poll_oneoff: a 5 ms relative monotonic sleep
    __wasi_subscription_t sub;
    memset(&sub, 0, sizeof sub);
    sub.userdata = 42;
    sub.u.tag = __WASI_EVENTTYPE_CLOCK;
    sub.u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
    sub.u.u.clock.timeout = 5000000;
    __wasi_event_t ev;
    __wasi_size_t n;
    EXPECT(__wasi_poll_oneoff(&sub, &ev, 1, &n), 0);
    CHECK(n == 1 && ev.userdata == 42 && ev.type == __WASI_EVENTTYPE_CLOCK);
    EXPECT(__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &m2), 0);
    CHECK(m2 - m1 >= 5000000);
    // poll on stdout writability + a clock: stdout (a capture) is ready at once
    __wasi_subscription_t subs[2];
    memset(subs, 0, sizeof subs);
    subs[0].userdata = 1;
    subs[0].u.tag = __WASI_EVENTTYPE_FD_WRITE;
    subs[0].u.u.fd_write.file_descriptor = 1;
    subs[1] = sub;
    subs[1].u.u.clock.timeout = 1000000000;
    __wasi_event_t evs[2];
    EXPECT(__wasi_poll_oneoff(subs, evs, 2, &n), 0);
    CHECK(n == 1 && evs[0].userdata == 1);
    EXPECT(__wasi_poll_oneoff(subs, evs, 0, &n), __WASI_ERRNO_INVAL);
    uint8_t rnd[32] = {0};
    EXPECT(__wasi_random_get(rnd, sizeof rnd), 0);
    int nonzero = 0;
    for (int i = 0; i < 32; i++) nonzero |= rnd[i];
    CHECK(nonzero);
    EXPECT(__wasi_sched_yield(), 0);
    EXPECT(raw_proc_raise(9), __WASI_ERRNO_NOSYS);
}

static void prestat(void) {
    __wasi_prestat_t ps;
    EXPECT(__wasi_fd_prestat_get(ROOT, &ps), 0);
    CHECK(ps.tag == __WASI_PREOPENTYPE_DIR && ps.u.dir.pr_name_len == 1);
    char name[4] = {0};
    EXPECT(__wasi_fd_prestat_dir_name(ROOT, (uint8_t *)name, 1), 0);
    CHECK(name[0] == '/');
    EXPECT(__wasi_fd_prestat_get(1, &ps), __WASI_ERRNO_BADF);
    EXPECT(__wasi_fd_prestat_get(77, &ps), __WASI_ERRNO_BADF);
}

static void files(void) {
    __wasi_fd_t fd = open_at("work/f.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, R_ALL, 0, 0);
    open_at("work/f.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, R_ALL, 0, __WASI_ERRNO_EXIST);
    open_at("work/missing/f.txt", __WASI_OFLAGS_CREAT, R_ALL, 0, __WASI_ERRNO_NOENT);
    open_at("nope.txt", 0, R_RO, 0, __WASI_ERRNO_NOENT);
    open_at("work/f.txt/x", 0, R_RO, 0, __WASI_ERRNO_NOTDIR);
    open_at("work", __WASI_OFLAGS_TRUNC, R_ALL, 0, __WASI_ERRNO_ISDIR);
    open_at("work/f.txt", __WASI_OFLAGS_DIRECTORY, R_RO, 0, __WASI_ERRNO_NOTDIR);

    const char *msg = "hello, kiln\n";
    __wasi_ciovec_t iov = {(const uint8_t *)msg, strlen(msg)};
    __wasi_size_t n;
    EXPECT(__wasi_fd_write(fd, &iov, 1, &n), 0);
    CHECK(n == strlen(msg));
    __wasi_filesize_t pos;
    EXPECT(__wasi_fd_tell(fd, &pos), 0);
    CHECK(pos == strlen(msg));
    EXPECT(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos), 0);
    EXPECT(__wasi_fd_seek(fd, -100, __WASI_WHENCE_CUR, &pos), __WASI_ERRNO_INVAL);
    EXPECT(__wasi_fd_seek(fd, -5, __WASI_WHENCE_END, &pos), 0);
    CHECK(pos == strlen(msg) - 5);
    char buf[64] = {0};
    __wasi_iovec_t riov[2] = {{(uint8_t *)buf, 2}, {(uint8_t *)buf + 2, 10}};
    EXPECT(__wasi_fd_read(fd, riov, 2, &n), 0);
    CHECK(n == 5 && memcmp(buf, "kiln\n", 5) == 0);
    __wasi_ciovec_t piov = {(const uint8_t *)"J", 1};
    EXPECT(__wasi_fd_pwrite(fd, &piov, 1, 0, &n), 0);
    __wasi_iovec_t priov = {(uint8_t *)buf, 5};
    EXPECT(__wasi_fd_pread(fd, &priov, 1, 0, &n), 0);
    CHECK(n == 5 && memcmp(buf, "Jello", 5) == 0);
    EXPECT(__wasi_fd_tell(fd, &pos), 0);
    CHECK(pos == strlen(msg));  // pread/pwrite do not move the offset

    __wasi_fdstat_t st;
    EXPECT(__wasi_fd_fdstat_get(fd, &st), 0);
    CHECK(st.fs_filetype == __WASI_FILETYPE_REGULAR_FILE && st.fs_flags == 0);
    EXPECT(__wasi_fd_fdstat_set_flags(fd, __WASI_FDFLAGS_APPEND), 0);
    EXPECT(__wasi_fd_fdstat_get(fd, &st), 0);
    CHECK(st.fs_flags == __WASI_FDFLAGS_APPEND);
    EXPECT(__wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos), 0);
    __wasi_ciovec_t aiov = {(const uint8_t *)"tail\n", 5};
    EXPECT(__wasi_fd_write(fd, &aiov, 1, &n), 0);
    EXPECT(__wasi_fd_fdstat_set_rights(fd, R_ALL, R_ALL), 0);

    __wasi_filestat_t fs;
    EXPECT(__wasi_fd_filestat_get(fd, &fs), 0);
    CHECK(fs.size == strlen(msg) + 5 && fs.filetype == __WASI_FILETYPE_REGULAR_FILE && fs.nlink == 1);
    EXPECT(__wasi_fd_filestat_set_size(fd, 3), 0);
    EXPECT(__wasi_fd_filestat_get(fd, &fs), 0);
    CHECK(fs.size == 3);
    EXPECT(__wasi_fd_allocate(fd, 0, 100), 0);
    EXPECT(__wasi_fd_filestat_get(fd, &fs), 0);
    CHECK(fs.size == 100);
    EXPECT(__wasi_fd_filestat_set_times(fd, 0, 5000000000ull, __WASI_FSTFLAGS_MTIM), 0);
    EXPECT(__wasi_fd_filestat_set_times(fd, 0, 0, __WASI_FSTFLAGS_MTIM | __WASI_FSTFLAGS_MTIM_NOW), __WASI_ERRNO_INVAL);
    EXPECT(__wasi_fd_filestat_get(fd, &fs), 0);
    CHECK(fs.mtim == 5000000000ull);
    EXPECT(__wasi_fd_advise(fd, 0, 10, __WASI_ADVICE_SEQUENTIAL), 0);
    EXPECT(__wasi_fd_sync(fd), 0);
    EXPECT(__wasi_fd_datasync(fd), 0);

    // renumber onto an open fd, then the old number is gone
    __wasi_fd_t fd2 = open_at("work/f.txt", 0, R_RO, 0, 0);
    EXPECT(__wasi_fd_renumber(fd, fd2), 0);
    EXPECT(__wasi_fd_fdstat_get(fd, &st), __WASI_ERRNO_BADF);
    EXPECT(__wasi_fd_filestat_get(fd2, &fs), 0);
    CHECK(fs.size == 100);
    EXPECT(__wasi_fd_renumber(fd2, 999), __WASI_ERRNO_BADF);
    EXPECT(__wasi_fd_close(fd2), 0);
    EXPECT(__wasi_fd_close(fd2), __WASI_ERRNO_BADF);
    EXPECT(__wasi_fd_write(fd2, &iov, 1, &n), __WASI_ERRNO_BADF);
    EXPECT(__wasi_fd_seek(1, 0, __WASI_WHENCE_CUR, &pos), __WASI_ERRNO_SPIPE);

    // read-only fd refuses writes
    __wasi_fd_t ro = open_at("work/f.txt", 0, R_RO, 0, 0);
    EXPECT(__wasi_fd_write(ro, &iov, 1, &n), __WASI_ERRNO_BADF);
    EXPECT(__wasi_fd_close(ro), 0);
    // O_TRUNC empties
    __wasi_fd_t tr = open_at("work/f.txt", __WASI_OFLAGS_TRUNC, R_ALL, 0, 0);
    EXPECT(__wasi_fd_filestat_get(tr, &fs), 0);
    CHECK(fs.size == 0);
    EXPECT(__wasi_fd_close(tr), 0);
}

static void paths(void) {
    EXPECT(__wasi_path_create_directory(ROOT, "work/d"), 0);
    EXPECT(__wasi_path_create_directory(ROOT, "work/d"), __WASI_ERRNO_EXIST);
    EXPECT(__wasi_path_create_directory(ROOT, "work/no/d"), __WASI_ERRNO_NOENT);
    EXPECT(__wasi_path_create_directory(ROOT, "work/f.txt/d"), __WASI_ERRNO_NOTDIR);
    __wasi_fd_t f = open_at("work/d/inner", __WASI_OFLAGS_CREAT, R_ALL, 0, 0);
    EXPECT(__wasi_fd_close(f), 0);
    EXPECT(__wasi_path_remove_directory(ROOT, "work/d"), __WASI_ERRNO_NOTEMPTY);
    EXPECT(__wasi_path_remove_directory(ROOT, "work/f.txt"), __WASI_ERRNO_NOTDIR);
    EXPECT(__wasi_path_unlink_file(ROOT, "work/d"), __WASI_ERRNO_ISDIR);
    EXPECT(__wasi_path_unlink_file(ROOT, "work/nothing"), __WASI_ERRNO_NOENT);

    __wasi_filestat_t fs;
    EXPECT(__wasi_path_filestat_get(ROOT, 0, "work/d", &fs), 0);
    CHECK(fs.filetype == __WASI_FILETYPE_DIRECTORY);
    EXPECT(__wasi_path_filestat_get(ROOT, 0, "work/none", &fs), __WASI_ERRNO_NOENT);
    EXPECT(__wasi_path_filestat_set_times(ROOT, 0, "work/d/inner", 7000000000ull, 8000000000ull,
                                          __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM), 0);
    EXPECT(__wasi_path_filestat_get(ROOT, 0, "work/d/inner", &fs), 0);
    CHECK(fs.mtim == 8000000000ull && fs.atim == 7000000000ull);
    EXPECT(__wasi_path_filestat_set_times(ROOT, 0, "work/d/inner", 0, 0, __WASI_FSTFLAGS_MTIM_NOW), 0);
    EXPECT(__wasi_path_filestat_get(ROOT, 0, "work/d/inner", &fs), 0);
    CHECK(fs.mtim == 1234000000000ull);

    // symlinks
    EXPECT(__wasi_path_symlink("d/inner", ROOT, "work/ln"), 0);
    EXPECT(__wasi_path_symlink("d/inner", ROOT, "work/ln"), __WASI_ERRNO_EXIST);
    char buf[64] = {0};
    __wasi_size_t n;
    EXPECT(__wasi_path_readlink(ROOT, "work/ln", (uint8_t *)buf, sizeof buf, &n), 0);
    CHECK(n == 7 && memcmp(buf, "d/inner", 7) == 0);
    EXPECT(__wasi_path_readlink(ROOT, "work/d", (uint8_t *)buf, sizeof buf, &n), __WASI_ERRNO_INVAL);
    EXPECT(__wasi_path_filestat_get(ROOT, 0, "work/ln", &fs), 0);
    CHECK(fs.filetype == __WASI_FILETYPE_SYMBOLIC_LINK);
    EXPECT(__wasi_path_filestat_get(ROOT, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "work/ln", &fs), 0);
    CHECK(fs.filetype == __WASI_FILETYPE_REGULAR_FILE);
    EXPECT(__wasi_path_symlink("loop2", ROOT, "work/loop1"), 0);
    EXPECT(__wasi_path_symlink("loop1", ROOT, "work/loop2"), 0);
    open_at("work/loop1", 0, R_RO, 0, __WASI_ERRNO_LOOP);
    __wasi_fd_t nf = (__wasi_fd_t)-1;
    EXPECT(__wasi_path_open(ROOT, 0, "work/ln", 0, R_RO, R_RO, 0, &nf), __WASI_ERRNO_LOOP);

    // hard links
    EXPECT(__wasi_path_link(ROOT, 0, "work/d/inner", ROOT, "work/hard"), 0);
    EXPECT(__wasi_path_link(ROOT, 0, "work/d/inner", ROOT, "work/hard"), __WASI_ERRNO_EXIST);
    EXPECT(__wasi_path_filestat_get(ROOT, 0, "work/hard", &fs), 0);
    CHECK(fs.nlink == 2);

    // rename
    EXPECT(__wasi_path_rename(ROOT, "work/hard", ROOT, "work/moved"), 0);
    EXPECT(__wasi_path_rename(ROOT, "work/hard", ROOT, "work/moved2"), __WASI_ERRNO_NOENT);
    EXPECT(__wasi_path_rename(ROOT, "work/d", ROOT, "work/d/sub"), __WASI_ERRNO_INVAL);
    EXPECT(__wasi_path_create_directory(ROOT, "work/e"), 0);
    EXPECT(__wasi_path_rename(ROOT, "work/e", ROOT, "work/d"), __WASI_ERRNO_NOTEMPTY);
    EXPECT(__wasi_path_rename(ROOT, "work/moved", ROOT, "work/e"), __WASI_ERRNO_ISDIR);
    EXPECT(__wasi_path_unlink_file(ROOT, "work/moved"), 0);
    EXPECT(__wasi_path_remove_directory(ROOT, "work/e"), 0);

    // `..` cannot climb above the root
    EXPECT(__wasi_path_filestat_get(ROOT, 0, "../../../work/../../work/d", &fs), 0);
    CHECK(fs.filetype == __WASI_FILETYPE_DIRECTORY);

    // kiln_v1: chmod / chown / full stat
    uint8_t ks[80];
    const char *p = "work/d/inner";
    EXPECT(kiln_chmod(ROOT, 1, p, strlen(p), 04751), 0);
    EXPECT(kiln_chown(ROOT, 1, p, strlen(p), 1000, -1), 0);
    EXPECT(kiln_stat(ROOT, 1, p, strlen(p), ks), 0);
    uint32_t mode, uid, gid;
    memcpy(&mode, ks + 40, 4);
    memcpy(&uid, ks + 44, 4);
    memcpy(&gid, ks + 48, 4);
    CHECK(mode == (0100000 | 04751) && uid == 1000 && gid == 0);
    EXPECT(kiln_stat(ROOT, 1, "nope", 4, ks), __WASI_ERRNO_NOENT);
    EXPECT(kiln_fstat(ROOT, ks), 0);
    memcpy(&mode, ks + 40, 4);
    CHECK((mode & 0170000) == 0040000);
}

static void readdir(void) {
    __wasi_fd_t d = open_at("work/d", __WASI_OFLAGS_DIRECTORY, R_RO, 0, 0);
    uint8_t buf[512];
    __wasi_size_t used;
    EXPECT(__wasi_fd_readdir(d, buf, sizeof buf, 0, &used), 0);
    // ".", "..", "inner"
    char names[3][16];
    int count = 0;
    __wasi_size_t off = 0;
    while (off + sizeof(__wasi_dirent_t) <= used && count < 3) {
        __wasi_dirent_t de;
        memcpy(&de, buf + off, sizeof de);
        off += sizeof de;
        memcpy(names[count], buf + off, de.d_namlen);
        names[count][de.d_namlen] = 0;
        off += de.d_namlen;
        count++;
    }
    CHECK(count == 3 && strcmp(names[0], ".") == 0 && strcmp(names[1], "..") == 0 && strcmp(names[2], "inner") == 0);
    // cookie 2 starts at the third entry
    EXPECT(__wasi_fd_readdir(d, buf, sizeof buf, 2, &used), 0);
    CHECK(used == sizeof(__wasi_dirent_t) + 5);
    __wasi_fdstat_t st;
    EXPECT(__wasi_fd_fdstat_get(d, &st), 0);
    CHECK(st.fs_filetype == __WASI_FILETYPE_DIRECTORY);
    // a relative open from a directory fd
    __wasi_fd_t f = (__wasi_fd_t)-1;
    EXPECT(__wasi_path_open(d, 0, "inner", 0, R_RO, R_RO, 0, &f), 0);
    EXPECT(__wasi_fd_close(f), 0);
    EXPECT(__wasi_fd_readdir(1, buf, sizeof buf, 0, &used), __WASI_ERRNO_NOTDIR);
    EXPECT(__wasi_fd_close(d), 0);
}

static void sockets(void) {
    __wasi_fd_t fd;
    __wasi_size_t n;
    __wasi_roflags_t rf;
    __wasi_iovec_t iov = {0, 0};
    __wasi_ciovec_t ciov = {0, 0};
    EXPECT(__wasi_sock_accept(ROOT, 0, &fd), __WASI_ERRNO_NOTSOCK);
    EXPECT(__wasi_sock_recv(ROOT, &iov, 1, 0, &n, &rf), __WASI_ERRNO_NOTSOCK);
    EXPECT(__wasi_sock_send(ROOT, &ciov, 1, 0, &n), __WASI_ERRNO_NOTSOCK);
    EXPECT(__wasi_sock_shutdown(ROOT, __WASI_SDFLAGS_WR), __WASI_ERRNO_NOTSOCK);
}

int main(void) {
    args_env();
    clocks_random_sched();
    prestat();
    files();
    paths();
    readdir();
    sockets();
    printf("done ok=%d fail=%d\n", ok, fail);
    fflush(stdout);
    __wasi_proc_exit(fail ? 1 : 0);
}
