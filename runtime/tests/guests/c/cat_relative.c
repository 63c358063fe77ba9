// Prints the file named by argv[1] (relative to the process's working directory).
// Starts with chdir($PWD), the kiln process-start protocol (runtime/ABI.md).
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void kiln_enter_pwd(void) {
    const char *pwd = getenv("PWD");
    if (pwd && *pwd) chdir(pwd);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
    return 0;
}
