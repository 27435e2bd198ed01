/* cputime.c -- runs a command and prints the user+system CPU seconds it took, to the
 * microsecond (GNU time prints hundredths, too coarse for a C baseline's 0.1 s).
 *
 *   cputime OUT CMD [ARGS...]
 *
 * The seconds go to the file OUT; the command's stdin, stdout and stderr are this
 * program's. Exits with the command's status (1 when it was killed by a signal). */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct rusage ru;
    int status;
    if (argc < 3) {
        fprintf(stderr, "usage: cputime OUT CMD [ARGS...]\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("cputime: fork");
        return 1;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "cputime: cannot run %s: ", argv[2]);
        perror(NULL);
        _exit(127);
    }
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("cputime: wait4");
        return 1;
    }
    FILE *f = fopen(argv[1], "w");
    if (f == NULL) {
        fprintf(stderr, "cputime: cannot write %s: ", argv[1]);
        perror(NULL);
        return 1;
    }
    fprintf(f, "%.6f\n", (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
